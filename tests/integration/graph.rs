//! The relation graph on its embedded engine (vertex and edge tables in the primary store,
//! walked with recursive queries), fed by change capture on both primary stores: relations to
//! depth 2, customers sharing doctors and projects within an institution, "who had X also had
//! Y", a referrer imported after the customer they referred, a refunded order, a late job, a
//! full rebuild. And the NebulaGraph adapter against a real server, only when `NEBULA_ADDR` is
//! set (none runs where Revisit is developed).

use std::sync::Arc;

use revisit::{
    config::Backend,
    projections::graph::{
        EdgeKind, Graph, Owned, Relation, SharedBy, VertexKind, queries::GraphError,
    },
};
use revisit_jobs::{Job, ProjectionName};
use serde_json::{Value, json};

use crate::harness::*;

crate::on_both_backends!(
    relations_sharing_and_also_had_follow_the_imported_data,
    a_late_referrer_a_refund_and_an_old_job_are_each_handled,
);

const DOCTORS_JSON: &str = r#"[
 {"doctor_code":"DOC-1","institution_code":"BJ-HA-001","name":"李明","title":"主任医师"},
 {"doctor_code":"DOC-2","institution_code":"BJ-HA-001","name":"王芳","title":"主治医师"}]"#;

fn person(n: u32) -> Value {
    json!({"name": format!("客户{n}"), "gender": "女", "birthday": "1990-05-15",
           "phone": format!("1390013900{n}")})
}

fn item(code: &str, kind: &str, doctor: Option<&str>, price: f64) -> Value {
    json!({"item_type": kind, "item_code": code, "item_name": code, "quantity": 1,
           "unit_price": price, "actual_price": price, "doctor_code": doctor})
}

fn order(number: &str, customer: &str, date: &str, status: &str, items: Vec<Value>) -> Value {
    let total: f64 = items
        .iter()
        .map(|i| i["actual_price"].as_f64().unwrap())
        .sum();
    json!({"order_number": number, "customer_code": customer, "order_date": date,
           "total_amount": total, "status": status, "items": items})
}

/// BJ-C1 (referred by BJ-C9, not imported yet) is the same person as SH-C1; BJ-C2 was referred
/// by BJ-C1 and shares its doctor and a project; BJ-C3 shares nothing.
fn tree(o3_status: &str) -> Vec<(&'static str, String)> {
    let projects = json!([
        {"project_code": "PRJ-001", "name": "水光针", "category": "注射", "standard_price": 2800.0},
        {"project_code": "PRJ-002", "name": "光子嫩肤", "category": "光电", "standard_price": 1800.0},
        {"project_code": "PRJ-003", "name": "热玛吉", "category": "抗衰", "standard_price": 16800.0}
    ]);
    let products = json!([
        {"product_code": "PRD-001", "name": "医用修护面膜", "category": "护肤", "price": 100.0}
    ]);
    let bj = json!([
        {"customer_code": "BJ-C1", "vip_level": "金卡", "referrer_code": "BJ-C9", "person": person(1)},
        {"customer_code": "BJ-C2", "vip_level": "银卡", "referrer_code": "BJ-C1", "person": person(2)},
        {"customer_code": "BJ-C3", "person": person(3)}
    ]);
    let sh = json!([{"customer_code": "SH-C1", "person": person(1)}]);
    let bj_orders = json!([
        order(
            "BJ-O1",
            "BJ-C1",
            "2026-01-10",
            "completed",
            vec![
                item("PRJ-001", "project", Some("DOC-1"), 2800.0),
                item("PRD-001", "product", None, 100.0)
            ]
        ),
        order(
            "BJ-O2",
            "BJ-C1",
            "2026-03-10",
            "completed",
            // One visit, written as two lines of the same project.
            vec![
                item("PRJ-001", "project", Some("DOC-1"), 1300.0),
                item("PRJ-001", "project", Some("DOC-1"), 1300.0)
            ]
        ),
        order(
            "BJ-O3",
            "BJ-C2",
            "2026-02-01",
            o3_status,
            vec![
                item("PRJ-001", "project", Some("DOC-1"), 2800.0),
                item("PRJ-002", "project", Some("DOC-2"), 1800.0)
            ]
        ),
        order(
            "BJ-O4",
            "BJ-C3",
            "2026-02-02",
            "completed",
            vec![item("PRJ-003", "project", Some("DOC-2"), 16800.0)]
        )
    ]);
    let sh_orders = json!([order(
        "SH-O1",
        "SH-C1",
        "2026-01-20",
        "completed",
        vec![item("PRJ-002", "project", None, 1800.0)]
    )]);
    vec![
        ("common/institutions.json", INSTITUTIONS.to_owned()),
        ("common/doctors.json", DOCTORS_JSON.to_owned()),
        ("common/projects.json", projects.to_string()),
        ("common/products.json", products.to_string()),
        ("BJ-HA-001/customers.json", bj.to_string()),
        ("BJ-HA-001/consumption_records.json", bj_orders.to_string()),
        ("SH-ML-002/customers.json", sh.to_string()),
        ("SH-ML-002/consumption_records.json", sh_orders.to_string()),
    ]
}

