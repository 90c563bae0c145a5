//! Real sending, switched on by an operator who knows what it sends (`revisit sending on`).
//! Until then every scan runs in test mode: messages are generated and shown, nothing reaches a
//! customer. Switched off, a real send still queued is skipped, never delivered late. Kept in
//! the database so that every worker process obeys at once.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreResult;

/// Whether real sending is on, since when and by whom.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct SendingState {
    pub live: bool,
    pub changed_at: DateTime<Utc>,
    /// Who switched it: a CLI user (`cli:<user>`), an API token's name, or `migration`.
    pub changed_by: String,
}

#[async_trait]
pub trait SendingSwitch: Send + Sync {
    async fn sending_state(&self) -> StoreResult<SendingState>;
    /// Switches real sending on or off; returns the state before.
    async fn set_sending(&self, live: bool, by: &str) -> StoreResult<SendingState>;
    /// Whether real sending is on.
    async fn sending_live(&self) -> StoreResult<bool> {
        Ok(self.sending_state().await?.live)
    }
}
