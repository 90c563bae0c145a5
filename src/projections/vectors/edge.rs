//! The embedded vector engine: `qdrant-edge` (0.7), in this process, an Edge Shard per
//! collection in `<dir>/<collection>/`. Its calls block (disk, locks, search), so each runs on
//! tokio's blocking pool, never on the async runtime. The engine locks a shard's folder (an
//! exclusive `flock` on its WAL directory): one opener at a time, a second one is refused.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use async_trait::async_trait;
use qdrant_edge::{
    Condition, CountRequest, CreateIndex, CreateVectorName, DEFAULT_VECTOR_NAME, Distance,
    EdgeConfigBuilder, EdgeShard, EdgeSparseVectorParamsBuilder, EdgeVectorParamsBuilder,
    FieldCondition, FieldIndexOperations, Filter, Fusion, JsonPath, Match, Modifier, NamedQuery,
    Payload, PayloadFieldSchema, PayloadSchemaType, PointId, PointInsertOperations,
    PointOperations, PointStructPersisted, Prefetch, QueryEnum, QueryRequest, ScoringQuery,
    SparseVector, UpdateOperation, ValueVariants, VectorInternal, VectorNameConfig,
    VectorNameOperations, VectorPersisted, VectorStructInternal, VectorStructPersisted,
    WithPayloadInterface, WithVector, external::ordered_float::OrderedFloat,
};
use serde_json::{Map, Value};
use tokio::sync::Mutex;

use super::{
    Collection, Hit, INSTITUTION_KEY, Point, Query, RRF_K, Sparse, TRAITS_WEIGHT, TraitCounts,
    VERSION_KEY, VectorIndex, hybrid_depth,
    traits::{SPARSE_NAME, TRAITS_KEY},
};

/// How the embedded engine shares its folder with other processes.
#[derive(Debug, Clone, Copy)]
pub struct Sharing {
    /// How long to wait for a folder another process holds before giving up.
    pub lock_wait: Duration,
    /// A collection not used for this long is optimised (its search index built) and closed,
    /// so that another process (the CLI, the API, another worker) can open it.
    pub hold: Duration,
}

impl Default for Sharing {
    fn default() -> Self {
        Self {
            lock_wait: Duration::from_secs(30),
            hold: Duration::from_secs(3),
        }
    }
}

/// An open shard, and the lock its writes take.
///
/// qdrant-edge 0.7 does not replay its write-ahead log when it loads a shard: a write is on
/// disk only once the shard is flushed. So every write flushes before it returns (a sync job
/// is finished only when its points would survive the process being killed), and writes,
/// flushes and optimisations take turns (the engine's flush panics when another holds its
/// locks). Searches run beside them.
struct Shard {
    engine: EdgeShard,
    writes: std::sync::Mutex<()>,
}

impl std::ops::Deref for Shard {
    type Target = EdgeShard;

    fn deref(&self) -> &EdgeShard {
        &self.engine
    }
}

impl Shard {
    fn new(engine: EdgeShard) -> Self {
        Self {
            engine,
            writes: std::sync::Mutex::new(()),
        }
    }

    /// Applies `operation` and flushes it to disk.
    fn write(&self, operation: UpdateOperation, what: &str) -> anyhow::Result<()> {
        let _turn = self.writes.lock().unwrap_or_else(|p| p.into_inner());
        self.engine
            .update(operation)
            .map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
        flush(&self.engine)
    }

    /// Builds the search index, then flushes.
    fn optimize(&self) -> anyhow::Result<()> {
        let _turn = self.writes.lock().unwrap_or_else(|p| p.into_inner());
        self.engine
            .optimize()
            .map_err(|e| anyhow::anyhow!("optimising: {e}"))?;
        flush(&self.engine)
    }
}

/// Flushes the engine's log and segments; its panics (a folder removed under it) become errors.
fn flush(engine: &EdgeShard) -> anyhow::Result<()> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| engine.flush()))
        .map_err(|_| anyhow::anyhow!("flushing the vector collection to disk failed"))
}

/// One collection's shard while open, and whether it was written since its last optimisation.
#[derive(Default)]
struct Slot {
    shard: Option<Arc<Shard>>,
    dirty: bool,
    last_used: Option<Instant>,
}

struct Inner {
    dir: PathBuf,
    dimension: usize,
    sharing: Sharing,
    slots: HashMap<Collection, Mutex<Slot>>,
    reaper: std::sync::Once,
}

