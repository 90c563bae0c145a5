//! The primary store, behind one trait: PostgreSQL for a chain, SQLite for a single clinic or a
//! laptop. Chosen by the database URL (`postgres://…` or `sqlite://…`); handlers, cron producers
//! and commands only see [`Repository`].
//!
//! Operations are at the level of the work they do ("import this file and enqueue the next one",
//! "save this greeting and enqueue its sending"), so each implementation keeps its writes and the
//! jobs they cause in one transaction of its own database.

pub mod access;
pub mod broadcasts;
pub mod connection_budget;
pub mod consent;
pub mod directory;
pub mod directory_rules;
pub mod followups;
mod import_rules;
pub mod postgres;
pub mod projection_rules;
pub mod queue_control;
pub mod rate_limits;
pub mod search_profiles;
pub mod sending_switch;
pub mod sqlite;
pub mod tasks;
mod types;
pub mod worker_queue;

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use revisit_jobs::{EntityKind, Job, KindInfo, ProjectionName};

pub use types::*;

use crate::{
    config::Backend,
    config::Settings,
    domain::followup::FrequencyCap,
    domain::greeting::GreetingContext,
    domain::{
        birthday::BirthdayWindow,
        dashboard::{DashboardFacts, Window},
        delivery::{ClaimDecision, SendOutcome},
        snapshot::Snapshots,
    },
};

pub type StoreResult<T> = Result<T, sqlx::Error>;

/// A job to insert: its queue, JSON args and options.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub queue: &'static str,
    pub payload: Vec<u8>,
    pub max_attempts: i32,
    /// Unique within the queue: a second insert with the same key is a no-op.
    pub key: Option<String>,
    pub run_at: Option<DateTime<Utc>>,
}

impl NewJob {
    /// The job that carries a revisit's next step, keyed by the revisit so it exists once.
    pub fn for_revisit<J: Job>(args: &J, max_attempts: i32, revisit_id: i64) -> Self {
        Self {
            queue: J::QUEUE,
            payload: serde_json::to_vec(args).expect("job args serialise"),
            max_attempts,
            key: Some(format!("revisit-{revisit_id}")),
            run_at: None,
        }
    }

    /// A job without a key, with this many attempts.
    pub fn plain<J: Job>(args: &J, max_attempts: i32) -> Self {
        Self {
            queue: J::QUEUE,
            payload: serde_json::to_vec(args).expect("job args serialise"),
            max_attempts,
            key: None,
            run_at: None,
        }
    }

    pub fn of<J: Job>(settings: &Settings, args: &J, key: Option<String>) -> Self {
        Self {
            queue: J::QUEUE,
            payload: serde_json::to_vec(args).expect("job args serialise"),
            max_attempts: settings.policy(&KindInfo::of::<J>()).max_attempts as i32,
            key,
            run_at: None,
        }
    }
}