async fn import(env: &TestEnv, files: &[(&'static str, String)]) {
    let refs: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
    let dir = write_tree(&refs);
    import_tree(env, dir.path()).await;
}

async fn synced(backend: Backend) -> (TestEnv, Workers, Arc<Graph>) {
    let env = TestEnv::new(backend, &[("REVISIT__VECTORS__ENABLED", "false")]).await;
    let workers = env.start_workers(vec![
        revisit_jobs::ProjectionDispatch::QUEUE,
        revisit_jobs::ProjectionSync::QUEUE,
    ]);
    env.store()
        .register_projection(ProjectionName::Graph)
        .await
        .unwrap();
    import(&env, &tree("completed")).await;
    projection_caught_up(&env.app, ProjectionName::Graph).await;
    let graph = env.app.projections.graph.clone().expect("on by default");
    (env, workers, graph)
}

fn find<'a>(found: &'a [Relation], edge: EdgeKind, to: &str) -> Option<&'a Relation> {
    found.iter().find(|r| r.edge == edge && r.to.vid == to)
}

async fn relations_sharing_and_also_had_follow_the_imported_data(backend: Backend) {
    let (env, workers, g) = synced(backend).await;
    let store = env.store();
    let bj = store.institution("BJ-HA-001").await.unwrap().unwrap().id;
    let sh = store.institution("SH-ML-002").await.unwrap().unwrap().id;

    let found = g.relations_of(store, "BJ-C1", None, 2).await.unwrap();
    // Depth 1: the institution, what they bought (two visits for PRJ-001, three order lines,
    // folded into one relation), their doctor, their person, who referred them and whom they
    // referred.
    let inst = find(&found, EdgeKind::BelongsTo, &format!("i:{bj}")).expect("institution");
    assert_eq!(
        (inst.depth, inst.to.name.as_deref()),
        (1, Some("北京华安医疗美容诊所"))
    );
    let pj = find(&found, EdgeKind::Bought, "j:PRJ-001").expect("PRJ-001");
    assert_eq!((pj.depth, pj.times, pj.amount_cents), (1, 2, Some(540_000)));
    assert_eq!(pj.first_date.unwrap().to_string(), "2026-01-10");
    assert_eq!(pj.last_date.unwrap().to_string(), "2026-03-10");
    assert_eq!(pj.to.name.as_deref(), Some("水光针"));
    assert!(find(&found, EdgeKind::Bought, "g:PRD-001").is_some());
    let doctor = find(&found, EdgeKind::ServedBy, "d:DOC-1").expect("doctor");
    assert_eq!((doctor.times, doctor.to.name.as_deref()), (2, Some("李明")));
    let referred = find(&found, EdgeKind::ReferredBy, "c:BJ-C2").expect("whom they referred");
    assert!(!referred.forward && referred.depth == 1);
    assert_eq!(referred.to.detail.as_deref(), Some("银卡"));
    let referrer = find(&found, EdgeKind::ReferredBy, "c:BJ-C9").expect("their referrer");
    assert!(
        referrer.forward && referrer.to.detail.is_none(),
        "not imported yet: its code only"
    );
    // Depth 2: the same person at the other institution, and what BJ-C2 had.
    let twin = find(&found, EdgeKind::IsPerson, "c:SH-C1").expect("the same person");
    assert_eq!(
        (twin.depth, twin.forward, twin.to.institution_id),
        (2, false, Some(sh))
    );
    let theirs = find(&found, EdgeKind::Bought, "j:PRJ-002").expect("BJ-C2's project");
    assert_eq!((theirs.depth, theirs.from.as_str()), (2, "c:BJ-C2"));
    // Not at depth 2: SH-C1's purchases (3 steps), and nothing through a project or doctor.
    assert!(found.iter().all(|r| r.from != "c:SH-C1"));
    assert!(find(&found, EdgeKind::Bought, "j:PRJ-003").is_none());
    assert!(
        found.windows(2).all(|w| w[0].depth <= w[1].depth),
        "nearest first"
    );
    let text = serde_json::to_string(&found).unwrap();
    assert!(
        !text.contains("客户1") && !text.contains("139001390"),
        "no name or phone: {text}"
    );

    let near = g.relations_of(store, "BJ-C1", None, 1).await.unwrap();
    assert!(near.iter().all(|r| r.depth == 1));
    assert!(find(&near, EdgeKind::IsPerson, "c:SH-C1").is_none());
    assert!(matches!(
        g.relations_of(store, "NOPE", None, 2).await,
        Err(GraphError::UnknownCustomer(_))
    ));
    assert!(
        matches!(
            g.relations_of(store, "BJ-C1", Some(sh), 2).await,
            Err(GraphError::UnknownCustomer(_))
        ),
        "another institution's customer is unknown to its staff"
    );

    // Sharing within BJ: BJ-C2 shares PRJ-001 and DOC-1; BJ-C3 nothing; SH-C1 is elsewhere.
    let sharers = g
        .shared_with(store, "BJ-C1", None, SharedBy::All, 10)
        .await
        .unwrap();
    let codes: Vec<(&str, Vec<&str>)> = sharers
        .iter()
        .map(|s| {
            (
                s.customer.code.as_str(),
                s.shared.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(codes, vec![("BJ-C2", vec!["d:DOC-1", "j:PRJ-001"])]);
    let by_doctor = g
        .shared_with(store, "BJ-C3", None, SharedBy::Doctors, 10)
        .await
        .unwrap();
    assert_eq!(by_doctor.len(), 1);
    assert_eq!(by_doctor[0].shared, vec!["d:DOC-2"]);
    assert!(
        g.shared_with(store, "BJ-C3", None, SharedBy::Projects, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // Who had 水光针 at BJ: BJ-C1 and BJ-C2; they also had the mask and 光子嫩肤 (SH-C1's
    // 光子嫩肤 is another institution's and does not count).
    let (total, also) = g.also_had(store, "BJ-HA-001", "PRJ-001", 10).await.unwrap();
    assert_eq!(total, 2);
    let also: Vec<(&str, i64)> = also
        .iter()
        .map(|a| (a.item.code.as_str(), a.customers))
        .collect();
    assert_eq!(also, vec![("PRD-001", 1), ("PRJ-002", 1)]);
    let (total, also) = g.also_had(store, "SH-ML-002", "PRJ-002", 10).await.unwrap();
    assert_eq!((total, also.len()), (1, 0));
    // Staff may type the name: the same answer.
    let (by_name, also_by_name) = g.also_had(store, "BJ-HA-001", "水光针", 10).await.unwrap();
    assert_eq!((by_name, also_by_name.len()), (2, 2));
    // Nothing of that code or name: said so, without blaming the sync.
    assert!(matches!(
        g.also_had(store, "BJ-HA-001", "NOPE", 10).await,
        Err(GraphError::NoSuchItem(_))
    ));
    assert!(matches!(
        g.also_had(store, "XX", "PRJ-001", 10).await,
        Err(GraphError::UnknownInstitution(_))
    ));

    // A full rebuild gives the same graph.
    let before = g.store.size().await.unwrap();
    assert!(before.vertices >= 13 && before.edges >= 18, "{before:?}");
    revisit::handlers::projection_rebuild::rebuild(&env.app, ProjectionName::Graph, |_, _| {})
        .await
        .unwrap();
    projection_caught_up(&env.app, ProjectionName::Graph).await;
    assert_eq!(g.store.size().await.unwrap(), before);
    assert_eq!(
        g.relations_of(store, "BJ-C1", None, 2).await.unwrap(),
        found
    );
    workers.stop().await;
}

async fn a_late_referrer_a_refund_and_an_old_job_are_each_handled(backend: Backend) {
    let (env, workers, g) = synced(backend).await;
    let store = env.store();
    // The referrer arrives later, and BJ-O3 is refunded.
    let mut later = tree("refunded");
    later.retain(|(p, _)| p.starts_with("BJ-HA-001/consumption"));
    later.push((
        "BJ-HA-001/customers.json",
        json!([{"customer_code": "BJ-C9", "vip_level": "钻石卡", "person": person(9)}]).to_string(),
    ));
    import(&env, &later).await;
    projection_caught_up(&env.app, ProjectionName::Graph).await;
    let found = g.relations_of(store, "BJ-C1", None, 2).await.unwrap();
    let referrer = find(&found, EdgeKind::ReferredBy, "c:BJ-C9").unwrap();
    assert_eq!(referrer.to.detail.as_deref(), Some("钻石卡"));
    let c2 = g.relations_of(store, "BJ-C2", None, 1).await.unwrap();
    assert!(
        c2.iter()
            .all(|r| r.edge != EdgeKind::Bought && r.edge != EdgeKind::ServedBy),
        "a refunded order has no purchase: {c2:?}"
    );
    let (total, _) = g.also_had(store, "BJ-HA-001", "PRJ-001", 10).await.unwrap();
    assert_eq!(total, 1);

    // A job older than what the graph holds leaves it alone; a newer one replaces it.
    let version = store.change_version().await.unwrap();
    let empty = Owned {
        owner: "o:0/none".into(),
        vertex: None,
        edges: Vec::new(),
        shared: Vec::new(),
    };
    let c1 = VertexKind::Customer.vid("BJ-C1");
    let stale = Owned {
        owner: c1.clone(),
        ..empty.clone()
    };
    g.store
        .write(std::slice::from_ref(&stale), 0)
        .await
        .unwrap();
    let again = g.relations_of(store, "BJ-C1", None, 1).await.unwrap();
    assert!(
        again.iter().any(|r| r.edge == EdgeKind::IsPerson),
        "an old job left the customer alone: {again:?}"
    );
    g.store.write(&[stale, empty], version + 1).await.unwrap();
    let gone = g.relations_of(store, "BJ-C1", None, 1).await.unwrap();
    assert!(
        gone.iter()
            .all(|r| r.edge != EdgeKind::IsPerson && r.edge != EdgeKind::BelongsTo),
        "a newer write replaced the customer's edges: {gone:?}"
    );
    workers.stop().await;
}

/// The NebulaGraph adapter against a real server: only with `NEBULA_ADDR` (none runs here).
#[tokio::test]
async fn nebula_adapter_against_a_real_server_when_one_is_given() {
    let Ok(addr) = std::env::var("NEBULA_ADDR") else {
        eprintln!("NEBULA_ADDR is not set: the NebulaGraph adapter is not run against a server");
        return;
    };
    use revisit::projections::graph::{GraphStore, facts, nebula::NebulaGraph};
    let settings = revisit::config::GraphSettings {
        enabled: true,
        nebula_addr: addr,
        nebula_user: std::env::var("NEBULA_USER").unwrap_or_else(|_| "root".into()),
        nebula_password: revisit::config::Secret::new(
            std::env::var("NEBULA_PASSWORD").unwrap_or_else(|_| "nebula".into()),
        ),
        nebula_space: format!("revisit_test_{}", std::process::id()),
        timeout_secs: 30,
    };
    let g = NebulaGraph::new(&settings).unwrap();
    g.init().await.unwrap();
    g.reset().await.unwrap();
    let snaps = revisit::domain::snapshot::Snapshots::Customers(vec![
        revisit::domain::snapshot::CustomerSnap {
            id: 1,
            code: "C1".into(),
            institution_id: 1,
            person_id: 1,
            gender: None,
            birth_year: None,
            vip_level: Some("金卡".into()),
            source: None,
            opted_out: false,
            created_at: chrono::Utc::now(),
            referrer_code: Some("C0".into()),
        },
    ]);
    g.write(&facts::owned(&snaps), 5).await.unwrap();
    let found = g.relations("c:C1", 2).await.unwrap();
    assert!(
        found
            .iter()
            .any(|r| r.edge == EdgeKind::ReferredBy && r.to.vid == "c:C0")
    );
    assert!(
        found
            .iter()
            .any(|r| r.edge == EdgeKind::IsPerson && r.to.vid == "p:1")
    );
}
