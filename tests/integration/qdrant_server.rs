//! A test Qdrant server: Qdrant's gRPC API (the service definitions `qdrant-client` carries)
//! served over real HTTP/2 on 127.0.0.1, with the embedded engine behind it. It answers the
//! calls the server adapter makes (collections: exists, create with the customers' sparse traits
//! vector (IDF), info; points: upsert of a dense or a dense and a sparse vector, delete by ids or
//! everything, get, count (all, or of one trait key), query nearest (dense, or sparse by name,
//! or both as two prefetches fused by weighted RRF) with an institution filter; field indexes;
//! health) and refuses every other call, or any other shape of these, as `unimplemented`: an
//! adapter that starts sending something new fails its test until this server learns it.

use std::{collections::HashMap, sync::Arc};

use qdrant_client::{
    Payload,
    qdrant::{
        self as q,
        collections_server::{Collections, CollectionsServer},
        points_server::{Points, PointsServer},
        qdrant_server::{Qdrant, QdrantServer},
    },
};
use revisit::projections::vectors::{
    Collection, INSTITUTION_KEY, Point, Query, RRF_K, Sparse, TRAITS_WEIGHT, VectorIndex,
    edge::EdgeIndex,
    hybrid_depth,
    traits::{SPARSE_NAME, TRAITS_KEY},
};
use serde_json::{Map, Value};
use tokio::sync::Mutex;
use tonic::{Request, Response, Status};

/// The server's state: the collections created, their dimension, and the engine.
pub struct TestQdrant {
    dir: tempfile::TempDir,
    state: Mutex<State>,
    /// Calls by method, for the test to look at.
    pub calls: std::sync::Mutex<Vec<String>>,
}

#[derive(Default)]
struct State {
    /// Each collection's dimension, and whether it has the sparse traits vector.
    collections: HashMap<String, (u64, bool)>,
    engine: Option<EdgeIndex>,
}

fn unimplemented(what: &str) -> Status {
    Status::unimplemented(format!("the test Qdrant server does not serve {what}"))
}

fn collection_of(name: &str) -> Result<Collection, Status> {
    Collection::ALL
        .into_iter()
        .find(|c| name == format!("revisit_{}", c.as_str()))
        .ok_or_else(|| Status::not_found(format!("collection {name} is not Revisit's")))
}

fn failed(e: anyhow::Error) -> Status {
    Status::internal(format!("{e:#}"))
}

fn num_id(id: Option<q::PointId>) -> Result<u64, Status> {
    match id.and_then(|i| i.point_id_options) {
        Some(q::point_id::PointIdOptions::Num(n)) => Ok(n),
        _ => Err(unimplemented("points without a numeric id")),
    }
}

fn to_json(payload: HashMap<String, q::Value>) -> Map<String, Value> {
    Payload::from(payload).into()
}

fn to_grpc(map: Map<String, Value>) -> HashMap<String, q::Value> {
    Payload::from(map).into()
}

#[allow(deprecated)]
fn dense_of(v: q::Vector) -> Result<Vec<f32>, Status> {
    match v.vector {
        Some(q::vector::Vector::Dense(d)) => Ok(d.data),
        None if v.indices.is_none() && v.vectors_count.is_none() => Ok(v.data),
        _ => Err(unimplemented("vectors other than one dense vector")),
    }
}

/// A point's vectors: one dense vector, or the unnamed dense vector and the sparse traits.
fn vectors_of(vectors: Option<q::Vectors>) -> Result<(Vec<f32>, Option<Sparse>), Status> {
    match vectors.and_then(|v| v.vectors_options) {
        Some(q::vectors::VectorsOptions::Vector(v)) => Ok((dense_of(v)?, None)),
        Some(q::vectors::VectorsOptions::Vectors(mut named)) if named.vectors.len() == 2 => {
            let dense = named
                .vectors
                .remove("")
                .ok_or_else(|| unimplemented("named vectors without the unnamed dense one"))?;
            let sparse = match named.vectors.remove(SPARSE_NAME).and_then(|v| v.vector) {
                Some(q::vector::Vector::Sparse(s)) => Sparse {
                    indices: s.indices,
                    values: s.values,
                },
                _ => return Err(unimplemented("named vectors other than the traits")),
            };
            Ok((dense_of(dense)?, Some(sparse)))
        }
        _ => Err(unimplemented("named vectors other than dense + traits")),
    }
}

