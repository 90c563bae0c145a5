//! The dashboard, from ClickHouse when it is configured and from the primary store otherwise
//! (the embedded default has no ClickHouse). The figures are the same either way: both sources
//! answer the same grouped questions and [`crate::domain::dashboard::build`] does the rest.
//!
//! A long-running process (the API) keeps the last facts it computed, with what they were
//! computed from: the date, the change log's version and (for ClickHouse) the projection's lag.
//! While none of that has moved the facts cannot have changed, so they are served again without
//! asking the source; a captured write, a finished sync job or a new day makes the next request
//! ask again. One PostgreSQL corner is covered by age alone: a write whose transaction was still
//! open when the facts were read has already drawn its sequence number, so it is not seen as
//! new when it commits; such facts are dropped after [`MEMO_TTL`].

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use chrono::NaiveDate;
use revisit_jobs::ProjectionName;
use serde::Serialize;
use tracing::warn;

use crate::{
    domain::dashboard::{self, Dashboard, DashboardFacts, Window},
    projections::clickhouse::ClickhouseStore,
    store::Repository,
};

/// How long remembered facts are trusted at most, whatever the versions say.
pub const MEMO_TTL: Duration = Duration::from_secs(60);

/// Where the dashboard's figures are read: the primary store, ClickHouse when configured, and
/// the last facts a long-running process computed.
#[derive(Clone, Copy)]
pub struct Sources<'a> {
    pub store: &'a dyn Repository,
    pub clickhouse: Option<&'a ClickhouseStore>,
    pub memo: &'a Mutex<Option<Memo>>,
}

/// Facts already computed, and what they were computed from.
#[derive(Clone)]
pub struct Memo {
    key: MemoKey,
    at: Instant,
    facts: Arc<DashboardFacts>,
    source: Source,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct MemoKey {
    as_of: NaiveDate,
    change_version: i64,
    /// ClickHouse's lag (its content changes only when a sync job finishes and the lag drops).
    projection_lag: Option<i64>,
}

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

/// The facts for `window`: remembered ones when nothing they depend on has changed, otherwise
/// from the best source available (and remembered when that was not a fallback).
pub async fn facts(
    app: Sources<'_>,
    window: &Window,
) -> anyhow::Result<(Arc<DashboardFacts>, Source)> {
    let key = MemoKey {
        as_of: window.as_of,
        change_version: app.store.change_version().await?,
        projection_lag: match app.clickhouse {
            Some(_) => Some(
                app.store
                    .projection_lag(ProjectionName::Clickhouse)
                    .await?
                    .total(),
            ),
            None => None,
        },
    };
    if let Some(m) = app.memo.lock().expect("memo lock").as_ref()
        && m.key == key
        && m.at.elapsed() < MEMO_TTL
    {
        return Ok((m.facts.clone(), m.source));
    }
    let (facts, source) = fresh_facts(app, window).await?;
    let facts = Arc::new(facts);
    if source != Source::PrimaryStoreFallback {
        *app.memo.lock().expect("memo lock") = Some(Memo {
            key,
            at: Instant::now(),
            facts: facts.clone(),
            source,
        });
    }
    Ok((facts, source))
}

/// The facts for `window`, asked of the best source available now.
pub async fn fresh_facts(
    app: Sources<'_>,
    window: &Window,
) -> anyhow::Result<(DashboardFacts, Source)> {
    if let Some(ch) = app.clickhouse {
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
    app: Sources<'_>,
    institution: Option<&str>,
    as_of: NaiveDate,
) -> anyhow::Result<(Dashboard, Source)> {
    let window = Window::new(as_of);
    let (facts, source) = facts(app, &window).await?;
    let d = dashboard::build(&facts, &window, institution).map_err(anyhow::Error::msg)?;
    Ok((d, source))
}
