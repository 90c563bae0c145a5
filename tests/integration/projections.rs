//! The projections against a real ClickHouse (CI installs Debian's clickhouse-server and starts
//! it; `CLICKHOUSE_TEST_URL` points elsewhere), on both primary engines: captured changes reach
//! ClickHouse through the queue, a late or repeated sync job never overwrites newer data, no
//! personal data leaves the primary store, and a ClickHouse that is down only delays the sync.

use std::{sync::Arc, time::Duration};

use chrono::NaiveDate;
use revisit::{
    app::App,
    config::Backend,
    domain::followup::FrequencyCap,
    projections::Projection,
    store::{self, NewRevisit},
};
use revisit_jobs::{EntityKind, Job, ProjectionDispatch, ProjectionName, ProjectionSync};

use crate::harness::*;

crate::on_both_backends!(
    changes_reach_clickhouse_and_a_late_job_never_overwrites_newer_data,
    a_clickhouse_that_is_down_only_delays_the_sync,
    the_dashboard_is_the_same_from_clickhouse_and_from_the_primary_store,
    sync_full_builds_a_projection_configured_after_the_data_arrived,
    a_worker_without_clickhouse_settings_never_drops_its_changes,
);

fn clickhouse_url() -> String {
    std::env::var("CLICKHOUSE_TEST_URL").unwrap_or_else(|_| "http://127.0.0.1:8123".into())
}

/// A ClickHouse database of its own for one test, dropped at the end.
struct ChDb {
    name: String,
}

impl ChDb {
    fn new() -> Self {
        Self {
            name: format!(
                "revisit_test_{}",
                ulid::Ulid::generate().to_string().to_lowercase()
            ),
        }
    }
}

impl Drop for ChDb {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {}", self.name);
        let url = clickhouse_url();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let _ = rt.block_on(async {
                clickhouse::Client::default()
                    .with_url(url)
                    .query(&sql)
                    .execute()
                    .await
            });
        })
        .join();
    }
}

fn ch_overrides(db: &ChDb) -> Vec<(&'static str, String)> {
    vec![
        ("CLICKHOUSE_URL", clickhouse_url()),
        ("REVISIT__CLICKHOUSE__DATABASE", db.name.clone()),
    ]
}

async fn init_clickhouse(app: &App) {
    let ch = app.projections.clickhouse.as_ref().expect("configured");
    ch.init().await.unwrap_or_else(|e| {
        panic!(
            "ClickHouse at {} is needed by this test (.ci/run installs and starts it): {e:#}",
            clickhouse_url()
        )
    });
}

/// Dispatches the pending changes and waits until the projection has caught up.
async fn sync_now(app: &Arc<App>) {
    store::enqueue(
        app.store.as_ref(),
        &app.settings,
        &ProjectionDispatch {},
        None,
    )
    .await
    .unwrap();
    eventually(
        Duration::from_secs(30),
        "ClickHouse to catch up",
        || async {
            let lag = app
                .store
                .projection_lag(ProjectionName::Clickhouse)
                .await
                .unwrap();
            (lag.total() == 0).then_some(())
        },
    )
    .await;
}

fn tree(vip: &str) -> Vec<(&'static str, String)> {
    let customers = serde_json::json!([
        {"customer_code": "BJ-HA-001-C1", "vip_level": vip, "tags": ["敏感肌"], "notes": "对玻尿酸过敏",
         "person": {"name": "张丽", "gender": "女", "birthday": "1990-05-15", "phone": "13800138000"}},
        {"customer_code": "BJ-HA-001-C2", "vip_level": "银卡",
         "person": {"name": "王芳", "gender": "女", "birthday": "1988-11-02", "phone": "13800138001"}}
    ]);
    let orders = serde_json::json!([
        {"order_number": "BJ-HA-001-O1", "customer_code": "BJ-HA-001-C1", "order_date": "2026-01-15",
         "total_amount": 2620.0, "items": [
            {"item_type": "project", "item_code": "PRJ-001", "item_name": "水光针", "quantity": 1,
             "unit_price": 2800.0, "discount": 0.9, "actual_price": 2520.0, "doctor_code": "DOC-1"},
            {"item_type": "product", "item_code": "PRD-001", "item_name": "面膜", "quantity": 1,
             "unit_price": 100.0, "actual_price": 100.0}]},
        {"order_number": "BJ-HA-001-O2", "customer_code": "BJ-HA-001-C2", "order_date": "2026-02-01",
         "total_amount": 100.0, "items": [
            {"item_type": "product", "item_code": "PRD-001", "item_name": "面膜", "quantity": 1,
             "unit_price": 100.0, "actual_price": 100.0}]}
    ]);
    vec![
        ("common/institutions.json", INSTITUTIONS.to_owned()),
        ("common/doctors.json", DOCTORS.to_owned()),
        ("common/projects.json", PROJECTS.to_owned()),
        ("common/products.json", PRODUCTS.to_owned()),
        ("BJ-HA-001/customers.json", customers.to_string()),
        ("BJ-HA-001/consumption_records.json", orders.to_string()),
    ]
}

