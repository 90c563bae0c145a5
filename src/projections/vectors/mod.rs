//! Vector search: the customers, projects and products of the primary store as vectors, for
//! "customers like this one" and a text search of the catalogue.
//!
//! One trait, [`VectorIndex`], with the embedded engine ([`edge::EdgeIndex`], `qdrant-edge`:
//! no server, a folder per collection) as the default. Every point's id is derived from its
//! entity's code ([`point_id`]), so writing an entity again replaces its point and never adds a
//! second one; every point carries its institution (none for the chain's catalogue), and a
//! customer search is always filtered by it.

pub mod documents;
pub mod edge;
pub mod embed;
pub mod search;
pub mod server;
mod sync;
pub mod traits;

use std::{collections::HashMap, sync::Arc, time::Duration};

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::config::VectorSettings;

/// Vector search as the application uses it: an index and the embedder that fills it.
#[derive(Clone)]
pub struct Vectors {
    pub index: Arc<dyn VectorIndex>,
    pub embedder: embed::Embedder,
    /// Where the vectors live, for `revisit check` and messages.
    pub location: String,
}

impl Vectors {
    /// The configured index: a Qdrant server when `vectors.url` is set, else the embedded
    /// engine in `vectors.dir`. Opens nothing yet.
    pub fn from_settings(s: &VectorSettings) -> anyhow::Result<Self> {
        let embedder = embed::Embedder::from_settings(s)?;
        let (index, location): (Arc<dyn VectorIndex>, String) = if s.url.is_empty() {
            let sharing = edge::Sharing {
                lock_wait: Duration::from_secs(s.lock_wait_secs),
                hold: Duration::from_secs(s.hold_secs),
            };
            (
                Arc::new(edge::EdgeIndex::with_sharing(&s.dir, s.dimension, sharing)),
                format!("内嵌引擎，目录 {}", s.dir),
            )
        } else {
            (
                Arc::new(server::QdrantIndex::new(s)?),
                format!("Qdrant 服务器 {}", s.url),
            )
        };
        Ok(Self {
            index,
            embedder,
            location,
        })
    }
}

/// The three collections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Collection {
    Customers,
    Projects,
    Products,
}

impl Collection {
    pub const ALL: [Collection; 3] = [Self::Customers, Self::Projects, Self::Products];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customers => "customers",
            Self::Projects => "projects",
            Self::Products => "products",
        }
    }
}

/// The point id of the entity of `collection` with this code: the first 8 bytes of
/// SHA-256(`<collection>:<code>`), the same on every run and every machine.
pub fn point_id(collection: Collection, code: &str) -> u64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{}:{code}", collection.as_str()).as_bytes());
    u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// A sparse vector: the dimensions it has, ascending, and their values.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Sparse {
    pub indices: Vec<u32>,
    pub values: Vec<f32>,
}

/// What a search looks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    /// The points nearest this dense vector (cosine).
    Dense(Vec<f32>),
    /// The points whose structured traits ([`traits`]) score highest against these: the sum over
    /// shared dimensions of the two values times the dimension's inverse document frequency.
    Traits(Sparse),
    /// Both, each ranked apart, fused by reciprocal rank with the traits weighing
    /// [`TRAITS_WEIGHT`] times the text: `Σ weight / (RRF_K + rank)`.
    Hybrid { dense: Vec<f32>, traits: Sparse },
}

impl From<Vec<f32>> for Query {
    fn from(v: Vec<f32>) -> Self {
        Self::Dense(v)
    }
}

/// How much more the structured traits weigh than the text in a [`Query::Hybrid`].
pub const TRAITS_WEIGHT: f32 = 3.0;
/// The `k` of reciprocal rank fusion.
pub const RRF_K: usize = 60;
/// How many points each part of a [`Query::Hybrid`] ranks before they are fused.
pub fn hybrid_depth(limit: usize) -> usize {
    (limit * 4).clamp(40, 400)
}

/// One entity as a vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub id: u64,
    pub vector: Vec<f32>,
    /// Its structured traits (customers only).
    pub sparse: Option<Sparse>,
    /// Its institution; none for the chain's catalogue (projects, products).
    pub institution_id: Option<i64>,
    /// What a search shows of it (codes, names of projects; never a person's name or phone).
    pub payload: Map<String, Value>,
}

/// A point found by a search.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub id: u64,
    /// Cosine similarity, 1 the same direction.
    pub score: f32,
    pub payload: Map<String, Value>,
}

/// How many customers have structured traits, and how many of them have each trait asked about
/// (in the order asked): what the index weighs a trait's rarity by.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TraitCounts {
    pub customers: u64,
    pub each: Vec<u64>,
}

/// The payload key of a point's institution.
pub const INSTITUTION_KEY: &str = "institution_id";
/// The payload key of the change sequence a point was written with: a sync job older than
/// the point leaves it alone.
pub const VERSION_KEY: &str = "version";

#[async_trait]
pub trait VectorIndex: Send + Sync {
    /// Creates what is missing; idempotent.
    async fn init(&self) -> anyhow::Result<()>;
    /// Writes points, each replacing the point of the same id.
    async fn upsert(&self, collection: Collection, points: Vec<Point>) -> anyhow::Result<()>;
    async fn delete(&self, collection: Collection, ids: Vec<u64>) -> anyhow::Result<()>;
    /// The `limit` points that best answer `query`, only of `institution` when given, best
    /// first.
    async fn search(
        &self,
        collection: Collection,
        query: Query,
        institution: Option<i64>,
        limit: usize,
    ) -> anyhow::Result<Vec<Hit>>;
    /// The counts of these trait keys among the customers.
    async fn trait_counts(&self, keys: &[String]) -> anyhow::Result<TraitCounts>;
    /// The customers of `institution` that best answer `query`, and the counts of `keys`: what
    /// `similar` asks, together (the embedded engine answers both in one call on its thread).
    async fn search_customers(
        &self,
        query: Query,
        institution: i64,
        limit: usize,
        keys: &[String],
    ) -> anyhow::Result<(Vec<Hit>, TraitCounts)> {
        tokio::try_join!(
            self.search(Collection::Customers, query, Some(institution), limit),
            self.trait_counts(keys)
        )
    }
    /// The point of this id, with its vector.
    async fn get(&self, collection: Collection, id: u64) -> anyhow::Result<Option<Point>>;
    /// The [`VERSION_KEY`] of each of these points that exists.
    async fn versions(
        &self,
        collection: Collection,
        ids: &[u64],
    ) -> anyhow::Result<HashMap<u64, i64>>;
    /// Builds search indexes for what was written; a server does this by itself.
    async fn optimize(&self) -> anyhow::Result<()> {
        Ok(())
    }
    async fn count(&self, collection: Collection) -> anyhow::Result<usize>;
    /// Empties a collection.
    async fn reset(&self, collection: Collection) -> anyhow::Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn point_ids_follow_the_entity_not_the_run() {
        let a = point_id(Collection::Customers, "BJ-HA-001-C0001");
        assert_eq!(a, point_id(Collection::Customers, "BJ-HA-001-C0001"));
        assert_ne!(a, point_id(Collection::Customers, "BJ-HA-001-C0002"));
        assert_ne!(a, point_id(Collection::Projects, "BJ-HA-001-C0001"));
    }
}