/// A query's nearest-neighbour input, as the adapter sends it: dense, or sparse `using` the
/// traits.
fn nearest_of(query: Option<q::Query>, using: Option<&str>) -> Result<Query, Status> {
    let input = match query.and_then(|q| q.variant) {
        Some(q::query::Variant::Nearest(q::VectorInput { variant })) => variant,
        _ => return Err(unimplemented("queries other than the nearest")),
    };
    match (input, using) {
        (Some(q::vector_input::Variant::Dense(d)), None) => Ok(Query::Dense(d.data)),
        (Some(q::vector_input::Variant::Sparse(s)), Some(SPARSE_NAME)) => {
            Ok(Query::Traits(Sparse {
                indices: s.indices,
                values: s.values,
            }))
        }
        _ => Err(unimplemented(
            "queries other than a dense vector or the sparse traits by name",
        )),
    }
}

/// The institution of a filter that only matches `institution_id` to an integer.
fn institution_of(filter: Option<q::Filter>) -> Result<Option<i64>, Status> {
    let Some(f) = filter else {
        return Ok(None);
    };
    if !f.should.is_empty() || !f.must_not.is_empty() || f.min_should.is_some() || f.must.len() != 1
    {
        return Err(unimplemented("filters other than one institution"));
    }
    match f.must.into_iter().next().and_then(|c| c.condition_one_of) {
        Some(q::condition::ConditionOneOf::Field(fc)) if fc.key == INSTITUTION_KEY => {
            match fc.r#match.and_then(|m| m.match_value) {
                Some(q::r#match::MatchValue::Integer(i)) => Ok(Some(i)),
                _ => Err(unimplemented("an institution match other than an integer")),
            }
        }
        _ => Err(unimplemented("filters other than one institution")),
    }
}

/// The trait key of a filter that only matches the traits to one keyword.
fn trait_key_of(f: q::Filter) -> Result<String, Status> {
    if !f.should.is_empty() || !f.must_not.is_empty() || f.min_should.is_some() || f.must.len() != 1
    {
        return Err(unimplemented("filters other than one trait"));
    }
    match f.must.into_iter().next().and_then(|c| c.condition_one_of) {
        Some(q::condition::ConditionOneOf::Field(fc)) if fc.key == TRAITS_KEY => {
            match fc.r#match.and_then(|m| m.match_value) {
                Some(q::r#match::MatchValue::Keyword(k)) => Ok(k),
                _ => Err(unimplemented("a trait match other than a keyword")),
            }
        }
        _ => Err(unimplemented("filters other than one trait")),
    }
}

fn done() -> q::PointsOperationResponse {
    q::PointsOperationResponse {
        result: Some(q::UpdateResult {
            operation_id: Some(0),
            status: q::UpdateStatus::Completed as i32,
        }),
        time: 0.0,
        usage: None,
    }
}

