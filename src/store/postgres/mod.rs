//! The PostgreSQL store: the chain's source of truth. Consumption history is partitioned by
//! institution; the job queue is apalis-postgres's `apalis.jobs`.

mod access;
mod analytics;
mod broadcasts;
mod consent;
mod customers;
mod directory;
mod followups;
mod import;
pub mod jobs;
mod projections;
mod queue;
mod queue_control;
mod rate_limits;
mod reports;
mod revisits;
mod search_profiles;
mod sending_switch;
mod setup;
mod tasks;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use revisit_jobs::{EntityKind, ImportFile, Job, ProjectionName};
use sqlx::PgPool;

pub use setup::{
    DbError, MIGRATIONS_TABLE, connect_url, create_database_if_missing, database_name,
    drop_database, migrate,
};

use super::*;
use crate::{
    config::{Backend, Settings},
    domain::followup::FrequencyCap,
    domain::greeting::GreetingContext,
    domain::{
        birthday::BirthdayWindow,
        dashboard::{DashboardFacts, Window},
        snapshot::Snapshots,
    },
};

#[derive(Clone)]
pub struct PgStore {
    pub pool: PgPool,
}

impl PgStore {
    /// Connects to the configured database and applies the migrations.
    pub async fn open(settings: &Settings) -> Result<Self, DbError> {
        let pool = connect_url(
            &settings.database.url,
            settings
                .database
                .pool_size
                .unwrap_or(settings.database.max_connections),
            settings.database.application_name,
        )
        .await?;
        migrate(&pool).await?;
        Ok(Self { pool })
    }
}

