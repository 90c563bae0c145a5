//! The job table on PostgreSQL (`apalis.jobs`): inserting on a caller's transaction, and the
//! operations apalis leaves to us. SQL here is built from constant fragments only; every value is
//! a bind parameter.

use super::*;

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, PgConnection, PgPool};

use crate::store::{JobRow, JobState, NewJob, STATE_CASE, StoreResult, readable_job_error};

/// Inserts a job on the caller's connection or open transaction: it exists exactly when that
/// transaction commits. A duplicate key is a no-op (`None`) and does not abort the transaction.
pub async fn insert(conn: &mut PgConnection, job: &NewJob) -> StoreResult<Option<String>> {
    let id = ulid::Ulid::generate().to_string();
    Ok(sqlx::query_scalar(
        "INSERT INTO apalis.jobs (id, job_type, job, status, attempts, max_attempts, run_at, priority, idempotency_key)
         VALUES ($1, $2, $3, 'Pending', 0, $4, COALESCE($5, now()), 0, $6)
         ON CONFLICT (job_type, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
         RETURNING id",
    )
    .bind(&id)
    .bind(job.queue)
    .bind(&job.payload)
    .bind(job.max_attempts)
    .bind(job.run_at)
    .bind(&job.key)
    .fetch_optional(conn)
    .await?)
}

pub async fn insert_many(
    conn: &mut PgConnection,
    queue: &str,
    payloads: Vec<Vec<u8>>,
    max_attempts: i32,
) -> StoreResult<u64> {
    let ids: Vec<String> = payloads
        .iter()
        .map(|_| ulid::Ulid::generate().to_string())
        .collect();
    let done = sqlx::query(
        "INSERT INTO apalis.jobs (id, job_type, job, status, attempts, max_attempts, run_at, priority)
         SELECT unnest($1::text[]), $2, unnest($3::bytea[]), 'Pending', 0, $4, now(), 0",
    )
    .bind(&ids)
    .bind(queue)
    .bind(&payloads)
    .bind(max_attempts)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

pub async fn store_backoff(pool: &PgPool, job_id: &str, delay: Duration) -> StoreResult<()> {
    Ok(sqlx::query(
        "UPDATE apalis.jobs SET run_at = now() + $2 * interval '1 millisecond' WHERE id = $1",
    )
    .bind(job_id)
    .bind(delay.as_millis() as i64)
    .execute(pool)
    .await
    .map(|_| ())?)
}

pub async fn release_held(
    pool: &PgPool,
    names: &[String],
    still_running: &[String],
) -> StoreResult<u64> {
    let done = sqlx::query(
        "UPDATE apalis.jobs SET status = 'Pending', lock_by = NULL, lock_at = NULL
         WHERE lock_by = ANY($1) AND status IN ('Queued', 'Running') AND NOT id = ANY($2)",
    )
    .bind(names)
    .bind(still_running)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

pub async fn claim_tick(
    pool: &PgPool,
    schedule: &str,
    tick: DateTime<Utc>,
    job: &NewJob,
) -> StoreResult<Option<String>> {
    let mut tx = pool.begin().await?;
    let claimed = sqlx::query(
        "INSERT INTO cron_ticks (schedule, fire_time) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(schedule)
    .bind(tick)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if !claimed {
        return Ok(None);
    }
    let id = insert(&mut tx, job).await?;
    sqlx::query("UPDATE cron_ticks SET job_id = $3 WHERE schedule = $1 AND fire_time = $2")
        .bind(schedule)
        .bind(tick)
        .bind(&id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(id)
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    queue: String,
    state: String,
    attempts: i32,
    max_attempts: i32,
    run_at: DateTime<Utc>,
    done_at: Option<DateTime<Utc>>,
    lock_by: Option<String>,
    last_error: Option<String>,
}

pub async fn list(
    pool: &PgPool,
    state: Option<JobState>,
    queue: Option<&str>,
    limit: i64,
) -> StoreResult<Vec<JobRow>> {
    let filter = state.map(JobState::condition).unwrap_or("TRUE");
    let sql = format!(
        "SELECT id, job_type AS queue, {STATE_CASE} AS state, attempts, max_attempts, run_at,
                done_at, lock_by, last_result ->> 'Err' AS last_error
         FROM apalis.jobs
         WHERE {filter} AND ($1::text IS NULL OR job_type = $1)
         ORDER BY id DESC LIMIT $2"
    );
    let rows: Vec<Row> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(queue)
        .bind(limit)
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| JobRow {
            id: r.id,
            queue: r.queue,
            state: r.state,
            attempts: r.attempts,
            max_attempts: r.max_attempts,
            run_at: r.run_at,
            done_at: r.done_at,
            lock_by: r.lock_by,
            last_error: r.last_error.map(readable_job_error),
        })
        .collect())
}

pub async fn counts(pool: &PgPool) -> StoreResult<Vec<JobCount>> {
    let sql = format!(
        "SELECT job_type AS queue, {STATE_CASE} AS state, count(*) AS count FROM apalis.jobs
         GROUP BY 1, 2 ORDER BY 1, 2"
    );
    Ok(sqlx::query_as(AssertSqlSafe(sql)).fetch_all(pool).await?)
}

pub async fn retry(
    pool: &PgPool,
    id: Option<&str>,
    queue: Option<&str>,
) -> StoreResult<Vec<String>> {
    let sql = format!(
        "UPDATE apalis.jobs
         SET status = 'Pending', attempts = 0, run_at = now(), lock_by = NULL, lock_at = NULL, done_at = NULL
         WHERE {} AND ($1::text IS NULL OR id = $1) AND ($2::text IS NULL OR job_type = $2)
         RETURNING id",
        JobState::Failed.condition()
    );
    Ok(sqlx::query_scalar(AssertSqlSafe(sql))
        .bind(id)
        .bind(queue)
        .fetch_all(pool)
        .await?)
}

pub async fn cancel(pool: &PgPool, id: &str) -> StoreResult<bool> {
    let sql = format!(
        "UPDATE apalis.jobs
         SET status = 'Killed', done_at = now(),
             last_result = jsonb_build_object('Err', 'cancelled by an operator at ' || now())
         WHERE id = $1 AND {}",
        JobState::Pending.condition()
    );
    Ok(sqlx::query(AssertSqlSafe(sql))
        .bind(id)
        .execute(pool)
        .await?
        .rows_affected()
        == 1)
}

pub async fn state(pool: &PgPool, id: &str) -> StoreResult<Option<JobStatus>> {
    let sql = format!("SELECT {STATE_CASE}, last_result ->> 'Err' FROM apalis.jobs WHERE id = $1");
    let row: Option<(String, Option<String>)> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(|(state, e)| JobStatus {
        state,
        last_error: e.map(readable_job_error),
    }))
}

pub async fn live_workers(pool: &PgPool, queue: &str, within: Duration) -> StoreResult<i64> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM apalis.workers
         WHERE worker_type = $1 AND last_seen > now() - make_interval(secs => $2)",
    )
    .bind(queue)
    .bind(within.as_secs_f64())
    .fetch_one(pool)
    .await?)
}

