//! `projection.sync`: writes the current state of some entities of one kind to one projection,
//! then clears the job's backlog row. A projection that is down (or not configured in this
//! worker) makes the job retry; it never blocks the primary store.

use anyhow::anyhow;
use revisit_jobs::ProjectionSync;
use tracing::debug;

use super::{Handler, JobCtx, JobError};

impl Handler for ProjectionSync {
    async fn run(&self, ctx: &JobCtx<'_>) -> Result<(), JobError> {
        let app = ctx.app;
        let Some(projection) = app.projections.get(self.projection) else {
            // Another process enqueued it with a projection this one has no settings for: a
            // worker of the same deployment with that setting will run it.
            return Err(JobError::retry(anyhow!(
                "projection {} is not configured in this worker",
                self.projection.as_str()
            )));
        };
        let started = std::time::Instant::now();
        let snapshots = app.store.snapshots(self.kind, &self.keys).await?;
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
