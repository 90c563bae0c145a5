//! What operators do with jobs: list them, retry dead ones, cancel waiting ones.
//!
//! The SQL here is assembled from constant fragments only (the state filters below); every
//! value is a bind parameter.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

/// A job state as the CLI shows it (see the module doc of [`crate::queue`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Pending,
    Running,
    Done,
    Failed,
}

impl JobState {
    fn sql(self) -> &'static str {
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

    pub fn label(self) -> &'static str {
        match self {
            Self::Pending => "待执行",
            Self::Running => "执行中",
            Self::Done => "已完成",
            Self::Failed => "失败",
        }
    }
}

const STATE_CASE: &str = "CASE
    WHEN status = 'Done' THEN 'done'
    WHEN status IN ('Queued', 'Running') THEN 'running'
    WHEN status = 'Killed' OR (status = 'Failed' AND attempts >= max_attempts) THEN 'failed'
    ELSE 'pending' END";

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
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

/// Jobs, newest first, filtered by state and queue.
pub async fn list(
    pool: &PgPool,
    state: Option<JobState>,
    queue: Option<&str>,
    limit: i64,
) -> Result<Vec<JobRow>, sqlx::Error> {
    let filter = state.map(JobState::sql).unwrap_or("TRUE");
    let sql = format!(
        "SELECT id, job_type AS queue, {STATE_CASE} AS state, attempts, max_attempts, run_at,
                done_at, lock_by, last_result ->> 'Err' AS last_error
         FROM apalis.jobs
         WHERE {filter} AND ($1::text IS NULL OR job_type = $1)
         ORDER BY id DESC
         LIMIT $2"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(queue)
        .bind(limit)
        .fetch_all(pool)
        .await
}

/// Counts per queue and state, for `jobs list` summaries and the daily report.
pub async fn counts(pool: &PgPool) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
    let sql = format!(
        "SELECT job_type, {STATE_CASE} AS state, count(*) FROM apalis.jobs GROUP BY 1, 2 ORDER BY 1, 2"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(pool)
        .await
}

/// Puts dead jobs back in the queue with a full set of attempts. `id` picks one job; otherwise
/// every dead job (of `queue`, when given). Returns the ids retried.
pub async fn retry(
    pool: &PgPool,
    id: Option<&str>,
    queue: Option<&str>,
) -> Result<Vec<String>, sqlx::Error> {
    let sql = format!(
        "UPDATE apalis.jobs
         SET status = 'Pending', attempts = 0, run_at = now(), lock_by = NULL, lock_at = NULL,
             done_at = NULL
         WHERE {} AND ($1::text IS NULL OR id = $1) AND ($2::text IS NULL OR job_type = $2)
         RETURNING id",
        JobState::Failed.sql()
    );
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(queue)
        .fetch_all(pool)
        .await
}

/// Cancels a job that has not started (pending, or waiting for a retry). It is kept as a failed
/// job whose error says it was cancelled, so `jobs retry` can still bring it back.
pub async fn cancel(pool: &PgPool, id: &str) -> Result<bool, sqlx::Error> {
    let sql = format!(
        "UPDATE apalis.jobs
         SET status = 'Killed', done_at = now(),
             last_result = jsonb_build_object('Err', 'cancelled by an operator at ' || now())
         WHERE id = $1 AND {}",
        JobState::Pending.sql()
    );
    Ok(sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .execute(pool)
        .await?
        .rows_affected()
        == 1)
}

/// One job's state, for waiting on it.
pub async fn state_of(
    pool: &PgPool,
    id: &str,
) -> Result<Option<(String, Option<String>)>, sqlx::Error> {
    let sql = format!("SELECT {STATE_CASE}, last_result ->> 'Err' FROM apalis.jobs WHERE id = $1");
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(pool)
        .await
}
