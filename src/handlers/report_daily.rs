//! `report.daily`: the figures of one day, stored and logged as the text staff read, and written
//! as an HTML page with charts under `app.reports_dir`.

use std::path::PathBuf;

use anyhow::Context;
use chrono::{Duration, NaiveDate, Utc};
use revisit_jobs::ReportDaily;
use tracing::info;

use super::{Handler, JobCtx, JobError};
use crate::{analytics, app::App, report};

/// Builds, stores and writes the report of `date`; returns its text and the page's path.
pub async fn build(app: &App, date: NaiveDate) -> anyhow::Result<(String, PathBuf)> {
    let tz = app.settings.tz();
    let day = app.store.daily_report(date, tz).await?;
    let text = day.render();
    app.store.save_report(&day, &text).await?;
    let (dashboard, source) = analytics::dashboard(app.dashboard_sources(), None, date).await?;
    let dir = PathBuf::from(&app.settings.app.reports_dir);
    let path = tokio::task::spawn_blocking(move || report::write(&dir, &day, &dashboard, source))
        .await?
        .with_context(|| {
            format!(
                "writing the report page under {}",
                app.settings.app.reports_dir
            )
        })?;
    Ok((text, path))
}

impl Handler for ReportDaily {
    async fn run(&self, ctx: &JobCtx<'_>) -> Result<(), JobError> {
        let tz = ctx.app.settings.tz();
        let date = self
            .date
            .unwrap_or_else(|| Utc::now().with_timezone(&tz).date_naive() - Duration::days(1));
        let (text, path) = build(ctx.app, date).await.map_err(JobError::retry)?;
        info!(%date, page = %path.display(), report = %text, "daily report built");
        super::alert_send::enqueue(ctx.app, text).await;
        Ok(())
    }
}
