//! Revisits: one row per customer, occasion and date (and test mode). The unique key is what
//! makes "never greet anyone twice" hold however often a scan runs.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};

use crate::notify::Outgoing;

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct Revisit {
    pub id: i64,
    pub customer_id: i64,
    pub occasion: String,
    pub occasion_date: NaiveDate,
    pub test_mode: bool,
    pub status: String,
    pub message: Option<String>,
    pub generated_by: Option<String>,
    pub model: Option<String>,
    pub channel: Option<String>,
    pub send_key: String,
    pub send_attempts: i32,
    pub last_error: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// Creates the revisit unless one exists for this customer, occasion, date and mode.
/// Returns the new id, or `None` when the customer already has it.
pub async fn create(
    conn: &mut PgConnection,
    customer_id: i64,
    occasion: &str,
    occasion_date: NaiveDate,
    test_mode: bool,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO revisits (customer_id, occasion, occasion_date, test_mode, send_key)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (customer_id, occasion, occasion_date, test_mode) DO NOTHING
         RETURNING id",
    )
    .bind(customer_id)
    .bind(occasion)
    .bind(occasion_date)
    .bind(test_mode)
    .bind(format!("revisit-{}", ulid::Ulid::generate()))
    .fetch_optional(conn)
    .await
}

/// The revisit, locked for the rest of the caller's transaction.
pub async fn lock(conn: &mut PgConnection, id: i64) -> Result<Option<Revisit>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM revisits WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(conn)
        .await
}

pub async fn get(pool: &PgPool, id: i64) -> Result<Option<Revisit>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM revisits WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await
}

pub async fn set_generated(
    conn: &mut PgConnection,
    id: i64,
    message: &str,
    generated_by: &str,
    model: Option<&str>,
    channel: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE revisits SET status = 'generated', message = $2, generated_by = $3, model = $4,
             channel = $5, generated_at = now(), last_error = NULL, updated_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .bind(message)
    .bind(generated_by)
    .bind(model)
    .bind(channel)
    .execute(conn)
    .await
    .map(|_| ())
}

/// Sets the status (and error, if any) of a revisit.
pub async fn set_status(
    conn: &mut PgConnection,
    id: i64,
    status: &str,
    error: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE revisits SET status = $2, last_error = COALESCE($3, last_error), updated_at = now(),
             sent_at = CASE WHEN $2 = 'sent' THEN now() ELSE sent_at END
         WHERE id = $1",
    )
    .bind(id)
    .bind(status)
    .bind(error)
    .execute(conn)
    .await
    .map(|_| ())
}

/// Marks a try as under way: from here until `sent`, a delivery may have happened.
pub async fn begin_send(conn: &mut PgConnection, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE revisits SET status = 'sending', send_attempts = send_attempts + 1, updated_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .execute(conn)
    .await
    .map(|_| ())
}

/// What a channel needs to deliver the revisit's message.
pub async fn outgoing(pool: &PgPool, r: &Revisit) -> Result<Option<Outgoing>, sqlx::Error> {
    let row: Option<(String, String, String, String, bool)> = sqlx::query_as(
        "SELECT i.code, c.code, p.name, p.phone, c.opted_out
         FROM customers c JOIN persons p ON p.id = c.person_id
         JOIN institutions i ON i.id = c.institution_id WHERE c.id = $1",
    )
    .bind(r.customer_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.and_then(|(inst, code, name, phone, opted_out)| {
        (!opted_out).then(|| Outgoing {
            revisit_id: r.id,
            send_key: r.send_key.clone(),
            institution_code: inst,
            customer_code: code,
            name,
            phone,
            occasion: r.occasion.clone(),
            occasion_date: r.occasion_date,
            message: r.message.clone().unwrap_or_default(),
        })
    }))
}

/// A revisit with the customer's masked identity, for the CLI and the demo.
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct RevisitView {
    pub id: i64,
    pub institution: String,
    pub customer_code: String,
    pub name: String,
    pub phone: String,
    pub occasion_date: NaiveDate,
    pub test_mode: bool,
    pub status: String,
    pub generated_by: Option<String>,
    pub message: Option<String>,
    pub last_error: Option<String>,
}

/// Revisits created at or after `since`, oldest first; names and phones are masked.
pub async fn list_since(
    pool: &PgPool,
    since: DateTime<Utc>,
) -> Result<Vec<RevisitView>, sqlx::Error> {
    let mut rows: Vec<RevisitView> = sqlx::query_as(
        "SELECT r.id, i.code AS institution, c.code AS customer_code, p.name, p.phone,
                r.occasion_date, r.test_mode, r.status, r.generated_by, r.message, r.last_error
         FROM revisits r JOIN customers c ON c.id = r.customer_id
         JOIN persons p ON p.id = c.person_id JOIN institutions i ON i.id = c.institution_id
         WHERE r.created_at >= $1 ORDER BY r.occasion_date, r.id",
    )
    .bind(since)
    .fetch_all(pool)
    .await?;
    for r in &mut rows {
        r.name = crate::domain::privacy::mask_name(&r.name);
        r.phone = crate::domain::privacy::mask_phone(&r.phone);
    }
    Ok(rows)
}
