//! Customers, revisits, reports and health on SQLite: the same operations as the PostgreSQL
//! modules, in SQLite's dialect (JSON text for lists, `json_each` for `= ANY`).

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use revisit_jobs::{GreetingGenerate, MessageSend};
use sqlx::SqlitePool;

use super::{begin_write, jobs, ts};
use crate::{
    llm::prompt::{GreetingContext, HistoryItem},
    notify::Outgoing,
    store::{
        BirthdayCandidate, DailyReport, InstitutionDay, NewJob, Revisit, RevisitView,
        SavedGreeting, StoreResult,
    },
};

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("serialisable")
}

pub async fn existing_institutions(
    pool: &SqlitePool,
    wanted: &[String],
) -> StoreResult<Vec<String>> {
    let found: Vec<String> = sqlx::query_scalar(
        "SELECT code FROM institutions WHERE code IN (SELECT value FROM json_each(?1))",
    )
    .bind(json(&wanted))
    .fetch_all(pool)
    .await?;
    Ok(wanted
        .iter()
        .filter(|w| found.contains(w))
        .cloned()
        .collect())
}

pub async fn birthday_candidates(
    pool: &SqlitePool,
    institutions: &[String],
    month_days: &[i16],
) -> StoreResult<Vec<BirthdayCandidate>> {
    sqlx::query_as(
        "SELECT customer_id, birthday FROM (
             SELECT c.id AS customer_id, p.birthday,
                    row_number() OVER (
                        PARTITION BY p.id
                        ORDER BY (SELECT max(r.order_date) FROM consumption_records r WHERE r.customer_id = c.id)
                                 DESC NULLS LAST, c.id) AS pick
             FROM customers c
             JOIN persons p ON p.id = c.person_id
             JOIN institutions i ON i.id = c.institution_id
             WHERE i.code IN (SELECT value FROM json_each(?1)) AND i.status = 'active'
               AND p.birthday_md IN (SELECT value FROM json_each(?2)) AND p.birthday IS NOT NULL
               AND NOT c.opted_out)
         WHERE pick = 1
         ORDER BY customer_id",
    )
    .bind(json(&institutions))
    .bind(json(&month_days))
    .fetch_all(pool)
    .await
}

#[derive(sqlx::FromRow)]
struct ProfileRow {
    institution_name: String,
    name: String,
    gender: Option<String>,
    vip_level: Option<String>,
    tags: String,
    notes: Option<String>,
    institution_id: i64,
}

type HistoryRow = (NaiveDate, String, String, i64, Option<String>);

pub async fn greeting_context(
    pool: &SqlitePool,
    customer_id: i64,
    occasion_date: NaiveDate,
) -> StoreResult<Option<GreetingContext>> {
    let Some(p): Option<ProfileRow> = sqlx::query_as(
        "SELECT i.name AS institution_name, p.name, p.gender, c.vip_level, c.tags, c.notes,
                c.institution_id
         FROM customers c JOIN persons p ON p.id = c.person_id
         JOIN institutions i ON i.id = c.institution_id
         WHERE c.id = ?1",
    )
    .bind(customer_id)
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    let history: Vec<HistoryRow> = sqlx::query_as(
        "SELECT r.order_date, it.item_type, it.item_name, it.actual_price_cents, d.name
         FROM consumption_records r
         JOIN consumption_items it
           ON it.institution_id = r.institution_id AND it.order_number = r.order_number
         LEFT JOIN doctors d ON d.code = it.doctor_code
         WHERE r.institution_id = ?1 AND r.customer_id = ?2 AND r.status = 'completed'
         ORDER BY r.order_date DESC, it.line_no
         LIMIT 10",
    )
    .bind(p.institution_id)
    .bind(customer_id)
    .fetch_all(pool)
    .await?;
    Ok(Some(GreetingContext {
        institution_name: p.institution_name,
        full_name: p.name,
        gender: p.gender,
        occasion_date,
        vip_level: p.vip_level,
        tags: serde_json::from_str(&p.tags).unwrap_or_default(),
        notes: p.notes,
        history: history
            .into_iter()
            .map(
                |(date, item_type, item_name, amount_cents, doctor_name)| HistoryItem {
                    date,
                    item_type,
                    item_name,
                    amount_cents,
                    doctor_name,
                },
            )
            .collect(),
    }))
}

