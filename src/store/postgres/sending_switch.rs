//! The real-sending switch on PostgreSQL.

use async_trait::async_trait;

use super::PgStore;
use crate::store::{
    StoreResult,
    sending_switch::{SendingState, SendingSwitch},
};

#[async_trait]
impl SendingSwitch for PgStore {
    async fn sending_state(&self) -> StoreResult<SendingState> {
        Ok(
            sqlx::query_as("SELECT live, changed_at, changed_by FROM sending_switch WHERE id = 1")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn set_sending(&self, live: bool, by: &str) -> StoreResult<SendingState> {
        let mut tx = self.pool.begin().await?;
        let before: SendingState = sqlx::query_as(
            "SELECT live, changed_at, changed_by FROM sending_switch WHERE id = 1 FOR UPDATE",
        )
        .fetch_one(&mut *tx)
        .await?;
        if before.live != live {
            sqlx::query(
                "UPDATE sending_switch SET live = $1, changed_at = now(), changed_by = $2 WHERE id = 1",
            )
            .bind(live)
            .bind(by)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(before)
    }
}