impl Drop for Inner {
    /// The engine flushes a shard when it is dropped, and panics when it cannot (its folder was
    /// removed under it): that must not abort a process that is shutting down.
    fn drop(&mut self) {
        for slot in self.slots.values_mut() {
            if let Some(shard) = slot.get_mut().shard.take() {
                let dropped =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(shard)));
                if dropped.is_err() {
                    tracing::error!(dir = %self.dir.display(), "the vector engine could not flush a collection at close");
                }
            }
        }
    }
}

/// The embedded engine. Cheap to create: a collection's folder is opened on first use, and
/// closed again once idle for [`Sharing::hold`].
#[derive(Clone)]
pub struct EdgeIndex {
    inner: Arc<Inner>,
}

impl EdgeIndex {
    /// The collections under `dir`, of vectors of `dimension`.
    pub fn new(dir: impl Into<PathBuf>, dimension: usize) -> Self {
        Self::with_sharing(dir, dimension, Sharing::default())
    }

    pub fn with_sharing(dir: impl Into<PathBuf>, dimension: usize, sharing: Sharing) -> Self {
        Self {
            inner: Arc::new(Inner {
                dir: dir.into(),
                dimension,
                sharing,
                slots: Collection::ALL
                    .into_iter()
                    .map(|c| (c, Mutex::new(Slot::default())))
                    .collect(),
                reaper: std::sync::Once::new(),
            }),
        }
    }

    /// The open shard of `collection`, opened (or created) on first use; `write` marks it for
    /// optimisation before it is closed. Waits up to [`Sharing::lock_wait`] while another
    /// process holds the folder.
    async fn shard(&self, collection: Collection, write: bool) -> anyhow::Result<Arc<Shard>> {
        let inner = &self.inner;
        let mut slot = inner.slots[&collection].lock().await;
        slot.last_used = Some(Instant::now());
        slot.dirty |= write;
        if let Some(shard) = &slot.shard {
            return Ok(shard.clone());
        }
        let path = inner.dir.join(collection.as_str());
        let dimension = inner.dimension;
        let deadline = Instant::now() + inner.sharing.lock_wait;
        let shard = loop {
            let p = path.clone();
            match blocking(move || open(&p, dimension, collection)).await {
                Ok(shard) => break shard,
                Err(e) if held_elsewhere(&e) && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) if held_elsewhere(&e) => {
                    return Err(e.context(format!(
                        "the vector collection in {} is held by another process (a worker, \
                         `revisit serve`) and was not released within {} s",
                        path.display(),
                        inner.sharing.lock_wait.as_secs()
                    )));
                }
                Err(e) => return Err(e),
            }
        };
        let shard = Arc::new(Shard::new(shard));
        slot.shard = Some(shard.clone());
        slot.last_used = Some(Instant::now());
        drop(slot);
        self.start_reaper();
        Ok(shard)
    }

    /// Closes idle collections from now on, while this index lives.
    fn start_reaper(&self) {
        let weak = Arc::downgrade(&self.inner);
        self.inner.reaper.call_once(|| {
            let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                return;
            };
            runtime.spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(250));
                loop {
                    tick.tick().await;
                    let Some(inner) = weak.upgrade() else {
                        return;
                    };
                    for c in Collection::ALL {
                        close_if_idle(&inner, c).await;
                    }
                }
            });
        });
    }

    /// Builds the search index of every open collection written since its last optimisation.
    pub async fn optimize(&self) -> anyhow::Result<()> {
        for c in Collection::ALL {
            let mut slot = self.inner.slots[&c].lock().await;
            if let (Some(shard), true) = (slot.shard.clone(), slot.dirty) {
                blocking(move || shard.optimize()).await?;
                slot.dirty = false;
            }
        }
        Ok(())
    }
}

