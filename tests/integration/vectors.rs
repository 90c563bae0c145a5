//! Vector search: the embeddings provider against an OpenAI-compatible `/v1/embeddings` peer on
//! 127.0.0.1 (a batch per call with the model and the key, vectors in the order of the texts
//! whatever order the answer lists them in, its failures told apart); the projection on the
//! embedded engine, fed by change capture on both primary stores.

use std::sync::Arc;

use revisit::{
    config::Backend,
    config::Secret,
    projections::vectors::embed::{EmbedError, Embedder},
};
use serde_json::{Value, json};

use crate::harness::*;

fn settings(url: &str) -> revisit::config::VectorSettings {
    revisit::config::VectorSettings {
        enabled: true,
        url: String::new(),
        api_key: Secret::new(""),
        lock_wait_secs: 1,
        hold_secs: 1,
        dir: String::new(),
        dimension: 8,
        embeddings_url: url.to_owned(),
        embeddings_key: Secret::new("sk-embed"),
        embeddings_model: "bge-m3".into(),
        timeout_secs: 5,
    }
}

#[tokio::test]
async fn an_embeddings_api_gets_one_batch_and_its_answers_are_checked() {
    // Answers in reverse order, each vector naming its text's length.
    let peer = MockServer::start(Arc::new(|n, req| {
        if n == 1 {
            return (503, vec![], json!({"error": "busy"}));
        }
        let inputs = req.body["input"].as_array().cloned().unwrap_or_default();
        let dims = if n == 2 { 3 } else { 8 };
        let mut data: Vec<Value> = inputs
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let len = t.as_str().unwrap_or_default().chars().count() as f32;
                let mut v = vec![0.0f32; dims];
                v[0] = len;
                json!({"object": "embedding", "index": i, "embedding": v})
            })
            .collect();
        data.reverse();
        (
            200,
            vec![],
            json!({"object": "list", "model": "bge-m3", "data": data}),
        )
    }))
    .await;
    let embedder = Embedder::from_settings(&settings(&peer.url)).unwrap();
    let texts = vec!["水光针".to_owned(), "热玛吉紧致".to_owned()];
    let vectors = embedder.embed(&texts).await.unwrap();
    assert_eq!(vectors.len(), 2);
    assert!(
        vectors
            .iter()
            .all(|v| v.len() == 8 && (v[0] - 1.0).abs() < 1e-6)
    );
    let asked = &peer.received()[0];
    assert_eq!(asked.body["model"], "bge-m3");
    assert_eq!(asked.body["input"], json!(texts));
    assert_eq!(asked.headers["authorization"], "Bearer sk-embed");
    // Busy: another try later. Vectors of the wrong size: refused, never stored.
    assert!(matches!(
        embedder.embed(&texts).await,
        Err(EmbedError::Unavailable(_))
    ));
    match embedder.embed(&texts).await {
        Err(EmbedError::Refused(e)) => assert!(e.contains("3 dimensions"), "{e}"),
        other => panic!("{:?}", other.map(|v| v.len())),
    }
    // Without a URL, the offline embedder: no call at all.
    let offline = Embedder::from_settings(&settings("")).unwrap();
    assert_eq!(offline.embed(&texts).await.unwrap()[0].len(), 8);
    assert_eq!(peer.count(), 3);
}

crate::on_both_backends!(
    customers_projects_and_products_are_searchable_and_follow_every_change,
    a_late_sync_job_never_overwrites_a_newer_point,
    a_full_rebuild_queues_every_entity_past_its_first_pages,
    points_a_killed_worker_synced_are_on_disk,
);

