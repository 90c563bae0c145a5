//! The REST API over real HTTP, on both engines: what each token may see (a staff token is
//! refused everything of another institution and learns nothing about it), strict parameters,
//! JSON errors, a test-mode birthday run and a failed send retried through the API, an upload
//! followed to its per-record errors, and the docs served from the binary.

use std::{sync::Arc, time::Duration};

use reqwest::{Client, Method, StatusCode};
use revisit::{app::App, config::Backend, store::access::Role};
use revisit_jobs::{GreetingGenerate, ImportFile, Job, MessageSend, ReminderScan};
use serde_json::{Value, json};

use crate::harness::*;

crate::on_both_backends!(
    a_staff_token_sees_only_its_institution,
    bad_parameters_and_bodies_are_json_errors_naming_them,
    customers_page_and_search_with_phones_masked,
    a_test_mode_run_and_a_failed_send_retried_through_the_api,
    an_upload_is_imported_and_its_rejected_records_named,
    docs_and_console_are_served_from_the_binary,
    staff_meet_limits_and_never_see_secrets,
    liveness_and_readiness_probes_answer_without_a_token,
    admins_pause_and_resume_a_queue_that_every_worker_obeys,
);

/// The console's queue page through the API: staff are refused; an admin sees every queue,
/// pauses one (a worker then leaves its jobs alone) and resumes it (they run).
async fn admins_pause_and_resume_a_queue_that_every_worker_obeys(backend: Backend) {
    use revisit_jobs::Noop;
    let env = TestEnv::new(backend, &[]).await;
    two_institutions(&env).await;
    let admin = token(&env, Role::Admin, None).await;
    let staff = token(&env, Role::Staff, Some("BJ-HA-001")).await;
    let s = Server::start(env.app.clone()).await;
    let (st, _) = s.get("/api/v1/queues", Some(&staff)).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _) = s
        .post("/api/v1/queues/bench.noop/pause", &staff, json!({}))
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    let (st, body) = s
        .post(
            "/api/v1/queues/bench.noop/pause",
            &admin,
            json!({"reason": "网关故障"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let (st, _) = s
        .post("/api/v1/queues/bench.noop/pause", &admin, json!({}))
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "paused already");
    let (st, _) = s
        .post("/api/v1/queues/no.such.queue/pause", &admin, json!({}))
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    let job = revisit::store::enqueue(env.store(), &env.app.settings, &Noop::default(), None)
        .await
        .unwrap()
        .unwrap();
    let workers = env.start_workers(vec![Noop::QUEUE]);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        env.job(&job).await.state,
        "pending",
        "a paused queue's job waits"
    );
    let (st, body) = s.get("/api/v1/queues", Some(&admin)).await;
    assert_eq!(st, StatusCode::OK);
    let queues = body["queues"].as_array().unwrap();
    assert!(queues.len() >= 14, "every queue is listed: {body}");
    let message_send = queues.iter().find(|q| q["kind"] == "message.send").unwrap();
    assert_eq!(message_send["paused"], false);

    let (st, body) = s
        .post("/api/v1/queues/bench.noop/resume", &admin, json!({}))
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    eventually(
        Duration::from_secs(10),
        "the resumed queue's job",
        || async { (env.job(&job).await.state == "done").then_some(()) },
    )
    .await;
    workers.stop().await;
}

/// The API on a free port of 127.0.0.1, for as long as the test runs.
pub struct Server {
    pub base: String,
    pub http: Client,
    _task: tokio::task::JoinHandle<()>,
}

