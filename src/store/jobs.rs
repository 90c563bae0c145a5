//! The job table as the application uses it: enqueue (alone, in batches, with a cron tick), list,
//! count, retry, cancel and prune jobs; the worker's own reads are [`super::worker_queue`].

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use revisit_jobs::{Job, KindInfo};
use serde::Serialize;

use super::StoreResult;
use crate::config::Settings;

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

/// How many jobs of a queue are in one state ([`JobState`]'s word).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct JobCount {
    pub queue: String,
    pub state: String,
    pub count: i64,
}

/// Where one job is: its state's word and its last error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobStatus {
    pub state: String,
    pub last_error: Option<String>,
}

/// One job's queue and JSON args.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct JobArgs {
    #[sqlx(rename = "job_type")]
    pub queue: String,
    #[sqlx(rename = "job")]
    pub payload: Vec<u8>,
}

/// Jobs waiting to run and jobs dead, across every queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct QueueSummary {
    pub pending: i64,
    pub failed: i64,
}

#[async_trait]
pub trait Jobs: Send + Sync {
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
    async fn job_counts(&self) -> StoreResult<Vec<JobCount>>;
    /// Puts dead jobs back with a full set of attempts; returns their ids.
    async fn retry_jobs(&self, id: Option<&str>, queue: Option<&str>) -> StoreResult<Vec<String>>;
    /// Cancels a job that has not started.
    async fn cancel_job(&self, id: &str) -> StoreResult<bool>;
    /// (state, last error) of one job.
    async fn job_state(&self, id: &str) -> StoreResult<Option<JobStatus>>;
    /// (queue, JSON args) of one job.
    async fn job_args(&self, id: &str) -> StoreResult<Option<JobArgs>>;
    /// Workers of `queue` seen within the last `within`.
    async fn live_workers(&self, queue: &str, within: Duration) -> StoreResult<i64>;
    /// Deletes every job of a queue (the benchmark's).
    async fn clear_queue(&self, queue: &str) -> StoreResult<()>;
    async fn done_count(&self, queue: &str) -> StoreResult<i64>;
    /// Whether no job of `queue` waits to run or runs (finished and dead ones aside). Reads only
    /// the queue's small indexes, however many finished rows the table keeps.
    async fn queue_is_idle(&self, queue: &str) -> StoreResult<bool>;
    /// Deletes finished (Done) job rows that finished at least `done` ago, and dead job rows
    /// (failed for good, killed, cancelled), cron ticks and health-check rows older than
    /// `history`.
    async fn prune(&self, done: Duration, history: Duration) -> StoreResult<Pruned>;
    /// (pending, failed) jobs.
    async fn queue_summary(&self) -> StoreResult<QueueSummary>;
}

/// A job's stored error as people read it: without the type name apalis puts in front of a
/// permanent failure ("AbortError: ...").
pub fn readable_job_error(e: String) -> String {
    e.strip_prefix("AbortError: ")
        .map(str::to_owned)
        .unwrap_or(e)
}

/// What a prune deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub done_jobs: u64,
    pub dead_jobs: u64,
    pub cron_ticks: u64,
    pub health_checks: u64,
    /// Progress notes of files, left behind only when a note raced its file's end.
    pub progress_notes: u64,
    /// Rows of worker processes unseen for the history's retention (at least a day, so that a
    /// live worker's row is never taken for a dead one's).
    pub dead_workers: u64,
}

/// The least time a worker row must have been unseen before it is pruned.
pub const DEAD_WORKER_FLOOR: std::time::Duration = std::time::Duration::from_secs(86_400);

/// A job state as the CLI shows it. Rows of the job table map to these states:
/// - pending: `Pending`, or `Failed` with attempts left (waiting for its `run_at`, the stored backoff);
/// - running: `Queued` (fetched by a worker) or `Running`;
/// - done: `Done`;
/// - failed (dead): `Killed` (a permanent failure, a crash loop, or cancelled by hand), or `Failed`
///   with no attempts left. Kept with the last error until retried by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Pending,
    Running,
    Done,
    Failed,
}

impl JobState {
    /// The SQL condition on a job row's columns (the same in both dialects).
    pub fn condition(self) -> &'static str {
        match self {
            Self::Pending => {
                "(status = 'Pending' OR (status = 'Failed' AND attempts < max_attempts))"
            }
            Self::Running => "status IN ('Queued', 'Running')",
            Self::Done => "status = 'Done'",
            Self::Failed => {
                "(status = 'Killed' OR (status = 'Failed' AND attempts >= max_attempts))"
            }
        }
    }
}

/// A job row's state as staff read it.
pub fn job_state_label(state: &str) -> &str {
    match state {
        "pending" => "等待中",
        "running" => "运行中",
        "done" => "已完成",
        "failed" => "已失败",
        other => other,
    }
}

/// SQL naming a job row's state (`pending`, `running`, `done`, `failed`).
pub const STATE_CASE: &str = "CASE
    WHEN status = 'Done' THEN 'done'
    WHEN status IN ('Queued', 'Running') THEN 'running'
    WHEN status = 'Killed' OR (status = 'Failed' AND attempts >= max_attempts) THEN 'failed'
    ELSE 'pending' END";

#[derive(Debug, Clone, Serialize)]
pub struct JobRow {
    pub id: String,
    pub queue: String,
    pub state: String,
    pub attempts: i32,
    pub max_attempts: i32,
    pub run_at: DateTime<Utc>,
    pub done_at: Option<DateTime<Utc>>,
    pub lock_by: Option<String>,
    pub last_error: Option<String>,
}
