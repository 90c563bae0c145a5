//! The SQLite store: the embedded default, one file and no server. The job queue is
//! apalis-sqlite's `Jobs` table in the same file.
//!
//! Concurrency: WAL (readers never wait for the writer), a busy timeout (a writer waits its turn
//! instead of failing with "database is locked"), and `BEGIN IMMEDIATE` for every transaction
//! that writes, so two transactions never both read and then both try to upgrade to writing
//! (the one deadlock a busy timeout cannot resolve). Switching a file to WAL takes a lock the
//! busy timeout cannot wait for, so it happens once, when the file is not in WAL yet, and not on
//! every connection; likewise migrations (and apalis's `setup()`, which switches to WAL too) run
//! only when one is missing, so opening a store that is in use only reads.
//! Durability: `synchronous = NORMAL`, which in WAL mode loses no committed transaction on a
//! process crash (a power cut may lose the last few). apalis's `setup()` sets
//! `synchronous = OFF`; it runs on a connection of its own that is closed right after, so no
//! connection that serves work has it.

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
mod tasks;

use std::{path::PathBuf, str::FromStr, time::Duration};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use revisit_jobs::{EntityKind, ImportFile, Job, ProjectionName};
use sqlx::{
    Sqlite, SqlitePool, Transaction,
    sqlite::{SqliteConnectOptions, SqlitePoolOptions, SqliteSynchronous},
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

/// The project's migrations table; apalis-sqlite keeps its own in `_sqlx_migrations`.
pub const MIGRATIONS_TABLE: &str = "revisit_migrations";

/// A timestamp as this store writes it: UTC text that sorts in time order.
pub fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// A list as the JSON text SQLite keeps it in (and `json_each` reads).
fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("serialisable")
}

/// A transaction that holds the write lock from its first statement.
pub async fn begin_write(pool: &SqlitePool) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
    pool.begin_with("BEGIN IMMEDIATE").await
}

/// The file a `sqlite://` URL names.
pub fn file_path(url: &str) -> PathBuf {
    SqliteConnectOptions::from_str(url)
        .map(|o| o.get_filename().to_path_buf())
        .unwrap_or_else(|_| PathBuf::from(url))
}

fn options(url: &str) -> Result<SqliteConnectOptions, sqlx::Error> {
    Ok(SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(30))
        .foreign_keys(true))
}

/// Creates the file (and its folder) when missing. Returns whether it did.
pub fn create_if_missing(url: &str) -> anyhow::Result<bool> {
    let path = file_path(url);
    if path.exists() {
        return Ok(false);
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    Ok(true)
}

/// Deletes the database file and its WAL files.
pub fn remove(url: &str) -> anyhow::Result<()> {
    let path = file_path(url);
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.clone().into_os_string();
        p.push(suffix);
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[derive(Clone)]
pub struct SqliteStore {
    pub pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies missing migrations. Another
    /// process may be using the file: a start that still meets a busy database (two daemons
    /// starting on a new file) waits and tries again.
    pub async fn open(settings: &Settings) -> anyhow::Result<Self> {
        let mut wait = Duration::from_millis(100);
        for _ in 0..10 {
            match Self::try_open(settings).await {
                Err(e) if is_busy(&e) => {
                    tracing::debug!(error = %e, "database busy while opening; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(2));
                }
                other => return other,
            }
        }
        Self::try_open(settings).await
    }

    async fn try_open(settings: &Settings) -> anyhow::Result<Self> {
        let url = &settings.database.url;
        create_if_missing(url)?;
        let pool = SqlitePoolOptions::new()
            .max_connections(settings.database.max_connections)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options(url)?)
            .await?;
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&pool)
            .await?;
        if !mode.eq_ignore_ascii_case("wal") {
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await?;
        }
        let apalis = apalis_sqlite::SqliteStorage::<()>::migrations();
        if !all_applied(&pool, "_sqlx_migrations", &apalis).await? {
            let setup = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options(url)?)
                .await?;
            apalis_sqlite::SqliteStorage::<()>::setup(&setup).await?;
            setup.close().await;
        }
        let ours = migrator();
        if !all_applied(&pool, MIGRATIONS_TABLE, &ours).await? {
            ours.run(&pool).await?;
        }
        Ok(Self { pool })
    }
}

/// The project's own migrations, compiled in, recorded in [`MIGRATIONS_TABLE`].
fn migrator() -> sqlx::migrate::Migrator {
    let mut migrator = sqlx::migrate!("./migrations/sqlite");
    migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
    migrator
}

