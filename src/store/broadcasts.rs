//! Messages that go as a task a staff member confirms before the customer gets it (a WeCom
//! customer broadcast): the claimed send is recorded as `submitted` with the task's reference,
//! and its watcher job enqueued, in one transaction; the watcher settles it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{NewJob, StoreResult};

/// How a submitted message ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BroadcastOutcome {
    /// The staff member confirmed it and the channel sent it (when, who): `sent`, and approved
    /// by them.
    Sent { at: DateTime<Utc>, by: String },
    /// The channel could not deliver it (why): `failed`.
    Failed(String),
    /// Not confirmed in time; the task was withdrawn (why): `skipped`.
    Withdrawn(String),
}

impl BroadcastOutcome {
    /// (status, error, approved by) the revisit takes.
    pub fn status(&self) -> (&'static str, Option<&str>, Option<&str>) {
        match self {
            Self::Sent { by, .. } => ("sent", None, Some(by)),
            Self::Failed(e) => ("failed", Some(e), None),
            Self::Withdrawn(e) => ("skipped", Some(e), None),
        }
    }
}

#[async_trait]
pub trait Broadcasts: Send + Sync {
    /// Records that the send of revisit `id` claimed by `token` went as the channel's task
    /// `reference` (`submitted`, claim released) and enqueues `watch`, in one transaction.
    /// Returns whether it did (false: the claim was taken over meanwhile).
    async fn submit_send(
        &self,
        id: i64,
        token: &str,
        reference: &str,
        watch: NewJob,
    ) -> StoreResult<bool>;
    /// Settles a submitted revisit. Returns whether it was still submitted.
    async fn settle_broadcast(&self, id: i64, outcome: &BroadcastOutcome) -> StoreResult<bool>;
}
