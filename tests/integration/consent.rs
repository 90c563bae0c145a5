//! Consent and approval over the real queue, HTTP API and webhook receiver, on both engines:
//! an unsubscribe reply (Alibaba Cloud's push format) stops that number's messages through the
//! channel, every message carries the opt-out text, and an institution that asks for approval
//! sends exactly what staff approve.

use std::{sync::Arc, time::Duration};

use chrono::NaiveDate;
use reqwest::StatusCode;
use revisit::{
    config::Backend,
    store::{Revisit, access::Role},
};
use revisit_jobs::{GreetingGenerate, Job, MessageSend, ReminderScan};
use serde_json::json;

use crate::{api::Server, harness::*};

crate::on_both_backends!(
    an_unsubscribe_reply_stops_the_channel_and_every_message_carries_the_opt_out_text,
    an_institution_that_asks_for_approval_sends_only_what_staff_approve,
    an_institution_s_own_time_zone_holds_its_messages_for_its_quiet_hours,
);

/// The fixed-offset zone where it is now `hour` o'clock (`Etc/GMT-8` is UTC+8).
fn zone_at_hour(hour: i64) -> String {
    use chrono::Timelike;
    let utc = chrono::Utc::now().hour() as i64;
    let offset = (hour - utc).rem_euclid(24);
    let offset = if offset > 11 { offset - 24 } else { offset };
    match offset {
        0 => "Etc/GMT".to_owned(),
        n if n > 0 => format!("Etc/GMT-{n}"),
        n => format!("Etc/GMT+{}", -n),
    }
}

/// With quiet hours 08:00–21:00: the chain's zone is at noon, two institutions keep a zone where
/// it is 2 a.m. A message of such an institution waits for its morning, whether it is sent at
/// once (GZ) or approved by staff (BJ); the chain-zone institution's approved message goes now.
async fn an_institution_s_own_time_zone_holds_its_messages_for_its_quiet_hours(backend: Backend) {
    let (chain, night) = (zone_at_hour(12), zone_at_hour(2));
    let env = TestEnv::new(
        backend,
        &[
            ("REVISIT__APP__TIMEZONE", &chain),
            ("REVISIT__REMINDERS__SEND_WINDOW", "08:00-21:00"),
            (
                "REVISIT__CONSENT__APPROVAL_INSTITUTIONS",
                "[\"BJ-HA-001\", \"SH-ML-002\"]",
            ),
        ],
    )
    .await;
    let institutions = json!([
        {"institution_code": "BJ-HA-001", "name": "北京华安医疗美容诊所", "timezone": night},
        {"institution_code": "SH-ML-002", "name": "上海美丽人生医疗美容门诊部"},
        {"institution_code": "GZ-YM-003", "name": "广州颜美医疗美容门诊部", "timezone": night},
        {"institution_code": "XX-BAD-004", "name": "时区写错的机构", "timezone": "Asia/Beijing"}
    ])
    .to_string();
    let customer = |code: &str, phone: &str| {
        json!([{"customer_code": code,
                "person": {"name": "周婷", "gender": "女", "birthday": "1990-05-15", "phone": phone}}])
        .to_string()
    };
    let dir = write_tree(&[
        ("common/institutions.json", &institutions),
        (
            "BJ-HA-001/customers.json",
            &customer("BJ-HA-001-C1", "13800000001"),
        ),
        (
            "SH-ML-002/customers.json",
            &customer("SH-ML-002-C1", "13800000002"),
        ),
        (
            "GZ-YM-003/customers.json",
            &customer("GZ-YM-003-C1", "13800000003"),
        ),
    ]);
    let batch = import_tree(&env, dir.path()).await;
    let logs = env.store().import_log(&batch).await.unwrap();
    let bad = &logs
        .iter()
        .find(|l| l.path.ends_with("institutions.json"))
        .unwrap()
        .errors;
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert_eq!(
        (bad[0].key.as_deref(), bad[0].field.as_str()),
        (Some("XX-BAD-004"), "timezone")
    );
    let people: Vec<(i64, i64)> = env
        .rows("SELECT id, person_id FROM customers ORDER BY code")
        .await;
    let day = NaiveDate::from_ymd_opt(2026, 5, 15).unwrap();
    let new: Vec<_> = people
        .iter()
        .map(|(c, p)| revisit::store::NewRevisit::birthday(*c, *p, day))
        .collect();
    env.store()
        .create_revisits(
            &new,
            false,
            5,
            revisit::domain::followup::FrequencyCap::NONE,
        )
        .await
        .unwrap();
    let workers = env.start_workers(vec![GreetingGenerate::QUEUE]);
    eventually(Duration::from_secs(30), "three greetings", || async {
        let n = env
            .count("SELECT count(*) FROM revisits WHERE status = 'generated'")
            .await;
        (n == 3).then_some(())
    })
    .await;
    workers.stop().await;
    // (held until the institution's morning, sent at once)
    let timing = |jobs: Vec<revisit::store::JobRow>| {
        let now = chrono::Utc::now();
        let held = jobs
            .iter()
            .filter(|j| {
                let wait = j.run_at - now;
                wait > chrono::Duration::hours(4) && wait <= chrono::Duration::minutes(361)
            })
            .count();
        let at_once = jobs
            .iter()
            .filter(|j| j.run_at <= now + chrono::Duration::minutes(1))
            .count();
        (held, at_once, jobs.len())
    };
    assert_eq!(
        timing(env.jobs_of(MessageSend::QUEUE).await),
        (1, 0, 1),
        "GZ's greeting, made at 2 a.m. its time, waits for 08:00 there"
    );
    let approved = revisit::consent::approve(&env.app, &[], None, "店长")
        .await
        .unwrap();
    assert_eq!(approved.ids.len(), 2);
    assert_eq!(
        timing(env.jobs_of(MessageSend::QUEUE).await),
        (2, 1, 3),
        "BJ's approved message waits for its morning; SH's (the chain's noon) goes now"
    );
}

