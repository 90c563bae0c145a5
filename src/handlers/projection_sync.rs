//! `projection.sync`: writes the current state of some entities of one kind to one projection,
//! then clears the job's backlog row. A projection that is down (or not configured in this
//! worker) makes the job retry; it never blocks the primary store.

use anyhow::anyhow;
use revisit_jobs::{EntityKind, ProjectionSync};
use tracing::debug;

use super::{Handler, JobCtx, JobError};
use crate::{
    domain::snapshot::{Snapshots, id_keys},
    store::{Repository, StoreResult},
};

impl Handler for ProjectionSync {
    async fn run(&self, ctx: &JobCtx<'_>) -> Result<(), JobError> {
        let app = ctx.app;
        let Some(projection) = app.projections.get(self.projection) else {
            // Another process enqueued it with a projection this one has no settings for: a
            // worker of the same deployment with that setting will run it.
            return Err(JobError::retry(anyhow!(
                "这个 worker 没有配置投影 {}",
                self.projection.as_str()
            )));
        };
        let started = std::time::Instant::now();
        let snapshots = if projection.wants_search_profiles() {
            search_profiles(app.store.as_ref(), self.kind, &self.keys).await?
        } else {
            app.store.snapshots(self.kind, &self.keys).await?
        };
        let read_ms = started.elapsed().as_millis() as u64;
        projection
            .apply(&snapshots, self.version)
            .await
            .map_err(|e| {
                JobError::retry(e.context(format!("writing to {}", self.projection.as_str())))
            })?;
        let write_ms = started.elapsed().as_millis() as u64 - read_ms;
        app.store.finish_projection_batch(&self.batch).await?;
        debug!(
            read_ms,
            write_ms,
            projection = self.projection.as_str(),
            kind = self.kind.as_str(),
            keys = self.keys.len(),
            written = snapshots.len(),
            version = self.version,
            "projection synced"
        );
        Ok(())
    }
}

/// The snapshots with customers as search profiles: a customer's own, a person's customers',
/// an order's customer's (its items changed what they bought).
async fn search_profiles(
    store: &dyn Repository,
    kind: EntityKind,
    keys: &[String],
) -> StoreResult<Snapshots> {
    let customers: Vec<i64> = match kind {
        EntityKind::Customer => id_keys(keys),
        EntityKind::Person | EntityKind::Order => match store.snapshots(kind, keys).await? {
            Snapshots::Customers(c) => c.iter().map(|c| c.id).collect(),
            Snapshots::Orders(o) => {
                let mut ids: Vec<i64> = o.iter().map(|o| o.customer_id).collect();
                ids.sort_unstable();
                ids.dedup();
                ids
            }
            other => return Ok(other),
        },
        _ => return store.snapshots(kind, keys).await,
    };
    Ok(Snapshots::SearchProfiles(
        store.search_profiles(&customers).await?,
    ))
}