/// Optimises (when written) and closes `collection` if nothing used it for the hold time and
/// no call has it now.
async fn close_if_idle(inner: &Inner, collection: Collection) {
    let Ok(mut slot) = inner.slots[&collection].try_lock() else {
        return;
    };
    let idle = slot
        .last_used
        .is_some_and(|t| t.elapsed() >= inner.sharing.hold);
    let Some(shard) = slot.shard.take_if(|s| idle && Arc::strong_count(s) == 1) else {
        return;
    };
    let dirty = std::mem::take(&mut slot.dirty);
    // Dropping the shard flushes it and releases the folder's lock.
    let closed = blocking(move || {
        if dirty {
            shard.optimize()?;
        }
        drop(shard);
        Ok(())
    })
    .await;
    match closed {
        Ok(()) => tracing::debug!(
            collection = collection.as_str(),
            "vector collection closed while idle"
        ),
        Err(e) => tracing::warn!(
            collection = collection.as_str(),
            error = %format!("{e:#}"),
            "closing the vector collection"
        ),
    }
}

/// Whether opening failed because another process holds the folder's lock.
fn held_elsewhere(e: &anyhow::Error) -> bool {
    let text = format!("{e:#}").to_lowercase();
    text.contains("lock")
        || text.contains("would block")
        || text.contains("temporarily unavailable")
}

/// Opens the shard of `collection` in `path`, or creates it there with its institution index
/// (and, for customers, the sparse vector of their traits and an index of their keys).
fn open(path: &Path, dimension: usize, collection: Collection) -> anyhow::Result<EdgeShard> {
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
        let has_traits = shard.config().sparse_vectors.contains_key(SPARSE_NAME);
        if collection == Collection::Customers && !has_traits {
            add_traits(&shard)?;
            tracing::warn!(
                dir = %path.display(),
                "the customers' collection predates structured similarity: its traits were added; \
                 customers synced before have none until `revisit sync vectors --full`"
            );
        }
        return Ok(shard);
    }
    std::fs::create_dir_all(path).with_context(|| format!("creating {}", path.display()))?;
    let mut config = EdgeConfigBuilder::new().vector(
        DEFAULT_VECTOR_NAME,
        EdgeVectorParamsBuilder::new(dimension, Distance::Cosine).build(),
    );
    if collection == Collection::Customers {
        config = config.sparse_vector(
            SPARSE_NAME,
            EdgeSparseVectorParamsBuilder::new()
                .modifier(Modifier::Idf)
                .build(),
        );
    }
    let shard = EdgeShard::new(path, config.build())
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("creating the vector collection in {}", path.display()))?;
    index_field(&shard, institution_key(), PayloadSchemaType::Integer)?;
    if collection == Collection::Customers {
        index_field(&shard, traits_key(), PayloadSchemaType::Keyword)?;
    }
    flush(&shard)?;
    Ok(shard)
}

/// Adds the traits' sparse vector and key index to a customers' shard made before them.
fn add_traits(shard: &EdgeShard) -> anyhow::Result<()> {
    // The engine does not export the sparse variant's wrapper: it is built from its JSON form.
    let config: VectorNameConfig =
        serde_json::from_value(serde_json::json!({"sparse": {"modifier": "idf"}}))
            .context("the traits' vector configuration")?;
    shard
        .update(UpdateOperation::VectorNameOperation(
            VectorNameOperations::CreateVectorName(CreateVectorName {
                vector_name: SPARSE_NAME.into(),
                config,
            }),
        ))
        .map_err(|e| anyhow::anyhow!("adding the traits' vector: {e}"))?;
    index_field(shard, traits_key(), PayloadSchemaType::Keyword)?;
    flush(shard)
}

