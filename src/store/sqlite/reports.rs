//! The daily report and its storage on SQLite.

use super::*;

use chrono::{NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use sqlx::SqlitePool;

use super::{json, ts};
use crate::store::{DailyReport, InstitutionDay, StoreResult};

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
                count(r.id) FILTER (WHERE r.status = 'skipped') AS skipped,
                count(r.id) FILTER (WHERE r.status = 'submitted'
                                    OR (r.status = 'generated' AND r.approval = 'pending'))
                    AS awaiting_staff
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
    Ok(sqlx::query(
        "INSERT INTO daily_reports (report_date, content, text) VALUES (?1, ?2, ?3)
         ON CONFLICT (report_date) DO UPDATE SET content = excluded.content, text = excluded.text,
             created_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
    )
    .bind(report.date)
    .bind(json(report))
    .bind(text)
    .execute(pool)
    .await
    .map(|_| ())?)
}

#[async_trait::async_trait]
impl crate::store::reports::Reports for SqliteStore {
    async fn daily_report(&self, date: NaiveDate, tz: Tz) -> StoreResult<DailyReport> {
        reports::daily_report(&self.pool, date, tz).await
    }

    async fn dashboard_facts(&self, window: &Window) -> StoreResult<DashboardFacts> {
        analytics::dashboard_facts(&self.pool, window).await
    }

    async fn save_report(&self, report: &DailyReport, text: &str) -> StoreResult<()> {
        reports::save_report(&self.pool, report, text).await
    }

    async fn record_health(&self, healthy: bool, results: serde_json::Value) -> StoreResult<()> {
        Ok(
            sqlx::query("INSERT INTO health_checks (healthy, results) VALUES (?1, ?2)")
                .bind(healthy)
                .bind(results.to_string())
                .execute(&self.pool)
                .await
                .map(|_| ())?,
        )
    }

    async fn latest_health(&self) -> StoreResult<Option<HealthRecord>> {
        let row: Option<(chrono::DateTime<chrono::Utc>, String)> = sqlx::query_as(
            "SELECT checked_at, results FROM health_checks ORDER BY id DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(checked_at, text)| HealthRecord {
            checked_at,
            results: serde_json::from_str(&text).unwrap_or_default(),
        }))
    }
}
