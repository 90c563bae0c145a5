//! The projections: stores the primary store is copied into, each for what it does best
//! (ClickHouse for analytics, Qdrant or its embedded engine for vector search, NebulaGraph or
//! the primary store's own tables for the relation graph).
//!
//! The primary store records every change in the transaction that makes it (see the
//! `change_capture` migration); `projection.dispatch` turns changes into `projection.sync` jobs;
//! each job reads the current state of its entities and hands it to [`Projection::apply`] with
//! its version. The primary store never waits for a projection: one that is down only makes
//! its sync jobs retry.

pub mod clickhouse;
pub mod graph;
pub mod vectors;

use std::sync::Arc;

use async_trait::async_trait;
use revisit_jobs::ProjectionName;

use crate::{config::Settings, domain::snapshot::Snapshots, store::DbPool};

/// A store the primary store is projected into.
#[async_trait]
pub trait Projection: Send + Sync {
    fn name(&self) -> ProjectionName;
    /// Customers (and the customers of changed persons and orders) come as
    /// [`Snapshots::SearchProfiles`] instead of [`Snapshots::Customers`].
    fn wants_search_profiles(&self) -> bool {
        false
    }
    /// Server version, for `revisit check`.
    async fn version(&self) -> anyhow::Result<String>;
    /// Creates what is missing (database, tables); idempotent.
    async fn init(&self) -> anyhow::Result<()>;
    /// Drops everything and creates it empty, before a full rebuild.
    async fn reset(&self) -> anyhow::Result<()>;
    /// Writes the current state of some entities with `version`; idempotent, and a lower
    /// version never replaces a higher one.
    async fn apply(&self, snapshots: &Snapshots, version: i64) -> anyhow::Result<()>;
}

/// The projections the settings configure, and each by its own type (the dashboard queries
/// ClickHouse; `revisit similar` and `search` the vectors).
#[derive(Clone, Default)]
pub struct Projections {
    pub all: Vec<Arc<dyn Projection>>,
    pub clickhouse: Option<Arc<clickhouse::ClickhouseStore>>,
    pub vectors: Option<Arc<vectors::Vectors>>,
    pub graph: Option<Arc<graph::Graph>>,
}

impl Projections {
    /// `pool` is the primary store's: the embedded graph lives there.
    pub fn from_settings(settings: &Settings, pool: &DbPool) -> anyhow::Result<Self> {
        let mut out = Self::default();
        if settings.clickhouse.enabled() {
            let ch = Arc::new(clickhouse::ClickhouseStore::new(&settings.clickhouse));
            out.all.push(ch.clone());
            out.clickhouse = Some(ch);
        }
        if settings.vectors.enabled {
            let v = Arc::new(vectors::Vectors::from_settings(&settings.vectors)?);
            out.all.push(v.clone());
            out.vectors = Some(v);
        }
        if settings.graph.enabled {
            let g = Arc::new(graph::Graph::from_settings(&settings.graph, pool)?);
            out.all.push(g.clone());
            out.graph = Some(g);
        }
        Ok(out)
    }

    pub fn names(&self) -> Vec<ProjectionName> {
        self.all.iter().map(|p| p.name()).collect()
    }

    pub fn get(&self, name: ProjectionName) -> Option<&Arc<dyn Projection>> {
        self.all.iter().find(|p| p.name() == name)
    }
}
