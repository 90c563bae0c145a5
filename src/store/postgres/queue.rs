//! [`WorkerQueue`] on PostgreSQL (`apalis.jobs`, `apalis.workers`). Every statement but the
//! heartbeat's is one round trip in its own implicit transaction, and sqlx keeps each prepared on
//! its connection: a worker spends one statement per batch of jobs fetched and one per batch of
//! outcomes stored, never one per job.

use std::time::Duration;

use sqlx::PgPool;

use crate::store::{
    StoreResult,
    worker_queue::{FetchedJob, Outcome, WorkerQueue},
};

impl WorkerQueue for PgPool {
    async fn register_worker(
        &self,
        queue: &str,
        worker: &str,
        orphaned_after: Duration,
    ) -> StoreResult<u64> {
        register_worker(self, queue, worker, orphaned_after).await
    }

    async fn heartbeat(
        &self,
        queue: &str,
        worker: &str,
        orphaned_after: Duration,
    ) -> StoreResult<u64> {
        heartbeat(self, queue, worker, orphaned_after).await
    }

    async fn fetch(&self, queue: &str, worker: &str, limit: i32) -> StoreResult<Vec<FetchedJob>> {
        fetch(self, queue, worker, limit).await
    }

    async fn store_outcomes(&self, worker: &str, outcomes: &[Outcome]) -> StoreResult<u64> {
        store_outcomes(self, worker, outcomes).await
    }

    async fn give_back(&self, queue: &str, worker: &str, ids: &[String]) -> StoreResult<u64> {
        give_back(self, queue, worker, ids).await
    }

    async fn push(
        &self,
        queue: &str,
        payloads: Vec<Vec<u8>>,
        max_attempts: Vec<i32>,
    ) -> StoreResult<u64> {
        push(self, queue, payloads, max_attempts).await
    }
}

/// Registers (or re-registers) a worker, first giving back the jobs of dead workers of its queue.
async fn register_worker(
    pool: &PgPool,
    queue: &str,
    worker: &str,
    orphaned_after: Duration,
) -> StoreResult<u64> {
    let mut tx = pool.begin().await?;
    let rescued = rescue_orphans(&mut tx, queue, orphaned_after).await?;
    sqlx::query(
        "INSERT INTO apalis.workers (id, worker_type, storage_name, layers, last_seen)
         VALUES ($1, $2, 'RevisitPg', '', now())
         ON CONFLICT (id) DO UPDATE SET worker_type = EXCLUDED.worker_type, last_seen = now()",
    )
    .bind(worker)
    .bind(queue)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rescued)
}

/// Marks the worker alive, and gives back the jobs of its queue's dead workers.
async fn heartbeat(
    pool: &PgPool,
    queue: &str,
    worker: &str,
    orphaned_after: Duration,
) -> StoreResult<u64> {
    let mut tx = pool.begin().await?;
    sqlx::query("UPDATE apalis.workers SET last_seen = now() WHERE id = $1 AND worker_type = $2")
        .bind(worker)
        .bind(queue)
        .execute(&mut *tx)
        .await?;
    let rescued = rescue_orphans(&mut tx, queue, orphaned_after).await?;
    tx.commit().await?;
    Ok(rescued)
}

async fn rescue_orphans(
    conn: &mut sqlx::PgConnection,
    queue: &str,
    orphaned_after: Duration,
) -> StoreResult<u64> {
    let done = sqlx::query(
        "WITH stale AS (
             SELECT jobs.id FROM apalis.jobs
             LEFT JOIN apalis.workers ON workers.id = jobs.lock_by
             WHERE jobs.status IN ('Queued', 'Running') AND jobs.job_type = $1
               AND (workers.id IS NULL
                    OR workers.last_seen <= now() - $2 * interval '1 millisecond')
             FOR UPDATE OF jobs SKIP LOCKED
         )
         UPDATE apalis.jobs SET status = 'Pending', done_at = NULL, lock_by = NULL, lock_at = NULL,
             attempts = attempts + 1,
             last_result = '{\"Err\": \"Re-enqueued due to worker heartbeat timeout.\"}'
         FROM stale WHERE jobs.id = stale.id",
    )
    .bind(queue)
    .bind(orphaned_after.as_millis() as i64)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Locks up to `limit` due jobs of `queue` for `worker` and returns them, in one statement.
