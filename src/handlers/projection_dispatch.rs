//! `projection.dispatch`: turns every captured change into sync jobs, page by page, each page in
//! one transaction of the primary store (changes deleted, jobs and their backlog inserted).
//! Runs every minute from cron, and from `revisit sync`.

use revisit_jobs::{KindInfo, ProjectionDispatch, ProjectionSync};
use tracing::info;

use super::{Handler, JobCtx, JobError};

impl Handler for ProjectionDispatch {
    async fn run(&self, ctx: &JobCtx<'_>) -> Result<(), JobError> {
        let app = ctx.app;
        let projections = app.projections.names();
        let attempts = app
            .settings
            .policy(&KindInfo::of::<ProjectionSync>())
            .max_attempts as i32;
        let (mut changes, mut jobs) = (0, 0);
        loop {
            let page = app.store.dispatch_changes(&projections, attempts).await?;
            if page.changes == 0 {
                break;
            }
            changes += page.changes;
            jobs += page.jobs;
        }
        if changes > 0 {
            info!(
                changes,
                jobs,
                projections = ?projections,
                "changes dispatched to the projections"
            );
        }
        Ok(())
    }
}
