//! Follow-ups beside the birthday greeting, through the real queue on both engines: check-ins
//! on each project's days (or its category's), catching up a missed day and never twice;
//! maintenance reminders when a cycle comes round, not when the treatment was had again;
//! win-back after the quiet days; their messages; and the frequency cap.

use std::time::Duration;

use chrono::NaiveDate;
use revisit::{config::Backend, domain::followup::FrequencyCap, store::NewRevisit};
use revisit_jobs::{
    CheckinScan, CycleScan, GreetingGenerate, Job, MessageSend, ScanScope, WinbackScan,
};

use crate::{api::Server, harness::*};

crate::on_both_backends!(
    check_ins_reminders_and_win_back_are_found_once_on_their_days,
    the_frequency_cap_holds_marketing_back_but_not_care,
    a_low_score_to_the_satisfaction_question_opens_a_task_for_staff,
    staff_start_a_follow_up_scan_through_the_api,
);

const PROJECTS: &str = r#"[
  {"project_code":"PRJ-001","name":"水光针","category":"注射","standard_price":2800.0,"cycle_days":180},
  {"project_code":"PRJ-002","name":"双眼皮","category":"整形手术","standard_price":9800.0,"followup_days":[2,5]}
]"#;
const PRODUCTS: &str =
    r#"[{"product_code":"PRD-001","name":"面膜","category":"护肤","price":100.0}]"#;
const DOCTORS: &str =
    r#"[{"doctor_code":"DOC-1","institution_code":"BJ-HA-001","name":"李明","title":"主任医师"}]"#;

fn d(m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, m, day).unwrap()
}

fn customer(code: &str, phone: &str, opted_out: bool) -> serde_json::Value {
    serde_json::json!({"customer_code": code, "opted_out": opted_out,
        "person": {"name": "周婷", "gender": "女", "birthday": "1990-11-10", "phone": phone}})
}

fn order(n: usize, customer: &str, date: &str, item: (&str, &str, &str)) -> serde_json::Value {
    serde_json::json!({"order_number": format!("BJ-HA-001-ORD-{n}"), "customer_code": customer,
        "order_date": date, "doctor_code": "DOC-1",
        "items": [{"item_type": item.0, "item_code": item.1, "item_name": item.2, "quantity": 1,
                   "unit_price": 100.0, "discount": 1.0, "actual_price": 100.0}],
        "total_amount": 100.0, "payment_method": "现金", "status": "completed"})
}

async fn import(env: &TestEnv) {
    let customers = serde_json::json!([
        customer("BJ-HA-001-C1", "13800000001", false),
        customer("BJ-HA-001-C2", "13800000002", false),
        customer("BJ-HA-001-C3", "13800000003", false),
        customer("BJ-HA-001-C4", "13800000004", false),
        customer("BJ-HA-001-C5", "13800000005", true),
        customer("BJ-HA-001-C6", "13800000006", false),
    ])
    .to_string();
    let water = ("project", "PRJ-001", "水光针");
    let orders = serde_json::json!([
        order(1, "BJ-HA-001-C1", "2026-03-01", water),
        order(
            2,
            "BJ-HA-001-C2",
            "2026-03-01",
            ("project", "PRJ-002", "双眼皮")
        ),
        order(
            3,
            "BJ-HA-001-C3",
            "2026-03-01",
            ("product", "PRD-001", "面膜")
        ),
        order(
            4,
            "BJ-HA-001-C4",
            "2025-09-03",
            ("product", "PRD-001", "面膜")
        ),
        order(5, "BJ-HA-001-C5", "2026-03-01", water),
        order(6, "BJ-HA-001-C6", "2026-03-01", water),
        order(7, "BJ-HA-001-C6", "2026-06-01", water),
    ])
    .to_string();
    let dir = write_tree(&[
        ("common/institutions.json", INSTITUTIONS),
        ("common/projects.json", PROJECTS),
        ("common/products.json", PRODUCTS),
        ("common/doctors.json", DOCTORS),
        ("BJ-HA-001/customers.json", &customers),
        ("BJ-HA-001/consumption_records.json", &orders),
    ]);
    import_tree(env, dir.path()).await;
}

fn scope(today: NaiveDate) -> ScanScope {
    ScanScope {
        institution: None,
        test_mode: true,
        today: Some(today),
    }
}

async fn run<J: Job>(env: &TestEnv, job: J) {
    let id = revisit::store::enqueue(env.store(), &env.app.settings, &job, None)
        .await
        .unwrap()
        .unwrap();
    let since = std::time::Instant::now();
    eventually(Duration::from_secs(20), "the scan", || async {
        let state = job_state_or_vanished(env, &id, since, Duration::from_secs(5)).await;
        (state.as_deref() == Some("done")).then_some(())
    })
    .await;
}

