//! The projections' change capture: which projections this deployment keeps, captured changes
//! turned into sync jobs, full resyncs, each projection's lag, and entity snapshots.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use revisit_jobs::{EntityKind, ProjectionName};

use super::StoreResult;
use crate::domain::snapshot::Snapshots;

/// One page of a full resync: the last key it queued and how many entities it held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncPage {
    pub last_key: String,
    pub entities: u64,
}

#[async_trait]
pub trait ChangeCapture: Send + Sync {
    /// Records that this deployment keeps `projection` (idempotent).
    async fn register_projection(&self, projection: ProjectionName) -> StoreResult<()>;
    /// Forgets `projection`: its changes are no longer dispatched. Returns whether it was known.
    async fn unregister_projection(&self, projection: ProjectionName) -> StoreResult<bool>;
    /// Turns one page of captured changes into sync jobs for `projections` and every registered
    /// projection (with none, the changes are dropped: a projection configured later is built
    /// with `sync --full`), deleting them and recording the jobs' backlog in the same
    /// transaction.
    async fn dispatch_changes(
        &self,
        projections: &[ProjectionName],
        max_attempts: i32,
    ) -> StoreResult<Dispatched>;
    /// Enqueues sync jobs for one page of every entity of `kind`, keys after `after` in key
    /// order; returns the last key of the page and how many it held (`None`: no more).
    async fn enqueue_full_sync(
        &self,
        projection: ProjectionName,
        kind: EntityKind,
        after: Option<String>,
        max_attempts: i32,
    ) -> StoreResult<Option<SyncPage>>;
    /// Clears a finished sync job's backlog row.
    async fn finish_projection_batch(&self, batch: &str) -> StoreResult<()>;
    /// What a projection still has to receive.
    async fn projection_lag(&self, projection: ProjectionName) -> StoreResult<ProjectionLag>;
    /// The largest change sequence issued so far: it grows with every captured write, so two
    /// equal readings mean no master data or revisit changed in between.
    async fn change_version(&self) -> StoreResult<i64>;
    /// The current state of the entities of `kind` with these keys (a person's: its customers).
    async fn snapshots(&self, kind: EntityKind, keys: &[String]) -> StoreResult<Snapshots>;
}

/// What one page of change dispatch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dispatched {
    /// Change rows taken (and deleted).
    pub changes: u64,
    /// Sync jobs enqueued.
    pub jobs: u64,
}

/// What a projection still has to receive: changes not dispatched yet (every projection's) and
/// its sync jobs not finished, counted in entity keys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProjectionLag {
    pub undispatched: i64,
    pub in_jobs: i64,
    /// When the oldest of those changes was made.
    pub oldest: Option<DateTime<Utc>>,
}

impl ProjectionLag {
    pub fn total(&self) -> i64 {
        self.undispatched + self.in_jobs
    }
}
