//! The relation graph as a projection: the sync jobs' snapshots become vertices and edges.

use async_trait::async_trait;
use revisit_jobs::ProjectionName;

use super::{Graph, facts};
use crate::{domain::snapshot::Snapshots, projections::Projection};

#[async_trait]
impl Projection for Graph {
    fn name(&self) -> ProjectionName {
        ProjectionName::Graph
    }

    async fn version(&self) -> anyhow::Result<String> {
        let size = self.store.size().await?;
        Ok(format!(
            "{} ({}), {} vertices, {} edges",
            self.store.describe(),
            self.store.version().await?,
            size.vertices,
            size.edges
        ))
    }

    async fn init(&self) -> anyhow::Result<()> {
        self.store.init().await
    }

    async fn reset(&self) -> anyhow::Result<()> {
        self.store.init().await?;
        self.store.reset().await
    }

    async fn apply(&self, snapshots: &Snapshots, version: i64) -> anyhow::Result<()> {
        let owned = facts::owned(snapshots);
        if owned.is_empty() {
            return Ok(());
        }
        self.store.write(&owned, version).await
    }
}
