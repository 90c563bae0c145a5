//! Who agreed to what being sent: suppressions (a number that receives nothing more through a
//! channel, see [`crate::domain::consent`]) and staff approval of messages before they go out.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{RevisitView, StoreResult};
use crate::domain::consent::Source;

/// A number that receives nothing more through `channel` (`*`: any channel).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Suppression {
    pub phone: String,
    pub channel: String,
    pub source: String,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// What a decision on waiting messages did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decided {
    /// Revisits decided now.
    pub ids: Vec<i64>,
}

#[async_trait]
pub trait Consent: Send + Sync {
    /// Records that `phone` receives nothing more through `channel`. Returns whether it is new
    /// (an existing suppression keeps its first source and time).
    async fn suppress(
        &self,
        phone: &str,
        channel: &str,
        source: Source,
        reason: Option<&str>,
    ) -> StoreResult<bool>;
    /// Lifts the suppressions of `phone` for `channel` (every one with `None`). Returns how many.
    async fn unsuppress(&self, phone: &str, channel: Option<&str>) -> StoreResult<u64>;
    /// Suppressions, newest first; of one number with `phone`.
    async fn suppressions(&self, phone: Option<&str>, limit: i64) -> StoreResult<Vec<Suppression>>;

    /// Real messages waiting for a person's approval, oldest first, names and phones masked; of
    /// one institution with `institution`.
    async fn awaiting_approval(
        &self,
        institution: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<RevisitView>>;
    /// Approves waiting messages (`ids`, or every waiting one of `institution` when `ids` is
    /// empty) and enqueues their sending, in one transaction: a message of an institution that
    /// `send_at` names (by code) waits until then (its quiet hours), the others go at once.
    /// Messages not waiting, or of another institution than `institution`, are left alone.
    async fn approve(
        &self,
        ids: &[i64],
        institution: Option<&str>,
        by: &str,
        send_at: &HashMap<String, DateTime<Utc>>,
        send_max_attempts: i32,
    ) -> StoreResult<Decided>;
    /// Rejects waiting messages: they are skipped with `reason` and never sent.
    async fn reject(
        &self,
        ids: &[i64],
        institution: Option<&str>,
        by: &str,
        reason: &str,
    ) -> StoreResult<Decided>;
}