impl Server {
    pub async fn start(app: Arc<App>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let router = revisit::api::router(app);
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self {
            base,
            http: Client::new(),
            _task: task,
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }
}

pub async fn token(env: &TestEnv, role: Role, institution: Option<&str>) -> String {
    api_token(env.store(), role, institution).await
}

/// Two institutions, each with customers whose birthdays are on 2026-03-01.
async fn two_institutions(env: &TestEnv) {
    let sh_customers = r#"[{"customer_code":"SH-ML-002-C1","person":{"name":"赵敏","gender":"女","birthday":"1991-03-02","phone":"13700137000"},"notes":"对玻尿酸过敏"}]"#;
    let tree = write_tree(&[
        ("common/institutions.json", INSTITUTIONS),
        ("common/projects.json", PROJECTS),
        (
            "BJ-HA-001/customers.json",
            &customers_json(&[
                ("BJ-HA-001-C1", "张丽", "1990-03-01", "13800138000"),
                ("BJ-HA-001-C2", "王芳", "1992-03-03", "13900139000"),
            ]),
        ),
        ("SH-ML-002/customers.json", sh_customers),
    ]);
    import_tree(env, tree.path()).await;
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

async fn a_staff_token_sees_only_its_institution(backend: Backend) {
    let env = TestEnv::new(backend, &[]).await;
    two_institutions(&env).await;
    let admin = token(&env, Role::Admin, None).await;
    let bj = token(&env, Role::Staff, Some("BJ-HA-001")).await;
    let sh = token(&env, Role::Staff, Some("SH-ML-002")).await;
    // An SH revisit and an SH scan job, for BJ to try to reach.
    let s = Server::start(env.app.clone()).await;
    let (st, run) = s
        .post(
            "/api/v1/reminders/SH-ML-002/run",
            &sh,
            json!({"test_mode": true, "today": "2026-02-28"}),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{run}");
    let sh_job = run["job_id"].as_str().unwrap().to_owned();
    let workers = env.start_workers(vec![
        ReminderScan::QUEUE,
        GreetingGenerate::QUEUE,
        MessageSend::QUEUE,
    ]);
    let sh_revisit = eventually(Duration::from_secs(30), "the SH revisit", || async {
        let (_, page) = s.get("/api/v1/revisits", Some(&sh)).await;
        page["items"]
            .as_array()
            .and_then(|a| a.first())
            .map(|r| r["id"].as_i64().unwrap())
    })
    .await;
    workers.stop().await;

    // Without a token, or with a bad one: 401, as JSON.
    let (st, body) = s.get("/api/v1/me", None).await;
    assert_eq!(
        (st, code(&body)),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    let (st, _) = s.get("/api/v1/me", Some("rv_nonsense")).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, body) = s.get("/health", None).await;
    assert_eq!((st, body["status"].as_str()), (StatusCode::OK, Some("ok")));
    assert!(body.get("details").is_none(), "no details without a token");
    let (_, body) = s.get("/health", Some(&admin)).await;
    assert!(body["details"]["store_ok"].as_bool().unwrap());
    let (_, body) = s.get("/health", Some(&bj)).await;
    assert!(
        body.get("details").is_none(),
        "the chain's queue figures are an admin's: {body}"
    );

    let (_, me) = s.get("/api/v1/me", Some(&bj)).await;
    assert_eq!(me["role"], "staff");
    assert_eq!(me["institutions"].as_array().unwrap().len(), 1);

    // Every way into SH with BJ's token is refused, and the answers carry nothing of SH's.
    let refused: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/api/v1/customers/SH-ML-002".into(), None),
        (
            Method::GET,
            "/api/v1/customers/SH-ML-002/SH-ML-002-C1".into(),
            None,
        ),
        (Method::GET, "/api/v1/customers/NO-SUCH-INST".into(), None),
        (
            Method::GET,
            "/api/v1/reminders/SH-ML-002/upcoming-birthdays?days=7".into(),
            None,
        ),
        (
            Method::POST,
            "/api/v1/reminders/SH-ML-002/run".into(),
            Some(json!({})),
        ),
        (
            Method::POST,
            "/api/v1/reminders/all/run".into(),
            Some(json!({})),
        ),
        (
            Method::GET,
            format!("/api/v1/reminders/runs/{sh_job}"),
            None,
        ),
        (
            Method::GET,
            "/api/v1/analytics/dashboard?institution=SH-ML-002".into(),
            None,
        ),
        (
            Method::GET,
            "/api/v1/revisits?institution=SH-ML-002".into(),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/revisits/{sh_revisit}/retry"),
            Some(json!({})),
        ),
        (Method::GET, "/api/v1/jobs".into(), None),
        (Method::POST, format!("/api/v1/jobs/{sh_job}/retry"), None),
        (Method::POST, "/api/v1/system/init".into(), Some(json!({}))),
        (
            Method::POST,
            "/api/v1/imports?kind=customers&institution=SH-ML-002".into(),
            Some(json!([])),
        ),
        (
            Method::POST,
            "/api/v1/imports?kind=projects".into(),
            Some(json!([])),
        ),
    ];
    for (method, path, body) in refused {
        let (st, answer) = s.call(method.clone(), &path, Some(&bj), body).await;
        assert!(
            st == StatusCode::FORBIDDEN || st == StatusCode::NOT_FOUND,
            "{method} {path}: {st} {answer}"
        );
        let text = answer.to_string();
        for secret in ["赵敏", "13700137000", "0137000", "SH-ML-002-C1", "玻尿酸"] {
            assert!(
                !text.contains(secret),
                "{method} {path} leaked {secret}: {text}"
            );
        }
    }
    // What BJ does see is BJ's only.
    let (_, page) = s.get("/api/v1/revisits", Some(&bj)).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 0);
    let (st, d) = s.get("/api/v1/analytics/dashboard", Some(&bj)).await;
    assert_eq!(st, StatusCode::OK, "{d}");
    assert_eq!(d["dashboard"]["institution"], "BJ-HA-001");
    assert_eq!(d["dashboard"]["customers"], 2);
    assert_eq!(d["dashboard"]["institutions"].as_array().unwrap().len(), 0);

    // An admin sees the chain.
    let (_, page) = s.get("/api/v1/customers/SH-ML-002", Some(&admin)).await;
    assert_eq!(page["items"][0]["code"], "SH-ML-002-C1");
    let (_, d) = s.get("/api/v1/analytics/dashboard", Some(&admin)).await;
    assert_eq!(d["dashboard"]["customers"], 3);
    let (st, _) = s.get("/api/v1/jobs?state=done", Some(&admin)).await;
    assert_eq!(st, StatusCode::OK);
    let (st, run) = s
        .get(&format!("/api/v1/reminders/runs/{sh_job}"), Some(&admin))
        .await;
    assert_eq!((st, run["state"].as_str()), (StatusCode::OK, Some("done")));

    // A revoked token is refused at once.
    let id = env
        .store()
        .list_tokens()
        .await
        .unwrap()
        .iter()
        .find(|t| t.institution_code.as_deref() == Some("BJ-HA-001"))
        .unwrap()
        .id;
    assert!(env.store().revoke_token(id).await.unwrap());
    let (st, _) = s.get("/api/v1/me", Some(&bj)).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
}

async fn bad_parameters_and_bodies_are_json_errors_naming_them(backend: Backend) {
    let env = TestEnv::new(backend, &[("REVISIT__API__MAX_BODY_KB", "1")]).await;
    two_institutions(&env).await;
    let admin = token(&env, Role::Admin, None).await;
    let s = Server::start(env.app.clone()).await;
    for (path, param) in [
        ("/api/v1/customers/BJ-HA-001?limit=0", "limit"),
        ("/api/v1/customers/BJ-HA-001?limt=5", "limt"),
        (
            "/api/v1/reminders/BJ-HA-001/upcoming-birthdays?days=abc",
            "days",
        ),
        (
            "/api/v1/reminders/BJ-HA-001/upcoming-birthdays?from=2026-02-30",
            "from",
        ),
        ("/api/v1/revisits?status=lost", "status"),
        ("/api/v1/revisits?test_mode=maybe", "test_mode"),
        ("/api/v1/jobs?kind=no.such", "kind"),
        ("/api/v1/analytics/dashboard?date=yesterday", "date"),
        ("/api/v1/imports?kind=customers", "institution"),
    ] {
        let method = if path.starts_with("/api/v1/imports") {
            Method::POST
        } else {
            Method::GET
        };
        let (st, body) = s.call(method, path, Some(&admin), Some(json!([]))).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(code(&body), "bad_parameter", "{path}");
        assert_eq!(body["error"]["param"], param, "{path}");
        assert!(!body["error"]["message"].as_str().unwrap().is_empty());
    }
    let (st, body) = s
        .post(
            "/api/v1/reminders/BJ-HA-001/run",
            &admin,
            json!({"test_mode": "yes"}),
        )
        .await;
    assert_eq!(
        (st, code(&body)),
        (StatusCode::BAD_REQUEST, "bad_body"),
        "{body}"
    );
    assert_eq!(body["error"]["param"], "test_mode");
    let (st, body) = s
        .post(
            "/api/v1/reminders/BJ-HA-001/run",
            &admin,
            json!({"tset_mode": true}),
        )
        .await;
    assert_eq!(
        st,
        StatusCode::BAD_REQUEST,
        "unknown fields are refused: {body}"
    );
    let (st, body) = s
        .post("/api/v1/revisits/abc/retry", &admin, json!({}))
        .await;
    assert_eq!(
        (st, body["error"]["param"].as_str()),
        (StatusCode::BAD_REQUEST, Some("id"))
    );
    let big = json!({"test_mode": true, "padding": "x".repeat(4096)});
    let (st, body) = s.post("/api/v1/reminders/BJ-HA-001/run", &admin, big).await;
    assert_eq!(
        (st, code(&body)),
        (StatusCode::PAYLOAD_TOO_LARGE, "too_large")
    );
    let (st, body) = s.get("/api/v1/nothing/here", Some(&admin)).await;
    assert_eq!((st, code(&body)), (StatusCode::NOT_FOUND, "not_found"));
    // Nothing was enqueued by the refused requests.
    assert!(env.jobs_of(ReminderScan::QUEUE).await.is_empty());
}

async fn customers_page_and_search_with_phones_masked(backend: Backend) {
    let env = TestEnv::new(backend, &[]).await;
    let rows: Vec<(String, String, String, String)> = (1..=5)
        .map(|i| {
            (
                format!("BJ-HA-001-C{i}"),
                format!("客户{i}号"),
                "1990-06-01".to_owned(),
                format!("1380013800{i}"),
            )
        })
        .collect();
    let refs: Vec<(&str, &str, &str, &str)> = rows
        .iter()
        .map(|(a, b, c, d)| (a.as_str(), b.as_str(), c.as_str(), d.as_str()))
        .collect();
    let tree = write_tree(&[
        ("common/institutions.json", INSTITUTIONS),
        ("BJ-HA-001/customers.json", &customers_json(&refs)),
    ]);
    import_tree(&env, tree.path()).await;
    let bj = token(&env, Role::Staff, Some("BJ-HA-001")).await;
    let s = Server::start(env.app.clone()).await;
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(a) => format!("/api/v1/customers/BJ-HA-001?limit=2&after={a}"),
            None => "/api/v1/customers/BJ-HA-001?limit=2".into(),
        };
        let (st, page) = s.get(&path, Some(&bj)).await;
        assert_eq!(st, StatusCode::OK, "{page}");
        for c in page["items"].as_array().unwrap() {
            seen.push(c["code"].as_str().unwrap().to_owned());
            let phone = c["phone"].as_str().unwrap();
            assert!(phone.contains("****"), "masked: {phone}");
        }
        match page["next_after"].as_str() {
            Some(a) => after = Some(a.to_owned()),
            None => break,
        }
    }
    assert_eq!(
        seen,
        rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
        "every customer once, in order"
    );
    // A phone matches whole or by exactly its last four digits; any other end of it matches
    // nothing, so the masked list `138****8003` cannot be completed a digit at a time.
    for (q, want) in [
        ("13800138003", 1),
        ("138-0013-8003", 1),
        ("8003", 1),
        ("38003", 0),
        ("138003", 0),
        ("0138003", 0),
        ("00138003", 0),
    ] {
        let (st, found) = s
            .get(&format!("/api/v1/customers/BJ-HA-001?q={q}"), Some(&bj))
            .await;
        assert_eq!(st, StatusCode::OK, "{found}");
        let items = found["items"].as_array().unwrap();
        assert_eq!(items.len(), want, "q={q}: {found}");
        if want == 1 {
            assert_eq!(items[0]["code"], "BJ-HA-001-C3");
        }
    }
    let (_, found) = s.get("/api/v1/customers/BJ-HA-001?q=4号", Some(&bj)).await;
    assert_eq!(found["items"][0]["code"], "BJ-HA-001-C4", "part of a name");
    let (_, found) = s.get("/api/v1/customers/BJ-HA-001?q=%25", Some(&bj)).await;
    assert_eq!(
        found["items"].as_array().unwrap().len(),
        0,
        "% is a character, not a wildcard"
    );
    let (st, one) = s
        .get("/api/v1/customers/BJ-HA-001/BJ-HA-001-C2", Some(&bj))
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(one["name"], "客户2号");
    assert!(
        !one.to_string().contains("13800138002"),
        "the full phone never leaves"
    );
    assert_eq!(one["tags"][0], "敏感肌");
    let (st, _) = s
        .get("/api/v1/customers/BJ-HA-001/BJ-HA-001-C9", Some(&bj))
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

