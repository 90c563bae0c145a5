//! Paused queues on PostgreSQL.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::PgStore;
use crate::store::{
    StoreResult,
    queue_control::{
        ActivityMinute, ActivityRow, PausedQueue, QueueControl, QueueDepth, depth_sql,
    },
};

#[async_trait]
impl QueueControl for PgStore {
    async fn pause_queue(&self, queue: &str, reason: Option<&str>) -> StoreResult<bool> {
        Ok(sqlx::query(
            "INSERT INTO queue_pauses (queue, reason) VALUES ($1, $2) ON CONFLICT (queue) DO NOTHING",
        )
        .bind(queue)
        .bind(reason)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1)
    }

    async fn resume_queue(&self, queue: &str) -> StoreResult<bool> {
        Ok(sqlx::query("DELETE FROM queue_pauses WHERE queue = $1")
            .bind(queue)
            .execute(&self.pool)
            .await?
            .rows_affected()
            == 1)
    }

    async fn paused_queues(&self) -> StoreResult<Vec<PausedQueue>> {
        Ok(
            sqlx::query_as("SELECT queue, paused_at, reason FROM queue_pauses ORDER BY queue")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn queue_depths(&self) -> StoreResult<Vec<QueueDepth>> {
        let sql = depth_sql(
            "apalis.jobs",
            "now()",
            "CAST(EXTRACT(EPOCH FROM {now} - w.oldest) AS DOUBLE PRECISION)",
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?)
    }

    async fn record_activity(
        &self,
        at: DateTime<Utc>,
        process: &str,
        rows: &[ActivityRow],
    ) -> StoreResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let queues: Vec<&str> = rows.iter().map(|r| r.queue).collect();
        let column = |f: fn(&ActivityRow) -> i64| rows.iter().map(f).collect::<Vec<i64>>();
        Ok(sqlx::query(
            "INSERT INTO queue_activity (at, queue, process, completed, failed, waiting, running)
             SELECT $1, q, $2, c, f, w, r
               FROM unnest($3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[])
                    AS t (q, c, f, w, r)",
        )
        .bind(at)
        .bind(process)
        .bind(&queues)
        .bind(column(|r| r.completed))
        .bind(column(|r| r.failed))
        .bind(column(|r| r.waiting))
        .bind(column(|r| r.running))
        .execute(&self.pool)
        .await
        .map(|_| ())?)
    }

    async fn activity_since(&self, since: DateTime<Utc>) -> StoreResult<Vec<ActivityMinute>> {
        Ok(sqlx::query_as(
            "SELECT (floor(extract(epoch FROM at) / 60) * 60)::bigint AS minute, queue,
                    sum(completed)::bigint AS completed, sum(failed)::bigint AS failed,
                    max(waiting) AS waiting, max(running) AS running
               FROM queue_activity WHERE at > $1
              GROUP BY 1, 2 ORDER BY 1, 2",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn prune_activity(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        Ok(sqlx::query("DELETE FROM queue_activity WHERE at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
}