pub async fn create_birthday_revisits(
    pool: &SqlitePool,
    found: &[(i64, NaiveDate)],
    test_mode: bool,
    greeting_max_attempts: i32,
) -> StoreResult<u32> {
    let mut tx = begin_write(pool).await?;
    let mut created = 0;
    for (customer_id, date) in found {
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO revisits (customer_id, occasion, occasion_date, test_mode, send_key)
             VALUES (?1, 'birthday', ?2, ?3, ?4)
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

pub async fn revisit(pool: &SqlitePool, id: i64) -> StoreResult<Option<Revisit>> {
    sqlx::query_as("SELECT * FROM revisits WHERE id = ?1")
        .bind(id)
        .fetch_optional(pool)
        .await
}

pub async fn save_greeting(
    pool: &SqlitePool,
    g: SavedGreeting<'_>,
    send_max_attempts: i32,
) -> StoreResult<bool> {
    // BEGIN IMMEDIATE holds the write lock from the start: the check and the update see the same row.
    let mut tx = begin_write(pool).await?;
    let saved = sqlx::query(
        "UPDATE revisits SET status = 'generated', message = ?2, generated_by = ?3, model = ?4,
             channel = ?5, generated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), last_error = NULL,
             updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
         WHERE id = ?1 AND message IS NULL",
    )
    .bind(g.revisit_id)
    .bind(g.message)
    .bind(g.generated_by)
    .bind(g.model)
    .bind(g.channel)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if !saved {
        return Ok(false);
    }
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

pub async fn mark_revisit_failed(pool: &SqlitePool, id: i64, error: &str) -> StoreResult<()> {
    sqlx::query(
        "UPDATE revisits SET status = 'failed', last_error = ?2, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
         WHERE id = ?1 AND status NOT IN ('sent', 'skipped')",
    )
    .bind(id)
    .bind(error)
    .execute(pool)
    .await
    .map(|_| ())
}

pub async fn set_revisit_status(
    pool: &SqlitePool,
    id: i64,
    status: &str,
    error: Option<&str>,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE revisits SET status = ?2, last_error = COALESCE(?3, last_error),
             updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
             sent_at = CASE WHEN ?2 = 'sent' THEN strftime('%Y-%m-%dT%H:%M:%fZ', 'now') ELSE sent_at END
         WHERE id = ?1",
    )
    .bind(id)
    .bind(status)
    .bind(error)
    .execute(pool)
    .await
    .map(|_| ())
}

pub async fn begin_send(pool: &SqlitePool, id: i64) -> StoreResult<()> {
    sqlx::query(
        "UPDATE revisits SET status = 'sending', send_attempts = send_attempts + 1,
             updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
         WHERE id = ?1",
    )
    .bind(id)
    .execute(pool)
    .await
    .map(|_| ())
}

pub async fn note_revisit_error(pool: &SqlitePool, id: i64, error: &str) -> StoreResult<()> {
    sqlx::query("UPDATE revisits SET last_error = ?2, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?1")
        .bind(id)
        .bind(error)
        .execute(pool)
        .await
        .map(|_| ())
}

pub async fn outgoing(pool: &SqlitePool, r: &Revisit) -> StoreResult<Option<Outgoing>> {
    let row: Option<(String, String, String, String, bool)> = sqlx::query_as(
        "SELECT i.code, c.code, p.name, p.phone, c.opted_out
         FROM customers c JOIN persons p ON p.id = c.person_id
         JOIN institutions i ON i.id = c.institution_id WHERE c.id = ?1",
    )
    .bind(r.customer_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.and_then(|(inst, code, name, phone, opted_out)| {
        Outgoing::for_revisit(r, inst, code, name, phone, opted_out)
    }))
}

pub async fn revisits_since(
    pool: &SqlitePool,
    since: DateTime<Utc>,
) -> StoreResult<Vec<RevisitView>> {
    let rows: Vec<RevisitView> = sqlx::query_as(
        "SELECT r.id, i.code AS institution, c.code AS customer_code, p.name, p.phone,
                r.occasion_date, r.test_mode, r.status, r.generated_by, r.message, r.last_error
         FROM revisits r JOIN customers c ON c.id = r.customer_id
         JOIN persons p ON p.id = c.person_id JOIN institutions i ON i.id = c.institution_id
         WHERE r.created_at >= ?1 ORDER BY r.occasion_date, r.id",
    )
    .bind(ts(since))
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(RevisitView::masked).collect())
}