fn index_field(shard: &EdgeShard, field: JsonPath, kind: PayloadSchemaType) -> anyhow::Result<()> {
    shard
        .update(UpdateOperation::FieldIndexOperation(
            FieldIndexOperations::CreateIndex(CreateIndex {
                field_name: field.clone(),
                field_schema: Some(PayloadFieldSchema::FieldType(kind)),
            }),
        ))
        .map_err(|e| anyhow::anyhow!("indexing {field}: {e}"))
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

fn traits_key() -> JsonPath {
    TRAITS_KEY.parse().expect("a plain key is a valid path")
}

fn version_key() -> JsonPath {
    VERSION_KEY.parse().expect("a plain key is a valid path")
}

fn institution_filter(institution: i64) -> Filter {
    Filter::new_must(Condition::Field(FieldCondition::new_match(
        institution_key(),
        Match::new_value(ValueVariants::Integer(institution)),
    )))
}

fn sparse_vector(s: Sparse) -> SparseVector {
    SparseVector {
        indices: s.indices,
        values: s.values,
    }
}

/// A nearest-neighbour search of one vector of the collection.
fn nearest(query: VectorInternal, using: Option<&str>) -> ScoringQuery {
    ScoringQuery::Vector(QueryEnum::Nearest(match using {
        Some(name) => NamedQuery::new(query, name),
        None => NamedQuery { query, using: None },
    }))
}

/// The engine's request for `query`: one search, or two fused by weighted reciprocal rank.
fn request(query: Query, filter: Option<Filter>, limit: usize) -> QueryRequest {
    let prefetch = |query: ScoringQuery| Prefetch {
        prefetches: Vec::new(),
        query: Some(query),
        limit: hybrid_depth(limit),
        params: None,
        filter: filter.clone(),
        score_threshold: None,
    };
    let (prefetches, query) = match query {
        Query::Dense(v) => (Vec::new(), nearest(VectorInternal::Dense(v), None)),
        Query::Traits(t) => (
            Vec::new(),
            nearest(VectorInternal::Sparse(sparse_vector(t)), Some(SPARSE_NAME)),
        ),
        Query::Hybrid { dense, traits } => (
            vec![
                prefetch(nearest(
                    VectorInternal::Sparse(sparse_vector(traits)),
                    Some(SPARSE_NAME),
                )),
                prefetch(nearest(VectorInternal::Dense(dense), None)),
            ],
            ScoringQuery::Fusion(Fusion::Rrf {
                k: RRF_K,
                weights: Some(vec![OrderedFloat(TRAITS_WEIGHT), OrderedFloat(1.0)]),
            }),
        ),
    };
    QueryRequest {
        prefetches,
        query: Some(query),
        filter,
        score_threshold: None,
        limit,
        offset: 0,
        params: None,
        with_vector: WithVector::Bool(false),
        with_payload: WithPayloadInterface::Bool(true),
    }
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

/// The points of `shard` that best answer `query` (on the engine's thread).
fn search(
    shard: &EdgeShard,
    query: Query,
    institution: Option<i64>,
    limit: usize,
) -> anyhow::Result<Vec<Hit>> {
    let request = request(query, institution.map(institution_filter), limit);
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
}

/// The counts of trait keys among the customers of `shard` (on the engine's thread).
/// Estimated: for no filter or one indexed keyword, the engine's estimate is the size of the
/// point set or of the keyword's posting list, read without walking it.
fn trait_counts(shard: &EdgeShard, keys: Vec<String>) -> anyhow::Result<TraitCounts> {
    let count = |filter: Option<Filter>| {
        shard
            .count(CountRequest {
                filter,
                exact: false,
            })
            .map(|n| n as u64)
            .map_err(|e| anyhow::anyhow!("counting traits: {e}"))
    };
    let customers = count(None)?;
    let each = keys
        .into_iter()
        .map(|k| {
            count(Some(Filter::new_must(Condition::Field(
                FieldCondition::new_match(traits_key(), Match::new_value(ValueVariants::String(k))),
            ))))
        })
        .collect::<anyhow::Result<Vec<u64>>>()?;
    Ok(TraitCounts { customers, each })
}

#[async_trait]
impl VectorIndex for EdgeIndex {
    async fn init(&self) -> anyhow::Result<()> {
        for c in Collection::ALL {
            self.shard(c, false).await?;
        }
        Ok(())
    }

    async fn upsert(&self, collection: Collection, points: Vec<Point>) -> anyhow::Result<()> {
        if points.is_empty() {
            return Ok(());
        }
        let dimension = self.inner.dimension;
        for p in &points {
            anyhow::ensure!(
                p.vector.len() == dimension,
                "point {} has {} dimensions, the collection {dimension}",
                p.id,
                p.vector.len()
            );
        }
        let shard = self.shard(collection, true).await?;
        blocking(move || {
            let list = points
                .into_iter()
                .map(|p| {
                    let mut payload = p.payload;
                    if let Some(inst) = p.institution_id {
                        payload.insert(INSTITUTION_KEY.into(), Value::from(inst));
                    }
                    let vector = match p.sparse {
                        None => p.vector.into(),
                        Some(traits) => VectorStructPersisted::Named(HashMap::from([
                            (
                                DEFAULT_VECTOR_NAME.to_owned(),
                                VectorPersisted::Dense(p.vector),
                            ),
                            (
                                SPARSE_NAME.to_owned(),
                                VectorPersisted::Sparse(sparse_vector(traits)),
                            ),
                        ])),
                    };
                    PointStructPersisted {
                        id: PointId::NumId(p.id),
                        vector,
                        payload: Some(Payload(payload)),
                    }
                })
                .collect();
            shard.write(
                UpdateOperation::PointOperation(PointOperations::UpsertPoints(
                    PointInsertOperations::PointsList(list),
                )),
                "upserting points",
            )
        })
        .await
    }

    async fn delete(&self, collection: Collection, ids: Vec<u64>) -> anyhow::Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let shard = self.shard(collection, true).await?;
        blocking(move || {
            shard.write(
                UpdateOperation::PointOperation(PointOperations::DeletePoints {
                    ids: ids.into_iter().map(PointId::NumId).collect(),
                }),
                "deleting points",
            )
        })
        .await
    }

    async fn search(
        &self,
        collection: Collection,
        query: Query,
        institution: Option<i64>,
        limit: usize,
    ) -> anyhow::Result<Vec<Hit>> {
        let shard = self.shard(collection, false).await?;
        blocking(move || search(&shard, query, institution, limit)).await
    }

    async fn trait_counts(&self, keys: &[String]) -> anyhow::Result<TraitCounts> {
        let shard = self.shard(Collection::Customers, false).await?;
        let keys = keys.to_vec();
        blocking(move || trait_counts(&shard, keys)).await
    }

    async fn search_customers(
        &self,
        query: Query,
        institution: i64,
        limit: usize,
        keys: &[String],
    ) -> anyhow::Result<(Vec<Hit>, TraitCounts)> {
        let shard = self.shard(Collection::Customers, false).await?;
        let keys = keys.to_vec();
        blocking(move || {
            Ok((
                search(&shard, query, Some(institution), limit)?,
                trait_counts(&shard, keys)?,
            ))
        })
        .await
    }

    async fn get(&self, collection: Collection, id: u64) -> anyhow::Result<Option<Point>> {
        let shard = self.shard(collection, false).await?;
        blocking(move || {
            let found = shard
                .retrieve(
                    &[PointId::NumId(id)],
                    Some(WithPayloadInterface::Bool(true)),
                    Some(WithVector::Bool(true)),
                )
                .map_err(|e| anyhow::anyhow!("retrieving point {id}: {e}"))?;
            Ok(found.into_iter().next().map(|r| {
                let (vector, sparse) = match r.vector {
                    Some(VectorStructInternal::Single(v)) => (v, None),
                    Some(VectorStructInternal::Named(mut named)) => {
                        let dense = match named.remove(DEFAULT_VECTOR_NAME) {
                            Some(VectorInternal::Dense(v)) => v,
                            _ => Vec::new(),
                        };
                        let sparse = match named.remove(SPARSE_NAME) {
                            Some(VectorInternal::Sparse(s)) => Some(Sparse {
                                indices: s.indices,
                                values: s.values,
                            }),
                            _ => None,
                        };
                        (dense, sparse)
                    }
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
        })
        .await
    }

    async fn versions(
        &self,
        collection: Collection,
        ids: &[u64],
    ) -> anyhow::Result<HashMap<u64, i64>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let shard = self.shard(collection, false).await?;
        let ids: Vec<PointId> = ids.iter().copied().map(PointId::NumId).collect();
        blocking(move || {
            let found = shard
                .retrieve(
                    &ids,
                    Some(WithPayloadInterface::Fields(vec![version_key()])),
                    Some(WithVector::Bool(false)),
                )
                .map_err(|e| anyhow::anyhow!("retrieving versions: {e}"))?;
            Ok(found
                .into_iter()
                .filter_map(|r| {
                    let id = num_id(&r.id)?;
                    let v = r.payload?.0.get(VERSION_KEY)?.as_i64()?;
                    Some((id, v))
                })
                .collect())
        })
        .await
    }

    async fn optimize(&self) -> anyhow::Result<()> {
        EdgeIndex::optimize(self).await
    }

    async fn count(&self, collection: Collection) -> anyhow::Result<usize> {
        let shard = self.shard(collection, false).await?;
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
        let shard = self.shard(collection, true).await?;
        blocking(move || {
            shard.write(
                UpdateOperation::PointOperation(PointOperations::DeletePointsByFilter(
                    Filter::default(),
                )),
                "emptying the collection",
            )
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
            sparse: None,
            institution_id: Some(institution),
            payload,
        }
    }

    fn sharing(lock_wait_ms: u64, hold_ms: u64) -> Sharing {
        Sharing {
            lock_wait: Duration::from_millis(lock_wait_ms),
            hold: Duration::from_millis(hold_ms),
        }
    }

    #[tokio::test]
    async fn points_are_replaced_by_id_filtered_by_institution_and_kept_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let e = LexicalEmbedder::new(64);
        let index = EdgeIndex::with_sharing(dir.path(), 64, sharing(200, 60_000));
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
        // The engine locks its folder: a second opener (another worker process) waits, then is
        // refused, instead of writing beside the first.
        let second = EdgeIndex::with_sharing(dir.path(), 64, sharing(300, 60_000));
        let refused = second.count(Collection::Customers).await.unwrap_err();
        assert!(
            format!("{refused:#}").contains("held by another process"),
            "{refused:#}"
        );
        drop(second);
        let query = e.embed("水光针 补水");
        let all = index
            .search(Collection::Customers, query.clone().into(), None, 10)
            .await
            .unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].id, point_id(Collection::Customers, "B1"));
        let mine = index
            .search(Collection::Customers, query.into(), Some(1), 10)
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
        let again = EdgeIndex::with_sharing(dir.path(), 64, sharing(200, 300));
        assert_eq!(again.count(Collection::Customers).await.unwrap(), 2);
        assert_eq!(again.count(Collection::Projects).await.unwrap(), 0);
        again.reset(Collection::Customers).await.unwrap();
        assert_eq!(again.count(Collection::Customers).await.unwrap(), 0);
        // Idle for its hold time, it lets the folder go: another opener waiting for it gets it
        // while `again` still lives, and `again` waits its turn after that.
        let waiting = EdgeIndex::with_sharing(dir.path(), 64, sharing(5_000, 60_000));
        assert_eq!(waiting.count(Collection::Customers).await.unwrap(), 0);
        assert!(again.count(Collection::Customers).await.is_err());
        drop(waiting);
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

    /// A customers' folder written before structured similarity (a dense vector only) gains the
    /// traits vector and its key index when opened: new points carry traits and are found by
    /// them, and the old points are still there.
    #[tokio::test]
    async fn a_folder_from_before_the_traits_gains_them_when_opened() {
        use crate::projections::vectors::{Sparse, traits};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(Collection::Customers.as_str());
        std::fs::create_dir_all(&path).unwrap();
        let e = LexicalEmbedder::new(16);
        {
            let config = EdgeConfigBuilder::new()
                .vector(
                    DEFAULT_VECTOR_NAME,
                    EdgeVectorParamsBuilder::new(16, Distance::Cosine).build(),
                )
                .build();
            let old = EdgeShard::new(&path, config).unwrap();
            index_field(&old, institution_key(), PayloadSchemaType::Integer).unwrap();
            let p = customer("OLD", 1, "水光针", &e);
            old.update(UpdateOperation::PointOperation(
                PointOperations::UpsertPoints(PointInsertOperations::PointsList(vec![
                    PointStructPersisted {
                        id: PointId::NumId(p.id),
                        vector: p.vector.into(),
                        payload: Some(Payload(p.payload)),
                    },
                ])),
            ))
            .unwrap();
            flush(&old).unwrap();
        }
        let index = EdgeIndex::with_sharing(dir.path(), 16, sharing(200, 60_000));
        let mut new = customer("NEW", 1, "水光针", &e);
        new.payload
            .insert(TRAITS_KEY.into(), serde_json::json!(["p:P1"]));
        new.sparse = Some(Sparse {
            indices: vec![traits::dimension("p:P1")],
            values: vec![1.0],
        });
        index
            .upsert(Collection::Customers, vec![new.clone()])
            .await
            .unwrap();
        assert_eq!(index.count(Collection::Customers).await.unwrap(), 2);
        let found = index
            .search(
                Collection::Customers,
                Query::Traits(new.sparse.clone().unwrap()),
                Some(1),
                10,
            )
            .await
            .unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].id, new.id);
        assert_eq!(
            index
                .trait_counts(&["p:P1".into(), "p:P2".into()])
                .await
                .unwrap(),
            TraitCounts {
                customers: 2,
                each: vec![1, 0]
            }
        );
    }
}
