//! The embedded vector engine: `qdrant-edge` (0.7), in this process, an Edge Shard per
//! collection in `<dir>/<collection>/`. Its calls block (disk, locks, search), so each runs on
//! tokio's blocking pool, never on the async runtime. The engine locks a shard's folder (an
//! exclusive `flock` on its WAL directory): one opener at a time, a second one is refused.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::Arc,
};

use anyhow::Context;
use async_trait::async_trait;
use qdrant_edge::{
    Condition, CountRequest, CreateIndex, DEFAULT_VECTOR_NAME, Distance, EdgeConfigBuilder,
    EdgeShard, EdgeVectorParamsBuilder, FieldCondition, FieldIndexOperations, Filter, JsonPath,
    Match, NamedQuery, Payload, PayloadFieldSchema, PayloadSchemaType, PointId,
    PointInsertOperations, PointOperations, PointStructPersisted, QueryEnum, QueryRequest,
    ScoringQuery, UpdateOperation, ValueVariants, VectorInternal, VectorStructInternal,
    WithPayloadInterface, WithVector,
};
use serde_json::{Map, Value};
use tokio::sync::Mutex;

use super::{Collection, Hit, INSTITUTION_KEY, Point, VectorIndex};

pub struct EdgeIndex {
    dir: PathBuf,
    dimension: usize,
    shards: Mutex<HashMap<Collection, Arc<EdgeShard>>>,
}

impl EdgeIndex {
    /// The collections under `dir`, of vectors of `dimension`.
    pub fn new(dir: impl Into<PathBuf>, dimension: usize) -> Self {
        Self {
            dir: dir.into(),
            dimension,
            shards: Mutex::new(HashMap::new()),
        }
    }

    /// The open shard of `collection`, opened (or created) on first use.
    async fn shard(&self, collection: Collection) -> anyhow::Result<Arc<EdgeShard>> {
        let mut shards = self.shards.lock().await;
        if let Some(shard) = shards.get(&collection) {
            return Ok(shard.clone());
        }
        let path = self.dir.join(collection.as_str());
        let dimension = self.dimension;
        let shard = blocking(move || open(&path, dimension)).await?;
        let shard = Arc::new(shard);
        shards.insert(collection, shard.clone());
        Ok(shard)
    }
}

/// Opens the shard in `path`, or creates it there with its institution index.
fn open(path: &Path, dimension: usize) -> anyhow::Result<EdgeShard> {
    let has_data = std::fs::read_dir(path).is_ok_and(|mut d| d.next().is_some());
    if has_data {
        let shard = EdgeShard::load(path, None)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("opening the vector collection in {}", path.display()))?;
        let stored = shard
            .config()
            .vectors
            .get(DEFAULT_VECTOR_NAME)
            .map(|v| v.size);
        anyhow::ensure!(
            stored == Some(dimension),
            "{} holds vectors of {stored:?} dimensions, not {dimension}: rebuild it (revisit sync --full)",
            path.display()
        );
        return Ok(shard);
    }
    std::fs::create_dir_all(path).with_context(|| format!("creating {}", path.display()))?;
    let config = EdgeConfigBuilder::new()
        .vector(
            DEFAULT_VECTOR_NAME,
            EdgeVectorParamsBuilder::new(dimension, Distance::Cosine).build(),
        )
        .build();
    let shard = EdgeShard::new(path, config)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("creating the vector collection in {}", path.display()))?;
    shard
        .update(UpdateOperation::FieldIndexOperation(
            FieldIndexOperations::CreateIndex(CreateIndex {
                field_name: institution_key(),
                field_schema: Some(PayloadFieldSchema::FieldType(PayloadSchemaType::Integer)),
            }),
        ))
        .map_err(|e| anyhow::anyhow!("indexing {INSTITUTION_KEY}: {e}"))?;
    Ok(shard)
}

/// Runs a blocking call of the engine on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .context("the vector engine's call panicked")?
}

fn institution_key() -> JsonPath {
    INSTITUTION_KEY
        .parse()
        .expect("a plain key is a valid path")
}