impl TestQdrant {
    /// Starts the server on a free port of 127.0.0.1; returns it and its URL.
    pub async fn start() -> (Arc<Self>, String) {
        let server = Arc::new(Self {
            dir: tempfile::tempdir().unwrap(),
            state: Mutex::new(State::default()),
            calls: std::sync::Mutex::new(Vec::new()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let svc = Svc(server.clone());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(CollectionsServer::new(svc.clone()))
                .add_service(PointsServer::new(svc.clone()))
                .add_service(QdrantServer::new(svc))
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        (server, url)
    }

    fn note(&self, call: &str) {
        self.calls.lock().unwrap().push(call.to_owned());
    }

    /// The engine, once a collection was created; and `collection`'s, checked to exist.
    async fn engine(&self, name: &str) -> Result<(EdgeIndex, Collection), Status> {
        let c = collection_of(name)?;
        let state = self.state.lock().await;
        if !state.collections.contains_key(name) {
            return Err(Status::not_found(format!(
                "Collection `{name}` doesn't exist!"
            )));
        }
        Ok((
            state
                .engine
                .clone()
                .expect("created with the first collection"),
            c,
        ))
    }
}

#[derive(Clone)]
struct Svc(Arc<TestQdrant>);

#[tonic::async_trait]
impl Qdrant for Svc {
    async fn health_check(
        &self,
        _: Request<q::HealthCheckRequest>,
    ) -> Result<Response<q::HealthCheckReply>, Status> {
        self.0.note("health_check");
        Ok(Response::new(q::HealthCheckReply {
            title: "qdrant - vector search engine (test server, embedded engine)".into(),
            version: "1.16.0".into(),
            commit: None,
        }))
    }
}

#[tonic::async_trait]
impl Collections for Svc {
    async fn collection_exists(
        &self,
        request: Request<q::CollectionExistsRequest>,
    ) -> Result<Response<q::CollectionExistsResponse>, Status> {
        self.0.note("collection_exists");
        let name = request.into_inner().collection_name;
        let exists = self.0.state.lock().await.collections.contains_key(&name);
        Ok(Response::new(q::CollectionExistsResponse {
            result: Some(q::CollectionExists { exists }),
            time: 0.0,
        }))
    }

    async fn create(
        &self,
        request: Request<q::CreateCollection>,
    ) -> Result<Response<q::CollectionOperationResponse>, Status> {
        self.0.note("create_collection");
        let r = request.into_inner();
        collection_of(&r.collection_name)?;
        let params = match r.vectors_config.and_then(|v| v.config) {
            Some(q::vectors_config::Config::Params(p)) => p,
            _ => return Err(unimplemented("collections without one unnamed vector")),
        };
        if params.distance != q::Distance::Cosine as i32 {
            return Err(unimplemented("distances other than cosine"));
        }
        let traits = match r.sparse_vectors_config {
            None => false,
            Some(s)
                if s.map.len() == 1
                    && s.map.get(SPARSE_NAME).is_some_and(|p| {
                        p.modifier == Some(q::Modifier::Idf as i32) && p.index.is_none()
                    }) =>
            {
                true
            }
            Some(_) => return Err(unimplemented("sparse vectors other than the traits (IDF)")),
        };
        // The embedded engine gives the customers (and only them) the traits vector.
        if traits != (collection_of(&r.collection_name)? == Collection::Customers) {
            return Err(unimplemented(
                "the traits vector on a collection other than customers",
            ));
        }
        let mut state = self.0.state.lock().await;
        if state.collections.contains_key(&r.collection_name) {
            return Err(Status::already_exists(format!(
                "Collection `{}` already exists!",
                r.collection_name
            )));
        }
        if state.engine.is_none() {
            state.engine = Some(EdgeIndex::new(self.0.dir.path(), params.size as usize));
        }
        state
            .collections
            .insert(r.collection_name, (params.size, traits));
        Ok(Response::new(q::CollectionOperationResponse {
            result: true,
            time: 0.0,
        }))
    }

    async fn get(
        &self,
        request: Request<q::GetCollectionInfoRequest>,
    ) -> Result<Response<q::GetCollectionInfoResponse>, Status> {
        self.0.note("collection_info");
        let name = request.into_inner().collection_name;
        let Some((size, traits)) = self.0.state.lock().await.collections.get(&name).copied() else {
            return Err(Status::not_found(format!(
                "Collection `{name}` doesn't exist!"
            )));
        };
        Ok(Response::new(q::GetCollectionInfoResponse {
            result: Some(q::CollectionInfo {
                config: Some(q::CollectionConfig {
                    params: Some(q::CollectionParams {
                        vectors_config: Some(q::VectorsConfig {
                            config: Some(q::vectors_config::Config::Params(q::VectorParams {
                                size,
                                distance: q::Distance::Cosine as i32,
                                ..Default::default()
                            })),
                        }),
                        sparse_vectors_config: traits.then(|| q::SparseVectorConfig {
                            map: HashMap::from([(
                                SPARSE_NAME.to_owned(),
                                q::SparseVectorParams {
                                    index: None,
                                    modifier: Some(q::Modifier::Idf as i32),
                                },
                            )]),
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            time: 0.0,
        }))
    }

    async fn list(
        &self,
        _: Request<q::ListCollectionsRequest>,
    ) -> Result<Response<q::ListCollectionsResponse>, Status> {
        Err(unimplemented("Collections/list"))
    }
    async fn update(
        &self,
        _: Request<q::UpdateCollection>,
    ) -> Result<Response<q::CollectionOperationResponse>, Status> {
        Err(unimplemented("Collections/update"))
    }
    async fn delete(
        &self,
        _: Request<q::DeleteCollection>,
    ) -> Result<Response<q::CollectionOperationResponse>, Status> {
        Err(unimplemented("Collections/delete"))
    }
    async fn update_aliases(
        &self,
        _: Request<q::ChangeAliases>,
    ) -> Result<Response<q::CollectionOperationResponse>, Status> {
        Err(unimplemented("Collections/update_aliases"))
    }
    async fn list_collection_aliases(
        &self,
        _: Request<q::ListCollectionAliasesRequest>,
    ) -> Result<Response<q::ListAliasesResponse>, Status> {
        Err(unimplemented("Collections/list_collection_aliases"))
    }
    async fn list_aliases(
        &self,
        _: Request<q::ListAliasesRequest>,
    ) -> Result<Response<q::ListAliasesResponse>, Status> {
        Err(unimplemented("Collections/list_aliases"))
    }
    async fn collection_cluster_info(
        &self,
        _: Request<q::CollectionClusterInfoRequest>,
    ) -> Result<Response<q::CollectionClusterInfoResponse>, Status> {
        Err(unimplemented("Collections/collection_cluster_info"))
    }
    async fn update_collection_cluster_setup(
        &self,
        _: Request<q::UpdateCollectionClusterSetupRequest>,
    ) -> Result<Response<q::UpdateCollectionClusterSetupResponse>, Status> {
        Err(unimplemented("Collections/update_collection_cluster_setup"))
    }
    async fn create_shard_key(
        &self,
        _: Request<q::CreateShardKeyRequest>,
    ) -> Result<Response<q::CreateShardKeyResponse>, Status> {
        Err(unimplemented("Collections/create_shard_key"))
    }
    async fn delete_shard_key(
        &self,
        _: Request<q::DeleteShardKeyRequest>,
    ) -> Result<Response<q::DeleteShardKeyResponse>, Status> {
        Err(unimplemented("Collections/delete_shard_key"))
    }
    async fn list_shard_keys(
        &self,
        _: Request<q::ListShardKeysRequest>,
    ) -> Result<Response<q::ListShardKeysResponse>, Status> {
        Err(unimplemented("Collections/list_shard_keys"))
    }
}

#[tonic::async_trait]
impl Points for Svc {
    async fn upsert(
        &self,
        request: Request<q::UpsertPoints>,
    ) -> Result<Response<q::PointsOperationResponse>, Status> {
        self.0.note("upsert");
        let r = request.into_inner();
        if r.update_filter.is_some() || r.update_mode.is_some() {
            return Err(unimplemented("conditional upserts"));
        }
        let (engine, c) = self.0.engine(&r.collection_name).await?;
        let mut points = Vec::new();
        for p in r.points {
            let mut payload = to_json(p.payload);
            let institution_id = payload.remove(INSTITUTION_KEY).and_then(|v| v.as_i64());
            let (vector, sparse) = vectors_of(p.vectors)?;
            if sparse.is_some() != (c == Collection::Customers) {
                return Err(unimplemented(
                    "the traits vector on a collection other than customers",
                ));
            }
            points.push(Point {
                id: num_id(p.id)?,
                vector,
                sparse,
                institution_id,
                payload,
            });
        }
        engine.upsert(c, points).await.map_err(failed)?;
        Ok(Response::new(done()))
    }

    async fn delete(
        &self,
        request: Request<q::DeletePoints>,
    ) -> Result<Response<q::PointsOperationResponse>, Status> {
        self.0.note("delete");
        let r = request.into_inner();
        let (engine, c) = self.0.engine(&r.collection_name).await?;
        match r.points.and_then(|p| p.points_selector_one_of) {
            Some(q::points_selector::PointsSelectorOneOf::Points(list)) => {
                let ids = list
                    .ids
                    .into_iter()
                    .map(|i| num_id(Some(i)))
                    .collect::<Result<Vec<_>, _>>()?;
                engine.delete(c, ids).await.map_err(failed)?;
            }
            Some(q::points_selector::PointsSelectorOneOf::Filter(f))
                if f == q::Filter::default() =>
            {
                engine.reset(c).await.map_err(failed)?;
            }
            _ => return Err(unimplemented("deleting by a filter")),
        }
        Ok(Response::new(done()))
    }

    async fn get(
        &self,
        request: Request<q::GetPoints>,
    ) -> Result<Response<q::GetResponse>, Status> {
        self.0.note("get");
        let r = request.into_inner();
        let (engine, c) = self.0.engine(&r.collection_name).await?;
        let with_vectors = matches!(
            r.with_vectors.and_then(|w| w.selector_options),
            Some(q::with_vectors_selector::SelectorOptions::Enable(true))
        );
        let mut result = Vec::new();
        for id in r.ids {
            let id = num_id(Some(id))?;
            let Some(p) = engine.get(c, id).await.map_err(failed)? else {
                continue;
            };
            let mut payload = p.payload;
            if let Some(i) = p.institution_id {
                payload.insert(INSTITUTION_KEY.into(), i.into());
            }
            result.push(q::RetrievedPoint {
                id: Some(id.into()),
                payload: to_grpc(payload),
                vectors: with_vectors.then(|| {
                    let dense = q::VectorOutput {
                        vector: Some(q::vector_output::Vector::Dense(q::DenseVector {
                            data: p.vector,
                        })),
                        ..Default::default()
                    };
                    q::VectorsOutput {
                        vectors_options: Some(match p.sparse {
                            None => q::vectors_output::VectorsOptions::Vector(dense),
                            Some(s) => {
                                q::vectors_output::VectorsOptions::Vectors(q::NamedVectorsOutput {
                                    vectors: HashMap::from([
                                        (String::new(), dense),
                                        (
                                            SPARSE_NAME.to_owned(),
                                            q::VectorOutput {
                                                vector: Some(q::vector_output::Vector::Sparse(
                                                    q::SparseVector {
                                                        indices: s.indices,
                                                        values: s.values,
                                                    },
                                                )),
                                                ..Default::default()
                                            },
                                        ),
                                    ]),
                                })
                            }
                        }),
                    }
                }),
                ..Default::default()
            });
        }
        Ok(Response::new(q::GetResponse {
            result,
            time: 0.0,
            usage: None,
        }))
    }

    async fn create_field_index(
        &self,
        request: Request<q::CreateFieldIndexCollection>,
    ) -> Result<Response<q::PointsOperationResponse>, Status> {
        self.0.note("create_field_index");
        let r = request.into_inner();
        let (_, c) = self.0.engine(&r.collection_name).await?;
        let institution =
            r.field_name == INSTITUTION_KEY && r.field_type == Some(q::FieldType::Integer as i32);
        let traits = c == Collection::Customers
            && r.field_name == TRAITS_KEY
            && r.field_type == Some(q::FieldType::Keyword as i32);
        if !institution && !traits {
            return Err(unimplemented(
                "indexes other than the institution's and the customers' traits",
            ));
        }
        // The embedded engine makes both indexes when it creates a collection.
        Ok(Response::new(done()))
    }

    async fn count(
        &self,
        request: Request<q::CountPoints>,
    ) -> Result<Response<q::CountResponse>, Status> {
        self.0.note("count");
        let r = request.into_inner();
        let (engine, c) = self.0.engine(&r.collection_name).await?;
        let count = match r.filter {
            None => engine.count(c).await.map_err(failed)? as u64,
            Some(f) => {
                let key = trait_key_of(f)?;
                if c != Collection::Customers || r.exact != Some(false) {
                    return Err(unimplemented(
                        "exact trait counts, or of traits other than customers'",
                    ));
                }
                engine.trait_counts(&[key]).await.map_err(failed)?.each[0]
            }
        };
        Ok(Response::new(q::CountResponse {
            result: Some(q::CountResult { count }),
            time: 0.0,
            usage: None,
        }))
    }

    async fn query(
        &self,
        request: Request<q::QueryPoints>,
    ) -> Result<Response<q::QueryResponse>, Status> {
        self.0.note("query");
        let r = request.into_inner();
        if r.offset.is_some() {
            return Err(unimplemented("queries with offsets"));
        }
        let limit = r.limit.unwrap_or(10) as usize;
        let institution = institution_of(r.filter.clone())?;
        let query = if r.prefetch.is_empty() {
            nearest_of(r.query, r.using.as_deref())?
        } else {
            // The hybrid: the traits and the text, each ranked as deep, both with the query's
            // filter, fused by RRF with the adapter's k and weights.
            let rrf = match r.query.and_then(|q| q.variant) {
                Some(q::query::Variant::Rrf(rrf)) => rrf,
                _ => return Err(unimplemented("prefetches fused other than by RRF")),
            };
            if rrf.k != Some(RRF_K as u32)
                || rrf.weights != [TRAITS_WEIGHT, 1.0]
                || r.prefetch.len() != 2
                || r.using.is_some()
            {
                return Err(unimplemented("an RRF other than traits and text, 3:1"));
            }
            let mut parts = Vec::new();
            for p in r.prefetch {
                if !p.prefetch.is_empty()
                    || p.limit != Some(hybrid_depth(limit) as u64)
                    || p.filter != r.filter
                    || p.score_threshold.is_some()
                {
                    return Err(unimplemented("prefetches of another shape"));
                }
                parts.push(nearest_of(p.query, p.using.as_deref())?);
            }
            match (parts.remove(0), parts.remove(0)) {
                (Query::Traits(traits), Query::Dense(dense)) => Query::Hybrid { dense, traits },
                _ => return Err(unimplemented("prefetches other than traits, then text")),
            }
        };
        let (engine, c) = self.0.engine(&r.collection_name).await?;
        let hits = engine
            .search(c, query, institution, limit)
            .await
            .map_err(failed)?;
        let with_payload = r.with_payload.is_some();
        Ok(Response::new(q::QueryResponse {
            result: hits
                .into_iter()
                .map(|h| q::ScoredPoint {
                    id: Some(h.id.into()),
                    payload: if with_payload {
                        to_grpc(h.payload)
                    } else {
                        HashMap::new()
                    },
                    score: h.score,
                    version: 0,
                    ..Default::default()
                })
                .collect(),
            time: 0.0,
            usage: None,
        }))
    }

    async fn update_vectors(
        &self,
        _: Request<q::UpdatePointVectors>,
    ) -> Result<Response<q::PointsOperationResponse>, Status> {
        Err(unimplemented("Points/update_vectors"))
    }
    async fn delete_vectors(
        &self,
        _: Request<q::DeletePointVectors>,
    ) -> Result<Response<q::PointsOperationResponse>, Status> {
        Err(unimplemented("Points/delete_vectors"))
    }
    async fn set_payload(
        &self,
        _: Request<q::SetPayloadPoints>,
    ) -> Result<Response<q::PointsOperationResponse>, Status> {
        Err(unimplemented("Points/set_payload"))
    }
    async fn overwrite_payload(
        &self,
        _: Request<q::SetPayloadPoints>,
    ) -> Result<Response<q::PointsOperationResponse>, Status> {
        Err(unimplemented("Points/overwrite_payload"))
    }
    async fn delete_payload(
        &self,
        _: Request<q::DeletePayloadPoints>,
    ) -> Result<Response<q::PointsOperationResponse>, Status> {
        Err(unimplemented("Points/delete_payload"))
    }
    async fn clear_payload(
        &self,
        _: Request<q::ClearPayloadPoints>,
    ) -> Result<Response<q::PointsOperationResponse>, Status> {
        Err(unimplemented("Points/clear_payload"))
    }
    async fn delete_field_index(
        &self,
        _: Request<q::DeleteFieldIndexCollection>,
    ) -> Result<Response<q::PointsOperationResponse>, Status> {
        Err(unimplemented("Points/delete_field_index"))
    }
    async fn create_vector_name(
        &self,
        _: Request<q::CreateVectorNameRequest>,
    ) -> Result<Response<q::PointsOperationResponse>, Status> {
        Err(unimplemented("Points/create_vector_name"))
    }
    async fn delete_vector_name(
        &self,
        _: Request<q::DeleteVectorNameRequest>,
    ) -> Result<Response<q::PointsOperationResponse>, Status> {
        Err(unimplemented("Points/delete_vector_name"))
    }
    async fn search(
        &self,
        _: Request<q::SearchPoints>,
    ) -> Result<Response<q::SearchResponse>, Status> {
        Err(unimplemented("Points/search"))
    }
    async fn search_batch(
        &self,
        _: Request<q::SearchBatchPoints>,
    ) -> Result<Response<q::SearchBatchResponse>, Status> {
        Err(unimplemented("Points/search_batch"))
    }
    async fn search_groups(
        &self,
        _: Request<q::SearchPointGroups>,
    ) -> Result<Response<q::SearchGroupsResponse>, Status> {
        Err(unimplemented("Points/search_groups"))
    }
    async fn scroll(
        &self,
        _: Request<q::ScrollPoints>,
    ) -> Result<Response<q::ScrollResponse>, Status> {
        Err(unimplemented("Points/scroll"))
    }
    async fn recommend(
        &self,
        _: Request<q::RecommendPoints>,
    ) -> Result<Response<q::RecommendResponse>, Status> {
        Err(unimplemented("Points/recommend"))
    }
    async fn recommend_batch(
        &self,
        _: Request<q::RecommendBatchPoints>,
    ) -> Result<Response<q::RecommendBatchResponse>, Status> {
        Err(unimplemented("Points/recommend_batch"))
    }
    async fn recommend_groups(
        &self,
        _: Request<q::RecommendPointGroups>,
    ) -> Result<Response<q::RecommendGroupsResponse>, Status> {
        Err(unimplemented("Points/recommend_groups"))
    }
    async fn discover(
        &self,
        _: Request<q::DiscoverPoints>,
    ) -> Result<Response<q::DiscoverResponse>, Status> {
        Err(unimplemented("Points/discover"))
    }
    async fn discover_batch(
        &self,
        _: Request<q::DiscoverBatchPoints>,
    ) -> Result<Response<q::DiscoverBatchResponse>, Status> {
        Err(unimplemented("Points/discover_batch"))
    }
    async fn update_batch(
        &self,
        _: Request<q::UpdateBatchPoints>,
    ) -> Result<Response<q::UpdateBatchResponse>, Status> {
        Err(unimplemented("Points/update_batch"))
    }
    async fn query_batch(
        &self,
        _: Request<q::QueryBatchPoints>,
    ) -> Result<Response<q::QueryBatchResponse>, Status> {
        Err(unimplemented("Points/query_batch"))
    }
    async fn query_groups(
        &self,
        _: Request<q::QueryPointGroups>,
    ) -> Result<Response<q::QueryGroupsResponse>, Status> {
        Err(unimplemented("Points/query_groups"))
    }
    async fn facet(
        &self,
        _: Request<q::FacetCounts>,
    ) -> Result<Response<q::FacetResponse>, Status> {
        Err(unimplemented("Points/facet"))
    }
    async fn search_matrix_pairs(
        &self,
        _: Request<q::SearchMatrixPoints>,
    ) -> Result<Response<q::SearchMatrixPairsResponse>, Status> {
        Err(unimplemented("Points/search_matrix_pairs"))
    }
    async fn search_matrix_offsets(
        &self,
        _: Request<q::SearchMatrixPoints>,
    ) -> Result<Response<q::SearchMatrixOffsetsResponse>, Status> {
        Err(unimplemented("Points/search_matrix_offsets"))
    }
}
