//! `report.daily`: the figures of one day, stored and logged as the text staff read.

use chrono::{Duration, Utc};
use revisit_jobs::ReportDaily;
use tracing::info;

use super::{Handler, JobCtx, JobError};

impl Handler for ReportDaily {
    async fn run(&self, ctx: &JobCtx<'_>) -> Result<(), JobError> {
        let tz = ctx.app.settings.tz();
        let date = self
            .date
            .unwrap_or_else(|| Utc::now().with_timezone(&tz).date_naive() - Duration::days(1));
        let report = ctx.app.store.daily_report(date, tz).await?;
        let text = report.render();
        ctx.app.store.save_report(&report, &text).await?;
        info!(%date, report = %text, "daily report built");
        Ok(())
    }
}