/// Security review, findings 3, 5 and 6 over HTTP: searches per token are limited, staff see
/// neither credentials nor the chain's figures in the system check, staff cannot start a real
/// scan, nor anyone a real one dated ahead.
async fn staff_meet_limits_and_never_see_secrets(backend: Backend) {
    let env = TestEnv::new(
        backend,
        &[
            ("REVISIT__API__SEARCHES_PER_MINUTE", "3"),
            (
                "LLM_API_URL",
                "https://llm.example.com/v1/chat/completions?api_key=sk-leak123456789",
            ),
            ("LLM_API_KEY", "sk-test"),
        ],
    )
    .await;
    two_institutions(&env).await;
    let admin = token(&env, Role::Admin, None).await;
    let bj = token(&env, Role::Staff, Some("BJ-HA-001")).await;
    let sh = token(&env, Role::Staff, Some("SH-ML-002")).await;
    let s = Server::start(env.app.clone()).await;

    for _ in 0..3 {
        let (st, body) = s.get("/api/v1/customers/BJ-HA-001?q=张", Some(&bj)).await;
        assert_eq!(st, StatusCode::OK, "{body}");
    }
    let (st, body) = s.get("/api/v1/customers/BJ-HA-001?q=王", Some(&bj)).await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("搜索过于频繁")
    );
    let (st, _) = s.get("/api/v1/customers/BJ-HA-001", Some(&bj)).await;
    assert_eq!(st, StatusCode::OK, "a page without a search is not limited");
    let (st, _) = s.get("/api/v1/customers/SH-ML-002?q=赵", Some(&sh)).await;
    assert_eq!(st, StatusCode::OK, "another token has its own allowance");

    // The system check: the admin sees where things are (credentials redacted), staff only
    // whether each part works. What the workers use (the LLM, the channel) is what a worker
    // last found, not this server's settings; before any worker checked, it says so.
    let (_, before) = s.get("/api/v1/system/check", Some(&admin)).await;
    assert!(
        before.to_string().contains("还没有 worker 报告过"),
        "{before}"
    );
    let workers = env.start_workers(vec![revisit_jobs::SystemHealth::QUEUE]);
    let id = revisit::store::enqueue(
        env.store(),
        &env.app.settings,
        &revisit_jobs::SystemHealth::default(),
        None,
    )
    .await
    .unwrap()
    .unwrap();
    eventually(Duration::from_secs(30), "the workers' check", || async {
        (env.job(&id).await.state == "done").then_some(())
    })
    .await;
    workers.stop().await;
    let (st, admin_check) = s.get("/api/v1/system/check", Some(&admin)).await;
    assert_eq!(st, StatusCode::OK);
    let text = admin_check.to_string();
    assert!(text.contains("llm.example.com"), "{text}");
    assert!(text.contains("worker 于"), "{text}");
    // llm.example.com cannot be reached from here: not ✅ for an LLM never reached.
    let llm = admin_check
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "LLM")
        .unwrap();
    assert_eq!(llm["ok"], json!(false), "{llm}");
    assert!(!text.contains("sk-leak"), "{text}");
    let (_, staff_check) = s.get("/api/v1/system/check", Some(&bj)).await;
    let text = staff_check.to_string();
    assert!(
        !text.contains("llm.example.com") && !text.contains("待执行"),
        "{text}"
    );
    assert!(text.contains("正常"), "{text}");
    let (_, health) = s.get("/health", Some(&bj)).await;
    assert!(health.get("details").is_none(), "{health}");
    let (_, health) = s.get("/health", Some(&admin)).await;
    assert!(health["details"]["jobs_pending"].is_number(), "{health}");

    // Real scans: an admin's, for today only.
    let (st, body) = s
        .post(
            "/api/v1/reminders/BJ-HA-001/run",
            &bj,
            json!({"test_mode": false}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{body}");
    let ahead = (chrono::Utc::now() + chrono::Duration::days(90))
        .date_naive()
        .to_string();
    let (st, body) = s
        .post(
            "/api/v1/reminders/BJ-HA-001/run",
            &admin,
            json!({"test_mode": false, "today": ahead}),
        )
        .await;
    assert_eq!(
        (st, body["error"]["param"].as_str()),
        (StatusCode::BAD_REQUEST, Some("today")),
        "{body}"
    );
    let (st, body) = s
        .post(
            "/api/v1/reminders/BJ-HA-001/run",
            &bj,
            json!({"today": ahead}),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "test mode, any day: {body}");
    assert_eq!(
        env.jobs_of(ReminderScan::QUEUE).await.len(),
        1,
        "only the test-mode scan was enqueued"
    );

    // A token may expire: refused after its time like a revoked one.
    let inst = env.store().institution("BJ-HA-001").await.unwrap().unwrap();
    for (days, want) in [
        (Some(0), StatusCode::UNAUTHORIZED),
        (Some(30), StatusCode::OK),
    ] {
        let (secret, prefix) = revisit::api::auth::new_secret().unwrap();
        env.store()
            .create_token(&revisit::store::access::NewToken {
                hash: revisit::api::auth::digest(&secret),
                prefix,
                role: Role::Staff,
                institution_id: Some(inst.id),
                label: None,
                expires_in_days: days,
            })
            .await
            .unwrap();
        let (st, body) = s.get("/api/v1/me", Some(&secret)).await;
        assert_eq!(st, want, "expires in {days:?} days: {body}");
    }
    let listed = env.store().list_tokens().await.unwrap();
    assert_eq!(listed.iter().filter(|t| t.expires_at.is_some()).count(), 2);
}

async fn a_test_mode_run_and_a_failed_send_retried_through_the_api(backend: Backend) {
    // The gateway refuses the first message for good (400), then accepts.
    let hook = MockServer::start(Arc::new(|n, _| {
        if n == 0 {
            (400, vec![], json!({"error": "bad number"}))
        } else {
            (200, vec![], json!({"ok": true}))
        }
    }))
    .await;
    let env = TestEnv::new(
        backend,
        &[
            ("REVISIT__REMINDERS__CHANNEL", "webhook"),
            ("REVISIT__WEBHOOK__URL", &hook.url),
        ],
    )
    .await;
    two_institutions(&env).await;
    let bj = token(&env, Role::Staff, Some("BJ-HA-001")).await;
    let s = Server::start(env.app.clone()).await;
    let workers = env.start_workers(vec![
        ReminderScan::QUEUE,
        GreetingGenerate::QUEUE,
        MessageSend::QUEUE,
    ]);

    let (_, up) = s
        .get(
            "/api/v1/reminders/BJ-HA-001/upcoming-birthdays?days=7&from=2026-02-28",
            Some(&bj),
        )
        .await;
    let codes: Vec<&str> = up["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["BJ-HA-001-C1", "BJ-HA-001-C2"], "{up}");
    assert_eq!(up["items"][0]["days_until"], 1);

    // Test mode (the default): generated and shown, nothing sent.
    let (st, run) = s
        .post(
            "/api/v1/reminders/BJ-HA-001/run",
            &bj,
            json!({"today": "2026-02-28"}),
        )
        .await;
    assert_eq!(
        (st, run["test_mode"].as_bool()),
        (StatusCode::ACCEPTED, Some(true)),
        "{run}"
    );
    let job = run["job_id"].as_str().unwrap().to_owned();
    let items = eventually(Duration::from_secs(30), "test-mode greetings", || async {
        let (_, page) = s.get("/api/v1/revisits?test_mode=true", Some(&bj)).await;
        let items = page["items"].as_array().unwrap().clone();
        (items.len() == 2 && items.iter().all(|r| r["status"] == "sent")).then_some(items)
    })
    .await;
    assert!(
        items
            .iter()
            .all(|r| !r["message"].as_str().unwrap().is_empty())
    );
    let (_, state) = s
        .get(&format!("/api/v1/reminders/runs/{job}"), Some(&bj))
        .await;
    assert_eq!(state["state"], "done");
    assert_eq!(hook.count(), 0, "test mode sends nothing");

    // For real: the first send is refused for good and the revisit fails; a retry delivers it.
    // A real scan of a day other than today is not the API's (staff may not start one, an
    // admin only for today): it is enqueued as the cron producer or `revisit reminders run
    // --real --today` would.
    let (st, _) = s
        .post(
            "/api/v1/reminders/BJ-HA-001/run",
            &bj,
            json!({"test_mode": false, "today": "2026-02-28"}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (scan, _) = revisit::queue::scans::scan_job(
        &env.app.settings,
        revisit::domain::followup::Occasion::Birthday,
        revisit_jobs::ScanScope {
            institution: Some("BJ-HA-001".into()),
            test_mode: false,
            today: chrono::NaiveDate::from_ymd_opt(2026, 2, 28),
        },
    );
    env.store().enqueue(scan).await.unwrap().unwrap();
    let (failed, sent) = eventually(Duration::from_secs(30), "one failed, one sent", || async {
        let (_, page) = s.get("/api/v1/revisits?test_mode=false", Some(&bj)).await;
        let items = page["items"].as_array().unwrap().clone();
        let failed: Vec<Value> = items
            .iter()
            .filter(|r| r["status"] == "failed")
            .cloned()
            .collect();
        let sent = items.iter().filter(|r| r["status"] == "sent").count();
        (failed.len() == 1 && sent == 1).then(|| (failed[0].clone(), sent))
    })
    .await;
    assert_eq!(sent, 1);
    assert_eq!(failed["status_label"], "失败");
    assert!(
        failed["last_error"].as_str().unwrap().contains("400"),
        "{failed}"
    );
    let id = failed["id"].as_i64().unwrap();
    let (st, answer) = s
        .post(&format!("/api/v1/revisits/{id}/retry"), &bj, json!({}))
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{answer}");
    eventually(Duration::from_secs(30), "the retried send", || async {
        let (_, page) = s
            .get("/api/v1/revisits?status=sent&test_mode=false", Some(&bj))
            .await;
        (page["items"].as_array().unwrap().len() == 2).then_some(())
    })
    .await;
    assert_eq!(
        hook.count(),
        3,
        "two first tries and the retry; nothing twice"
    );
    let (st, body) = s
        .post(&format!("/api/v1/revisits/{id}/retry"), &bj, json!({}))
        .await;
    assert_eq!((st, code(&body)), (StatusCode::CONFLICT, "not_failed"));
    workers.stop().await;
}

async fn an_upload_is_imported_and_its_rejected_records_named(backend: Backend) {
    let uploads = tempfile::tempdir().unwrap();
    let dir = uploads.path().display().to_string();
    let env = TestEnv::new(
        backend,
        &[
            ("REVISIT__API__UPLOADS_DIR", &dir),
            ("REVISIT__API__MAX_UPLOAD_MB", "1"),
        ],
    )
    .await;
    let tree = write_tree(&[("common/institutions.json", INSTITUTIONS)]);
    import_tree(&env, tree.path()).await;
    let bj = token(&env, Role::Staff, Some("BJ-HA-001")).await;
    let sh = token(&env, Role::Staff, Some("SH-ML-002")).await;
    let s = Server::start(env.app.clone()).await;
    let file = json!([
        {"customer_code": "BJ-HA-001-C1", "person": {"name": "张丽", "gender": "女", "birthday": "1990-05-15", "phone": "13800138000"}},
        {"customer_code": "BJ-HA-001-C2", "person": {"name": "王芳", "gender": "女", "birthday": "1990-13-45", "phone": "13900139000"}}
    ]);
    let (st, body) = s.post("/api/v1/imports?kind=customers", &bj, file).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["institution"], "BJ-HA-001");
    let batch = body["batch"].as_str().unwrap().to_owned();
    let (_, queued) = s.get(&format!("/api/v1/imports/{batch}"), Some(&bj)).await;
    assert_eq!(queued["state"], "queued");
    let workers = env.start_workers(vec![ImportFile::QUEUE]);
    let done = eventually(Duration::from_secs(30), "the upload imported", || async {
        let (_, s) = s.get(&format!("/api/v1/imports/{batch}"), Some(&bj)).await;
        (s["state"] == "done").then_some(s)
    })
    .await;
    workers.stop().await;
    let f = &done["files"][0];
    assert_eq!(f["file"], "BJ-HA-001/customers.json");
    assert_eq!(
        (f["inserted"].as_i64(), f["rejected"].as_i64()),
        (Some(1), Some(1)),
        "{done}"
    );
    let e = &f["errors"][0];
    assert_eq!(
        (e["record"].as_i64(), e["key"].as_str()),
        (Some(1), Some("BJ-HA-001-C2"))
    );
    assert_eq!(e["field"], "person.birthday");
    // The uploaded file (customers' personal data) is gone once imported; the batch's folder
    // stays, and with it who may follow the batch.
    let uploaded = uploads.path().join(&batch).join("BJ-HA-001");
    assert!(uploaded.is_dir());
    assert_eq!(
        std::fs::read_dir(&uploaded).unwrap().count(),
        0,
        "the uploaded file is deleted after its import"
    );
    // Another institution's staff cannot follow it.
    let (st, _) = s.get(&format!("/api/v1/imports/{batch}"), Some(&sh)).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // Not a JSON array: refused before anything is written.
    let (st, body) = s
        .call(
            Method::POST,
            "/api/v1/imports?kind=customers",
            Some(&bj),
            Some(json!({"a": 1})),
        )
        .await;
    assert_eq!((st, code(&body)), (StatusCode::BAD_REQUEST, "bad_body"));
    // Over api.max_upload_mb: refused as it streams in, and nothing of it is kept.
    let big: Vec<Value> = (0..20_000)
        .map(|i| json!({"customer_code": format!("BJ-HA-001-X{i}"), "person": {"name": "名字", "phone": "13800000000"}}))
        .collect();
    let (st, body) = s
        .call(
            Method::POST,
            "/api/v1/imports?kind=customers",
            Some(&bj),
            Some(Value::Array(big)),
        )
        .await;
    assert_eq!(
        (st, code(&body)),
        (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
        "{body}"
    );
    assert_eq!(
        std::fs::read_dir(uploads.path()).unwrap().count(),
        1,
        "one upload kept"
    );
    assert_eq!(env.count("SELECT count(*) FROM customers").await, 1);
}

async fn docs_and_console_are_served_from_the_binary(backend: Backend) {
    let env = TestEnv::new(backend, &[]).await;
    let s = Server::start(env.app.clone()).await;
    let (st, doc) = s.get("/openapi.json", None).await;
    assert_eq!(st, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/v1/customers/{code}",
        "/api/v1/reminders/{code}/upcoming-birthdays",
        "/api/v1/reminders/{code}/run",
        "/api/v1/analytics/dashboard",
        "/health",
        "/api/v1/revisits/{id}/retry",
        "/api/v1/imports",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} documented");
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    // Every answer carries the security headers; the API's are never cached.
    for (path, api) in [("/", false), ("/docs", false), ("/api/v1/me", true)] {
        let res = s
            .http
            .get(format!("{}{path}", s.base))
            .send()
            .await
            .unwrap();
        let h = res.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'"),
            "{path}"
        );
        assert_eq!(h.get("cache-control").is_some(), api, "{path}");
    }
    for (page, assets) in [
        (
            "/docs",
            vec!["/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css"],
        ),
        (
            "/",
            vec![
                "/console/app.js",
                "/console/app.css",
                "/console/chart.umd.min.js",
            ],
        ),
    ] {
        let (st, html) = s.get(page, None).await;
        let html = html.as_str().unwrap().to_owned();
        assert_eq!(st, StatusCode::OK);
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "{page} fetches nothing from elsewhere"
        );
        for a in assets {
            assert!(html.contains(a), "{page} uses {a}");
            let res = s.http.get(format!("{}{a}", s.base)).send().await.unwrap();
            assert_eq!(res.status(), StatusCode::OK, "{a}");
            assert!(res.bytes().await.unwrap().len() > 1000, "{a}");
        }
    }
}

/// `/health/live` answers while the process runs; `/health/ready` only while the database answers
/// and carries every migration of this build (else 503 with the reason), for an orchestrator's
/// probes and docker-compose's healthcheck.
async fn liveness_and_readiness_probes_answer_without_a_token(backend: Backend) {
    let env = TestEnv::new(backend, &[]).await;
    let s = Server::start(env.app.clone()).await;
    let (st, body) = s.get("/health/live", None).await;
    assert_eq!((st, body["status"].as_str()), (StatusCode::OK, Some("ok")));
    let (st, body) = s.get("/health/ready", None).await;
    assert_eq!(
        (st, body["status"].as_str()),
        (StatusCode::OK, Some("ready")),
        "{body}"
    );
    // The database lost (or never got) this build's last migration.
    let forget = "DELETE FROM revisit_migrations WHERE version = (SELECT max(version) FROM revisit_migrations)";
    match &env.app.pool {
        revisit::store::DbPool::Postgres(p) => {
            sqlx::query(forget).execute(p).await.unwrap();
        }
        revisit::store::DbPool::Sqlite(p) => {
            sqlx::query(forget).execute(p).await.unwrap();
        }
    }
    let (st, body) = s.get("/health/ready", None).await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["status"], "not_ready");
    assert!(
        body["reason"].as_str().unwrap().contains("revisit init"),
        "{body}"
    );
    let (st, _) = s.get("/health/live", None).await;
    assert_eq!(st, StatusCode::OK, "still alive");
}