fn ok_hook() -> Script {
    Arc::new(|_, _| (200, vec![], json!({"ok": true})))
}

/// Three customers of BJ-HA-001 with birthdays on 15–17 May, imported.
async fn three_customers(env: &TestEnv) {
    let dir = write_tree(&[
        ("common/institutions.json", INSTITUTIONS),
        (
            "BJ-HA-001/customers.json",
            &customers_json(&[
                ("BJ-HA-001-C1", "张丽", "1990-05-15", "13800000001"),
                ("BJ-HA-001-C2", "王芳", "1990-05-16", "13800000002"),
                ("BJ-HA-001-C3", "李娜", "1990-05-17", "13800000003"),
            ]),
        ),
    ]);
    import_tree(env, dir.path()).await;
}

/// A real (not test-mode) birthday scan of 14 May.
async fn real_scan(env: &TestEnv) {
    let scan = ReminderScan {
        institution: None,
        test_mode: false,
        today: NaiveDate::from_ymd_opt(2026, 5, 14),
    };
    revisit::store::enqueue(env.store(), &env.app.settings, &scan, None)
        .await
        .unwrap();
}

async fn revisit_of(env: &TestEnv, code: &str) -> Revisit {
    let ids: Vec<(String, i64)> = env
        .rows("SELECT c.code, r.id FROM revisits r JOIN customers c ON c.id = r.customer_id")
        .await;
    let id = ids.iter().find(|(c, _)| c == code).expect("a revisit").1;
    env.store().revisit(id).await.unwrap().unwrap()
}

async fn settled(env: &TestEnv, n: i64) {
    eventually(Duration::from_secs(40), "every revisit settled", || async {
        // One count: all the scan's revisits are created in one transaction.
        let done = env
            .count("SELECT count(*) FROM revisits WHERE status IN ('sent', 'skipped', 'failed')")
            .await;
        (done == n).then_some(())
    })
    .await;
}