#[async_trait]
impl Repository for PgStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn version(&self) -> StoreResult<String> {
        let v: String = sqlx::query_scalar("SELECT version()")
            .fetch_one(&self.pool)
            .await?;
        Ok(v.split(" on ").next().unwrap_or(&v).to_owned())
    }

    async fn schema_current(&self) -> StoreResult<bool> {
        setup::schema_current(&self.pool).await
    }

    async fn connection_room(
        &self,
    ) -> StoreResult<Option<crate::store::connection_budget::ServerRoom>> {
        setup::connection_room(&self.pool).await.map(Some)
    }

    async fn enqueue(&self, job: NewJob) -> StoreResult<Option<String>> {
        let mut conn = self.pool.acquire().await?;
        jobs::insert(&mut conn, &job).await
    }

    async fn enqueue_many(
        &self,
        queue: &str,
        payloads: Vec<Vec<u8>>,
        max_attempts: i32,
    ) -> StoreResult<u64> {
        let mut conn = self.pool.acquire().await?;
        jobs::insert_many(&mut conn, queue, payloads, max_attempts).await
    }

    async fn store_backoff(&self, job_id: &str, delay: Duration) -> StoreResult<()> {
        jobs::store_backoff(&self.pool, job_id, delay).await
    }

    async fn release_held_jobs(
        &self,
        worker_names: &[String],
        still_running: &[String],
    ) -> StoreResult<u64> {
        jobs::release_held(&self.pool, worker_names, still_running).await
    }

    async fn cron_ran_before(&self, schedule: &str, before: DateTime<Utc>) -> StoreResult<bool> {
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM cron_ticks WHERE schedule = $1 AND fire_time < $2)",
        )
        .bind(schedule)
        .bind(before)
        .fetch_one(&self.pool)
        .await
    }

    async fn claim_cron_tick(
        &self,
        schedule: &str,
        tick: DateTime<Utc>,
        job: NewJob,
    ) -> StoreResult<Option<String>> {
        jobs::claim_tick(&self.pool, schedule, tick, &job).await
    }

    async fn list_jobs(
        &self,
        state: Option<JobState>,
        queue: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<JobRow>> {
        jobs::list(&self.pool, state, queue, limit).await
    }

    async fn job_counts(&self) -> StoreResult<Vec<(String, String, i64)>> {
        jobs::counts(&self.pool).await
    }

    async fn retry_jobs(&self, id: Option<&str>, queue: Option<&str>) -> StoreResult<Vec<String>> {
        jobs::retry(&self.pool, id, queue).await
    }

    async fn cancel_job(&self, id: &str) -> StoreResult<bool> {
        jobs::cancel(&self.pool, id).await
    }

    async fn job_state(&self, id: &str) -> StoreResult<Option<(String, Option<String>)>> {
        jobs::state(&self.pool, id).await
    }

    async fn job_args(&self, id: &str) -> StoreResult<Option<(String, Vec<u8>)>> {
        sqlx::query_as("SELECT job_type, job FROM apalis.jobs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
    }

    async fn live_workers(&self, queue: &str, within: Duration) -> StoreResult<i64> {
        jobs::live_workers(&self.pool, queue, within).await
    }

    async fn clear_queue(&self, queue: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM apalis.jobs WHERE job_type = $1")
            .bind(queue)
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    async fn queue_is_idle(&self, queue: &str) -> StoreResult<bool> {
        // The fetch index holds the runnable rows, the lock_by index the held ones.
        sqlx::query_scalar(
            "SELECT NOT EXISTS (SELECT 1 FROM apalis.jobs WHERE job_type = $1
                                  AND (status = 'Pending' OR (status = 'Failed' AND attempts < max_attempts)))
                AND NOT EXISTS (SELECT 1 FROM apalis.jobs WHERE job_type = $1
                                  AND status IN ('Queued', 'Running'))",
        )
        .bind(queue)
        .fetch_one(&self.pool)
        .await
    }

    async fn refresh_statistics(&self) -> StoreResult<()> {
        // VACUUM too: index-only scans need the visibility map it sets.
        sqlx::query("VACUUM (ANALYZE)")
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    async fn done_count(&self, queue: &str) -> StoreResult<i64> {
        sqlx::query_scalar(
            "SELECT count(*) FROM apalis.jobs WHERE job_type = $1 AND status = 'Done'",
        )
        .bind(queue)
        .fetch_one(&self.pool)
        .await
    }

    async fn prune(&self, done: Duration, history: Duration) -> StoreResult<Pruned> {
        let older = |sql: &'static str, age: Duration| {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(age.as_secs() as i64)
                .execute(&self.pool)
        };
        let dead = format!(
            "DELETE FROM apalis.jobs WHERE {} AND COALESCE(done_at, run_at) <= now() - $1 * interval '1 second'",
            JobState::Failed.condition()
        );
        Ok(Pruned {
            done_jobs: older(
                "DELETE FROM apalis.jobs WHERE status = 'Done' AND done_at <= now() - $1 * interval '1 second'",
                done,
            )
            .await?
            .rows_affected(),
            dead_jobs: sqlx::query(sqlx::AssertSqlSafe(dead))
                .bind(history.as_secs() as i64)
                .execute(&self.pool)
                .await?
                .rows_affected(),
            cron_ticks: older(
                "DELETE FROM cron_ticks WHERE fire_time <= now() - $1 * interval '1 second'",
                history,
            )
            .await?
            .rows_affected(),
            health_checks: older(
                "DELETE FROM health_checks WHERE checked_at <= now() - $1 * interval '1 second'",
                history,
            )
            .await?
            .rows_affected(),
            progress_notes: older(
                "DELETE FROM import_file_progress WHERE updated_at <= now() - $1 * interval '1 second'",
                history,
            )
            .await?
            .rows_affected(),
            dead_workers: older(
                "DELETE FROM apalis.workers WHERE last_seen <= now() - $1 * interval '1 second'",
                history.max(DEAD_WORKER_FLOOR),
            )
            .await?
            .rows_affected(),
        })
    }

    async fn import_file(
        &self,
        file: &FileImport<'_>,
        chunks: &mut tokio::sync::mpsc::Receiver<Chunk>,
        next: Option<NewJob>,
    ) -> Result<Imported, WriteError> {
        import::import_file(&self.pool, file, chunks, next).await
    }

    async fn file_imported(&self, path: &str, sha256: &str) -> StoreResult<bool> {
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM import_log WHERE path = $1 AND file_sha256 = $2)",
        )
        .bind(path)
        .bind(sha256)
        .fetch_one(&self.pool)
        .await
    }

    async fn import_progress(&self, batch: &str) -> StoreResult<i64> {
        sqlx::query_scalar("SELECT count(*) FROM import_log WHERE batch = $1")
            .bind(batch)
            .fetch_one(&self.pool)
            .await
    }

    async fn note_file_progress(
        &self,
        batch: &str,
        path: &str,
        done: i64,
        total: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO import_file_progress (batch, path, done, total) VALUES ($1, $2, $3, $4)
             ON CONFLICT (batch, path) DO UPDATE SET done = EXCLUDED.done, total = EXCLUDED.total,
                 updated_at = now()",
        )
        .bind(batch)
        .bind(path)
        .bind(done)
        .bind(total)
        .execute(&self.pool)
        .await
        .map(|_| ())
    }

    async fn file_progress(&self, batch: &str) -> StoreResult<Option<(String, i64, i64)>> {
        sqlx::query_as(
            "SELECT p.path, p.done, p.total FROM import_file_progress p WHERE p.batch = $1
               AND NOT EXISTS (SELECT 1 FROM import_log l WHERE l.batch = p.batch AND l.path = p.path)
             ORDER BY p.updated_at DESC LIMIT 1",
        )
        .bind(batch)
        .fetch_optional(&self.pool)
        .await
    }

    async fn dead_import_error(&self, batch: &str) -> StoreResult<Option<String>> {
        let sql = format!(
            "SELECT COALESCE(last_result ->> 'Err', 'failed') FROM apalis.jobs
             WHERE job_type = $1 AND convert_from(job, 'UTF8')::jsonb ->> 'batch' = $2 AND {}
             LIMIT 1",
            JobState::Failed.condition()
        );
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(ImportFile::QUEUE)
            .bind(batch)
            .fetch_optional(&self.pool)
            .await
            .map(|e: Option<String>| e.map(readable_job_error))
    }

    async fn import_log(&self, batch: &str) -> StoreResult<Vec<ImportLogRow>> {
        type Row = (
            String,
            i32,
            i32,
            i32,
            i32,
            i32,
            sqlx::types::Json<Vec<crate::domain::records::RecordError>>,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT path, total, inserted, updated, unchanged, rejected, errors FROM import_log
             WHERE batch = $1 ORDER BY id",
        )
        .bind(batch)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(path, total, inserted, updated, unchanged, rejected, errors)| ImportLogRow {
                    path,
                    total,
                    inserted,
                    updated,
                    unchanged,
                    rejected,
                    errors: errors.0,
                },
            )
            .collect())
    }

    async fn existing_institutions(&self, wanted: &[String]) -> StoreResult<Vec<String>> {
        customers::existing_institutions(&self.pool, wanted).await
    }

    async fn birthday_candidates(
        &self,
        institutions: &[String],
        window: &BirthdayWindow,
    ) -> StoreResult<Vec<BirthdayCandidate>> {
        customers::birthday_candidates(&self.pool, institutions, window).await
    }

    async fn create_revisits(
        &self,
        found: &[NewRevisit],
        test_mode: bool,
        greeting_max_attempts: i32,
        cap: FrequencyCap,
    ) -> StoreResult<Created> {
        revisits::create(&self.pool, found, test_mode, greeting_max_attempts, cap).await
    }

    async fn revisit(&self, id: i64) -> StoreResult<Option<Revisit>> {
        revisits::get(&self.pool, id).await
    }

    async fn names_of_others(
        &self,
        customer_id: i64,
        candidates: &[String],
    ) -> StoreResult<Vec<String>> {
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        sqlx::query_scalar(
            "SELECT DISTINCT o.name FROM customers me
             JOIN customers o ON o.institution_id = me.institution_id AND o.person_id <> me.person_id
             WHERE me.id = $2 AND o.name = ANY($1) ORDER BY o.name",
        )
        .bind(candidates)
        .bind(customer_id)
        .fetch_all(&self.pool)
        .await
    }

    async fn greeting_context(
        &self,
        customer_id: i64,
        occasion_date: NaiveDate,
    ) -> StoreResult<Option<GreetingContext>> {
        let mut conn = self.pool.acquire().await?;
        customers::greeting_context(&mut conn, customer_id, occasion_date).await
    }

    async fn save_greeting(
        &self,
        greeting: SavedGreeting<'_>,
        send_max_attempts: i32,
    ) -> StoreResult<bool> {
        revisits::save_greeting(&self.pool, greeting, send_max_attempts).await
    }

    async fn mark_revisit_failed(&self, id: i64, error: &str, permanent: bool) -> StoreResult<()> {
        revisits::mark_failed(&self.pool, id, error, permanent).await
    }

    async fn outgoing(&self, revisit: &Revisit, channel: &str) -> StoreResult<Recipient> {
        revisits::outgoing(&self.pool, revisit, channel).await
    }

    async fn claim_send(
        &self,
        id: i64,
        token: &str,
        lease: Duration,
        dedups: bool,
    ) -> StoreResult<ClaimDecision> {
        revisits::claim_send(&self.pool, id, token, lease, dedups).await
    }

    async fn finish_send(&self, id: i64, token: &str, outcome: &SendOutcome) -> StoreResult<bool> {
        revisits::finish_send(&self.pool, id, token, outcome).await
    }

    async fn revisits_since(&self, since: DateTime<Utc>) -> StoreResult<Vec<RevisitView>> {
        revisits::since(&self.pool, since).await
    }

    async fn revisit_progress(&self, since: DateTime<Utc>) -> StoreResult<(i64, i64)> {
        revisits::progress(&self.pool, since).await
    }

    async fn daily_report(&self, date: NaiveDate, tz: Tz) -> StoreResult<DailyReport> {
        reports::build(&self.pool, date, tz).await
    }

    async fn dashboard_facts(&self, window: &Window) -> StoreResult<DashboardFacts> {
        analytics::dashboard_facts(&self.pool, window).await
    }

    async fn save_report(&self, report: &DailyReport, text: &str) -> StoreResult<()> {
        reports::save(&self.pool, report, text).await
    }

    async fn queue_summary(&self) -> StoreResult<(i64, i64)> {
        jobs::summary(&self.pool).await
    }

    async fn record_health(&self, healthy: bool, results: serde_json::Value) -> StoreResult<()> {
        sqlx::query("INSERT INTO health_checks (healthy, results) VALUES ($1, $2)")
            .bind(healthy)
            .bind(results)
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    async fn latest_health(
        &self,
    ) -> StoreResult<Option<(chrono::DateTime<chrono::Utc>, serde_json::Value)>> {
        sqlx::query_as("SELECT checked_at, results FROM health_checks ORDER BY id DESC LIMIT 1")
            .fetch_optional(&self.pool)
            .await
    }

    async fn register_projection(&self, projection: ProjectionName) -> StoreResult<()> {
        projections::register(&self.pool, projection).await
    }

    async fn unregister_projection(&self, projection: ProjectionName) -> StoreResult<bool> {
        projections::unregister(&self.pool, projection).await
    }

    async fn dispatch_changes(
        &self,
        projections: &[ProjectionName],
        max_attempts: i32,
    ) -> StoreResult<Dispatched> {
        projections::dispatch(&self.pool, projections, max_attempts).await
    }

    async fn enqueue_full_sync(
        &self,
        projection: ProjectionName,
        kind: EntityKind,
        after: Option<String>,
        max_attempts: i32,
    ) -> StoreResult<Option<(String, u64)>> {
        projections::enqueue_full(&self.pool, projection, kind, after, max_attempts).await
    }

    async fn finish_projection_batch(&self, batch: &str) -> StoreResult<()> {
        projections::finish_batch(&self.pool, batch).await
    }

    async fn projection_lag(&self, projection: ProjectionName) -> StoreResult<ProjectionLag> {
        projections::lag(&self.pool, projection).await
    }

    async fn change_version(&self) -> StoreResult<i64> {
        projections::change_version(&self.pool).await
    }

    async fn snapshots(&self, kind: EntityKind, keys: &[String]) -> StoreResult<Snapshots> {
        projections::snapshots(&self.pool, kind, keys).await
    }
}
