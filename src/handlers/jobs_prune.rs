//! `jobs.prune`: the nightly clean-up of finished job rows, which otherwise pile up (and slow
//! the SQLite queue's fetch query as they do), and, after a longer retention, of dead job rows,
//! cron ticks, health-check rows, the rows of worker processes gone for good, and uploaded
//! files kept past `api.keep_uploads_days`.

use revisit_jobs::JobsPrune;
use tracing::info;

use super::{Handler, JobCtx, JobError};
use crate::config;

impl Handler for JobsPrune {
    async fn run(&self, ctx: &JobCtx<'_>) -> Result<(), JobError> {
        let days = self
            .older_than_days
            .unwrap_or(ctx.app.settings.worker.keep_done_days);
        let w = &ctx.app.settings.worker;
        let pruned = ctx
            .app
            .store
            .prune(config::days(days), config::days(w.keep_history_days))
            .await?;
        let api = &ctx.app.settings.api;
        let (dir, keep) = (api.uploads_dir.clone(), api.keep_uploads_days);
        let uploads = tokio::task::spawn_blocking(move || {
            crate::import::uploads::prune(&dir, keep, std::time::SystemTime::now())
        })
        .await
        .unwrap_or(0);
        // The queue page charts an hour; a day is kept to look back on a night's trouble.
        let activity = ctx
            .app
            .store
            .prune_activity(chrono::Utc::now() - chrono::Duration::days(1))
            .await?;
        info!(
            days,
            history_days = w.keep_history_days,
            ?pruned,
            uploads,
            activity,
            "old job rows, cron ticks, health checks and uploaded files pruned"
        );
        Ok(())
    }
}