async fn an_unsubscribe_reply_stops_the_channel_and_every_message_carries_the_opt_out_text(
    backend: Backend,
) {
    let hook = MockServer::start(ok_hook()).await;
    let env = TestEnv::new(
        backend,
        &[
            ("REVISIT__REMINDERS__CHANNEL", "webhook"),
            ("REVISIT__WEBHOOK__URL", &hook.url),
            ("REVISIT__CONSENT__INBOUND_SECRET", "gw-s3cret"),
        ],
    )
    .await;
    three_customers(&env).await;
    let api = Server::start(env.app.clone()).await;
    let aliyun = |phone: &str, content: &str| {
        json!([{"phone_number": phone, "content": content, "send_time": "2026-05-13 10:00:00",
                "sign_name": "华美医美", "dest_code": "1234", "sequence_id": 1}])
    };
    // A wrong secret, and no secret without a token, are refused and change nothing.
    let (status, _) = api
        .call(
            reqwest::Method::POST,
            "/api/v1/inbound/replies?secret=nope",
            None,
            Some(aliyun("13800000002", "TD")),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = api
        .call(
            reqwest::Method::POST,
            "/api/v1/inbound/replies",
            None,
            Some(aliyun("13800000002", "TD")),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(env.store().suppressions(None, 10).await.unwrap().is_empty());
    // The gateway's push, the secret in a header (out of access logs): C2 unsubscribes, C1
    // only says thanks. A wrong header is refused like a wrong query.
    let push = |secret: &'static str, replies: serde_json::Value| {
        api.http
            .post(format!("{}/api/v1/inbound/replies", api.base))
            .header("X-Revisit-Secret", secret)
            .json(&replies)
            .send()
    };
    let wrong = push("nope", aliyun("13800000002", "TD")).await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let res = push(
        "gw-s3cret",
        json!([
            {"phone_number": "13800000002", "content": "回TD退订", "send_time": "2026-05-13 10:00:00",
             "sign_name": "华美医美", "dest_code": "1234", "sequence_id": 2},
            {"phone_number": "13800000001", "content": "谢谢", "send_time": "2026-05-13 10:01:00",
             "sign_name": "华美医美", "dest_code": "1234", "sequence_id": 3}
        ]),
    )
    .await
    .unwrap();
    let status = res.status();
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["code"], 0);
    assert_eq!(
        (body["unsubscribed"].as_u64(), body["ignored"].as_u64()),
        (Some(1), Some(1))
    );
    // A gateway that can only be given a URL still may put the secret in the query.
    let (status, body) = api
        .call(
            reqwest::Method::POST,
            "/api/v1/inbound/replies?secret=gw-s3cret",
            None,
            Some(aliyun("13800000001", "好的")),
        )
        .await;
    assert_eq!(
        (status, body["ignored"].as_u64()),
        (StatusCode::OK, Some(1)),
        "{body}"
    );
    // An admin posts C3's reply in the plain format, over a channel that is not the one in use.
    let admin = api_token(env.store(), Role::Admin, None).await;
    let (status, _) = api
        .post(
            "/api/v1/inbound/replies",
            &admin,
            json!({"phone": "138-0000-0003", "text": "T", "channel": "sms"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let supp = env.store().suppressions(None, 10).await.unwrap();
    let mut kept: Vec<_> = supp
        .iter()
        .map(|s| (s.phone.as_str(), s.channel.as_str(), s.source.as_str()))
        .collect();
    kept.sort();
    assert_eq!(
        kept,
        vec![
            ("13800000002", "sms", "reply"),
            ("13800000003", "sms", "reply")
        ],
        "Alibaba Cloud's pushes are SMS replies"
    );
    // C2 is suppressed for SMS only; the configured channel is the webhook. Suppress the
    // webhook for C2 as staff would from the command line.
    assert!(
        env.store()
            .suppress(
                "13800000002",
                "webhook",
                revisit::domain::consent::Source::Staff,
                Some("客户来电要求")
            )
            .await
            .unwrap()
    );
    real_scan(&env).await;
    let workers = env.start_workers(vec![
        ReminderScan::QUEUE,
        GreetingGenerate::QUEUE,
        MessageSend::QUEUE,
    ]);
    settled(&env, 3).await;
    workers.stop().await;
    let (c1, c2, c3) = (
        revisit_of(&env, "BJ-HA-001-C1").await,
        revisit_of(&env, "BJ-HA-001-C2").await,
        revisit_of(&env, "BJ-HA-001-C3").await,
    );
    assert_eq!(c1.status, revisit::domain::revisit::RevisitStatus::Sent);
    assert_eq!(
        c3.status,
        revisit::domain::revisit::RevisitStatus::Sent,
        "an SMS unsubscribe does not stop the webhook"
    );
    assert_eq!(c2.status, revisit::domain::revisit::RevisitStatus::Skipped);
    assert!(
        c2.last_error
            .as_deref()
            .unwrap_or_default()
            .contains("退订"),
        "{:?}",
        c2.last_error
    );
    let got: Vec<String> = hook
        .received()
        .iter()
        .map(|r| r.body["customer_code"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(!got.contains(&"BJ-HA-001-C2".to_owned()), "{got:?}");
    for r in hook.received() {
        let text = r.body["message"].as_str().unwrap();
        assert!(text.ends_with("拒收请回复R"), "{text}");
        assert!(text.chars().count() <= 70, "{text}");
    }
}

async fn an_institution_that_asks_for_approval_sends_only_what_staff_approve(backend: Backend) {
    let hook = MockServer::start(ok_hook()).await;
    let env = TestEnv::new(
        backend,
        &[
            ("REVISIT__REMINDERS__CHANNEL", "webhook"),
            ("REVISIT__WEBHOOK__URL", &hook.url),
            ("REVISIT__CONSENT__APPROVAL_INSTITUTIONS", "[\"BJ-HA-001\"]"),
        ],
    )
    .await;
    three_customers(&env).await;
    real_scan(&env).await;
    let workers = env.start_workers(vec![
        ReminderScan::QUEUE,
        GreetingGenerate::QUEUE,
        MessageSend::QUEUE,
    ]);
    let api = Server::start(env.app.clone()).await;
    let staff = api_token(env.store(), Role::Staff, Some("BJ-HA-001")).await;
    let other = api_token(env.store(), Role::Staff, Some("SH-ML-002")).await;
    let waiting = eventually(
        Duration::from_secs(30),
        "three messages waiting",
        || async {
            let (_, body) = api.get("/api/v1/approvals", Some(&staff)).await;
            let items = body["items"].as_array().cloned().unwrap_or_default();
            (items.len() == 3).then_some(items)
        },
    )
    .await;
    assert!(
        waiting
            .iter()
            .all(|w| w["phone"].as_str().unwrap().contains("****")),
        "phones are masked: {waiting:?}"
    );
    // Nothing goes out while they wait, and no send job exists.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(hook.count(), 0);
    assert!(env.jobs_of(MessageSend::QUEUE).await.is_empty());
    // Another institution's staff sees none of them and cannot decide them.
    let (status, _) = api
        .get("/api/v1/approvals?institution=BJ-HA-001", Some(&other))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let ids: Vec<i64> = waiting.iter().map(|w| w["id"].as_i64().unwrap()).collect();
    let (status, body) = api
        .post("/api/v1/approvals/approve", &other, json!({"ids": ids}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["ids"],
        json!([]),
        "not its institution's: nothing decided"
    );
    // Staff approve the first two and reject the third.
    let (status, body) = api
        .post(
            "/api/v1/approvals/approve",
            &staff,
            json!({"ids": [ids[0], ids[1]]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["ids"], json!([ids[0], ids[1]]));
    let (status, body) = api
        .post(
            "/api/v1/approvals/reject",
            &staff,
            json!({"ids": [ids[2], ids[0]], "reason": "客户近期有投诉"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["ids"],
        json!([ids[2]]),
        "an approved message cannot be rejected after"
    );
    settled(&env, 3).await;
    workers.stop().await;
    assert_eq!(hook.count(), 2, "exactly the two approved messages");
    let rejected = env.store().revisit(ids[2]).await.unwrap().unwrap();
    assert_eq!(
        rejected.status,
        revisit::domain::revisit::RevisitStatus::Skipped
    );
    assert_eq!(rejected.approval.map(|w| w.as_str()), Some("rejected"));
    assert!(rejected.last_error.unwrap().contains("客户近期有投诉"));
    let approved = env.store().revisit(ids[0]).await.unwrap().unwrap();
    assert_eq!(
        (
            approved.status.as_str(),
            approved.approval.map(|w| w.as_str())
        ),
        ("sent", Some("approved"))
    );
}