fn write(files: &[(&'static str, String)]) -> tempfile::TempDir {
    let refs: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
    write_tree(&refs)
}

#[derive(Debug, PartialEq, clickhouse::Row, serde::Deserialize)]
struct CustomerVip {
    code: String,
    vip_level: Option<String>,
}

async fn vip_levels(app: &App) -> Vec<CustomerVip> {
    let ch = app.projections.clickhouse.as_ref().unwrap();
    ch.client()
        .query("SELECT code, vip_level FROM customers FINAL ORDER BY code")
        .fetch_all()
        .await
        .unwrap()
}

async fn changes_reach_clickhouse_and_a_late_job_never_overwrites_newer_data(backend: Backend) {
    let db = ChDb::new();
    let overrides = ch_overrides(&db);
    let o: Vec<(&str, &str)> = overrides.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let env = TestEnv::new(backend, &o).await;
    init_clickhouse(&env.app).await;
    let workers = env.start_workers(vec![ProjectionDispatch::QUEUE, ProjectionSync::QUEUE]);
    let first = write(&tree("金卡"));
    import_tree(&env, first.path()).await;
    sync_now(&env.app).await;

    let ch = env.app.projections.clickhouse.clone().unwrap();
    let client = ch.client();
    assert_eq!(
        vip_levels(&env.app).await,
        vec![
            CustomerVip {
                code: "BJ-HA-001-C1".into(),
                vip_level: Some("金卡".into())
            },
            CustomerVip {
                code: "BJ-HA-001-C2".into(),
                vip_level: Some("银卡".into())
            },
        ]
    );
    let (orders, revenue): (u64, i64) = client
        .query("SELECT count(), sum(total_amount_cents) FROM orders FINAL")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!((orders, revenue), (2, 272_000));
    let items: Vec<(String, i64)> = client
        .query(
            "SELECT code, sum(price) FROM (SELECT item_code AS code, item_actual_price_cents AS price
             FROM orders FINAL ARRAY JOIN item_code, item_actual_price_cents)
             GROUP BY code ORDER BY code",
        )
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(
        items,
        vec![("PRD-001".into(), 20_000), ("PRJ-001".into(), 252_000)]
    );
    for (table, n) in [
        ("institutions", 2u64),
        ("doctors", 1),
        ("projects", 1),
        ("products", 1),
    ] {
        let count: u64 = client
            .query(&format!("SELECT count() FROM {table} FINAL"))
            .fetch_one()
            .await
            .unwrap();
        assert_eq!(count, n, "{table}");
    }
    // Names, phones, notes and tags stay in the primary store.
    let columns: Vec<String> = client
        .query("SELECT name FROM system.columns WHERE database = ? AND table = 'customers'")
        .bind(db.name.as_str())
        .fetch_all()
        .await
        .unwrap();
    for private in ["name", "phone", "notes", "tags"] {
        assert!(
            !columns.iter().any(|c| c == private),
            "{private} in {columns:?}"
        );
    }

    // A change reaches ClickHouse; a late job with an older state does not undo it, and a
    // repeated job writes nothing new.
    let second = write(&tree("钻石卡"));
    import_tree(&env, second.path()).await;
    sync_now(&env.app).await;
    let newer = vip_levels(&env.app).await;
    assert_eq!(newer[0].vip_level.as_deref(), Some("钻石卡"));
    let mut old = env
        .store()
        .snapshots(EntityKind::Customer, &["1".into()])
        .await
        .unwrap();
    if let revisit::domain::snapshot::Snapshots::Customers(v) = &mut old {
        v[0].vip_level = Some("金卡".into());
    }
    ch.apply(&old, 1).await.unwrap();
    assert_eq!(vip_levels(&env.app).await, newer, "the late job lost");
    let current = env
        .store()
        .snapshots(EntityKind::Customer, &["1".into(), "2".into()])
        .await
        .unwrap();
    ch.apply(&current, i64::MAX / 2).await.unwrap();
    ch.apply(&current, i64::MAX / 2).await.unwrap();
    assert_eq!(vip_levels(&env.app).await, newer);

    // A revisit's steps reach ClickHouse with their times.
    let (customer_id, person_id): (i64, i64) = env
        .rows("SELECT id, person_id FROM customers WHERE code = 'BJ-HA-001-C1'")
        .await[0];
    env.store()
        .create_revisits(
            &[NewRevisit::birthday(
                customer_id,
                person_id,
                NaiveDate::from_ymd_opt(2026, 5, 15).unwrap(),
            )],
            true,
            3,
            FrequencyCap::NONE,
        )
        .await
        .unwrap();
    let (revisit_id,): (i64,) = env.rows("SELECT id FROM revisits").await[0];
    env.store()
        .mark_revisit_failed(revisit_id, "LLM down", false)
        .await
        .unwrap();
    sync_now(&env.app).await;
    let (status, test_mode): (String, u8) = client
        .query("SELECT status, test_mode FROM revisits FINAL WHERE id = ?")
        .bind(revisit_id)
        .fetch_one()
        .await
        .unwrap();
    assert_eq!((status.as_str(), test_mode), ("failed", 1));
    workers.stop().await;
}

async fn a_clickhouse_that_is_down_only_delays_the_sync(backend: Backend) {
    let db = ChDb::new();
    let retry_fast = [
        ("REVISIT__JOBS__PROJECTION_SYNC__BASE_DELAY_SECS", "1"),
        ("REVISIT__JOBS__PROJECTION_SYNC__MAX_DELAY_SECS", "1"),
        ("REVISIT__CLICKHOUSE__DATABASE", db.name.as_str()),
        // Only ClickHouse's jobs here: every sync job is to be waiting for it.
        ("REVISIT__VECTORS__ENABLED", "false"),
        ("REVISIT__GRAPH__ENABLED", "false"),
    ];
    // Nothing listens on port 1: ClickHouse is down.
    let mut down = retry_fast.to_vec();
    down.push(("CLICKHOUSE_URL", "http://127.0.0.1:1"));
    let env = TestEnv::new(backend, &down).await;
    let workers = env.start_workers(vec![ProjectionDispatch::QUEUE, ProjectionSync::QUEUE]);
    let files = write(&tree("金卡"));
    let batch = import_tree(&env, files.path()).await;
    assert_eq!(
        env.store().import_log(&batch).await.unwrap().len(),
        6,
        "the primary store does not wait for the projection"
    );
    store::enqueue(env.store(), &env.app.settings, &ProjectionDispatch {}, None)
        .await
        .unwrap();
    eventually(Duration::from_secs(30), "sync jobs retrying", || async {
        let jobs = env.jobs_of(ProjectionSync::QUEUE).await;
        (!jobs.is_empty() && jobs.iter().all(|j| j.attempts >= 2 && j.state == "pending"))
            .then_some(())
    })
    .await;
    let lag = env
        .store()
        .projection_lag(ProjectionName::Clickhouse)
        .await
        .unwrap();
    // 2 institutions, a doctor, a project, a product, 2 customers (their persons with them),
    // 2 orders.
    assert_eq!(lag.in_jobs, 9, "{lag:?}");
    assert!(lag.oldest.is_some());
    workers.stop().await;

    // ClickHouse is back (here: a worker that reaches it); the same jobs finish.
    let mut up = retry_fast.to_vec();
    let url = clickhouse_url();
    up.push(("CLICKHOUSE_URL", url.as_str()));
    let app = env.app_with(&up).await;
    init_clickhouse(&app).await;
    let workers = start_workers_on(app.clone(), vec![ProjectionSync::QUEUE]);
    eventually(Duration::from_secs(30), "the catch-up", || async {
        let lag = app
            .store
            .projection_lag(ProjectionName::Clickhouse)
            .await
            .unwrap();
        (lag.total() == 0).then_some(())
    })
    .await;
    assert_eq!(vip_levels(&app).await.len(), 2);
    workers.stop().await;
}

async fn exec(env: &TestEnv, sql: &'static str) {
    match &env.app.pool {
        store::DbPool::Postgres(p) => {
            sqlx::query(sql).execute(p).await.unwrap();
        }
        store::DbPool::Sqlite(p) => {
            sqlx::query(sql).execute(p).await.unwrap();
        }
    }
}

async fn the_dashboard_is_the_same_from_clickhouse_and_from_the_primary_store(backend: Backend) {
    let db = ChDb::new();
    let overrides = ch_overrides(&db);
    let o: Vec<(&str, &str)> = overrides.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let env = TestEnv::new(backend, &o).await;
    init_clickhouse(&env.app).await;
    let workers = env.start_workers(vec![ProjectionDispatch::QUEUE, ProjectionSync::QUEUE]);
    let mut files = tree("金卡");
    // A refunded order counts for nothing; an old one is outside the twelve months.
    files.push((
        "more/BJ-HA-001/consumption_records.json",
        serde_json::json!([
            {"order_number": "BJ-HA-001-O3", "customer_code": "BJ-HA-001-C2", "order_date": "2026-02-03",
             "total_amount": 500.0, "status": "refunded", "items": [
                {"item_type": "product", "item_code": "PRD-001", "item_name": "面膜", "quantity": 5,
                 "unit_price": 100.0, "actual_price": 500.0}]},
            {"order_number": "BJ-HA-001-O4", "customer_code": "BJ-HA-001-C2", "order_date": "2024-12-01",
             "total_amount": 100.0, "items": [
                {"item_type": "product", "item_code": "PRD-001", "item_name": "面膜", "quantity": 1,
                 "unit_price": 100.0, "actual_price": 100.0}]}
        ])
        .to_string(),
    ));
    let dir = write(&files);
    import_tree(&env, dir.path()).await;
    import_tree(&env, &dir.path().join("more")).await;
    let ids: Vec<(i64, i64)> = env
        .rows("SELECT id, person_id FROM customers ORDER BY code")
        .await;
    let found: Vec<NewRevisit> = ids
        .iter()
        .map(|(customer_id, person_id)| {
            NewRevisit::birthday(
                *customer_id,
                *person_id,
                NaiveDate::from_ymd_opt(2026, 2, 12).unwrap(),
            )
        })
        .collect();
    env.store()
        .create_revisits(&found, false, 3, FrequencyCap::NONE)
        .await
        .unwrap();
    exec(
        &env,
        "UPDATE revisits SET status = 'sent', generated_at = created_at, sent_at = created_at
         WHERE customer_id = (SELECT id FROM customers WHERE code = 'BJ-HA-001-C1')",
    )
    .await;
    exec(
        &env,
        "UPDATE revisits SET status = 'failed'
         WHERE customer_id = (SELECT id FROM customers WHERE code = 'BJ-HA-001-C2')",
    )
    .await;
    sync_now(&env.app).await;

    let window =
        revisit::domain::dashboard::Window::new(NaiveDate::from_ymd_opt(2026, 2, 10).unwrap());
    let from_store = env.store().dashboard_facts(&window).await.unwrap();
    let ch = env.app.projections.clickhouse.clone().unwrap();
    let from_clickhouse = ch.dashboard_facts(&window).await.unwrap();
    for scope in [None, Some("BJ-HA-001"), Some("SH-ML-002")] {
        let a = revisit::domain::dashboard::build(&from_store, &window, scope).unwrap();
        let b = revisit::domain::dashboard::build(&from_clickhouse, &window, scope).unwrap();
        assert_eq!(a, b, "{scope:?}");
    }
    let (d, source) =
        revisit::analytics::dashboard(env.app.dashboard_sources(), None, window.as_of)
            .await
            .unwrap();
    assert_eq!(source, revisit::analytics::Source::Clickhouse);
    assert_eq!((d.customers, d.active_customers), (2, 2));
    let months: Vec<(&str, i64, i64)> = d
        .revenue_by_month
        .iter()
        .filter(|m| m.orders > 0)
        .map(|m| (m.month.as_str(), m.revenue_cents, m.orders))
        .collect();
    assert_eq!(
        months,
        vec![("2026-01", 262_000, 1), ("2026-02", 10_000, 1)]
    );
    assert_eq!(d.top_projects[0].name, "水光针");
    assert_eq!(
        (d.top_products[0].quantity, d.top_products[0].revenue_cents),
        (2, 20_000),
        "the refunded and the old order are not counted"
    );
    assert_eq!(
        d.funnel,
        revisit::domain::dashboard::Funnel {
            scanned: 2,
            generated: 1,
            sent: 1,
            failed: 1,
            opted_out: 0
        }
    );
    assert_eq!(d.institutions.len(), 2);
    workers.stop().await;
}

async fn sync_full_builds_a_projection_configured_after_the_data_arrived(backend: Backend) {
    // The data arrives while no ClickHouse is configured: its changes are dropped.
    let env = TestEnv::new(backend, &[]).await;
    let files = write(&tree("金卡"));
    import_tree(&env, files.path()).await;
    while env.store().dispatch_changes(&[], 1).await.unwrap().changes > 0 {}
    // Then ClickHouse is configured: `sync --full` builds it from the primary store, with the
    // worker daemons of the new configuration doing the work.
    let db = ChDb::new();
    let overrides = ch_overrides(&db);
    let o: Vec<(&str, &str)> = overrides.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = env.app_with(&o).await;
    let workers = start_workers_on(
        app.clone(),
        vec![ProjectionDispatch::QUEUE, ProjectionSync::QUEUE],
    );
    let cwd = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = run_cli_with(
        &env,
        &o,
        args(&["sync", "clickhouse", "--full", "--wait"]),
        Some(cwd.path().to_path_buf()),
    )
    .await;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("已与主库同步"), "{stdout}");
    assert!(stdout.contains("已排队"), "progress is shown: {stdout}");
    assert_eq!(vip_levels(&app).await.len(), 2);
    let orders: u64 = app
        .projections
        .clickhouse
        .as_ref()
        .unwrap()
        .client()
        .query("SELECT count() FROM orders FINAL")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(orders, 2);
    workers.stop().await;
}

