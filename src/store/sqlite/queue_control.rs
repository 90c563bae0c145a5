//! Paused queues on SQLite.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::SqliteStore;
use crate::store::{
    StoreResult,
    queue_control::{
        ActivityMinute, ActivityRow, PausedQueue, QueueControl, QueueDepth, depth_sql,
    },
};

#[async_trait]
impl QueueControl for SqliteStore {
    async fn pause_queue(&self, queue: &str, reason: Option<&str>) -> StoreResult<bool> {
        Ok(sqlx::query(
            "INSERT INTO queue_pauses (queue, reason) VALUES (?1, ?2) ON CONFLICT (queue) DO NOTHING",
        )
        .bind(queue)
        .bind(reason)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1)
    }

    async fn resume_queue(&self, queue: &str) -> StoreResult<bool> {
        Ok(sqlx::query("DELETE FROM queue_pauses WHERE queue = ?1")
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
            "Jobs",
            "CAST(strftime('%s', 'now') AS INTEGER)",
            "CAST({now} - w.oldest AS REAL)",
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
        let mut insert = sqlx::QueryBuilder::new(
            "INSERT INTO queue_activity (at, queue, process, completed, failed, waiting, running) ",
        );
        insert.push_values(rows, |mut b, r| {
            b.push_bind(at.timestamp())
                .push_bind(r.queue)
                .push_bind(process)
                .push_bind(r.completed)
                .push_bind(r.failed)
                .push_bind(r.waiting)
                .push_bind(r.running);
        });
        Ok(insert.build().execute(&self.pool).await.map(|_| ())?)
    }

    async fn activity_since(&self, since: DateTime<Utc>) -> StoreResult<Vec<ActivityMinute>> {
        Ok(sqlx::query_as(
            "SELECT (at / 60) * 60 AS minute, queue, sum(completed) AS completed,
                    sum(failed) AS failed, max(waiting) AS waiting, max(running) AS running
               FROM queue_activity WHERE at > ?1
              GROUP BY 1, 2 ORDER BY 1, 2",
        )
        .bind(since.timestamp())
        .fetch_all(&self.pool)
        .await?)
    }

    async fn prune_activity(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        Ok(sqlx::query("DELETE FROM queue_activity WHERE at < ?1")
            .bind(before.timestamp())
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
}
