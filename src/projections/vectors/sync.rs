//! Vector search as a projection: the sync jobs' snapshots become points.
//!
//! Customers come as [`SearchProfile`]s (the sync handler reads them for customers, persons and
//! orders alike, so a new order re-embeds its customer); a customer who opted out loses their
//! point. Each point carries the change sequence it was written with ([`VERSION_KEY`]), and a
//! job older than the point leaves it alone.

use anyhow::Context;
use async_trait::async_trait;
use revisit_jobs::ProjectionName;

use super::{
    Collection, Point, Vectors,
    documents::{self, Document},
    point_id,
};
use crate::{domain::snapshot::Snapshots, projections::Projection};

#[async_trait]
impl Projection for Vectors {
    fn name(&self) -> ProjectionName {
        ProjectionName::Vectors
    }

    fn wants_search_profiles(&self) -> bool {
        true
    }

    async fn version(&self) -> anyhow::Result<String> {
        let customers = self.index.count(Collection::Customers).await?;
        Ok(format!(
            "{}，客户 {} 个，向量：{}",
            self.location,
            customers,
            self.embedder.describe()
        ))
    }

    async fn init(&self) -> anyhow::Result<()> {
        self.index.init().await
    }

    async fn reset(&self) -> anyhow::Result<()> {
        self.index.init().await?;
        for c in Collection::ALL {
            self.index.reset(c).await?;
        }
        Ok(())
    }

    async fn apply(&self, snapshots: &Snapshots, version: i64) -> anyhow::Result<()> {
        let (collection, docs, gone): (Collection, Vec<Document>, Vec<u64>) = match snapshots {
            Snapshots::SearchProfiles(s) => {
                let (out, kept): (Vec<_>, Vec<_>) = s.iter().partition(|p| p.opted_out);
                (
                    Collection::Customers,
                    kept.iter()
                        .map(|p| documents::customer(p, version))
                        .collect(),
                    out.iter()
                        .map(|p| point_id(Collection::Customers, &p.code))
                        .collect(),
                )
            }
            Snapshots::Projects(s) => (
                Collection::Projects,
                s.iter().map(|p| documents::project(p, version)).collect(),
                Vec::new(),
            ),
            Snapshots::Products(s) => (
                Collection::Products,
                s.iter().map(|p| documents::product(p, version)).collect(),
                Vec::new(),
            ),
            // Not searched: nothing to write.
            _ => return Ok(()),
        };
        let ids: Vec<u64> = docs
            .iter()
            .map(|d| d.id)
            .chain(gone.iter().copied())
            .collect();
        let stored = self.index.versions(collection, &ids).await?;
        let newer = |id: &u64| stored.get(id).is_some_and(|v| *v > version);
        let docs: Vec<Document> = docs.into_iter().filter(|d| !newer(&d.id)).collect();
        let gone: Vec<u64> = gone.into_iter().filter(|id| !newer(id)).collect();
        self.index.delete(collection, gone).await?;
        if docs.is_empty() {
            return Ok(());
        }
        let texts: Vec<String> = docs.iter().map(|d| d.text.clone()).collect();
        let vectors = self
            .embedder
            .embed(&texts)
            .await
            .with_context(|| format!("embedding {} {}", texts.len(), collection.as_str()))?;
        let points = docs
            .into_iter()
            .zip(vectors)
            .map(|(d, vector)| Point {
                id: d.id,
                vector,
                sparse: d.sparse,
                institution_id: d.institution_id,
                payload: d.payload,
            })
            .collect();
        self.index.upsert(collection, points).await
    }
}
