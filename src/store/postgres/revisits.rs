//! Revisits on PostgreSQL. The unique key (customer, occasion, date, test mode) is what makes
//! "never greet anyone twice" hold however often a scan runs.

use chrono::{DateTime, NaiveDate, Utc};
use revisit_jobs::{GreetingGenerate, MessageSend};
use sqlx::PgPool;

use super::jobs;
use crate::{
    notify::Outgoing,
    store::{NewJob, Revisit, RevisitView, SavedGreeting, StoreResult},
};

pub async fn create_birthday(
    pool: &PgPool,
    found: &[(i64, NaiveDate)],
    test_mode: bool,
    greeting_max_attempts: i32,
) -> StoreResult<u32> {
    let mut tx = pool.begin().await?;
    let mut created = 0;
    for (customer_id, date) in found {
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO revisits (customer_id, occasion, occasion_date, test_mode, send_key)
             VALUES ($1, 'birthday', $2, $3, $4)
             ON CONFLICT (customer_id, occasion, occasion_date, test_mode) DO NOTHING
             RETURNING id",
        )
        .bind(customer_id)
        .bind(date)
        .bind(test_mode)
        .bind(format!("revisit-{}", ulid::Ulid::generate()))
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(id) = id {
            jobs::insert(
                &mut tx,
                &NewJob::for_revisit(
                    &GreetingGenerate { revisit_id: id },
                    greeting_max_attempts,
                    id,
                ),
            )
            .await?;
            created += 1;
        }
    }
    tx.commit().await?;
    Ok(created)
}

pub async fn get(pool: &PgPool, id: i64) -> StoreResult<Option<Revisit>> {
    sqlx::query_as("SELECT * FROM revisits WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await
}

pub async fn save_greeting(
    pool: &PgPool,
    g: SavedGreeting<'_>,
    send_max_attempts: i32,
) -> StoreResult<bool> {
    let mut tx = pool.begin().await?;
    let existing: Option<Option<String>> =
        sqlx::query_scalar("SELECT message FROM revisits WHERE id = $1 FOR UPDATE")
            .bind(g.revisit_id)
            .fetch_optional(&mut *tx)
            .await?;
    if !matches!(existing, Some(None)) {
        return Ok(false);
    }
    sqlx::query(
        "UPDATE revisits SET status = 'generated', message = $2, generated_by = $3, model = $4,
             channel = $5, generated_at = now(), last_error = NULL, updated_at = now()
         WHERE id = $1",
    )
    .bind(g.revisit_id)
    .bind(g.message)
    .bind(g.generated_by)
    .bind(g.model)
    .bind(g.channel)
    .execute(&mut *tx)
    .await?;
    jobs::insert(
        &mut tx,
        &NewJob::for_revisit(
            &MessageSend {
                revisit_id: g.revisit_id,
            },
            send_max_attempts,
            g.revisit_id,
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

pub async fn mark_failed(pool: &PgPool, id: i64, error: &str) -> StoreResult<()> {
    sqlx::query(
        "UPDATE revisits SET status = 'failed', last_error = $2, updated_at = now()
         WHERE id = $1 AND status NOT IN ('sent', 'skipped')",
    )
    .bind(id)
    .bind(error)
    .execute(pool)
    .await
    .map(|_| ())
}

pub async fn set_status(
    pool: &PgPool,
    id: i64,
    status: &str,
    error: Option<&str>,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE revisits SET status = $2, last_error = COALESCE($3, last_error), updated_at = now(),
             sent_at = CASE WHEN $2 = 'sent' THEN now() ELSE sent_at END
         WHERE id = $1",
    )
    .bind(id)
    .bind(status)
    .bind(error)
    .execute(pool)
    .await
    .map(|_| ())
}

pub async fn begin_send(pool: &PgPool, id: i64) -> StoreResult<()> {
    sqlx::query(
        "UPDATE revisits SET status = 'sending', send_attempts = send_attempts + 1, updated_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .execute(pool)
    .await
    .map(|_| ())
}

pub async fn note_error(pool: &PgPool, id: i64, error: &str) -> StoreResult<()> {
    sqlx::query("UPDATE revisits SET last_error = $2, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(error)
        .execute(pool)
        .await
        .map(|_| ())
}

pub async fn outgoing(pool: &PgPool, r: &Revisit) -> StoreResult<Option<Outgoing>> {
    let row: Option<(String, String, String, String, bool)> = sqlx::query_as(
        "SELECT i.code, c.code, p.name, p.phone, c.opted_out
         FROM customers c JOIN persons p ON p.id = c.person_id
         JOIN institutions i ON i.id = c.institution_id WHERE c.id = $1",
    )
    .bind(r.customer_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.and_then(|(inst, code, name, phone, opted_out)| {
        Outgoing::for_revisit(r, inst, code, name, phone, opted_out)
    }))
}

pub async fn since(pool: &PgPool, since: DateTime<Utc>) -> StoreResult<Vec<RevisitView>> {
    let rows: Vec<RevisitView> = sqlx::query_as(
        "SELECT r.id, i.code AS institution, c.code AS customer_code, p.name, p.phone,
                r.occasion_date, r.test_mode, r.status, r.generated_by, r.message, r.last_error
         FROM revisits r JOIN customers c ON c.id = r.customer_id
         JOIN persons p ON p.id = c.person_id JOIN institutions i ON i.id = c.institution_id
         WHERE r.created_at >= $1 ORDER BY r.occasion_date, r.id",
    )
    .bind(since)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(RevisitView::masked).collect())
}

pub async fn progress(pool: &PgPool, since: DateTime<Utc>) -> StoreResult<(i64, i64)> {
    sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status IN ('pending', 'generated', 'sending')), count(*)
         FROM revisits WHERE created_at >= $1",
    )
    .bind(since)
    .fetch_one(pool)
    .await
}
