//! A test Qdrant server: Qdrant's gRPC API (the service definitions `qdrant-client` carries)
//! served over real HTTP/2 on 127.0.0.1, with the embedded engine behind it. It answers the
//! calls the server adapter makes (collections: exists, create, info; points: upsert, delete
//! by ids or everything, get, count, query nearest with an institution filter; field index;
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
    Collection, INSTITUTION_KEY, Point, VectorIndex, edge::EdgeIndex,
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
    collections: HashMap<String, u64>,
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
fn dense(vectors: Option<q::Vectors>) -> Result<Vec<f32>, Status> {
    match vectors.and_then(|v| v.vectors_options) {
        Some(q::vectors::VectorsOptions::Vector(v)) => match v.vector {
            Some(q::vector::Vector::Dense(d)) => Ok(d.data),
            None if v.indices.is_none() && v.vectors_count.is_none() => Ok(v.data),
            _ => Err(unimplemented("vectors other than one dense vector")),
        },
        _ => Err(unimplemented("named vectors")),
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
        state.collections.insert(r.collection_name, params.size);
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
        let Some(size) = self.0.state.lock().await.collections.get(&name).copied() else {
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
            points.push(Point {
                id: num_id(p.id)?,
                vector: dense(p.vectors)?,
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
                vectors: with_vectors.then(|| q::VectorsOutput {
                    vectors_options: Some(q::vectors_output::VectorsOptions::Vector(
                        q::VectorOutput {
                            vector: Some(q::vector_output::Vector::Dense(q::DenseVector {
                                data: p.vector,
                            })),
                            ..Default::default()
                        },
                    )),
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
        self.0.engine(&r.collection_name).await?;
        if r.field_name != INSTITUTION_KEY || r.field_type != Some(q::FieldType::Integer as i32) {
            return Err(unimplemented("indexes other than the institution's"));
        }
        // The embedded engine indexes the institution when it creates a collection.
        Ok(Response::new(done()))
    }

    async fn count(
        &self,
        request: Request<q::CountPoints>,
    ) -> Result<Response<q::CountResponse>, Status> {
        self.0.note("count");
        let r = request.into_inner();
        if r.filter.is_some() {
            return Err(unimplemented("counting with a filter"));
        }
        let (engine, c) = self.0.engine(&r.collection_name).await?;
        let count = engine.count(c).await.map_err(failed)? as u64;
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
        if !r.prefetch.is_empty() || r.using.is_some() || r.offset.is_some() {
            return Err(unimplemented(
                "queries with prefetch, named vectors or offsets",
            ));
        }
        let vector = match r.query.and_then(|q| q.variant) {
            Some(q::query::Variant::Nearest(q::VectorInput {
                variant: Some(q::vector_input::Variant::Dense(d)),
            })) => d.data,
            _ => {
                return Err(unimplemented(
                    "queries other than the nearest to a dense vector",
                ));
            }
        };
        let institution = institution_of(r.filter)?;
        let (engine, c) = self.0.engine(&r.collection_name).await?;
        let limit = r.limit.unwrap_or(10) as usize;
        let hits = engine
            .search(c, vector, institution, limit)
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
