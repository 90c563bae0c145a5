//! The real-sending switch on SQLite.

use async_trait::async_trait;

use super::SqliteStore;
use crate::store::{
    StoreResult,
    sending_switch::{SendingState, SendingSwitch},
};

#[async_trait]
impl SendingSwitch for SqliteStore {
    async fn sending_state(&self) -> StoreResult<SendingState> {
        Ok(
            sqlx::query_as("SELECT live, changed_at, changed_by FROM sending_switch WHERE id = 1")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn set_sending(&self, live: bool, by: &str) -> StoreResult<SendingState> {
        // Two operators switching at the same moment can only misreport the state before; the
        // state written is the last one asked for.
        let before = self.sending_state().await?;
        sqlx::query(
            "UPDATE sending_switch SET live = ?1, changed_by = ?2,
                 changed_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
             WHERE id = 1 AND live <> ?1",
        )
        .bind(live)
        .bind(by)
        .execute(&self.pool)
        .await?;
        Ok(before)
    }
}
