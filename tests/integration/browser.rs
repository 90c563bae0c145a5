//! The staff console in a real browser. This test prepares a database (two institutions, two
//! BJ customers with birthdays in the coming week, a webhook gateway on 127.0.0.1 that refuses
//! the first message), starts the API and the workers, and runs `tests/browser/console.test.mjs`:
//! Debian's Chromium driven by playwright-core (installed from npm by `npm ci` in
//! tests/browser; nothing downloads a browser). Screenshots go to a temporary folder, or to
//! `REVISIT_SCREENSHOTS` (e.g. docs/console) to refresh the ones in the docs.

use std::{path::Path, process::Command, sync::Arc, time::Duration};

use chrono::{Datelike, Utc};
use revisit::{
    config::Backend,
    domain::followup::FrequencyCap,
    domain::followup::Occasion,
    store::{NewRevisit, access::Role},
};
use revisit_jobs::{
    GreetingGenerate, ImportFile, Job, MessageSend, ProjectionDispatch, ProjectionName,
    ProjectionSync, ReminderScan,
};
use serde_json::json;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_works_in_a_real_browser() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let browser_dir = root.join("tests/browser");
    if !browser_dir.join("node_modules/playwright-core").exists() {
        let ci = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&browser_dir)
            .status()
            .expect("npm (Node.js) is needed for the browser test");
        assert!(ci.success(), "npm ci in tests/browser failed");
    }
    let hook = MockServer::start(Arc::new(|n, _| {
        // The gateway is down for the first message: with one attempt allowed it fails, and
        // a retry (the gateway back) sends it.
        if n == 0 {
            (503, vec![], json!({"error": "gateway busy"}))
        } else {
            (200, vec![], json!({"ok": true}))
        }
    }))
    .await;
    let uploads = tempfile::tempdir().unwrap();
    let uploads_dir = uploads.path().display().to_string();
    let env = TestEnv::new(
        Backend::Sqlite,
        &[
            ("REVISIT__REMINDERS__CHANNEL", "webhook"),
            ("REVISIT__WEBHOOK__URL", &hook.url),
            ("REVISIT__API__UPLOADS_DIR", &uploads_dir),
            ("REVISIT__JOBS__MESSAGE.SEND__MAX_ATTEMPTS", "1"),
            // The queue page's chart, written every second rather than every minute.
            ("REVISIT__WORKER__STATS_SECS", "1"),
        ],
    )
    .await;
    // Birthdays one and three days from today (in the configured time zone's year).
    let today = Utc::now()
        .with_timezone(&env.app.settings.tz())
        .date_naive();
    let birthday = |days: i64| {
        let d = today + chrono::Duration::days(days);
        // 1990 had no 29 February.
        let day = if (d.month(), d.day()) == (2, 29) {
            28
        } else {
            d.day()
        };
        format!("1990-{:02}-{day:02}", d.month())
    };
    let (b1, b3) = (birthday(1), birthday(3));
    let sh = json!([{"customer_code": "SH-ML-002-C1", "person": {"name": "赵敏", "gender": "女", "birthday": "1991-07-07", "phone": "13700137000"}}]);
    // Both BJ customers had 水光针 by the same doctor: each is the other's similar customer.
    let orders = r#"[{"order_number":"BJ-O1","customer_code":"BJ-HA-001-C1","order_date":"2026-01-15",
        "total_amount":2520.0,"items":[{"item_type":"project","item_code":"PRJ-001","item_name":"水光针",
        "quantity":1,"unit_price":2800.0,"discount":0.9,"actual_price":2520.0,"doctor_code":"DOC-1"}]},
        {"order_number":"BJ-O2","customer_code":"BJ-HA-001-C2","order_date":"2026-02-20",
        "total_amount":2800.0,"items":[{"item_type":"project","item_code":"PRJ-001","item_name":"水光针",
        "quantity":1,"unit_price":2800.0,"actual_price":2800.0,"doctor_code":"DOC-1"}]}]"#;
    let tree = write_tree(&[
        ("common/institutions.json", INSTITUTIONS),
        ("common/projects.json", PROJECTS),
        ("common/products.json", PRODUCTS),
        ("common/doctors.json", DOCTORS),
        (
            "BJ-HA-001/customers.json",
            &customers_json(&[
                ("BJ-HA-001-C1", "张丽", &b1, "13800138000"),
                ("BJ-HA-001-C2", "王芳", &b3, "13900139000"),
            ]),
        ),
        ("BJ-HA-001/consumption_records.json", orders),
        ("SH-ML-002/customers.json", &sh.to_string()),
    ]);
    import_tree(&env, tree.path()).await;
    // A low score on a check-in of 张丽's: a task for BJ-HA-001's staff.
    let (customer_id, person_id): (i64, i64) = env
        .rows("SELECT id, person_id FROM customers WHERE code = 'BJ-HA-001-C1'")
        .await[0];
    let checkin = NewRevisit {
        occasion: Occasion::Checkin,
        order_number: Some("BJ-O1".into()),
        item_code: Some("PRJ-001".into()),
        day_offset: Some(7),
        asks_score: true,
        ..NewRevisit::birthday(customer_id, person_id, today)
    };
    env.store()
        .create_revisits(&[checkin], true, 3, FrequencyCap::NONE)
        .await
        .unwrap();
    let (checkin_id,): (i64,) = env
        .rows("SELECT id FROM revisits WHERE occasion = 'checkin'")
        .await[0];
    let scored = env.store().score_revisit(checkin_id, 1, 2).await.unwrap();
    assert!(scored.and_then(|s| s.task_id).is_some());
    let admin = api_token(env.store(), Role::Admin, None).await;
    let staff = api_token(env.store(), Role::Staff, Some("BJ-HA-001")).await;
    let other = api_token(env.store(), Role::Staff, Some("SH-ML-002")).await;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = revisit::api::router(env.app.clone());
    let server = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let workers = env.start_workers(vec![
        ImportFile::QUEUE,
        ReminderScan::QUEUE,
        GreetingGenerate::QUEUE,
        MessageSend::QUEUE,
        ProjectionDispatch::QUEUE,
        ProjectionSync::QUEUE,
    ]);
    // Vector search filled, for the customer page's similar customers.
    revisit::handlers::projection_rebuild::rebuild(&env.app, ProjectionName::Vectors, |_, _| {})
        .await
        .unwrap();
    eventually(Duration::from_secs(60), "vector search filled", || async {
        let lag = env
            .store()
            .projection_lag(ProjectionName::Vectors)
            .await
            .unwrap();
        if lag.undispatched > 0 {
            // Changes made since the rebuild's own dispatch (the check-in's score above).
            revisit::store::enqueue(env.store(), &env.app.settings, &ProjectionDispatch {}, None)
                .await
                .unwrap();
        }
        (lag.total() == 0).then_some(())
    })
    .await;

    let shots = match std::env::var("REVISIT_SCREENSHOTS") {
        Ok(dir) => root.join(dir),
        Err(_) => std::env::temp_dir().join(format!("revisit-console-{}", ulid::Ulid::generate())),
    };
    std::fs::create_dir_all(&shots).unwrap();
    let run = tokio::process::Command::new("node")
        .args(["--test", "--test-reporter=spec", "console.test.mjs"])
        .current_dir(&browser_dir)
        .env("BASE_URL", &base)
        .env("ADMIN_TOKEN", &admin)
        .env("STAFF_TOKEN", &staff)
        .env("OTHER_TOKEN", &other)
        .env("SCREENSHOTS", &shots)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("the browser test finished within 5 minutes")
        .expect("node runs");
    workers.stop().await;
    server.abort();
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "browser test failed:\n{report}");
    assert_eq!(
        hook.count(),
        3,
        "two real sends and one retry, nothing twice:\n{report}"
    );
    for name in [
        "1-system-check.png",
        "2-initialise.png",
        "3-import.png",
        "4-birthday-revisit.png",
        "5-customers.png",
        "6-jobs.png",
        "7-dashboard.png",
        "8-tasks.png",
    ] {
        assert!(shots.join(name).exists(), "screenshot {name}");
    }
}
