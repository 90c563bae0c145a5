//! What a worker asks of the job table: register and heartbeat, fetch a batch of due jobs,
//! store a batch of outcomes, give back jobs it never started. One implementation per engine
//! (`postgres/queue.rs`, `sqlite/queue.rs`), both on apalis's tables, states and columns, so the
//! admin commands and the heartbeat rescue read them alike. Revisit's apalis backend
//! (`crate::queue::backend`) is written once against this trait.
//!
//! The rules both keep:
//! - a fetched job is `Queued` and locked by its worker (`lock_by`) until its outcome is stored;
//! - a `Failed` job with attempts left is fetched again once its `run_at` has passed;
//! - a worker silent for longer than the orphan limit loses its `Queued` and `Running` jobs to the
//!   queue, each charged one attempt (it may have started them);
//! - an outcome is stored only while its worker still holds the job.

use std::{future::Future, time::Duration};

use crate::store::StoreResult;

/// One fetched job, as the backend turns it into an apalis task.
#[derive(Debug, sqlx::FromRow)]
pub struct FetchedJob {
    pub id: String,
    pub job: Vec<u8>,
    pub attempts: i32,
    pub max_attempts: i32,
    /// Unix seconds.
    pub run_at: i64,
    pub priority: i32,
    pub idempotency_key: Option<String>,
}

/// One finished job's outcome, to be stored with others in one statement.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub id: String,
    /// `Done`, `Failed` or `Killed`.
    pub status: String,
    pub attempts: i32,
    /// `{"Ok": …}` or `{"Err": "…"}`, as apalis stores it.
    pub result: serde_json::Value,
}

pub trait WorkerQueue: Clone + Send + Sync + 'static {
    /// Marks the worker alive (registering it the first time), and gives back the jobs of its
    /// queue's dead workers. Returns how many were given back.
    fn heartbeat(
        &self,
        queue: &str,
        worker: &str,
        orphaned_after: Duration,
    ) -> impl Future<Output = StoreResult<u64>> + Send;

    /// Locks up to `limit` due jobs of `queue` for `worker` and returns them, in one statement.
    fn fetch(
        &self,
        queue: &str,
        worker: &str,
        limit: i32,
    ) -> impl Future<Output = StoreResult<Vec<FetchedJob>>> + Send;

    /// Stores the outcomes of jobs `worker` ran, in one statement. A job it no longer holds
    /// (rescued after a missed heartbeat, or released) is left as it is.
    fn store_outcomes(
        &self,
        worker: &str,
        outcomes: &[Outcome],
    ) -> impl Future<Output = StoreResult<u64>> + Send;

    /// Puts back jobs `worker` fetched but never started (its shutdown). They never ran, so no
    /// attempt is charged.
    fn give_back(
        &self,
        queue: &str,
        worker: &str,
        ids: &[String],
    ) -> impl Future<Output = StoreResult<u64>> + Send;

    /// Inserts jobs handed to the backend through apalis's own sink (Revisit enqueues through
    /// `Repository::enqueue`; this keeps apalis's `TaskSink` working on the same table).
    fn push(
        &self,
        queue: &str,
        payloads: Vec<Vec<u8>>,
        max_attempts: i32,
    ) -> impl Future<Output = StoreResult<u64>> + Send;
}