/// (customer, occasion, date, day offset) of every revisit.
async fn revisits(env: &TestEnv) -> Vec<(String, String, NaiveDate, Option<i32>)> {
    env.rows(
        "SELECT c.code, r.occasion, r.occasion_date, r.day_offset FROM revisits r
         JOIN customers c ON c.id = r.customer_id ORDER BY r.occasion, c.code, r.occasion_date",
    )
    .await
}

async fn check_ins_reminders_and_win_back_are_found_once_on_their_days(backend: Backend) {
    let env = TestEnv::new(backend, &[]).await;
    import(&env).await;
    let workers = env.start_workers(vec![
        CheckinScan::QUEUE,
        CycleScan::QUEUE,
        WinbackScan::QUEUE,
    ]);
    let row = |c: &str, o: &str, date: NaiveDate, off: Option<i32>| {
        (format!("BJ-HA-001-{c}"), o.to_owned(), date, off)
    };
    // 2 March: C1's 水光针 (an injection: days 1, 3, 7) has its day-1 check-in; C2's 双眼皮 says
    // days 2 and 5; a product (C3) has none; C5 opted out; C6 had it too.
    run(
        &env,
        CheckinScan {
            scope: scope(d(3, 2)),
        },
    )
    .await;
    assert_eq!(
        revisits(&env).await,
        vec![
            row("C1", "checkin", d(3, 2), Some(1)),
            row("C6", "checkin", d(3, 2), Some(1)),
        ]
    );
    // The scan of 3 March did not run; on 4 March C2's day 2 (3 March) is caught up, with C1's
    // and C6's day 3. Run twice: nothing twice.
    run(
        &env,
        CheckinScan {
            scope: scope(d(3, 4)),
        },
    )
    .await;
    run(
        &env,
        CheckinScan {
            scope: scope(d(3, 4)),
        },
    )
    .await;
    let checkins = revisits(&env).await;
    assert_eq!(
        checkins,
        vec![
            row("C1", "checkin", d(3, 2), Some(1)),
            row("C1", "checkin", d(3, 4), Some(3)),
            row("C2", "checkin", d(3, 3), Some(2)),
            row("C6", "checkin", d(3, 2), Some(1)),
            row("C6", "checkin", d(3, 4), Some(3)),
        ]
    );
    // 水光针 has a 180-day cycle, reminded 7 days ahead: 21 August for C1. C6 had it again on
    // 1 June, so their March treatment is not coming round.
    run(
        &env,
        CycleScan {
            scope: scope(d(8, 21)),
        },
    )
    .await;
    run(
        &env,
        CycleScan {
            scope: scope(d(8, 22)),
        },
    )
    .await;
    // Win-back after 180 quiet days: C4 was last seen on 3 September 2025.
    run(
        &env,
        WinbackScan {
            scope: scope(d(3, 2)),
        },
    )
    .await;
    let all = revisits(&env).await;
    let rest: Vec<_> = all.iter().filter(|r| r.1 != "checkin").cloned().collect();
    assert_eq!(
        rest,
        vec![
            row("C1", "cycle", d(8, 21), None),
            row("C4", "winback", d(3, 2), None),
        ]
    );
    workers.stop().await;

    // Their messages: the template (no LLM here) names the treatment and the day; a check-in is
    // care and carries no opt-out text, the others do.
    let workers = env.start_workers(vec![GreetingGenerate::QUEUE, MessageSend::QUEUE]);
    let messages: Vec<(String, i32, String)> = eventually(
        Duration::from_secs(30),
        "every message generated",
        || async {
            let rows: Vec<(String, Option<i32>, Option<String>)> = env
                .rows("SELECT occasion, day_offset, message FROM revisits ORDER BY id")
                .await;
            rows.iter().all(|r| r.2.is_some()).then(|| {
                rows.into_iter()
                    .map(|(o, off, m)| (o, off.unwrap_or(0), m.unwrap()))
                    .collect()
            })
        },
    )
    .await;
    workers.stop().await;
    for (occasion, offset, text) in messages {
        assert!(text.chars().count() <= 70, "{text}");
        match occasion.as_str() {
            "checkin" => {
                assert!(
                    text.contains("恢复") && !text.ends_with("拒收请回复R"),
                    "{text}"
                );
                // The day after reads 昨天, later ones count the days.
                let day = if offset == 1 {
                    "昨天".to_owned()
                } else {
                    format!("{offset}天")
                };
                assert!(text.contains(&day), "{text}");
            }
            "cycle" => assert!(
                text.contains("水光针") && text.contains("维养") && text.ends_with("拒收请回复R"),
                "{text}"
            ),
            "winback" => assert!(
                text.contains("好久不见") && text.ends_with("拒收请回复R"),
                "{text}"
            ),
            other => panic!("unexpected occasion {other}"),
        }
    }
}