pub async fn summary(pool: &PgPool) -> StoreResult<QueueSummary> {
    let sql = format!(
        "SELECT count(*) FILTER (WHERE {}) AS pending, count(*) FILTER (WHERE {}) AS failed
         FROM apalis.jobs",
        JobState::Pending.condition(),
        JobState::Failed.condition()
    );
    Ok(sqlx::query_as(AssertSqlSafe(sql)).fetch_one(pool).await?)
}

#[async_trait::async_trait]
impl crate::store::jobs::Jobs for PgStore {
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
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM cron_ticks WHERE schedule = $1 AND fire_time < $2)",
        )
        .bind(schedule)
        .bind(before)
        .fetch_one(&self.pool)
        .await?)
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
            sqlx::query_as("SELECT job_type, job FROM apalis.jobs WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn live_workers(&self, queue: &str, within: Duration) -> StoreResult<i64> {
        jobs::live_workers(&self.pool, queue, within).await
    }

    async fn clear_queue(&self, queue: &str) -> StoreResult<()> {
        Ok(sqlx::query("DELETE FROM apalis.jobs WHERE job_type = $1")
            .bind(queue)
            .execute(&self.pool)
            .await
            .map(|_| ())?)
    }

    async fn queue_is_idle(&self, queue: &str) -> StoreResult<bool> {
        // The fetch index holds the runnable rows, the lock_by index the held ones.
        Ok(sqlx::query_scalar(
            "SELECT NOT EXISTS (SELECT 1 FROM apalis.jobs WHERE job_type = $1
                                  AND (status = 'Pending' OR (status = 'Failed' AND attempts < max_attempts)))
                AND NOT EXISTS (SELECT 1 FROM apalis.jobs WHERE job_type = $1
                                  AND status IN ('Queued', 'Running'))",
        )
        .bind(queue)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn done_count(&self, queue: &str) -> StoreResult<i64> {
        Ok(sqlx::query_scalar(
            "SELECT count(*) FROM apalis.jobs WHERE job_type = $1 AND status = 'Done'",
        )
        .bind(queue)
        .fetch_one(&self.pool)
        .await?)
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

    async fn queue_summary(&self) -> StoreResult<QueueSummary> {
        jobs::summary(&self.pool).await
    }
}
