//! A Qdrant server through `qdrant-client` (gRPC), when `vectors.url` is set: the three
//! collections `revisit_customers`, `revisit_projects` and `revisit_products`, cosine distance,
//! an integer index on the institution. Every write waits until the server has applied it.
//!
//! Tested over real gRPC against a server in the tests that serves Qdrant's gRPC API with the
//! embedded engine behind it (`tests/integration/vectors.rs`); it has not run against a real
//! Qdrant server.

use std::{collections::HashMap, time::Duration};

use anyhow::Context;
use async_trait::async_trait;
use qdrant_client::{
    Payload, Qdrant,
    qdrant::{
        Condition, CountPointsBuilder, CreateCollectionBuilder, CreateFieldIndexCollectionBuilder,
        DeletePointsBuilder, Distance, FieldType, Filter, GetPointsBuilder, PointId, PointStruct,
        PointsIdsList, Query, QueryPointsBuilder, UpsertPointsBuilder, VectorParamsBuilder,
        point_id::PointIdOptions, vector_output, vectors_output,
    },
};
use serde_json::{Map, Value};
use tokio::sync::OnceCell;

use super::{Collection, Hit, INSTITUTION_KEY, Point, VERSION_KEY, VectorIndex};
use crate::config::VectorSettings;

pub struct QdrantIndex {
    client: Qdrant,
    dimension: usize,
    ready: OnceCell<()>,
}

/// The server-side name of a collection.
pub fn collection_name(c: Collection) -> String {
    format!("revisit_{}", c.as_str())
}

impl QdrantIndex {
    pub fn new(s: &VectorSettings) -> anyhow::Result<Self> {
        let key = s.api_key.expose();
        let client = Qdrant::from_url(&s.url)
            .api_key((!key.is_empty()).then(|| key.to_owned()))
            .timeout(Duration::from_secs(s.timeout_secs.max(1)))
            .connect_timeout(Duration::from_secs(s.timeout_secs.clamp(1, 10)))
            .skip_compatibility_check()
            .build()
            .with_context(|| format!("the Qdrant client for {}", s.url))?;
        Ok(Self {
            client,
            dimension: s.dimension,
            ready: OnceCell::new(),
        })
    }

    /// Creates the collections once per process (the first call that reaches the server).
    async fn ready(&self) -> anyhow::Result<()> {
        self.ready
            .get_or_try_init(|| async {
                for c in Collection::ALL {
                    self.create_if_missing(c).await?;
                }
                anyhow::Ok(())
            })
            .await?;
        Ok(())
    }

    async fn create_if_missing(&self, c: Collection) -> anyhow::Result<()> {
        let name = collection_name(c);
        if self.client.collection_exists(&name).await? {
            let info = self.client.collection_info(&name).await?;
            let size = info
                .result
                .and_then(|r| r.config)
                .and_then(|c| c.params)
                .and_then(|p| p.vectors_config)
                .and_then(|v| v.config)
                .and_then(|c| match c {
                    qdrant_client::qdrant::vectors_config::Config::Params(p) => Some(p.size),
                    qdrant_client::qdrant::vectors_config::Config::ParamsMap(_) => None,
                });
            anyhow::ensure!(
                size == Some(self.dimension as u64),
                "Qdrant collection {name} holds vectors of {size:?} dimensions, not {}: \
                 rebuild it (revisit sync vectors --full)",
                self.dimension
            );
            return Ok(());
        }
        self.client
            .create_collection(CreateCollectionBuilder::new(&name).vectors_config(
                VectorParamsBuilder::new(self.dimension as u64, Distance::Cosine),
            ))
            .await
            .with_context(|| format!("creating Qdrant collection {name}"))?;
        self.client
            .create_field_index(
                CreateFieldIndexCollectionBuilder::new(&name, INSTITUTION_KEY, FieldType::Integer)
                    .wait(true),
            )
            .await
            .with_context(|| format!("indexing {INSTITUTION_KEY} of {name}"))?;
        Ok(())
    }
}

fn num_id(id: Option<PointId>) -> Option<u64> {
    match id?.point_id_options? {
        PointIdOptions::Num(n) => Some(n),
        PointIdOptions::Uuid(_) => None,
    }
}

/// A payload from the server, without the institution key, and the institution.
fn split_payload(
    payload: HashMap<String, qdrant_client::qdrant::Value>,
) -> (Map<String, Value>, Option<i64>) {
    let mut map: Map<String, Value> = Payload::from(payload).into();
    let institution = map.remove(INSTITUTION_KEY).and_then(|v| v.as_i64());
    (map, institution)
}