pub async fn revisit_progress(pool: &SqlitePool, since: DateTime<Utc>) -> StoreResult<(i64, i64)> {
    sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status IN ('pending', 'generated', 'sending')), count(*)
         FROM revisits WHERE created_at >= ?1",
    )
    .bind(ts(since))
    .fetch_one(pool)
    .await
}

pub async fn daily_report(pool: &SqlitePool, date: NaiveDate, tz: Tz) -> StoreResult<DailyReport> {
    let start = tz
        .from_local_datetime(&date.and_hms_opt(0, 0, 0).expect("midnight"))
        .earliest()
        .expect("midnight exists")
        .with_timezone(&Utc);
    let end = start + chrono::Duration::days(1);
    let (start_s, end_s) = (ts(start), ts(end));
    let institutions: Vec<InstitutionDay> = sqlx::query_as(
        "SELECT i.code, i.name,
                count(r.id) AS created,
                count(r.id) FILTER (WHERE r.status = 'sent' AND NOT r.test_mode) AS sent,
                count(r.id) FILTER (WHERE r.status = 'sent' AND r.test_mode) AS test_shown,
                count(r.id) FILTER (WHERE r.status = 'failed') AS failed,
                count(r.id) FILTER (WHERE r.status = 'skipped') AS skipped
         FROM institutions i
         LEFT JOIN customers c ON c.institution_id = i.id
         LEFT JOIN revisits r ON r.customer_id = c.id AND r.created_at >= ?1 AND r.created_at < ?2
         GROUP BY i.code, i.name ORDER BY i.code",
    )
    .bind(&start_s)
    .bind(&end_s)
    .fetch_all(pool)
    .await?;
    let (import_files, import_inserted, import_updated, import_rejected): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), COALESCE(sum(inserted), 0), COALESCE(sum(updated), 0), COALESCE(sum(rejected), 0)
         FROM import_log WHERE finished_at >= ?1 AND finished_at < ?2",
    )
    .bind(&start_s)
    .bind(&end_s)
    .fetch_one(pool)
    .await?;
    let new_customers: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM customers WHERE created_at >= ?1 AND created_at < ?2",
    )
    .bind(&start_s)
    .bind(&end_s)
    .fetch_one(pool)
    .await?;
    let dead_jobs: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM Jobs
         WHERE (status = 'Killed' OR (status = 'Failed' AND attempts >= max_attempts))
           AND done_at >= ?1 AND done_at < ?2",
    )
    .bind(start.timestamp())
    .bind(end.timestamp())
    .fetch_one(pool)
    .await?;
    Ok(DailyReport {
        date,
        institutions,
        import_files,
        import_inserted,
        import_updated,
        import_rejected,
        new_customers,
        dead_jobs,
    })
}

pub async fn save_report(pool: &SqlitePool, report: &DailyReport, text: &str) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO daily_reports (report_date, content, text) VALUES (?1, ?2, ?3)
         ON CONFLICT (report_date) DO UPDATE SET content = excluded.content, text = excluded.text,
             created_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
    )
    .bind(report.date)
    .bind(json(report))
    .bind(text)
    .execute(pool)
    .await
    .map(|_| ())
}