async fn the_frequency_cap_holds_marketing_back_but_not_care(backend: Backend) {
    let env = TestEnv::new(backend, &[]).await;
    import(&env).await;
    let (customer_id, person_id): (i64, i64) = env
        .rows("SELECT id, person_id FROM customers WHERE code = 'BJ-HA-001-C1'")
        .await[0];
    let cap = FrequencyCap { max: 1, days: 7 };
    let of = |occasion, date| NewRevisit {
        occasion,
        order_number: None,
        item_code: None,
        day_offset: None,
        asks_score: false,
        ..NewRevisit::birthday(customer_id, person_id, date)
    };
    use revisit::domain::followup::Occasion;
    let store = env.store();
    let first = store
        .create_revisits(&[of(Occasion::Winback, d(3, 2))], false, 3, cap)
        .await
        .unwrap();
    assert_eq!((first.created, first.capped), (1, 0));
    // A second marketing message within 7 days is held back, in real mode; a check-in is
    // care, and test mode is never capped.
    let second = store
        .create_revisits(
            &[of(Occasion::Cycle, d(3, 3)), of(Occasion::Checkin, d(3, 3))],
            false,
            3,
            cap,
        )
        .await
        .unwrap();
    assert_eq!((second.created, second.capped), (1, 1));
    let test = store
        .create_revisits(&[of(Occasion::Cycle, d(3, 3))], true, 3, cap)
        .await
        .unwrap();
    assert_eq!((test.created, test.capped), (1, 0));
    // The same revisit asked for again is not counted against itself.
    let again = store
        .create_revisits(&[of(Occasion::Winback, d(3, 2))], false, 3, cap)
        .await
        .unwrap();
    assert_eq!((again.created, again.capped), (0, 0));
    // With no cap, both go.
    let free = store
        .create_revisits(
            &[of(Occasion::Cycle, d(3, 3))],
            false,
            3,
            FrequencyCap::NONE,
        )
        .await
        .unwrap();
    assert_eq!(free.created, 1);
}

