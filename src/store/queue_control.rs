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

#[async_trait]
pub trait QueueControl: Send + Sync {
    /// Pauses `queue`; false if it was paused already.
    async fn pause_queue(&self, queue: &str, reason: Option<&str>) -> StoreResult<bool>;
    /// Resumes `queue`; false if it was not paused.
    async fn resume_queue(&self, queue: &str) -> StoreResult<bool>;
    /// The paused queues, by name.
    async fn paused_queues(&self) -> StoreResult<Vec<PausedQueue>>;
}
