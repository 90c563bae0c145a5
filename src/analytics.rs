//! The dashboard, from ClickHouse when it is configured and from the primary store otherwise
//! (the embedded default has no ClickHouse). The figures are the same either way: both sources
//! answer the same grouped questions and [`crate::domain::dashboard::build`] does the rest.

use chrono::NaiveDate;
use serde::Serialize;
use tracing::warn;

use crate::{
    app::App,
    domain::dashboard::{self, Dashboard, DashboardFacts, Window},
};

/// Where the figures came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Clickhouse,
    PrimaryStore,
    /// ClickHouse is configured but did not answer.
    PrimaryStoreFallback,
}

impl Source {
    pub fn label(self) -> &'static str {
        match self {
            Self::Clickhouse => "ClickHouse",
            Self::PrimaryStore => "主库",
            Self::PrimaryStoreFallback => "主库（ClickHouse 暂不可用）",
        }
    }
}

/// The facts for `window` from the best source available.
pub async fn facts(app: &App, window: &Window) -> anyhow::Result<(DashboardFacts, Source)> {
    if let Some(ch) = &app.projections.clickhouse {
        match ch.dashboard_facts(window).await {
            Ok(f) => return Ok((f, Source::Clickhouse)),
            Err(e) => {
                warn!(error = %format!("{e:#}"), "ClickHouse did not answer; the dashboard comes from the primary store")
            }
        }
        return Ok((
            app.store.dashboard_facts(window).await?,
            Source::PrimaryStoreFallback,
        ));
    }
    Ok((
        app.store.dashboard_facts(window).await?,
        Source::PrimaryStore,
    ))
}

/// The dashboard of one institution (by code) or of the chain, as of `as_of`.
pub async fn dashboard(
    app: &App,
    institution: Option<&str>,
    as_of: NaiveDate,
) -> anyhow::Result<(Dashboard, Source)> {
    let window = Window::new(as_of);
    let (facts, source) = facts(app, &window).await?;
    let d = dashboard::build(&facts, &window, institution).map_err(anyhow::Error::msg)?;
    Ok((d, source))
}