async fn fetch(
    pool: &PgPool,
    queue: &str,
    worker: &str,
    limit: i32,
) -> StoreResult<Vec<FetchedJob>> {
    sqlx::query_as(
        "WITH next AS (
             SELECT id FROM apalis.jobs
             WHERE (status = 'Pending' OR (status = 'Failed' AND attempts < max_attempts))
               AND run_at < now() AND job_type = $1
             ORDER BY priority DESC, run_at ASC
             LIMIT $3
             FOR UPDATE SKIP LOCKED
         )
         UPDATE apalis.jobs AS j SET status = 'Queued', lock_by = $2, lock_at = now()
         FROM next WHERE j.id = next.id
         RETURNING j.id, j.job, j.attempts, j.max_attempts,
                   extract(epoch FROM j.run_at)::int8 AS run_at, j.priority, j.idempotency_key",
    )
    .bind(queue)
    .bind(worker)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Stores the outcomes of jobs `worker` ran, in one statement. A job no longer locked by this
/// worker (rescued after a missed heartbeat, or released) is left as it is: its new owner's
/// result counts.
async fn store_outcomes(pool: &PgPool, worker: &str, outcomes: &[Outcome]) -> StoreResult<u64> {
    let ids: Vec<&str> = outcomes.iter().map(|o| o.id.as_str()).collect();
    let statuses: Vec<&str> = outcomes.iter().map(|o| o.status.as_str()).collect();
    let attempts: Vec<i32> = outcomes.iter().map(|o| o.attempts).collect();
    let results: Vec<&serde_json::Value> = outcomes.iter().map(|o| &o.result).collect();
    let done = sqlx::query(
        "UPDATE apalis.jobs AS j
         SET status = o.status, attempts = o.attempts, last_result = o.result, done_at = now()
         FROM unnest($1::text[], $2::text[], $3::int4[], $4::jsonb[]) AS o(id, status, attempts, result)
         WHERE j.id = o.id AND j.lock_by = $5 AND j.status IN ('Queued', 'Running')",
    )
    .bind(&ids)
    .bind(&statuses)
    .bind(&attempts)
    .bind(&results)
    .bind(worker)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// Puts back jobs `worker` fetched but never started (its shutdown). They never ran, so no
/// attempt is charged.
async fn give_back(pool: &PgPool, queue: &str, worker: &str, ids: &[String]) -> StoreResult<u64> {
    let done = sqlx::query(
        "UPDATE apalis.jobs SET status = 'Pending', lock_by = NULL, lock_at = NULL
         WHERE lock_by = $2 AND job_type = $1 AND status IN ('Queued', 'Running') AND id = ANY($3)",
    )
    .bind(queue)
    .bind(worker)
    .bind(ids)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

async fn push(
    pool: &PgPool,
    queue: &str,
    payloads: Vec<Vec<u8>>,
    max_attempts: Vec<i32>,
) -> StoreResult<u64> {
    let ids: Vec<String> = payloads
        .iter()
        .map(|_| ulid::Ulid::generate().to_string())
        .collect();
    let done = sqlx::query(
        "INSERT INTO apalis.jobs (id, job_type, job, status, attempts, max_attempts, run_at, priority)
         SELECT id, $2, job, 'Pending', 0, max_attempts, now(), 0
         FROM unnest($1::text[], $3::bytea[], $4::int4[]) AS t(id, job, max_attempts)",
    )
    .bind(&ids)
    .bind(queue)
    .bind(&payloads)
    .bind(&max_attempts)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}
