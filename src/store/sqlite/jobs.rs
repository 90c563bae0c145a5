//! The job table on SQLite (apalis-sqlite's `Jobs`; times are Unix seconds). Same operations and
//! states as [`crate::store::postgres::jobs`]. SQL is built from constant fragments only.

use super::*;

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use sqlx::{AssertSqlSafe, SqliteConnection, SqlitePool};

use super::{begin_write, ts};
use crate::store::{JobRow, JobState, NewJob, STATE_CASE, StoreResult, readable_job_error};

fn secs_to_time(secs: Option<i64>) -> Option<DateTime<Utc>> {
    secs.and_then(|s| Utc.timestamp_opt(s, 0).single())
}

/// Inserts a job on the caller's connection or transaction; a duplicate key is a no-op (`None`).
///
/// The statement is stepped to its end (`fetch_all`), not stopped at the returned row: outside
/// a transaction SQLite commits when the statement finishes, and sqlx's `fetch_optional` hands
/// the row back before its worker thread has finished it. A caller who then asked another
/// connection for the job (the API answering "follow this run") could find none.
pub async fn insert(conn: &mut SqliteConnection, job: &NewJob) -> StoreResult<Option<String>> {
    let id = ulid::Ulid::generate().to_string();
    let ids: Vec<String> = sqlx::query_scalar(
        "INSERT INTO Jobs (job, id, job_type, status, attempts, max_attempts, run_at, priority, idempotency_key)
         VALUES (?1, ?2, ?3, 'Pending', 0, ?4, COALESCE(?5, strftime('%s', 'now')), 0, ?6)
         ON CONFLICT (job_type, idempotency_key) DO NOTHING
         RETURNING id",
    )
    .bind(&job.payload)
    .bind(&id)
    .bind(job.queue)
    .bind(job.max_attempts)
    .bind(job.run_at.map(|t| t.timestamp()))
    .bind(&job.key)
    .fetch_all(conn)
    .await?;
    Ok(ids.into_iter().next())
}

pub async fn insert_many(
    pool: &SqlitePool,
    queue: &str,
    payloads: Vec<Vec<u8>>,
    max_attempts: i32,
) -> StoreResult<u64> {
    let mut tx = begin_write(pool).await?;
    let n = payloads.len() as u64;
    for payload in payloads {
        sqlx::query(
            "INSERT INTO Jobs (job, id, job_type, status, attempts, max_attempts, run_at, priority)
             VALUES (?1, ?2, ?3, 'Pending', 0, ?4, strftime('%s', 'now'), 0)",
        )
        .bind(payload)
        .bind(ulid::Ulid::generate().to_string())
        .bind(queue)
        .bind(max_attempts)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(n)
}

pub async fn store_backoff(pool: &SqlitePool, job_id: &str, delay: Duration) -> StoreResult<()> {
    // Whole seconds, rounded up: run_at is in seconds here.
    let secs = delay.as_millis().div_ceil(1000) as i64;
    Ok(sqlx::query(
        "UPDATE Jobs SET run_at = CAST(strftime('%s', 'now') AS INTEGER) + ?2 WHERE id = ?1",
    )
    .bind(job_id)
    .bind(secs)
    .execute(pool)
    .await
    .map(|_| ())?)
}

pub async fn release_held(
    pool: &SqlitePool,
    names: &[String],
    still_running: &[String],
) -> StoreResult<u64> {
    let names = serde_json::to_string(names).expect("strings serialise");
    let running = serde_json::to_string(still_running).expect("strings serialise");
    let done = sqlx::query(
        "UPDATE Jobs SET status = 'Pending', lock_by = NULL, lock_at = NULL
         WHERE lock_by IN (SELECT value FROM json_each(?1)) AND status IN ('Queued', 'Running')
           AND id NOT IN (SELECT value FROM json_each(?2))",
    )
    .bind(names)
    .bind(running)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

pub async fn cron_ran_before(
    pool: &SqlitePool,
    schedule: &str,
    before: DateTime<Utc>,
) -> StoreResult<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM cron_ticks WHERE schedule = ?1 AND fire_time < ?2)",
    )
    .bind(schedule)
    .bind(ts(before))
    .fetch_one(pool)
    .await?)
}

pub async fn claim_tick(
    pool: &SqlitePool,
    schedule: &str,
    tick: DateTime<Utc>,
    job: &NewJob,
) -> StoreResult<Option<String>> {
    let mut tx = begin_write(pool).await?;
    let claimed = sqlx::query(
        "INSERT INTO cron_ticks (schedule, fire_time) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
    )
    .bind(schedule)
    .bind(ts(tick))
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if !claimed {
        return Ok(None);
    }
    let id = insert(&mut tx, job).await?;
    sqlx::query("UPDATE cron_ticks SET job_id = ?3 WHERE schedule = ?1 AND fire_time = ?2")
        .bind(schedule)
        .bind(ts(tick))
        .bind(&id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(id)
}

type Row = (
    String,
    String,
    String,
    i32,
    i32,
    i64,
    Option<i64>,
    Option<String>,
    Option<String>,
);

pub async fn list(
    pool: &SqlitePool,
    state: Option<JobState>,
    queue: Option<&str>,
    limit: i64,
) -> StoreResult<Vec<JobRow>> {
    let filter = state.map(JobState::condition).unwrap_or("1");
    let sql = format!(
        "SELECT id, job_type, {STATE_CASE}, attempts, max_attempts, run_at, done_at, lock_by,
                json_extract(last_result, '$.Err')
         FROM Jobs
         WHERE {filter} AND (?1 IS NULL OR job_type = ?1)
         ORDER BY id DESC LIMIT ?2"
    );
    let rows: Vec<Row> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(queue)
        .bind(limit)
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .map(
            |(id, queue, state, attempts, max_attempts, run_at, done_at, lock_by, last_error)| {
                JobRow {
                    id,
                    queue,
                    state,
                    attempts,
                    max_attempts,
                    run_at: secs_to_time(Some(run_at)).unwrap_or_default(),
                    done_at: secs_to_time(done_at),
                    lock_by,
                    last_error: last_error.map(readable_job_error),
                }
            },
        )
        .collect())
}

