//! [`WorkerQueue`] on SQLite (apalis-sqlite's `Jobs` and `Workers`; times are Unix seconds).
//! Each operation is one write statement (the heartbeat's two share a transaction), so it holds
//! the database's single write lock once, however many jobs it fetches or finishes.

use std::time::Duration;

use sqlx::SqlitePool;

use super::begin_write;
use crate::store::{
    StoreResult,
    worker_queue::{FetchedJob, Outcome, WorkerQueue},
};

async fn rescue_orphans(
    conn: &mut sqlx::SqliteConnection,
    queue: &str,
    orphaned_after: Duration,
) -> StoreResult<u64> {
    let done = sqlx::query(
        "UPDATE Jobs SET status = 'Pending', done_at = NULL, lock_by = NULL, lock_at = NULL,
             attempts = attempts + 1,
             last_result = '{\"Err\": \"Re-enqueued due to worker heartbeat timeout.\"}'
         WHERE status IN ('Queued', 'Running') AND job_type = ?1
           AND (lock_by IS NULL OR lock_by NOT IN (
               SELECT id FROM Workers
               WHERE last_seen > CAST(strftime('%s', 'now') AS INTEGER) - ?2))",
    )
    .bind(queue)
    .bind(orphaned_after.as_secs().max(1) as i64)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

impl WorkerQueue for SqlitePool {
    async fn heartbeat(
        &self,
        queue: &str,
        worker: &str,
        orphaned_after: Duration,
    ) -> StoreResult<u64> {
        let mut tx = begin_write(self).await?;
        sqlx::query(
            "INSERT INTO Workers (id, worker_type, storage_name, layers, last_seen, started_at)
             VALUES (?1, ?2, 'RevisitSqlite', '', CAST(strftime('%s', 'now') AS INTEGER),
                     CAST(strftime('%s', 'now') AS INTEGER))
             ON CONFLICT (id) DO UPDATE SET worker_type = excluded.worker_type,
                 last_seen = excluded.last_seen",
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
        // Two ordered scans, one per state, so that each follows its partial index
        // (idx_jobs_pending, idx_jobs_failed), merged and cut to the limit.
        Ok(sqlx::query_as(
            "UPDATE Jobs SET status = 'Queued', lock_by = ?2,
                 lock_at = CAST(strftime('%s', 'now') AS INTEGER)
             WHERE NOT EXISTS (SELECT 1 FROM queue_pauses WHERE queue = ?1)
               AND ROWID IN (
                 SELECT ROWID FROM (
                     SELECT * FROM (
                         SELECT ROWID, priority, run_at, id FROM Jobs
                         WHERE job_type = ?1 AND status = 'Pending' AND lock_by IS NULL
                           AND (run_at IS NULL OR run_at <= CAST(strftime('%s', 'now') AS INTEGER))
                         ORDER BY priority DESC, run_at ASC, id ASC LIMIT ?3)
                     UNION ALL
                     SELECT * FROM (
                         SELECT ROWID, priority, run_at, id FROM Jobs
                         WHERE job_type = ?1 AND status = 'Failed' AND attempts < max_attempts
                           AND (run_at IS NULL OR run_at <= CAST(strftime('%s', 'now') AS INTEGER))
                         ORDER BY priority DESC, run_at ASC, id ASC LIMIT ?3))
                 ORDER BY priority DESC, run_at ASC, id ASC LIMIT ?3)
             RETURNING id, job, attempts, max_attempts, COALESCE(run_at, 0) AS run_at,
                       COALESCE(priority, 0) AS priority, idempotency_key",
        )
        .bind(queue)
        .bind(worker)
        .bind(limit)
        .fetch_all(self)
        .await?)
    }

    async fn store_outcomes(&self, worker: &str, outcomes: &[Outcome]) -> StoreResult<u64> {
        let rows: Vec<serde_json::Value> = outcomes
            .iter()
            .map(|o| {
                serde_json::json!({
                    "id": o.id,
                    "status": o.status,
                    "attempts": o.attempts,
                    "result": o.result.to_string(),
                })
            })
            .collect();
        let done = sqlx::query(
            // `+`: each row is found by its id, never through the lock_by or status indexes, which
            // SQLite would otherwise walk once per outcome.
            "UPDATE Jobs SET status = o.status, attempts = o.attempts, last_result = o.result,
                 done_at = CAST(strftime('%s', 'now') AS INTEGER)
             FROM (SELECT value ->> 'id' AS id, value ->> 'status' AS status,
                          value ->> 'attempts' AS attempts, value ->> 'result' AS result
                   FROM json_each(?1)) AS o
             WHERE Jobs.id = o.id AND +Jobs.lock_by = ?2 AND +Jobs.status IN ('Queued', 'Running')",
        )
        .bind(serde_json::Value::Array(rows).to_string())
        .bind(worker)
        .execute(self)
        .await?;
        Ok(done.rows_affected())
    }

    async fn give_back(&self, queue: &str, worker: &str, ids: &[String]) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE Jobs SET status = 'Pending', lock_by = NULL, lock_at = NULL
             WHERE +lock_by = ?2 AND job_type = ?1 AND status IN ('Queued', 'Running')
               AND id IN (SELECT value FROM json_each(?3))",
        )
        .bind(queue)
        .bind(worker)
        .bind(serde_json::to_string(ids).expect("strings serialise"))
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
        super::jobs::insert_many(self, queue, payloads, max_attempts).await
    }
}