fn institution_filter(institution: i64) -> Filter {
    Filter::new_must(Condition::Field(FieldCondition::new_match(
        institution_key(),
        Match::new_value(ValueVariants::Integer(institution)),
    )))
}

fn num_id(id: &PointId) -> Option<u64> {
    match id {
        PointId::NumId(n) => Some(*n),
        PointId::Uuid(_) => None,
    }
}

/// A point's payload without the institution key, and the institution.
fn split_payload(payload: Option<Payload>) -> (Map<String, Value>, Option<i64>) {
    let mut map = payload.map(|p| p.0).unwrap_or_default();
    let institution = map.remove(INSTITUTION_KEY).and_then(|v| v.as_i64());
    (map, institution)
}

#[async_trait]
impl VectorIndex for EdgeIndex {
    async fn init(&self) -> anyhow::Result<()> {
        for c in Collection::ALL {
            self.shard(c).await?;
        }
        Ok(())
    }

    async fn upsert(&self, collection: Collection, points: Vec<Point>) -> anyhow::Result<()> {
        if points.is_empty() {
            return Ok(());
        }
        let dimension = self.dimension;
        for p in &points {
            anyhow::ensure!(
                p.vector.len() == dimension,
                "point {} has {} dimensions, the collection {dimension}",
                p.id,
                p.vector.len()
            );
        }
        let shard = self.shard(collection).await?;
        blocking(move || {
            let list = points
                .into_iter()
                .map(|p| {
                    let mut payload = p.payload;
                    if let Some(inst) = p.institution_id {
                        payload.insert(INSTITUTION_KEY.into(), Value::from(inst));
                    }
                    PointStructPersisted {
                        id: PointId::NumId(p.id),
                        vector: p.vector.into(),
                        payload: Some(Payload(payload)),
                    }
                })
                .collect();
            shard
                .update(UpdateOperation::PointOperation(
                    PointOperations::UpsertPoints(PointInsertOperations::PointsList(list)),
                ))
                .map_err(|e| anyhow::anyhow!("upserting points: {e}"))
        })
        .await
    }

