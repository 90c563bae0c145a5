//! The daily report's figures on PostgreSQL.

use super::*;

use chrono::{NaiveDate, TimeZone};
use chrono_tz::Tz;
use sqlx::PgPool;

use crate::store::{DailyReport, InstitutionDay};

/// Figures for `date` (a calendar day in `tz`).
pub async fn build(pool: &PgPool, date: NaiveDate, tz: Tz) -> Result<DailyReport, sqlx::Error> {
    let start = tz
        .from_local_datetime(&date.and_hms_opt(0, 0, 0).expect("midnight"))
        .earliest()
        .expect("midnight exists")
        .with_timezone(&chrono::Utc);
    let end = start + chrono::Duration::days(1);
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
         LEFT JOIN revisits r ON r.customer_id = c.id AND r.created_at >= $1 AND r.created_at < $2
         GROUP BY i.code, i.name ORDER BY i.code",
    )
    .bind(start)
    .bind(end)
    .fetch_all(pool)
    .await?;
    let (import_files, import_inserted, import_updated, import_rejected): (i64, i64, i64, i64) =
        sqlx::query_as(
            "SELECT count(*), COALESCE(sum(inserted), 0)::bigint, COALESCE(sum(updated), 0)::bigint,
                    COALESCE(sum(rejected), 0)::bigint
             FROM import_log WHERE finished_at >= $1 AND finished_at < $2",
        )
        .bind(start)
        .bind(end)
        .fetch_one(pool)
        .await?;
    let new_customers: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM customers WHERE created_at >= $1 AND created_at < $2",
    )
    .bind(start)
    .bind(end)
    .fetch_one(pool)
    .await?;
    let dead_jobs: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM apalis.jobs
         WHERE (status = 'Killed' OR (status = 'Failed' AND attempts >= max_attempts))
           AND done_at >= $1 AND done_at < $2",
    )
    .bind(start)
    .bind(end)
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

pub async fn save(pool: &PgPool, report: &DailyReport, text: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO daily_reports (report_date, content, text) VALUES ($1, $2, $3)
         ON CONFLICT (report_date) DO UPDATE SET content = EXCLUDED.content, text = EXCLUDED.text,
             created_at = now()",
    )
    .bind(report.date)
    .bind(sqlx::types::Json(report))
    .bind(text)
    .execute(pool)
    .await
    .map(|_| ())
}

#[async_trait::async_trait]
impl crate::store::reports::Reports for PgStore {
    async fn daily_report(&self, date: NaiveDate, tz: Tz) -> StoreResult<DailyReport> {
        Ok(reports::build(&self.pool, date, tz).await?)
    }

    async fn dashboard_facts(&self, window: &Window) -> StoreResult<DashboardFacts> {
        analytics::dashboard_facts(&self.pool, window).await
    }

    async fn save_report(&self, report: &DailyReport, text: &str) -> StoreResult<()> {
        Ok(reports::save(&self.pool, report, text).await?)
    }

    async fn record_health(&self, healthy: bool, results: serde_json::Value) -> StoreResult<()> {
        Ok(
            sqlx::query("INSERT INTO health_checks (healthy, results) VALUES ($1, $2)")
                .bind(healthy)
                .bind(results)
                .execute(&self.pool)
                .await
                .map(|_| ())?,
        )
    }

    async fn latest_health(&self) -> StoreResult<Option<HealthRecord>> {
        let row: Option<(chrono::DateTime<chrono::Utc>, serde_json::Value)> = sqlx::query_as(
            "SELECT checked_at, results FROM health_checks ORDER BY id DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(checked_at, results)| HealthRecord {
            checked_at,
            results,
        }))
    }
}
