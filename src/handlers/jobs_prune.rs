//! `jobs.prune`: the nightly clean-up of finished job rows, which otherwise pile up (and slow
//! the SQLite queue's fetch query as they do).

use std::time::Duration;

use revisit_jobs::JobsPrune;
use tracing::info;

use super::{Handler, JobCtx, JobError};

impl Handler for JobsPrune {
    async fn run(&self, ctx: &JobCtx<'_>) -> Result<(), JobError> {
        let days = self
            .older_than_days
            .unwrap_or(ctx.app.settings.worker.keep_done_days);
        let age = Duration::from_secs(u64::from(days) * 86_400);
        let deleted = ctx.app.store.prune_done_jobs(age).await?;
        info!(days, deleted, "finished job rows pruned");
        Ok(())
    }
}