    async fn delete(&self, collection: Collection, ids: Vec<u64>) -> anyhow::Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let shard = self.shard(collection).await?;
        blocking(move || {
            shard
                .update(UpdateOperation::PointOperation(
                    PointOperations::DeletePoints {
                        ids: ids.into_iter().map(PointId::NumId).collect(),
                    },
                ))
                .map_err(|e| anyhow::anyhow!("deleting points: {e}"))
        })
        .await
    }

    async fn search(
        &self,
        collection: Collection,
        vector: Vec<f32>,
        institution: Option<i64>,
        limit: usize,
    ) -> anyhow::Result<Vec<Hit>> {
        let shard = self.shard(collection).await?;
        blocking(move || {
            let request = QueryRequest {
                prefetches: Vec::new(),
                query: Some(ScoringQuery::Vector(QueryEnum::Nearest(
                    NamedQuery::default_dense(vector),
                ))),
                filter: institution.map(institution_filter),
                score_threshold: None,
                limit,
                offset: 0,
                params: None,
                with_vector: WithVector::Bool(false),
                with_payload: WithPayloadInterface::Bool(true),
            };
            let found = shard
                .query(request)
                .map_err(|e| anyhow::anyhow!("searching: {e}"))?;
            Ok(found
                .into_iter()
                .filter_map(|p| {
                    let id = num_id(&p.id)?;
                    let (payload, _) = split_payload(p.payload);
                    Some(Hit {
                        id,
                        score: p.score,
                        payload,
                    })
                })
                .collect())
        })
        .await
    }

    async fn get(&self, collection: Collection, id: u64) -> anyhow::Result<Option<Point>> {
        let shard = self.shard(collection).await?;
        blocking(move || {
            let found = shard
                .retrieve(
                    &[PointId::NumId(id)],
                    Some(WithPayloadInterface::Bool(true)),
                    Some(WithVector::Bool(true)),
                )
                .map_err(|e| anyhow::anyhow!("retrieving point {id}: {e}"))?;
            Ok(found.into_iter().next().map(|r| {
                let vector = match r.vector {
                    Some(VectorStructInternal::Single(v)) => v,
                    Some(VectorStructInternal::Named(mut named)) => {
                        match named.remove(DEFAULT_VECTOR_NAME) {
                            Some(VectorInternal::Dense(v)) => v,
                            _ => Vec::new(),
                        }
                    }
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
        })
        .await
    }

    async fn count(&self, collection: Collection) -> anyhow::Result<usize> {
        let shard = self.shard(collection).await?;
        blocking(move || {
            shard
                .count(CountRequest {
                    filter: None,
                    exact: true,
                })
                .map_err(|e| anyhow::anyhow!("counting: {e}"))
        })
        .await
    }

    async fn reset(&self, collection: Collection) -> anyhow::Result<()> {
        let shard = self.shard(collection).await?;
        blocking(move || {
            shard
                .update(UpdateOperation::PointOperation(
                    PointOperations::DeletePointsByFilter(Filter::default()),
                ))
                .map_err(|e| anyhow::anyhow!("emptying the collection: {e}"))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::projections::vectors::{embed::LexicalEmbedder, point_id};

    fn customer(code: &str, institution: i64, text: &str, e: &LexicalEmbedder) -> Point {
        let mut payload = Map::new();
        payload.insert("code".into(), Value::from(code));
        Point {
            id: point_id(Collection::Customers, code),
            vector: e.embed(text),
            institution_id: Some(institution),
            payload,
        }
    }

    #[tokio::test]
    async fn points_are_replaced_by_id_filtered_by_institution_and_kept_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let e = LexicalEmbedder::new(64);
        let index = EdgeIndex::new(dir.path(), 64);
        index.init().await.unwrap();
        let points = vec![
            customer("A1", 1, "水光针 补水 敏感肌", &e),
            customer("A2", 1, "肉毒素 瘦脸", &e),
            customer("B1", 2, "水光针 补水", &e),
        ];
        index
            .upsert(Collection::Customers, points.clone())
            .await
            .unwrap();
        // Written again (a retried sync job): replaced, not added.
        index.upsert(Collection::Customers, points).await.unwrap();
        assert_eq!(index.count(Collection::Customers).await.unwrap(), 3);
        // The engine locks its folder: a second opener (another worker process) is refused
        // instead of writing beside the first.
        let second = EdgeIndex::new(dir.path(), 64);
        assert!(second.count(Collection::Customers).await.is_err());
        drop(second);
        let query = e.embed("水光针 补水");
        let all = index
            .search(Collection::Customers, query.clone(), None, 10)
            .await
            .unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].id, point_id(Collection::Customers, "B1"));
        let mine = index
            .search(Collection::Customers, query, Some(1), 10)
            .await
            .unwrap();
        let codes: Vec<&str> = mine
            .iter()
            .map(|h| h.payload["code"].as_str().unwrap())
            .collect();
        assert_eq!(
            codes,
            vec!["A1", "A2"],
            "only institution 1's, nearest first"
        );
        assert!(!mine[0].payload.contains_key(INSTITUTION_KEY));
        let got = index
            .get(Collection::Customers, point_id(Collection::Customers, "A2"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.institution_id, Some(1));
        assert_eq!(got.vector.len(), 64);
        index
            .delete(
                Collection::Customers,
                vec![point_id(Collection::Customers, "A2")],
            )
            .await
            .unwrap();
        drop(index);

        // Opened again by a new process: the points are there.
        let again = EdgeIndex::new(dir.path(), 64);
        assert_eq!(again.count(Collection::Customers).await.unwrap(), 2);
        assert_eq!(again.count(Collection::Projects).await.unwrap(), 0);
        again.reset(Collection::Customers).await.unwrap();
        assert_eq!(again.count(Collection::Customers).await.unwrap(), 0);
        drop(again);
        let other_size = EdgeIndex::new(dir.path(), 32);
        let refused = other_size.count(Collection::Customers).await.unwrap_err();
        assert!(
            refused.to_string().contains("64 dimensions")
                || format!("{refused:#}").contains("Some(64)"),
            "{refused:#}"
        );
    }
}