async fn a_worker_without_clickhouse_settings_never_drops_its_changes(backend: Backend) {
    let db = ChDb::new();
    let overrides = ch_overrides(&db);
    let mut o: Vec<(&str, &str)> = overrides.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // Only ClickHouse is projected here: the last check counts every sync job.
    let only_ch = [
        ("REVISIT__VECTORS__ENABLED", "false"),
        ("REVISIT__GRAPH__ENABLED", "false"),
    ];
    o.extend(only_ch);
    // This process has no ClickHouse settings; another one of the deployment has.
    let env = TestEnv::new(backend, &only_ch).await;
    let with_ch = env.app_with(&o).await;
    init_clickhouse(&with_ch).await;
    let syncers = start_workers_on(with_ch.clone(), vec![ProjectionSync::QUEUE]);
    let files = write(&tree("金卡"));
    import_tree(&env, files.path()).await;
    // The dispatcher runs where ClickHouse is not configured.
    let dispatcher = env.start_workers(vec![ProjectionDispatch::QUEUE]);
    sync_now(&env.app).await;
    assert_eq!(vip_levels(&with_ch).await.len(), 2, "nothing was dropped");
    dispatcher.stop().await;
    syncers.stop().await;

    // `sync --stop` forgets it: later changes are no longer sent to it.
    let vars = {
        let mut v = env.child_env(&[("RUST_LOG", "warn"), only_ch[0], only_ch[1]]);
        v.push(("REVISIT__CRON__ENABLED".into(), "false".into()));
        v
    };
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_revisit"))
        .args(["sync", "clickhouse", "--stop"])
        .env_clear()
        .envs(vars)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let more = write(&tree("钻石卡"));
    import_tree(&env, more.path()).await;
    let page = env.store().dispatch_changes(&[], 1).await.unwrap();
    assert!(page.changes > 0);
    assert_eq!(page.jobs, 0, "no sync jobs for a stopped projection");
}
