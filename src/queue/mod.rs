//! The job queue on apalis-postgres: enqueueing (on the caller's transaction), the admin
//! operations apalis does not offer (list, retry, cancel dead jobs), the worker runtime, and the
//! cron producers.
//!
//! Jobs are rows of `apalis.jobs`. Their states, as this project reads them:
//! - pending: `Pending`, or `Failed` with attempts left (waiting for its `run_at`, the stored backoff);
//! - running: `Queued` (fetched by a worker) or `Running`;
//! - done: `Done`;
//! - failed (dead): `Killed` (a permanent failure, a crash loop, or cancelled by hand), or `Failed`
//!   with no attempts left. Kept with the last error until retried by hand.

pub mod admin;
pub mod cron;
pub mod worker;

use chrono::{DateTime, Utc};
use revisit_jobs::{Job, KindInfo};
use sqlx::PgConnection;

use crate::config::Settings;

/// Options of one enqueue.
#[derive(Debug, Clone, Default)]
pub struct EnqueueOptions {
    /// A key unique within the queue: a second enqueue with the same key is a no-op.
    pub key: Option<String>,
    /// Not before this time; now when `None`.
    pub run_at: Option<DateTime<Utc>>,
}

impl EnqueueOptions {
    pub fn keyed(key: impl Into<String>) -> Self {
        Self {
            key: Some(key.into()),
            run_at: None,
        }
    }
}

/// Enqueues one job on the caller's connection or open transaction: the job exists exactly when
/// that transaction commits. Returns the new job's id, or `None` when a job with the same key
/// already exists in the queue (that is not an error and does not abort the transaction).
pub async fn enqueue<J: Job>(
    conn: &mut PgConnection,
    settings: &Settings,
    args: &J,
    opts: EnqueueOptions,
) -> Result<Option<String>, sqlx::Error> {
    let max_attempts = settings.policy(&KindInfo::of::<J>()).max_attempts;
    let payload = serde_json::to_vec(args).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let id = ulid::Ulid::generate().to_string();
    sqlx::query_scalar(
        "INSERT INTO apalis.jobs (id, job_type, job, status, attempts, max_attempts, run_at, priority, idempotency_key)
         VALUES ($1, $2, $3, 'Pending', 0, $4, COALESCE($5, now()), 0, $6)
         ON CONFLICT (job_type, idempotency_key) DO NOTHING
         RETURNING id",
    )
    .bind(&id)
    .bind(J::QUEUE)
    .bind(payload)
    .bind(max_attempts as i32)
    .bind(opts.run_at)
    .bind(opts.key)
    .fetch_optional(conn)
    .await
}

/// Enqueues many jobs of one kind in one statement (no keys). Returns how many were inserted.
pub async fn enqueue_many<J: Job>(
    conn: &mut PgConnection,
    settings: &Settings,
    args: &[J],
) -> Result<u64, sqlx::Error> {
    let max_attempts = settings.policy(&KindInfo::of::<J>()).max_attempts as i32;
    let mut ids = Vec::with_capacity(args.len());
    let mut payloads = Vec::with_capacity(args.len());
    for a in args {
        ids.push(ulid::Ulid::generate().to_string());
        payloads.push(serde_json::to_vec(a).map_err(|e| sqlx::Error::Encode(Box::new(e)))?);
    }
    let done = sqlx::query(
        "INSERT INTO apalis.jobs (id, job_type, job, status, attempts, max_attempts, run_at, priority)
         SELECT unnest($1::text[]), $2, unnest($3::bytea[]), 'Pending', 0, $4, now(), 0",
    )
    .bind(&ids)
    .bind(J::QUEUE)
    .bind(&payloads)
    .bind(max_attempts)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}
