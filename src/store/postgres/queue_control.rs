//! Paused queues on PostgreSQL.

use async_trait::async_trait;

use super::PgStore;
use crate::store::{
    StoreResult,
    queue_control::{PausedQueue, QueueControl, QueueDepth, depth_sql},
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
        sqlx::query_as("SELECT queue, paused_at, reason FROM queue_pauses ORDER BY queue")
            .fetch_all(&self.pool)
            .await
    }

    async fn queue_depths(&self) -> StoreResult<Vec<QueueDepth>> {
        let sql = depth_sql(
            "apalis.jobs",
            "now()",
            "CAST(EXTRACT(EPOCH FROM {now} - w.oldest) AS DOUBLE PRECISION)",
        );
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await
    }
}