pub async fn counts(pool: &SqlitePool) -> StoreResult<Vec<JobCount>> {
    let sql = format!(
        "SELECT job_type AS queue, {STATE_CASE} AS state, count(*) AS count FROM Jobs
         GROUP BY 1, 2 ORDER BY 1, 2"
    );
    Ok(sqlx::query_as(AssertSqlSafe(sql)).fetch_all(pool).await?)
}

pub async fn retry(
    pool: &SqlitePool,
    id: Option<&str>,
    queue: Option<&str>,
) -> StoreResult<Vec<String>> {
    let sql = format!(
        "UPDATE Jobs
         SET status = 'Pending', attempts = 0, run_at = strftime('%s', 'now'), lock_by = NULL,
             lock_at = NULL, done_at = NULL
         WHERE {} AND (?1 IS NULL OR id = ?1) AND (?2 IS NULL OR job_type = ?2)
         RETURNING id",
        JobState::Failed.condition()
    );
    Ok(sqlx::query_scalar(AssertSqlSafe(sql))
        .bind(id)
        .bind(queue)
        .fetch_all(pool)
        .await?)
}

pub async fn cancel(pool: &SqlitePool, id: &str) -> StoreResult<bool> {
    let sql = format!(
        "UPDATE Jobs
         SET status = 'Killed', done_at = strftime('%s', 'now'),
             last_result = json_object('Err', 'cancelled by an operator at ' || datetime('now') || ' UTC')
         WHERE id = ?1 AND {}",
        JobState::Pending.condition()
    );
    Ok(sqlx::query(AssertSqlSafe(sql))
        .bind(id)
        .execute(pool)
        .await?
        .rows_affected()
        == 1)
}

pub async fn state(pool: &SqlitePool, id: &str) -> StoreResult<Option<JobStatus>> {
    let sql =
        format!("SELECT {STATE_CASE}, json_extract(last_result, '$.Err') FROM Jobs WHERE id = ?1");
    let row: Option<(String, Option<String>)> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(|(state, e)| JobStatus {
        state,
        last_error: e.map(readable_job_error),
    }))
}

pub async fn live_workers(pool: &SqlitePool, queue: &str, within: Duration) -> StoreResult<i64> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM Workers WHERE worker_type = ?1 AND last_seen > strftime('%s', 'now') - ?2")
        .bind(queue)
        .bind(within.as_secs() as i64)
        .fetch_one(pool)
        .await?)
}

pub async fn summary(pool: &SqlitePool) -> StoreResult<QueueSummary> {
    let sql = format!(
        "SELECT count(*) FILTER (WHERE {}) AS pending, count(*) FILTER (WHERE {}) AS failed
         FROM Jobs",
        JobState::Pending.condition(),
        JobState::Failed.condition()
    );
    Ok(sqlx::query_as(AssertSqlSafe(sql)).fetch_one(pool).await?)
}

#[async_trait::async_trait]
impl crate::store::jobs::Jobs for SqliteStore {
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

    async fn job_counts(&self) -> StoreResult<Vec<JobCount>> {
        jobs::counts(&self.pool).await
    }

    async fn retry_jobs(&self, id: Option<&str>, queue: Option<&str>) -> StoreResult<Vec<String>> {
        jobs::retry(&self.pool, id, queue).await
    }

    async fn cancel_job(&self, id: &str) -> StoreResult<bool> {
        jobs::cancel(&self.pool, id).await
    }

    async fn job_state(&self, id: &str) -> StoreResult<Option<JobStatus>> {
        jobs::state(&self.pool, id).await
    }

    async fn job_args(&self, id: &str) -> StoreResult<Option<JobArgs>> {
        Ok(
            sqlx::query_as("SELECT job_type, job FROM Jobs WHERE id = ?1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn live_workers(&self, queue: &str, within: Duration) -> StoreResult<i64> {
        jobs::live_workers(&self.pool, queue, within).await
    }

    async fn clear_queue(&self, queue: &str) -> StoreResult<()> {
        Ok(sqlx::query("DELETE FROM Jobs WHERE job_type = ?1")
            .bind(queue)
            .execute(&self.pool)
            .await
            .map(|_| ())?)
    }

    async fn queue_is_idle(&self, queue: &str) -> StoreResult<bool> {
        // Runnable rows are in idx_jobs_pending and idx_jobs_failed; held ones are found by
        // status first (idx_jobs_completed_done_at).
        Ok(sqlx::query_scalar(
            "SELECT NOT EXISTS (SELECT 1 FROM Jobs WHERE job_type = ?1
                                  AND status = 'Pending' AND lock_by IS NULL)
                AND NOT EXISTS (SELECT 1 FROM Jobs WHERE job_type = ?1
                                  AND status = 'Failed' AND attempts < max_attempts)
                AND NOT EXISTS (SELECT 1 FROM Jobs WHERE status IN ('Queued', 'Running')
                                  AND job_type = ?1)",
        )
        .bind(queue)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn done_count(&self, queue: &str) -> StoreResult<i64> {
        Ok(
            sqlx::query_scalar("SELECT count(*) FROM Jobs WHERE job_type = ?1 AND status = 'Done'")
                .bind(queue)
                .fetch_one(&self.pool)
                .await?,
        )
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

    async fn queue_summary(&self) -> StoreResult<QueueSummary> {
        jobs::summary(&self.pool).await
    }
}