/// Everything the application asks of its primary store. Staff's look-ups, API tokens,
/// consent and approval, and the follow-up scans' reads are traits of their own
/// ([`directory::Directory`], [`access::Access`], [`consent::Consent`],
/// [`followups::Followups`], [`tasks::Tasks`] for scores and staff tasks, vector search's
/// [`search_profiles::SearchProfiles`]), in files of their own.
#[async_trait]
pub trait Repository:
    directory::Directory
    + access::Access
    + broadcasts::Broadcasts
    + consent::Consent
    + followups::Followups
    + queue_control::QueueControl
    + rate_limits::RateLimits
    + search_profiles::SearchProfiles
    + sending_switch::SendingSwitch
    + tasks::Tasks
    + Send
    + Sync
{
    fn backend(&self) -> Backend;
    /// Server or library version, for `revisit check`.
    async fn version(&self) -> StoreResult<String>;
    /// Whether every migration this build carries is applied (`/health/ready`).
    async fn schema_current(&self) -> StoreResult<bool>;
    /// The server's connections: its limit and what is open now (`None`: SQLite, no server).
    async fn connection_room(&self) -> StoreResult<Option<connection_budget::ServerRoom>> {
        Ok(None)
    }

    // ---- jobs --------------------------------------------------------------------------------
    /// Inserts one job (outside any other work). `None`: a job with its key exists.
    async fn enqueue(&self, job: NewJob) -> StoreResult<Option<String>>;
    /// Inserts many jobs of one queue in one statement.
    async fn enqueue_many(
        &self,
        queue: &str,
        payloads: Vec<Vec<u8>>,
        max_attempts: i32,
    ) -> StoreResult<u64>;
    /// Moves a running job's next run time `delay` into the future (stored backoff).
    async fn store_backoff(&self, job_id: &str, delay: Duration) -> StoreResult<()>;
    /// Puts back jobs held by these workers that never started (fetched into their buffers),
    /// leaving alone `still_running`, whose handlers may still be at work: those are rescued by
    /// the heartbeat rule if the process ends before they finish. Returns how many.
    async fn release_held_jobs(
        &self,
        worker_names: &[String],
        still_running: &[String],
    ) -> StoreResult<u64>;
    /// Whether `schedule` claimed any tick before `before`: only then is a tick at `before` that
    /// no daemon claimed a missed one (a new database or a new schedule has missed nothing).
    async fn cron_ran_before(&self, schedule: &str, before: DateTime<Utc>) -> StoreResult<bool>;
    /// Claims a cron tick and enqueues its job in one transaction; `None` if already claimed.
    async fn claim_cron_tick(
        &self,
        schedule: &str,
        tick: DateTime<Utc>,
        job: NewJob,
    ) -> StoreResult<Option<String>>;
    async fn list_jobs(
        &self,
        state: Option<JobState>,
        queue: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<JobRow>>;
    /// (queue, state, count) for every queue and state present.
    async fn job_counts(&self) -> StoreResult<Vec<(String, String, i64)>>;
    /// Puts dead jobs back with a full set of attempts; returns their ids.
    async fn retry_jobs(&self, id: Option<&str>, queue: Option<&str>) -> StoreResult<Vec<String>>;
    /// Cancels a job that has not started.
    async fn cancel_job(&self, id: &str) -> StoreResult<bool>;
    /// (state, last error) of one job.
    async fn job_state(&self, id: &str) -> StoreResult<Option<(String, Option<String>)>>;
    /// (queue, JSON args) of one job.
    async fn job_args(&self, id: &str) -> StoreResult<Option<(String, Vec<u8>)>>;
    /// Workers of `queue` seen within the last `within`.
    async fn live_workers(&self, queue: &str, within: Duration) -> StoreResult<i64>;
    /// Deletes every job of a queue (the benchmark's).
    async fn clear_queue(&self, queue: &str) -> StoreResult<()>;
    /// Brings the planner's statistics (and on PostgreSQL the visibility map) up to date, as
    /// autovacuum would some time after a large load: the benchmarks run it after their import.
    async fn refresh_statistics(&self) -> StoreResult<()>;
    async fn done_count(&self, queue: &str) -> StoreResult<i64>;
    /// Whether no job of `queue` waits to run or runs (finished and dead ones aside). Reads only
    /// the queue's small indexes, however many finished rows the table keeps.
    async fn queue_is_idle(&self, queue: &str) -> StoreResult<bool>;
    /// Deletes finished (Done) job rows that finished at least `done` ago, and dead job rows
    /// (failed for good, killed, cancelled), cron ticks and health-check rows older than
    /// `history`.
    async fn prune(&self, done: Duration, history: Duration) -> StoreResult<Pruned>;

    // ---- import ------------------------------------------------------------------------------
    /// Writes a file's valid records as they arrive in `chunks`, logs the file, and enqueues
    /// `next`. PostgreSQL does it all in one transaction. SQLite commits chunk by chunk, so that
    /// no write lock is held for long, and logs the file and enqueues `next` last; a file cut
    /// off halfway is written again in full by the retry (every write is an idempotent upsert).
    /// A chunk the database refuses is written record by record, and the records it refuses
    /// become rejected records. `Err(File)` when a chunk says the file broke off.
    async fn import_file(
        &self,
        file: &FileImport<'_>,
        chunks: &mut tokio::sync::mpsc::Receiver<Chunk>,
        next: Option<NewJob>,
    ) -> Result<Imported, WriteError>;
    /// Whether this path with this content was imported before.
    async fn file_imported(&self, path: &str, sha256: &str) -> StoreResult<bool>;
    /// Files of a batch imported so far.
    async fn import_progress(&self, batch: &str) -> StoreResult<i64>;
    /// Notes how many of a file's records have gone to the writer (seen at once, outside the
    /// file's transaction).
    async fn note_file_progress(
        &self,
        batch: &str,
        path: &str,
        done: i64,
        total: i64,
    ) -> StoreResult<()>;
    /// (path, done, total) of the file of `batch` being imported now, if any.
    async fn file_progress(&self, batch: &str) -> StoreResult<Option<(String, i64, i64)>>;
    /// The error of a dead import job of this batch, if any.
    async fn dead_import_error(&self, batch: &str) -> StoreResult<Option<String>>;
    async fn import_log(&self, batch: &str) -> StoreResult<Vec<ImportLogRow>>;

    // ---- customers and revisits --------------------------------------------------------------
    /// The codes of `wanted` that exist, in the order given.
    async fn existing_institutions(&self, wanted: &[String]) -> StoreResult<Vec<String>>;
    /// Active, not opted-out customers whose birthday may be kept in `window` (by its solar
    /// codes for persons without a lunar birthday, by its lunar codes for the others); a person
    /// who is a customer of several institutions once, by the institution visited last.
    async fn birthday_candidates(
        &self,
        institutions: &[String],
        window: &BirthdayWindow,
    ) -> StoreResult<Vec<BirthdayCandidate>>;
    /// Creates the revisits that do not exist yet (one per person, occasion and date, whichever
    /// of their customers it names) and a greeting job for each, in one transaction; a real
    /// marketing revisit over the frequency cap is left out.
    async fn create_revisits(
        &self,
        found: &[NewRevisit],
        test_mode: bool,
        greeting_max_attempts: i32,
        cap: FrequencyCap,
    ) -> StoreResult<Created>;
    async fn revisit(&self, id: i64) -> StoreResult<Option<Revisit>>;
    /// Which of `candidates` are the full names of other persons among the customers of
    /// `customer_id`'s institution: a message must never carry another customer's name.
    async fn names_of_others(
        &self,
        customer_id: i64,
        candidates: &[String],
    ) -> StoreResult<Vec<String>>;
    async fn greeting_context(
        &self,
        customer_id: i64,
        occasion_date: NaiveDate,
    ) -> StoreResult<Option<GreetingContext>>;
    /// Saves the message (unless one was saved meanwhile) and enqueues its sending, in one
    /// transaction. Returns whether it saved.
    async fn save_greeting(
        &self,
        greeting: SavedGreeting<'_>,
        send_max_attempts: i32,
    ) -> StoreResult<bool>;
    /// Marks a revisit failed (unless sent or skipped) with the error; `permanent` when
    /// retrying as it is cannot help.
    async fn mark_revisit_failed(&self, id: i64, error: &str, permanent: bool) -> StoreResult<()>;
    /// What a channel needs, unless the person opted out (at any institution) or their number
    /// is suppressed for `channel` (or for every channel).
    async fn outgoing(&self, revisit: &Revisit, channel: &str) -> StoreResult<Recipient>;
    /// Claims the revisit's delivery for one run, in one transaction, by the rule of
    /// [`crate::domain::delivery::decide`]: on `Claim` the revisit is `sending` under `token`
    /// until `now + lease`; on `Uncertain` it is marked failed with `delivery_uncertain`.
    async fn claim_send(
        &self,
        id: i64,
        token: &str,
        lease: Duration,
        dedups: bool,
    ) -> StoreResult<ClaimDecision>;
    /// Records how a claimed try ended, only while `token` still holds the claim. Returns
    /// whether it did (false: the lease ran out and another run took the revisit over).
    async fn finish_send(&self, id: i64, token: &str, outcome: &SendOutcome) -> StoreResult<bool>;
    /// Revisits created since `since`, names and phones masked.
    async fn revisits_since(&self, since: DateTime<Utc>) -> StoreResult<Vec<RevisitView>>;
    /// (still open, all) revisits created since `since`.
    async fn revisit_progress(&self, since: DateTime<Utc>) -> StoreResult<(i64, i64)>;

    // ---- reports and health ------------------------------------------------------------------
    async fn daily_report(&self, date: NaiveDate, tz: Tz) -> StoreResult<DailyReport>;
    /// The dashboard's facts for `window`, computed from the primary store.
    async fn dashboard_facts(&self, window: &Window) -> StoreResult<DashboardFacts>;
    async fn save_report(&self, report: &DailyReport, text: &str) -> StoreResult<()>;
    /// (pending, failed) jobs.
    async fn queue_summary(&self) -> StoreResult<(i64, i64)>;
    async fn record_health(&self, healthy: bool, results: serde_json::Value) -> StoreResult<()>;
    /// The latest check a worker recorded (`system.health`): when, and its lines.
    async fn latest_health(
        &self,
    ) -> StoreResult<Option<(chrono::DateTime<chrono::Utc>, serde_json::Value)>>;

    // ---- projections -------------------------------------------------------------------------
    /// Records that this deployment keeps `projection` (idempotent).
    async fn register_projection(&self, projection: ProjectionName) -> StoreResult<()>;
    /// Forgets `projection`: its changes are no longer dispatched. Returns whether it was known.
    async fn unregister_projection(&self, projection: ProjectionName) -> StoreResult<bool>;
    /// Turns one page of captured changes into sync jobs for `projections` and every registered
    /// projection (with none, the changes are dropped: a projection configured later is built
    /// with `sync --full`), deleting them and recording the jobs' backlog in the same
    /// transaction.
    async fn dispatch_changes(
        &self,
        projections: &[ProjectionName],
        max_attempts: i32,
    ) -> StoreResult<Dispatched>;
    /// Enqueues sync jobs for one page of every entity of `kind`, keys after `after` in key
    /// order; returns the last key of the page and how many it held (`None`: no more).
    async fn enqueue_full_sync(
        &self,
        projection: ProjectionName,
        kind: EntityKind,
        after: Option<String>,
        max_attempts: i32,
    ) -> StoreResult<Option<(String, u64)>>;
    /// Clears a finished sync job's backlog row.
    async fn finish_projection_batch(&self, batch: &str) -> StoreResult<()>;
    /// What a projection still has to receive.
    async fn projection_lag(&self, projection: ProjectionName) -> StoreResult<ProjectionLag>;
    /// The largest change sequence issued so far: it grows with every captured write, so two
    /// equal readings mean no master data or revisit changed in between.
    async fn change_version(&self) -> StoreResult<i64>;
    /// The current state of the entities of `kind` with these keys (a person's: its customers).
    async fn snapshots(&self, kind: EntityKind, keys: &[String]) -> StoreResult<Snapshots>;
}

/// The concrete pool, for apalis's storages (the workers fetch jobs through them).
#[derive(Clone)]
pub enum DbPool {
    Postgres(sqlx::PgPool),
    Sqlite(sqlx::SqlitePool),
}

/// An opened database: the repository and its pool.
pub struct Database {
    pub repo: Arc<dyn Repository>,
    pub pool: DbPool,
}

/// Connects to the configured database and applies the migrations.
pub async fn open(settings: &Settings) -> anyhow::Result<Database> {
    Ok(match settings.backend() {
        Backend::Postgres => {
            let s = postgres::PgStore::open(settings).await?;
            Database {
                pool: DbPool::Postgres(s.pool.clone()),
                repo: Arc::new(s),
            }
        }
        Backend::Sqlite => {
            let s = sqlite::SqliteStore::open(settings).await?;
            Database {
                pool: DbPool::Sqlite(s.pool.clone()),
                repo: Arc::new(s),
            }
        }
    })
}

/// Why [`open`] failed, once and in Chinese, with what to do: the layers between the driver
/// and here each repeat their cause, which a reader needs only once.
pub fn open_error_in_words(e: &anyhow::Error, url: &str) -> String {
    let name = database_name(url);
    let sqlx = e.chain().find_map(|c| c.downcast_ref::<sqlx::Error>());
    let why = match sqlx {
        Some(sqlx::Error::Database(db)) if db.code().as_deref() == Some("3D000") => {
            format!("数据库 {name} 不存在：请先运行 revisit init（会创建它）")
        }
        Some(sqlx::Error::Database(db)) if db.code().as_deref() == Some("28P01") => {
            "用户名或密码不对：请检查 DATABASE_URL".to_owned()
        }
        Some(sqlx::Error::Database(db)) if db.code().as_deref() == Some("53300") => {
            "数据库服务器的连接数已满：见 README 的数据库连接预算，或运行 revisit check".to_owned()
        }
        Some(sqlx::Error::PoolTimedOut) | Some(sqlx::Error::Io(_)) => {
            "连接不上数据库服务器：它在运行吗？地址和端口对吗？".to_owned()
        }
        Some(sqlx::Error::Database(db)) => format!("数据库拒绝了连接：{}", db.message()),
        _ => e
            .chain()
            .last()
            .map(ToString::to_string)
            .unwrap_or_default(),
    };
    format!("无法打开数据库 {}：{why}", crate::config::redact_url(url))
}

/// Inserts a job of kind `J` with the configured policy.
pub async fn enqueue<J: Job>(
    repo: &dyn Repository,
    settings: &Settings,
    args: &J,
    key: Option<String>,
) -> StoreResult<Option<String>> {
    repo.enqueue(NewJob::of(settings, args, key)).await
}

/// Creates the database when it does not exist. Returns whether it did.
pub async fn create_if_missing(url: &str) -> anyhow::Result<bool> {
    match Backend::of_url(url) {
        Some(Backend::Postgres) => Ok(postgres::create_database_if_missing(url).await?),
        Some(Backend::Sqlite) => sqlite::create_if_missing(url),
        None => anyhow::bail!("不支持的数据库地址：应为 postgres://… 或 sqlite://…"),
    }
}

/// Drops the database and everything in it.
pub async fn drop_database(url: &str) -> anyhow::Result<()> {
    match Backend::of_url(url) {
        Some(Backend::Postgres) => Ok(postgres::drop_database(url).await?),
        Some(Backend::Sqlite) => sqlite::remove(url),
        None => anyhow::bail!("不支持的数据库地址：应为 postgres://… 或 sqlite://…"),
    }
}

/// The database's name (or file), for messages.
pub fn database_name(url: &str) -> String {
    match Backend::of_url(url) {
        Some(Backend::Postgres) => postgres::database_name(url).unwrap_or_default(),
        Some(Backend::Sqlite) => sqlite::file_path(url).display().to_string(),
        None => url.to_owned(),
    }
}