/// Whether every migration of `migrator` is recorded in `table`.
async fn all_applied(
    pool: &SqlitePool,
    table: &str,
    migrator: &sqlx::migrate::Migrator,
) -> Result<bool, sqlx::Error> {
    let exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
    )
    .bind(table)
    .fetch_one(pool)
    .await?;
    if !exists {
        return Ok(false);
    }
    let sql = format!(
        "SELECT version FROM \"{}\" WHERE success",
        table.replace('"', "")
    );
    let applied: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_all(pool)
        .await?;
    Ok(migrator.iter().all(|m| applied.contains(&m.version)))
}

/// SQLITE_BUSY ("database is locked"), anywhere in an error's chain.
fn is_busy(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<sqlx::Error>()
            .and_then(|e| e.as_database_error())
            .and_then(|d| d.code())
            .is_some_and(|code| code == "5" || code == "517")
    }) || format!("{e:#}").contains("database is locked")
}

#[async_trait]
impl Repository for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn version(&self) -> StoreResult<String> {
        let v: String = sqlx::query_scalar("SELECT sqlite_version()")
            .fetch_one(&self.pool)
            .await?;
        Ok(format!("SQLite {v}"))
    }

    async fn schema_current(&self) -> StoreResult<bool> {
        all_applied(&self.pool, MIGRATIONS_TABLE, &migrator()).await
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
        jobs::insert_many(&self.pool, queue, payloads, max_attempts).await
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
        jobs::cron_ran_before(&self.pool, schedule, before).await
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
        sqlx::query_as("SELECT job_type, job FROM Jobs WHERE id = ?1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
    }

    async fn live_workers(&self, queue: &str, within: Duration) -> StoreResult<i64> {
        jobs::live_workers(&self.pool, queue, within).await
    }

    async fn clear_queue(&self, queue: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM Jobs WHERE job_type = ?1")
            .bind(queue)
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    async fn queue_is_idle(&self, queue: &str) -> StoreResult<bool> {
        // Runnable rows are in idx_jobs_pending and idx_jobs_failed; held ones are found by
        // status first (idx_jobs_completed_done_at).
        sqlx::query_scalar(
            "SELECT NOT EXISTS (SELECT 1 FROM Jobs WHERE job_type = ?1
                                  AND status = 'Pending' AND lock_by IS NULL)
                AND NOT EXISTS (SELECT 1 FROM Jobs WHERE job_type = ?1
                                  AND status = 'Failed' AND attempts < max_attempts)
                AND NOT EXISTS (SELECT 1 FROM Jobs WHERE status IN ('Queued', 'Running')
                                  AND job_type = ?1)",
        )
        .bind(queue)
        .fetch_one(&self.pool)
        .await
    }

    async fn refresh_statistics(&self) -> StoreResult<()> {
        sqlx::query("ANALYZE").execute(&self.pool).await.map(|_| ())
    }

    async fn done_count(&self, queue: &str) -> StoreResult<i64> {
        sqlx::query_scalar("SELECT count(*) FROM Jobs WHERE job_type = ?1 AND status = 'Done'")
            .bind(queue)
            .fetch_one(&self.pool)
            .await
    }

    async fn prune(&self, done: Duration, history: Duration) -> StoreResult<Pruned> {
        let before = |age: Duration| Utc::now() - chrono::Duration::seconds(age.as_secs() as i64);
        let dead = format!(
            "DELETE FROM Jobs WHERE {} AND COALESCE(done_at, run_at) <= ?1",
            JobState::Failed.condition()
        );
        Ok(Pruned {
            done_jobs: sqlx::query("DELETE FROM Jobs WHERE status = 'Done' AND done_at <= ?1")
                .bind(before(done).timestamp())
                .execute(&self.pool)
                .await?
                .rows_affected(),
            dead_jobs: sqlx::query(sqlx::AssertSqlSafe(dead))
                .bind(before(history).timestamp())
                .execute(&self.pool)
                .await?
                .rows_affected(),
            cron_ticks: sqlx::query("DELETE FROM cron_ticks WHERE fire_time <= ?1")
                .bind(ts(before(history)))
                .execute(&self.pool)
                .await?
                .rows_affected(),
            health_checks: sqlx::query("DELETE FROM health_checks WHERE checked_at <= ?1")
                .bind(ts(before(history)))
                .execute(&self.pool)
                .await?
                .rows_affected(),
            progress_notes: sqlx::query("DELETE FROM import_file_progress WHERE updated_at <= ?1")
                .bind(ts(before(history)))
                .execute(&self.pool)
                .await?
                .rows_affected(),
            dead_workers: sqlx::query("DELETE FROM Workers WHERE last_seen <= ?1")
                .bind(before(history.max(DEAD_WORKER_FLOOR)).timestamp())
                .execute(&self.pool)
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
            "SELECT EXISTS (SELECT 1 FROM import_log WHERE path = ?1 AND file_sha256 = ?2)",
        )
        .bind(path)
        .bind(sha256)
        .fetch_one(&self.pool)
        .await
    }

    async fn import_progress(&self, batch: &str) -> StoreResult<i64> {
        sqlx::query_scalar("SELECT count(*) FROM import_log WHERE batch = ?1")
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
            "INSERT INTO import_file_progress (batch, path, done, total) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (batch, path) DO UPDATE SET done = EXCLUDED.done, total = EXCLUDED.total,
                 updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
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
            "SELECT p.path, p.done, p.total FROM import_file_progress p WHERE p.batch = ?1
               AND NOT EXISTS (SELECT 1 FROM import_log l WHERE l.batch = p.batch AND l.path = p.path)
             ORDER BY p.updated_at DESC LIMIT 1",
        )
        .bind(batch)
        .fetch_optional(&self.pool)
        .await
    }

    async fn dead_import_error(&self, batch: &str) -> StoreResult<Option<String>> {
        let sql = format!(
            "SELECT COALESCE(json_extract(last_result, '$.Err'), 'failed') FROM Jobs
             WHERE job_type = ?1 AND json_extract(CAST(job AS TEXT), '$.batch') = ?2 AND {}
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
        type Row = (String, i32, i32, i32, i32, i32, String);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT path, total, inserted, updated, unchanged, rejected, errors FROM import_log
             WHERE batch = ?1 ORDER BY id",
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
                    errors: serde_json::from_str(&errors).unwrap_or_default(),
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
        revisits::revisit(&self.pool, id).await
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
             WHERE me.id = ?2 AND o.name IN (SELECT value FROM json_each(?1)) ORDER BY o.name",
        )
        .bind(json(&candidates))
        .bind(customer_id)
        .fetch_all(&self.pool)
        .await
    }

    async fn greeting_context(
        &self,
        customer_id: i64,
        occasion_date: NaiveDate,
    ) -> StoreResult<Option<GreetingContext>> {
        customers::greeting_context(&self.pool, customer_id, occasion_date).await
    }

    async fn save_greeting(
        &self,
        greeting: SavedGreeting<'_>,
        send_max_attempts: i32,
    ) -> StoreResult<bool> {
        revisits::save_greeting(&self.pool, greeting, send_max_attempts).await
    }

    async fn mark_revisit_failed(&self, id: i64, error: &str, permanent: bool) -> StoreResult<()> {
        revisits::mark_revisit_failed(&self.pool, id, error, permanent).await
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
        revisits::revisits_since(&self.pool, since).await
    }

    async fn revisit_progress(&self, since: DateTime<Utc>) -> StoreResult<(i64, i64)> {
        revisits::revisit_progress(&self.pool, since).await
    }

    async fn daily_report(&self, date: NaiveDate, tz: Tz) -> StoreResult<DailyReport> {
        reports::daily_report(&self.pool, date, tz).await
    }

    async fn dashboard_facts(&self, window: &Window) -> StoreResult<DashboardFacts> {
        analytics::dashboard_facts(&self.pool, window).await
    }

    async fn save_report(&self, report: &DailyReport, text: &str) -> StoreResult<()> {
        reports::save_report(&self.pool, report, text).await
    }

    async fn queue_summary(&self) -> StoreResult<(i64, i64)> {
        jobs::summary(&self.pool).await
    }

    async fn record_health(&self, healthy: bool, results: serde_json::Value) -> StoreResult<()> {
        sqlx::query("INSERT INTO health_checks (healthy, results) VALUES (?1, ?2)")
            .bind(healthy)
            .bind(results.to_string())
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    async fn latest_health(
        &self,
    ) -> StoreResult<Option<(chrono::DateTime<chrono::Utc>, serde_json::Value)>> {
        let row: Option<(chrono::DateTime<chrono::Utc>, String)> = sqlx::query_as(
            "SELECT checked_at, results FROM health_checks ORDER BY id DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(at, text)| (at, serde_json::from_str(&text).unwrap_or_default())))
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
