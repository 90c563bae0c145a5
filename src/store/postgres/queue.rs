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
    async fn heartbeat(
        &self,
        queue: &str,
        worker: &str,
        orphaned_after: Duration,
    ) -> StoreResult<u64> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO apalis.workers (id, worker_type, storage_name, layers, last_seen)
             VALUES ($1, $2, 'RevisitPg', '', now())
             ON CONFLICT (id) DO UPDATE SET worker_type = EXCLUDED.worker_type, last_seen = now()",
        )
        .bind(worker)
        .bind(queue)
        .execute(&mut *tx)
        .await?;
        let rescued = rescue_orphans(&mut tx, queue, orphaned_after).await?;
        tx.commit().await?;
        Ok(rescued)
    }

    async fn fetch(&self, queue: &str, worker: &str, limit: i32) -> StoreResult<Vec<FetchedJob>> {
        Ok(sqlx::query_as(
            "WITH next AS (
                 SELECT id FROM apalis.jobs
                 WHERE (status = 'Pending' OR (status = 'Failed' AND attempts < max_attempts))
                   AND run_at < now() AND job_type = $1
                   AND NOT EXISTS (SELECT 1 FROM queue_pauses WHERE queue = $1)
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
        .fetch_all(self)
        .await?)
    }

    async fn store_outcomes(&self, worker: &str, outcomes: &[Outcome]) -> StoreResult<u64> {
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
        .execute(self)
        .await?;
        Ok(done.rows_affected())
    }

    async fn give_back(&self, queue: &str, worker: &str, ids: &[String]) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE apalis.jobs SET status = 'Pending', lock_by = NULL, lock_at = NULL
             WHERE lock_by = $2 AND job_type = $1 AND status IN ('Queued', 'Running') AND id = ANY($3)",
        )
        .bind(queue)
        .bind(worker)
        .bind(ids)
        .execute(self)
        .await?;
        Ok(done.rows_affected())
    }

    async fn push(
        &self,
        queue: &str,
        payloads: Vec<Vec<u8>>,
        max_attempts: i32,
    ) -> StoreResult<u64> {
        let mut conn = self.acquire().await?;
        super::jobs::insert_many(&mut conn, queue, payloads, max_attempts).await
    }
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