fn vector_tree(c1_vip: &str, c3_opted_out: bool) -> Vec<(&'static str, String)> {
    let projects = json!([
        {"project_code": "PRJ-001", "name": "水光针", "category": "注射", "standard_price": 2800.0,
         "description": "补水保湿"},
        {"project_code": "PRJ-002", "name": "光子嫩肤", "category": "光电", "standard_price": 1800.0},
        {"project_code": "PRJ-003", "name": "热玛吉", "category": "抗衰", "standard_price": 16800.0}
    ]);
    let products = json!([
        {"product_code": "PRD-001", "name": "医用修护面膜", "category": "护肤", "price": 100.0},
        {"product_code": "PRD-002", "name": "胶原蛋白口服液", "category": "口服", "price": 500.0}
    ]);
    let person = |n: u32| {
        json!({"name": format!("客户{n}"), "gender": "女", "birthday": "1990-05-15",
               "phone": format!("1380013800{n}")})
    };
    let bj = json!([
        {"customer_code": "BJ-C1", "vip_level": c1_vip, "tags": ["敏感肌", "补水"],
         "notes": "电话13800138000，怕痛", "person": person(1)},
        {"customer_code": "BJ-C2", "vip_level": "金卡", "tags": ["敏感肌"], "person": person(2)},
        {"customer_code": "BJ-C3", "vip_level": "普通会员", "tags": ["抗衰"],
         "opted_out": c3_opted_out, "person": person(3)}
    ]);
    let sh = json!([
        {"customer_code": "SH-C1", "vip_level": "金卡", "tags": ["敏感肌", "补水"], "person": person(4)}
    ]);
    let item = |code: &str, kind: &str, name: &str| {
        json!({"item_type": kind, "item_code": code, "item_name": name, "quantity": 1,
               "unit_price": 100.0, "actual_price": 100.0})
    };
    let order = |number: &str, customer: &str, items: Vec<Value>| {
        json!({"order_number": number, "customer_code": customer, "order_date": "2026-01-15",
               "total_amount": 100.0 * items.len() as f64, "items": items})
    };
    let bj_orders = json!([
        order(
            "BJ-O1",
            "BJ-C1",
            vec![
                item("PRJ-001", "project", "水光针"),
                item("PRD-001", "product", "医用修护面膜")
            ]
        ),
        order("BJ-O2", "BJ-C2", vec![item("PRJ-001", "project", "水光针")]),
        order("BJ-O3", "BJ-C3", vec![item("PRJ-003", "project", "热玛吉")])
    ]);
    let sh_orders = json!([order(
        "SH-O1",
        "SH-C1",
        vec![item("PRJ-001", "project", "水光针")]
    )]);
    vec![
        ("common/institutions.json", INSTITUTIONS.to_owned()),
        ("common/doctors.json", DOCTORS.to_owned()),
        ("common/projects.json", projects.to_string()),
        ("common/products.json", products.to_string()),
        ("BJ-HA-001/customers.json", bj.to_string()),
        ("BJ-HA-001/consumption_records.json", bj_orders.to_string()),
        ("SH-ML-002/customers.json", sh.to_string()),
        ("SH-ML-002/consumption_records.json", sh_orders.to_string()),
    ]
}