async fn a_low_score_to_the_satisfaction_question_opens_a_task_for_staff(backend: Backend) {
    use revisit::{consent::ReplyOutcome, store::access::Role};
    use std::sync::Arc;
    let hook = MockServer::start(Arc::new(|_, _| {
        (200, vec![], serde_json::json!({"ok": true}))
    }))
    .await;
    let robot = MockServer::start(Arc::new(|_, _| {
        (
            200,
            vec![],
            serde_json::json!({"errcode": 0, "errmsg": "ok"}),
        )
    }))
    .await;
    let env = TestEnv::new(
        backend,
        &[
            ("REVISIT__REMINDERS__CHANNEL", "webhook"),
            ("REVISIT__WEBHOOK__URL", &hook.url),
            ("REVISIT__ALERTS__WECOM_ROBOT_URL", &robot.url),
        ],
    )
    .await;
    import(&env).await;
    // 8 March is day 7 after C1's and C6's 水光针 (days 1, 3, 7): that check-in asks for a score.
    let workers = env.start_workers(vec![
        CheckinScan::QUEUE,
        GreetingGenerate::QUEUE,
        MessageSend::QUEUE,
        revisit_jobs::AlertSend::QUEUE,
    ]);
    run(
        &env,
        CheckinScan {
            scope: ScanScope {
                test_mode: false,
                ..scope(d(3, 8))
            },
        },
    )
    .await;
    // C2's 双眼皮 (days 2 and 5) has its day 5, caught up from 6 March: its last day, so it
    // asks too.
    // Recorded as sent, not only received: a reply answers a message known to be delivered.
    eventually(
        Duration::from_secs(30),
        "the three check-ins sent",
        || async {
            let sent = env
                .count("SELECT count(*) FROM revisits WHERE status = 'sent'")
                .await;
            (hook.count() == 3 && sent == 3).then_some(())
        },
    )
    .await;
    for r in hook.received() {
        let text = r.body["message"].as_str().unwrap();
        assert!(
            text.ends_with("请回复1-5为本次服务打分（5分为非常满意）。"),
            "{text}"
        );
        assert!(!text.contains("拒收请回复R"), "care, not marketing: {text}");
    }
    // C1 answers 2: the score is kept, a task opens, staff are alerted.
    let got = revisit::consent::record_reply(&env.app, "13800000001", "2分", None)
        .await
        .unwrap();
    let ReplyOutcome::Scored {
        revisit_id,
        score: 2,
        task: Some(task),
    } = got
    else {
        panic!("{got:?}");
    };
    // A second answer finds no question waiting.
    assert_eq!(
        revisit::consent::record_reply(&env.app, "13800000001", "1", None)
            .await
            .unwrap(),
        ReplyOutcome::Ignored
    );
    let tasks = env.store().tasks(None, true, 10).await.unwrap();
    assert_eq!(tasks.len(), 1);
    assert_eq!((tasks[0].id, tasks[0].revisit_id), (task, Some(revisit_id)));
    assert_eq!(tasks[0].customer_code, "BJ-HA-001-C1");
    assert!(tasks[0].name.contains('*'), "masked: {}", tasks[0].name);
    let alert = eventually(Duration::from_secs(20), "the staff alert", || async {
        robot.received().first().cloned()
    })
    .await;
    let text = alert.body["text"]["content"].as_str().unwrap().to_owned();
    assert!(
        text.contains("低分回访") && text.contains(&format!("#{task}")),
        "{text}"
    );
    assert!(!text.contains("13800000001"), "{text}");
    workers.stop().await;

    // Staff score C6's check-in through the API; another institution's staff cannot.
    let c6: (i64,) = env
        .rows(
            "SELECT r.id FROM revisits r JOIN customers c ON c.id = r.customer_id
             WHERE c.code = 'BJ-HA-001-C6'",
        )
        .await[0];
    let api = Server::start(env.app.clone()).await;
    let staff = api_token(env.store(), Role::Staff, Some("BJ-HA-001")).await;
    let other = api_token(env.store(), Role::Staff, Some("SH-ML-002")).await;
    let path = format!("/api/v1/revisits/{}/score", c6.0);
    let (status, _) = api
        .post(&path, &other, serde_json::json!({"score": 1}))
        .await;
    assert_eq!(status, reqwest::StatusCode::NOT_FOUND);
    let (status, body) = api
        .post(&path, &staff, serde_json::json!({"score": 9}))
        .await;
    assert_eq!(status, reqwest::StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = api
        .post(&path, &staff, serde_json::json!({"score": 4}))
        .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    assert_eq!(
        body["task_id"],
        serde_json::Value::Null,
        "a good score opens no task"
    );
    // The task is closed through the API and leaves the open list.
    let (status, body) = api
        .post(
            &format!("/api/v1/tasks/{task}/done"),
            &staff,
            serde_json::json!({"note": "已电话回访，客户满意"}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    assert_eq!(body["status"], "done");
    let (_, open) = api.get("/api/v1/tasks", Some(&staff)).await;
    assert_eq!(open["items"], serde_json::json!([]));
    let (_, others) = api.get("/api/v1/tasks?status=all", Some(&other)).await;
    assert_eq!(
        others["items"],
        serde_json::json!([]),
        "another institution sees none"
    );
}

async fn staff_start_a_follow_up_scan_through_the_api(backend: Backend) {
    use revisit::store::access::Role;
    let env = TestEnv::new(backend, &[]).await;
    import(&env).await;
    let workers = env.start_workers(vec![CheckinScan::QUEUE]);
    let api = Server::start(env.app.clone()).await;
    let staff = api_token(env.store(), Role::Staff, Some("BJ-HA-001")).await;
    let other = api_token(env.store(), Role::Staff, Some("SH-ML-002")).await;
    let (status, body) = api
        .post(
            "/api/v1/reminders/BJ-HA-001/run",
            &staff,
            serde_json::json!({"kind": "checkin", "today": "2026-03-02"}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["test_mode"], true, "test mode unless said otherwise");
    let job = body["job_id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/reminders/runs/{job}");
    eventually(Duration::from_secs(20), "the scan", || async {
        let (_, s) = api.get(&path, Some(&staff)).await;
        (s["state"] == "done").then_some(())
    })
    .await;
    let (status, _) = api.get(&path, Some(&other)).await;
    assert_eq!(
        status,
        reqwest::StatusCode::NOT_FOUND,
        "another institution's run"
    );
    let (_, list) = api.get("/api/v1/revisits", Some(&staff)).await;
    let labels: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["occasion_label"].as_str().unwrap())
        .collect();
    assert_eq!(
        labels,
        vec!["术后回访", "术后回访"],
        "C1's and C6's day-1 check-ins"
    );
    let (status, body) = api
        .post(
            "/api/v1/reminders/BJ-HA-001/run",
            &staff,
            serde_json::json!({"kind": "spam"}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["param"], "kind");
    workers.stop().await;
}
