//! A Qdrant server through `qdrant-client` (gRPC), when `vectors.url` is set: the three
//! collections `revisit_customers`, `revisit_projects` and `revisit_products`, cosine distance,
//! an integer index on the institution; the customers also have the sparse vector of their
//! traits (IDF modifier) and a keyword index of their keys. Every write waits until the server
//! has applied it.
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
        DeletePointsBuilder, Distance, FieldType, Filter, GetPointsBuilder, Modifier, NamedVectors,
        PointId, PointStruct, PointsIdsList, PrefetchQueryBuilder, Query as QdrantQuery,
        QueryPointsBuilder, RrfBuilder, SparseVectorParamsBuilder, SparseVectorsConfigBuilder,
        UpsertPointsBuilder, Vector, VectorInput, VectorParamsBuilder, point_id::PointIdOptions,
        vector_output, vectors_output,
    },
};
use serde_json::{Map, Value};
use tokio::sync::OnceCell;

use super::{
    Collection, Hit, INSTITUTION_KEY, Point, Query, RRF_K, Sparse, TRAITS_WEIGHT, TraitCounts,
    VERSION_KEY, VectorIndex, hybrid_depth,
    traits::{SPARSE_NAME, TRAITS_KEY},
};
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
            let params = info.result.and_then(|r| r.config).and_then(|c| c.params);
            let has_traits = params
                .as_ref()
                .and_then(|p| p.sparse_vectors_config.as_ref())
                .is_some_and(|s| s.map.contains_key(SPARSE_NAME));
            anyhow::ensure!(
                c != Collection::Customers || has_traits,
                "Qdrant collection {name} predates structured similarity (it has no sparse \
                 vector {SPARSE_NAME:?}): delete it on the server, then rebuild it \
                 (revisit sync vectors --full)"
            );
            let size = params
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
        let mut create = CreateCollectionBuilder::new(&name).vectors_config(
            VectorParamsBuilder::new(self.dimension as u64, Distance::Cosine),
        );
        let mut indexes = vec![(INSTITUTION_KEY, FieldType::Integer)];
        if c == Collection::Customers {
            let mut sparse = SparseVectorsConfigBuilder::default();
            sparse.add_named_vector_params(
                SPARSE_NAME,
                SparseVectorParamsBuilder::default().modifier(Modifier::Idf),
            );
            create = create.sparse_vectors_config(sparse);
            indexes.push((TRAITS_KEY, FieldType::Keyword));
        }
        self.client
            .create_collection(create)
            .await
            .with_context(|| format!("creating Qdrant collection {name}"))?;
        for (field, kind) in indexes {
            self.client
                .create_field_index(
                    CreateFieldIndexCollectionBuilder::new(&name, field, kind).wait(true),
                )
                .await
                .with_context(|| format!("indexing {field} of {name}"))?;
        }
        Ok(())
    }
}

fn sparse_input(s: Sparse) -> VectorInput {
    VectorInput::new_sparse(s.indices, s.values)
}

fn institution_filter(institution: Option<i64>) -> Option<Filter> {
    institution.map(|inst| Filter::must([Condition::matches(INSTITUTION_KEY, inst)]))
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
                match p.sparse {
                    None => PointStruct::new(p.id, p.vector, Payload::from(payload)),
                    Some(traits) => PointStruct::new(
                        p.id,
                        NamedVectors::default()
                            .add_vector("", Vector::new_dense(p.vector))
                            .add_vector(
                                SPARSE_NAME,
                                Vector::new_sparse(traits.indices, traits.values),
                            ),
                        Payload::from(payload),
                    ),
                }
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
        query: Query,
        institution: Option<i64>,
        limit: usize,
    ) -> anyhow::Result<Vec<Hit>> {
        self.ready().await?;
        let mut request = QueryPointsBuilder::new(collection_name(collection))
            .limit(limit as u64)
            .with_payload(true);
        let filter = institution_filter(institution);
        if let Some(f) = &filter {
            request = request.filter(f.clone());
        }
        request = match query {
            Query::Dense(v) => request.query(QdrantQuery::new_nearest(v)),
            Query::Traits(t) => request
                .query(QdrantQuery::new_nearest(sparse_input(t)))
                .using(SPARSE_NAME),
            Query::Hybrid { dense, traits } => {
                let part = |query: VectorInput, using: Option<&str>| {
                    let mut p = PrefetchQueryBuilder::default()
                        .query(QdrantQuery::new_nearest(query))
                        .limit(hybrid_depth(limit) as u64);
                    if let Some(name) = using {
                        p = p.using(name);
                    }
                    if let Some(f) = &filter {
                        p = p.filter(f.clone());
                    }
                    p
                };
                request
                    .add_prefetch(part(sparse_input(traits), Some(SPARSE_NAME)))
                    .add_prefetch(part(VectorInput::new_dense(dense), None))
                    .query(QdrantQuery::new_rrf(
                        RrfBuilder::with_k(RRF_K as u32).weights(vec![TRAITS_WEIGHT, 1.0]),
                    ))
            }
        };
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

    async fn trait_counts(&self, keys: &[String]) -> anyhow::Result<TraitCounts> {
        self.ready().await?;
        let name = collection_name(Collection::Customers);
        let count = |filter: Option<Filter>| {
            // Estimated from the keyword index, as the embedded engine does.
            let mut request = CountPointsBuilder::new(&name).exact(false);
            if let Some(f) = filter {
                request = request.filter(f);
            }
            async move {
                let found = self
                    .client
                    .count(request)
                    .await
                    .context("counting traits")?;
                anyhow::Ok(found.result.map_or(0, |r| r.count))
            }
        };
        let all = count(None).await?;
        let each = futures::future::try_join_all(keys.iter().map(|k| {
            count(Some(Filter::must([Condition::matches(
                TRAITS_KEY,
                k.clone(),
            )])))
        }))
        .await?;
        Ok(TraitCounts {
            customers: all,
            each,
        })
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
            let dense = |v: qdrant_client::qdrant::VectorOutput| match v.into_vector() {
                vector_output::Vector::Dense(d) => d.data,
                _ => Vec::new(),
            };
            let (vector, sparse) = match r.vectors.and_then(|v| v.vectors_options) {
                Some(vectors_output::VectorsOptions::Vector(v)) => (dense(v), None),
                Some(vectors_output::VectorsOptions::Vectors(mut named)) => (
                    named.vectors.remove("").map(dense).unwrap_or_default(),
                    named
                        .vectors
                        .remove(SPARSE_NAME)
                        .and_then(|v| match v.into_vector() {
                            vector_output::Vector::Sparse(s) => Some(Sparse {
                                indices: s.indices,
                                values: s.values,
                            }),
                            _ => None,
                        }),
                ),
                _ => (Vec::new(), None),
            };
            let (payload, institution_id) = split_payload(r.payload);
            Point {
                id,
                vector,
                sparse,
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
