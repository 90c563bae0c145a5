//! `report.daily`: the figures of one day, stored and logged as the text staff read.

use chrono::{Duration, Utc};
use revisit_jobs::ReportDaily;
use tracing::info;

use super::{Handler, JobCtx, JobError};
use crate::db::reports;

impl Handler for ReportDaily {
    async fn run(&self, ctx: &JobCtx<'_>) -> Result<(), JobError> {
        let tz = ctx.app.settings.tz();
        let date = self
            .date
            .unwrap_or_else(|| Utc::now().with_timezone(&tz).date_naive() - Duration::days(1));
        let report = reports::build(&ctx.app.pool, date, tz).await?;
        let text = reports::render(&report);
        reports::save(&ctx.app.pool, &report, &text).await?;
        info!(%date, report = %text, "daily report built");
        Ok(())
    }
}