fn write_files(files: &[(&'static str, String)]) -> tempfile::TempDir {
    let refs: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
    write_tree(&refs)
}

/// A test environment with sync workers, the sample tree imported and vector search caught up.
async fn synced(backend: Backend, overrides: &[(&str, &str)]) -> (TestEnv, Workers) {
    use revisit_jobs::Job;
    let env = TestEnv::new(backend, overrides).await;
    let workers = env.start_workers(vec![
        revisit_jobs::ProjectionDispatch::QUEUE,
        revisit_jobs::ProjectionSync::QUEUE,
    ]);
    env.store()
        .register_projection(revisit_jobs::ProjectionName::Vectors)
        .await
        .unwrap();
    let dir = write_files(&vector_tree("金卡", false));
    import_tree(&env, dir.path()).await;
    projection_caught_up(&env.app, revisit_jobs::ProjectionName::Vectors).await;
    (env, workers)
}

/// The point of customer `code`, which must exist.
async fn customer_point(
    v: &revisit::projections::vectors::Vectors,
    code: &str,
) -> revisit::projections::vectors::Point {
    use revisit::projections::vectors::{Collection, point_id};
    v.index
        .get(Collection::Customers, point_id(Collection::Customers, code))
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no point for {code}"))
}

fn codes(found: &[revisit::projections::vectors::search::SimilarCustomer]) -> Vec<&str> {
    found.iter().map(|s| s.code.as_str()).collect()
}

async fn customers_projects_and_products_are_searchable_and_follow_every_change(backend: Backend) {
    use revisit::projections::vectors::Collection;
    let (env, workers) = synced(backend, &[]).await;
    let v = env.app.projections.vectors.clone().expect("on by default");
    assert_eq!(v.index.count(Collection::Customers).await.unwrap(), 4);
    assert_eq!(v.index.count(Collection::Projects).await.unwrap(), 3);
    assert_eq!(v.index.count(Collection::Products).await.unwrap(), 2);

    // Customers like BJ-C1: only its own institution's (SH-C1 is its twin, elsewhere), not
    // itself, and only those it shares something with (BJ-C3 had another treatment, of another
    // category, another level and tag), with what they share, strongest first.
    let (me, found) = v.similar(env.store(), "BJ-C1", None, 10).await.unwrap();
    assert_eq!(me.projects, vec!["水光针"]);
    assert_eq!(codes(&found), vec!["BJ-C2"]);
    assert_eq!(found[0].shared_projects, vec!["水光针"]);
    assert_eq!(found[0].shared_tags, vec!["敏感肌"]);
    assert!(found[0].same_vip_level);
    let reasons: Vec<&str> = found[0].reasons.iter().map(|r| r.text.as_str()).collect();
    assert_eq!(
        reasons,
        [
            "都做过 水光针",
            "都有「注射」类的消费",
            "同为金卡",
            "都有标签「敏感肌」"
        ],
        "{:?}",
        found[0].reasons
    );
    // The reasons are the score: each its two values times its rarity, as the engine weighs
    // it: the part of the strong traits is what the index scored.
    let sum: f32 = found[0].reasons.iter().map(|r| r.weight).sum();
    assert!(
        (sum - found[0].score).abs() < 1e-5,
        "{sum} vs {}",
        found[0].score
    );
    {
        use revisit::projections::vectors::{Query, traits};
        let hits = v
            .index
            .search(
                Collection::Customers,
                Query::Traits(traits::sparse(&traits::of(&me))),
                Some(me.institution_id),
                10,
            )
            .await
            .unwrap();
        let engine = hits
            .iter()
            .find(|h| h.payload["code"] == "BJ-C2")
            .unwrap()
            .score;
        let strong: f32 = found[0]
            .reasons
            .iter()
            .filter(|r| r.kind.in_index())
            .map(|r| r.weight)
            .sum();
        assert!(
            (strong - engine).abs() < 1e-3 * engine,
            "{strong} vs {engine}"
        );
    }
    let point = customer_point(&v, "BJ-C1").await;
    let payload = serde_json::to_string(&point.payload).unwrap();
    assert!(
        !payload.contains("怕痛") && !payload.contains("1380013800") && !payload.contains("客户1"),
        "no note, phone or name in a point: {payload}"
    );
    assert!(matches!(
        v.similar(env.store(), "NOPE", None, 5).await,
        Err(revisit::projections::vectors::search::SearchError::UnknownCustomer(_))
    ));

    let hits = v
        .search_catalogue(Collection::Projects, "补水", 3)
        .await
        .unwrap();
    assert_eq!(hits[0].code, "PRJ-001", "{hits:?}");
    assert!(
        hits.iter().all(|h| h.score > 0.0),
        "nothing unrelated: {hits:?}"
    );
    let none = v
        .search_catalogue(Collection::Projects, "完全无关ZZ", 10)
        .await
        .unwrap();
    assert!(none.is_empty(), "{none:?}");
    let hits = v
        .search_catalogue(Collection::Products, "面膜", 1)
        .await
        .unwrap();
    assert_eq!(hits[0].name, "医用修护面膜");

    // Changes reach it: BJ-C2 buys a product (an order of its own re-embeds it), BJ-C1's VIP
    // level changes, and BJ-C3 opts out (its point goes).
    let mut second = vector_tree("钻石卡", true);
    second.retain(|(p, _)| p.starts_with("BJ-HA-001/"));
    for (path, text) in &mut second {
        if *path == "BJ-HA-001/consumption_records.json" {
            *text = json!([
                {"order_number": "BJ-O4", "customer_code": "BJ-C2", "order_date": "2026-03-01",
                 "total_amount": 500.0, "items": [
                    {"item_type": "product", "item_code": "PRD-002", "item_name": "胶原蛋白口服液",
                     "quantity": 1, "unit_price": 500.0, "actual_price": 500.0}]}
            ])
            .to_string();
        }
    }
    let second_dir = write_files(&second);
    import_tree(&env, second_dir.path()).await;
    projection_caught_up(&env.app, revisit_jobs::ProjectionName::Vectors).await;
    assert_eq!(v.index.count(Collection::Customers).await.unwrap(), 3);
    let c2 = customer_point(&v, "BJ-C2").await;
    assert!(
        c2.payload["traits"]
            .as_array()
            .unwrap()
            .contains(&json!("g:PRD-002")),
        "{:?}",
        c2.payload
    );
    let c1 = customer_point(&v, "BJ-C1").await;
    assert_eq!(c1.payload["vip_level"], json!("钻石卡"));
    let (_, found) = v.similar(env.store(), "BJ-C1", None, 10).await.unwrap();
    assert_eq!(
        codes(&found),
        vec!["BJ-C2"],
        "an opted-out customer is never suggested"
    );

    // Over the API: a staff token of the institution sees its customers' neighbours; another
    // institution's token is refused that institution, and finds no such customer in its own.
    let server = crate::api::Server::start(env.app.clone()).await;
    let bj = crate::api::token(&env, revisit::store::access::Role::Staff, Some("BJ-HA-001")).await;
    let sh = crate::api::token(&env, revisit::store::access::Role::Staff, Some("SH-ML-002")).await;
    let (status, body) = server
        .get(
            "/api/v1/customers/BJ-HA-001/BJ-C1/similar?limit=5",
            Some(&bj),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    assert_eq!(body["items"][0]["code"], "BJ-C2", "{body}");
    assert_eq!(body["items"][0]["shared_projects"], json!(["水光针"]));
    let (status, _) = server
        .get("/api/v1/customers/BJ-HA-001/BJ-C1/similar", Some(&sh))
        .await;
    assert_eq!(status, reqwest::StatusCode::FORBIDDEN);
    let (status, _) = server
        .get("/api/v1/customers/SH-ML-002/BJ-C1/similar", Some(&sh))
        .await;
    assert_eq!(status, reqwest::StatusCode::NOT_FOUND);
    let (status, _) = server
        .get("/api/v1/customers/BJ-HA-001/BJ-C1/similar", None)
        .await;
    assert_eq!(status, reqwest::StatusCode::UNAUTHORIZED);
    let (status, body) = server
        .get(
            "/api/v1/search/projects?q=%E8%A1%A5%E6%B0%B4&limit=2",
            Some(&sh),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    assert_eq!(body["items"][0]["code"], "PRJ-001", "{body}");
    let (status, body) = server.get("/api/v1/search/products", Some(&sh)).await;
    assert_eq!(status, reqwest::StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["param"], "q");
    let (status, _) = server.get("/api/v1/search/customers?q=x", Some(&sh)).await;
    assert_eq!(status, reqwest::StatusCode::NOT_FOUND);

    // A full rebuild gives the same points, each once.
    revisit::handlers::projection_rebuild::rebuild(
        &env.app,
        revisit_jobs::ProjectionName::Vectors,
        |_, _| {},
    )
    .await
    .unwrap();
    projection_caught_up(&env.app, revisit_jobs::ProjectionName::Vectors).await;
    assert_eq!(v.index.count(Collection::Customers).await.unwrap(), 3);
    assert_eq!(v.index.count(Collection::Projects).await.unwrap(), 3);
    workers.stop().await;
}

async fn a_late_sync_job_never_overwrites_a_newer_point(backend: Backend) {
    use revisit::{
        domain::snapshot::Snapshots,
        projections::{
            Projection,
            vectors::{Collection, point_id},
        },
    };
    let env = TestEnv::new(backend, &[]).await;
    let dir = write_files(&vector_tree("金卡", false));
    import_tree(&env, dir.path()).await;
    let v = env.app.projections.vectors.clone().unwrap();
    let id: i64 = env
        .rows::<(i64,)>("SELECT id FROM customers WHERE code = 'BJ-C1'")
        .await[0]
        .0;
    let mut profile = env.store().search_profiles(&[id]).await.unwrap();
    v.apply(&Snapshots::SearchProfiles(profile.clone()), 20)
        .await
        .unwrap();
    // A job that read the customer before version 20 and runs after it.
    profile[0].vip_level = Some("旧等级".into());
    v.apply(&Snapshots::SearchProfiles(profile.clone()), 10)
        .await
        .unwrap();
    let pid = point_id(Collection::Customers, "BJ-C1");
    let point = v
        .index
        .get(Collection::Customers, pid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(point.payload["vip_level"], json!("金卡"));
    assert_eq!(point.payload["version"], json!(20));
    // Nor does it delete it: the opt-out it saw is older than the point.
    profile[0].opted_out = true;
    v.apply(&Snapshots::SearchProfiles(profile.clone()), 15)
        .await
        .unwrap();
    assert!(
        v.index
            .get(Collection::Customers, pid)
            .await
            .unwrap()
            .is_some()
    );
    // The same version again (a retried job) writes it again, once.
    profile[0].opted_out = false;
    profile[0].vip_level = Some("钻石卡".into());
    v.apply(&Snapshots::SearchProfiles(profile.clone()), 20)
        .await
        .unwrap();
    v.apply(&Snapshots::SearchProfiles(profile), 20)
        .await
        .unwrap();
    assert_eq!(v.index.count(Collection::Customers).await.unwrap(), 1);
    let point = v
        .index
        .get(Collection::Customers, pid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(point.payload["vip_level"], json!("钻石卡"));
}

#[tokio::test]
async fn the_qdrant_adapter_speaks_grpc_to_a_qdrant_api_server() {
    use revisit::projections::vectors::{
        Collection, Point, Sparse, VectorIndex, embed::LexicalEmbedder, point_id,
        server::QdrantIndex,
    };
    let (server, url) = crate::qdrant_server::TestQdrant::start().await;
    let mut s = settings("");
    s.embeddings_url = String::new();
    s.url = url.clone();
    s.dimension = 64;
    let index = QdrantIndex::new(&s).unwrap();
    let e = LexicalEmbedder::new(64);
    let customer = |code: &str, inst: i64, text: &str| {
        let mut payload = serde_json::Map::new();
        payload.insert("code".into(), code.into());
        payload.insert("version".into(), 7.into());
        Point {
            id: point_id(Collection::Customers, code),
            vector: e.embed(text),
            sparse: Some(Sparse {
                indices: vec![1, 7],
                values: vec![0.6, 0.8],
            }),
            institution_id: Some(inst),
            payload,
        }
    };
    let points = vec![
        customer("A1", 1, "水光针 补水 敏感肌"),
        customer("A2", 1, "肉毒素 瘦脸"),
        customer("B1", 2, "水光针 补水"),
    ];
    index
        .upsert(Collection::Customers, points.clone())
        .await
        .unwrap();
    // A retried write replaces, never adds.
    index.upsert(Collection::Customers, points).await.unwrap();
    assert_eq!(index.count(Collection::Customers).await.unwrap(), 3);
    assert_eq!(index.count(Collection::Projects).await.unwrap(), 0);
    let query = e.embed("水光针 补水");
    let all = index
        .search(Collection::Customers, query.clone().into(), None, 10)
        .await
        .unwrap();
    assert_eq!(all[0].id, point_id(Collection::Customers, "B1"));
    let mine = index
        .search(Collection::Customers, query.into(), Some(1), 10)
        .await
        .unwrap();
    let mine_codes: Vec<&str> = mine
        .iter()
        .map(|h| h.payload["code"].as_str().unwrap())
        .collect();
    assert_eq!(mine_codes, vec!["A1", "A2"]);
    assert!(!mine[0].payload.contains_key("institution_id"));
    let a2 = point_id(Collection::Customers, "A2");
    let got = index.get(Collection::Customers, a2).await.unwrap().unwrap();
    assert_eq!((got.institution_id, got.vector.len()), (Some(1), 64));
    assert_eq!(got.sparse.map(|s| s.indices), Some(vec![1, 7]));
    let versions = index
        .versions(Collection::Customers, &[a2, 42])
        .await
        .unwrap();
    assert_eq!(versions, [(a2, 7)].into_iter().collect());
    index.delete(Collection::Customers, vec![a2]).await.unwrap();
    assert_eq!(index.count(Collection::Customers).await.unwrap(), 2);
    index.reset(Collection::Customers).await.unwrap();
    assert_eq!(index.count(Collection::Customers).await.unwrap(), 0);
    {
        let calls = server.calls.lock().unwrap();
        // Collections are created once, with their institution index (and the customers'
        // traits index); nothing unserved.
        assert_eq!(
            calls.iter().filter(|c| *c == "create_collection").count(),
            3
        );
        assert_eq!(
            calls.iter().filter(|c| *c == "create_field_index").count(),
            4
        );
    }

    // Another process with another dimension finds the collections and refuses to mix.
    s.dimension = 32;
    let refused = QdrantIndex::new(&s)
        .unwrap()
        .count(Collection::Customers)
        .await
        .unwrap_err();
    assert!(format!("{refused:#}").contains("64"), "{refused:#}");

    // The whole projection through the adapter: import, sync, `similar`.
    let (env, workers) = synced(
        Backend::Sqlite,
        &[
            ("QDRANT_URL", url.as_str()),
            ("REVISIT__VECTORS__DIMENSION", "64"),
        ],
    )
    .await;
    let v = env.app.projections.vectors.clone().unwrap();
    assert!(v.location.starts_with("Qdrant 服务器 http://127.0.0.1:"));
    let (_, found) = v.similar(env.store(), "BJ-C1", None, 10).await.unwrap();
    assert_eq!(codes(&found), vec!["BJ-C2"]);
    let hits = v
        .search_catalogue(Collection::Projects, "补水", 1)
        .await
        .unwrap();
    assert_eq!(hits[0].code, "PRJ-001");
    workers.stop().await;
}

/// 12,000 customers: ids cross from four digits to five, where ordering ids as text (as
/// PostgreSQL's `SELECT id::text … ORDER BY id` did) puts `10000` before `2`, so a page's last key
/// was not its largest and the next page skipped rows.
async fn a_full_rebuild_queues_every_entity_past_its_first_pages(backend: Backend) {
    let env = TestEnv::new(backend, &[]).await;
    let customers: Vec<Value> = (1..=12_000)
        .map(|i| {
            json!({"customer_code": format!("BJ-P{i:05}"),
                   "person": {"name": "客户", "birthday": "1990-05-15",
                              "phone": format!("139{i:08}")}})
        })
        .collect();
    let files = vec![
        ("common/institutions.json", INSTITUTIONS.to_owned()),
        ("common/projects.json", PROJECTS.to_owned()),
        ("common/products.json", PRODUCTS.to_owned()),
        (
            "BJ-HA-001/customers.json",
            Value::from(customers).to_string(),
        ),
    ];
    let dir = write_files(&files);
    import_tree(&env, dir.path()).await;
    let queued = revisit::handlers::projection_rebuild::rebuild(
        &env.app,
        revisit_jobs::ProjectionName::Vectors,
        |_, _| {},
    )
    .await
    .unwrap();
    assert_eq!(
        queued, 12_002,
        "every customer, the project and the product"
    );
    let lag = env
        .store()
        .projection_lag(revisit_jobs::ProjectionName::Vectors)
        .await
        .unwrap();
    assert_eq!(lag.in_jobs, 12_002);
    // Each customer once, in some job.
    use revisit_jobs::Job;
    let mut keys = std::collections::HashSet::new();
    for job in env.jobs_of(revisit_jobs::ProjectionSync::QUEUE).await {
        let args = env.store().job_args(&job.id).await.unwrap().unwrap();
        let sync: revisit_jobs::ProjectionSync = serde_json::from_slice(&args.payload).unwrap();
        if sync.kind == revisit_jobs::EntityKind::Customer {
            for k in sync.keys {
                assert!(keys.insert(k), "a customer queued twice");
            }
        }
    }
    assert_eq!(keys.len(), 12_000);
}

/// qdrant-edge 0.7 does not replay its log when it opens a folder: a sync job is done only once
/// its points are flushed. A worker process syncs everything, is SIGKILLed the moment the lag is
/// zero (long before it would close the folder when idle), and every point is there for the
/// next process.
async fn points_a_killed_worker_synced_are_on_disk(backend: Backend) {
    use revisit::projections::vectors::Collection;
    let env = TestEnv::new(backend, &[]).await;
    let dir = write_files(&vector_tree("金卡", false));
    import_tree(&env, dir.path()).await;
    revisit::handlers::projection_rebuild::rebuild(
        &env.app,
        revisit_jobs::ProjectionName::Vectors,
        |_, _| {},
    )
    .await
    .unwrap();
    let mut worker = tokio::process::Command::new(env!("CARGO_BIN_EXE_revisit"))
        .args([
            "worker",
            "--no-cron",
            "--queue",
            "projection.dispatch",
            "--queue",
            "projection.sync",
        ])
        .env_clear()
        .envs(env.child_env(&[("REVISIT__VECTORS__HOLD_SECS", "600")]))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn worker");
    projection_caught_up(&env.app, revisit_jobs::ProjectionName::Vectors).await;
    worker.start_kill().unwrap();
    worker.wait().await.unwrap();
    let v = env.app.projections.vectors.clone().unwrap();
    assert_eq!(v.index.count(Collection::Customers).await.unwrap(), 4);
    assert_eq!(v.index.count(Collection::Projects).await.unwrap(), 3);
    assert_eq!(v.index.count(Collection::Products).await.unwrap(), 2);
}

/// Both engines give the same answers: the sample chain's customers written into the embedded
/// engine and, through the Qdrant adapter, into a Qdrant API server; every customer's similar
/// customers (the structured traits, IDF-weighted) and a hybrid search (traits and text fused by
/// weighted RRF) come back the same, in the same order, with the same scores and reasons.
#[tokio::test]
async fn both_engines_rank_similar_customers_alike() {
    use revisit::{
        domain::snapshot::Snapshots,
        projections::{
            Projection,
            vectors::{Collection, Query, Vectors, documents, server::QdrantIndex, traits},
        },
    };
    let env = TestEnv::new(Backend::Sqlite, &[]).await;
    let sample =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(revisit::import::SAMPLE_DATA);
    import_tree(&env, &sample).await;
    let ids: Vec<i64> = env
        .rows::<(i64,)>("SELECT id FROM customers ORDER BY id")
        .await
        .into_iter()
        .map(|r| r.0)
        .collect();
    let profiles = env.store().search_profiles(&ids).await.unwrap();
    assert!(profiles.len() > 50, "{}", profiles.len());
    let edge = env.app.projections.vectors.clone().unwrap();
    let (_server, url) = crate::qdrant_server::TestQdrant::start().await;
    let mut s = env.app.settings.vectors.clone();
    s.url = url;
    let remote = Vectors {
        index: Arc::new(QdrantIndex::new(&s).unwrap()),
        embedder: edge.embedder.clone(),
        location: "test".into(),
    };
    for v in [edge.as_ref(), &remote] {
        v.init().await.unwrap();
        v.apply(&Snapshots::SearchProfiles(profiles.clone()), 1)
            .await
            .unwrap();
    }
    let mut compared = 0;
    for p in profiles.iter().filter(|p| !p.opted_out) {
        let (_, a) = edge.similar(env.store(), &p.code, None, 8).await.unwrap();
        let (_, b) = remote.similar(env.store(), &p.code, None, 8).await.unwrap();
        assert_eq!(codes(&a), codes(&b), "{}", p.code);
        for (x, y) in a.iter().zip(&b) {
            assert!((x.score - y.score).abs() < 1e-4, "{} {x:?} {y:?}", p.code);
            assert_eq!(x.reasons, y.reasons, "{}", p.code);
        }
        compared += usize::from(!a.is_empty());

        let hybrid = Query::Hybrid {
            dense: edge
                .embedder
                .embed(&[documents::customer(p, 0).text])
                .await
                .unwrap()
                .remove(0),
            traits: traits::sparse(&traits::of(p)),
        };
        let ids = |hits: Vec<revisit::projections::vectors::Hit>| -> Vec<u64> {
            hits.into_iter().map(|h| h.id).collect()
        };
        let a = edge
            .index
            .search(
                Collection::Customers,
                hybrid.clone(),
                Some(p.institution_id),
                8,
            )
            .await
            .unwrap();
        let b = remote
            .index
            .search(Collection::Customers, hybrid, Some(p.institution_id), 8)
            .await
            .unwrap();
        assert!(!a.is_empty(), "{}", p.code);
        // The customer's own point first on both, with the same fused score (first in both
        // rankings), and nearly the same points after it: the text's ranking may order
        // customers of equal text differently, which moves a fused score at the tail.
        assert_eq!(a[0].id, b[0].id, "{}", p.code);
        assert!((a[0].score - b[0].score).abs() < 1e-5, "{}", p.code);
        let (a, b) = (ids(a), ids(b));
        let common = a.iter().filter(|id| b.contains(id)).count();
        assert!(
            common + 2 >= a.len().max(b.len()),
            "{}: {a:?} {b:?}",
            p.code
        );
    }
    assert!(compared > 50, "{compared}");
}
