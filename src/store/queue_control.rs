//! Steering the queues: a paused queue's jobs stay where they are (workers' fetches skip it)
//! until it is resumed; jobs already running finish. Stored in the database, so every worker
//! process obeys at its next fetch.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreResult;

/// A paused queue.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PausedQueue {
    pub queue: String,
    pub paused_at: DateTime<Utc>,
    pub reason: Option<String>,
}

/// A queue's jobs by state, now (`/metrics`, the console's queue page).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct QueueDepth {
    pub queue: String,
    /// Due now, not yet taken.
    pub waiting: i64,
    /// Due later: a retry's backoff, a message held by quiet hours.
    pub scheduled: i64,
    pub running: i64,
    /// Failed for good or cancelled, kept for `jobs keep_history_days`.
    pub dead: i64,
    /// How long the oldest waiting job has been due, in seconds (0: none waiting).
    pub oldest_waiting_secs: f64,
}

/// One queue's activity written by one process at one time.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityRow {
    pub queue: &'static str,
    /// Jobs completed and failed for good since the process's previous row.
    pub completed: i64,
    pub failed: i64,
    /// The queue's depth when the row was written.
    pub waiting: i64,
    pub running: i64,
}

/// One queue's minute: what every process completed and failed, and the deepest it was.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct ActivityMinute {
    /// The minute's start, Unix seconds.
    pub minute: i64,
    pub queue: String,
    pub completed: i64,
    pub failed: i64,
    pub waiting: i64,
    pub running: i64,
}

#[async_trait]
pub trait QueueControl: Send + Sync {
    /// Pauses `queue`; false if it was paused already.
    async fn pause_queue(&self, queue: &str, reason: Option<&str>) -> StoreResult<bool>;
    /// Resumes `queue`; false if it was not paused.
    async fn resume_queue(&self, queue: &str) -> StoreResult<bool>;
    /// The paused queues, by name.
    async fn paused_queues(&self) -> StoreResult<Vec<PausedQueue>>;
    /// Every queue with jobs not yet done, by state (finished rows are not read).
    async fn queue_depths(&self) -> StoreResult<Vec<QueueDepth>>;
    /// Writes one process's activity rows, all at `at`.
    async fn record_activity(
        &self,
        at: DateTime<Utc>,
        process: &str,
        rows: &[ActivityRow],
    ) -> StoreResult<()>;
    /// Every queue's activity by minute since `since`, oldest first.
    async fn activity_since(&self, since: DateTime<Utc>) -> StoreResult<Vec<ActivityMinute>>;
    /// Deletes activity rows older than `before`; returns how many.
    async fn prune_activity(&self, before: DateTime<Utc>) -> StoreResult<u64>;
}

/// The depth query, from its dialect's `now` and age expressions.
pub(crate) fn depth_sql(jobs: &str, now: &str, age: &str) -> String {
    format!(
        "WITH w AS (
            SELECT job_type,
                   count(*) FILTER (WHERE run_at <= {now}) AS waiting,
                   count(*) FILTER (WHERE run_at > {now}) AS scheduled,
                   min(run_at) FILTER (WHERE run_at <= {now}) AS oldest
              FROM {jobs}
             WHERE status = 'Pending' OR (status = 'Failed' AND attempts < max_attempts)
             GROUP BY job_type),
         r AS (SELECT job_type, count(*) AS running FROM {jobs}
                WHERE status IN ('Queued', 'Running') GROUP BY job_type),
         d AS (SELECT job_type, count(*) AS dead FROM {jobs}
                WHERE status IN ('Killed', 'Failed')
                  AND (status = 'Killed' OR attempts >= max_attempts)
                GROUP BY job_type),
         q AS (SELECT job_type FROM w UNION SELECT job_type FROM r UNION SELECT job_type FROM d)
         SELECT q.job_type AS queue, COALESCE(w.waiting, 0) AS waiting,
                COALESCE(w.scheduled, 0) AS scheduled, COALESCE(r.running, 0) AS running,
                COALESCE(d.dead, 0) AS dead,
                COALESCE({age}, 0.0) AS oldest_waiting_secs
           FROM q LEFT JOIN w ON w.job_type = q.job_type
                  LEFT JOIN r ON r.job_type = q.job_type
                  LEFT JOIN d ON d.job_type = q.job_type
          ORDER BY q.job_type",
        age = age.replace("{now}", now),
    )
}