#[async_trait]
impl VectorIndex for QdrantIndex {
    async fn init(&self) -> anyhow::Result<()> {
        self.ready().await
    }

    async fn upsert(&self, collection: Collection, points: Vec<Point>) -> anyhow::Result<()> {
        if points.is_empty() {
            return Ok(());
        }
        self.ready().await?;
        let points: Vec<PointStruct> = points
            .into_iter()
            .map(|p| {
                let mut payload = p.payload;
                if let Some(inst) = p.institution_id {
                    payload.insert(INSTITUTION_KEY.into(), Value::from(inst));
                }
                PointStruct::new(p.id, p.vector, Payload::from(payload))
            })
            .collect();
        self.client
            .upsert_points(UpsertPointsBuilder::new(collection_name(collection), points).wait(true))
            .await
            .context("upserting points")?;
        Ok(())
    }

    async fn delete(&self, collection: Collection, ids: Vec<u64>) -> anyhow::Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.ready().await?;
        self.client
            .delete_points(
                DeletePointsBuilder::new(collection_name(collection))
                    .points(PointsIdsList {
                        ids: ids.into_iter().map(PointId::from).collect(),
                    })
                    .wait(true),
            )
            .await
            .context("deleting points")?;
        Ok(())
    }

    async fn search(
        &self,
        collection: Collection,
        vector: Vec<f32>,
        institution: Option<i64>,
        limit: usize,
    ) -> anyhow::Result<Vec<Hit>> {
        self.ready().await?;
        let mut request = QueryPointsBuilder::new(collection_name(collection))
            .query(Query::new_nearest(vector))
            .limit(limit as u64)
            .with_payload(true);
        if let Some(inst) = institution {
            request = request.filter(Filter::must([Condition::matches(INSTITUTION_KEY, inst)]));
        }
        let found = self.client.query(request).await.context("searching")?;
        Ok(found
            .result
            .into_iter()
            .filter_map(|p| {
                let id = num_id(p.id)?;
                let (payload, _) = split_payload(p.payload);
                Some(Hit {
                    id,
                    score: p.score,
                    payload,
                })
            })
            .collect())
    }

    async fn get(&self, collection: Collection, id: u64) -> anyhow::Result<Option<Point>> {
        self.ready().await?;
        let found = self
            .client
            .get_points(
                GetPointsBuilder::new(collection_name(collection), vec![PointId::from(id)])
                    .with_payload(true)
                    .with_vectors(true),
            )
            .await
            .with_context(|| format!("retrieving point {id}"))?;
        Ok(found.result.into_iter().next().map(|r| {
            let vector = match r.vectors.and_then(|v| v.vectors_options) {
                Some(vectors_output::VectorsOptions::Vector(v)) => match v.into_vector() {
                    vector_output::Vector::Dense(d) => d.data,
                    _ => Vec::new(),
                },
                _ => Vec::new(),
            };
            let (payload, institution_id) = split_payload(r.payload);
            Point {
                id,
                vector,
                institution_id,
                payload,
            }
        }))
    }

    async fn versions(
        &self,
        collection: Collection,
        ids: &[u64],
    ) -> anyhow::Result<HashMap<u64, i64>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        self.ready().await?;
        let found = self
            .client
            .get_points(
                GetPointsBuilder::new(
                    collection_name(collection),
                    ids.iter().copied().map(PointId::from).collect::<Vec<_>>(),
                )
                .with_payload(true)
                .with_vectors(false),
            )
            .await
            .context("retrieving versions")?;
        Ok(found
            .result
            .into_iter()
            .filter_map(|r| {
                let id = num_id(r.id)?;
                let (payload, _) = split_payload(r.payload);
                Some((id, payload.get(VERSION_KEY)?.as_i64()?))
            })
            .collect())
    }

    async fn count(&self, collection: Collection) -> anyhow::Result<usize> {
        self.ready().await?;
        let found = self
            .client
            .count(CountPointsBuilder::new(collection_name(collection)).exact(true))
            .await
            .context("counting")?;
        Ok(found.result.map_or(0, |r| r.count as usize))
    }

    async fn reset(&self, collection: Collection) -> anyhow::Result<()> {
        self.ready().await?;
        self.client
            .delete_points(
                DeletePointsBuilder::new(collection_name(collection))
                    .points(Filter::default())
                    .wait(true),
            )
            .await
            .context("emptying the collection")?;
        Ok(())
    }
}
