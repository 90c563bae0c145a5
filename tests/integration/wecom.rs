//! WeCom customer broadcast against a peer on 127.0.0.1 that speaks WeCom's server API
//! (`gettoken`, `externalcontact/add_msg_template`, `get_groupmsg_send_result`,
//! `cancel_groupmsg_send`, with access tokens that expire), on both engines: a message goes as a
//! task from the customer's staff contact, nothing counts as sent until that person confirms it
//! (which stands in for the institution's approval), an expired token is fetched again without
//! a second task, WeCom's refusals are recorded, and a task left unconfirmed is withdrawn.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Json, Router,
    extract::{Query, State},
    routing::{get, post},
};
use chrono::NaiveDate;
use revisit::config::Backend;
use revisit_jobs::{GreetingGenerate, Job, MessageSend, ReminderScan, WecomConfirm};
use serde_json::{Value, json};

use crate::harness::*;

crate::on_both_backends!(
    a_wecom_broadcast_is_sent_only_once_its_staff_member_confirms_it,
    an_unconfirmed_wecom_task_is_withdrawn_at_its_deadline,
);

const CORP: &str = "ww-test-corp";
const SECRET: &str = "wecom-test-secret";

/// One broadcast task the peer holds.
#[derive(Debug, Clone)]
struct Task {
    msgid: String,
    sender: String,
    external_userid: String,
    content: String,
    /// What `get_groupmsg_send_result` reports: 0 waiting, 1 sent, 2 not a contact...
    status: i64,
    cancelled: bool,
}

#[derive(Default)]
struct Books {
    tokens_issued: usize,
    /// The token the peer accepts now.
    valid: Option<String>,
    /// Answer the next add_msg_template with 42001 (token expired) once.
    expire_next_add: bool,
    tasks: Vec<Task>,
    result_calls: usize,
    rejected_calls: usize,
}

#[derive(Clone, Default)]
struct WecomPeer {
    books: Arc<Mutex<Books>>,
}

impl WecomPeer {
    async fn start(self) -> String {
        let app = Router::new()
            .route("/cgi-bin/gettoken", get(token))
            .route("/cgi-bin/externalcontact/add_msg_template", post(add))
            .route(
                "/cgi-bin/externalcontact/get_groupmsg_send_result",
                post(result),
            )
            .route(
                "/cgi-bin/externalcontact/cancel_groupmsg_send",
                post(cancel),
            )
            .with_state(self);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/cgi-bin", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        url
    }

    fn tasks(&self) -> Vec<Task> {
        self.books.lock().unwrap().tasks.clone()
    }

    /// The staff member acts on the task to this customer in their WeCom client.
    fn set_status(&self, external_userid: &str, status: i64) {
        let mut b = self.books.lock().unwrap();
        let t = b
            .tasks
            .iter_mut()
            .find(|t| t.external_userid == external_userid)
            .expect("a task for this customer");
        t.status = status;
    }
}

async fn token(
    State(peer): State<WecomPeer>,
    Query(q): Query<HashMap<String, String>>,
) -> Json<Value> {
    if q.get("corpid").map(String::as_str) != Some(CORP)
        || q.get("corpsecret").map(String::as_str) != Some(SECRET)
    {
        return Json(json!({"errcode": 40001, "errmsg": "invalid credential"}));
    }
    // As WeCom does: the same token while it is valid, a new one once it has expired.
    let mut b = peer.books.lock().unwrap();
    let token = match b.valid.clone() {
        Some(token) => token,
        None => {
            b.tokens_issued += 1;
            let token = format!("token-{}", b.tokens_issued);
            b.valid = Some(token.clone());
            token
        }
    };
    Json(json!({"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200}))
}

/// `Err` is WeCom's answer to a request whose token is not the valid one.
fn check_token(b: &mut Books, q: &HashMap<String, String>) -> Result<(), Json<Value>> {
    if q.get("access_token") != b.valid.as_ref() {
        b.rejected_calls += 1;
        return Err(Json(
            json!({"errcode": 40014, "errmsg": "invalid access_token"}),
        ));
    }
    Ok(())
}

async fn add(
    State(peer): State<WecomPeer>,
    Query(q): Query<HashMap<String, String>>,
    Json(body): Json<Value>,
) -> Json<Value> {
    let mut b = peer.books.lock().unwrap();
    if let Err(refusal) = check_token(&mut b, &q) {
        return refusal;
    }
    if b.expire_next_add {
        b.expire_next_add = false;
        b.valid = None;
        b.rejected_calls += 1;
        return Json(json!({"errcode": 42001, "errmsg": "access_token expired"}));
    }
    let (Some("single"), Some(sender), Some([external]), Some(content)) = (
        body["chat_type"].as_str(),
        body["sender"].as_str(),
        body["external_userid"].as_array().map(Vec::as_slice),
        body["text"]["content"].as_str(),
    ) else {
        return Json(json!({"errcode": 40058, "errmsg": format!("invalid parameter: {body}")}));
    };
    let external = external.as_str().unwrap_or_default().to_owned();
    if external.starts_with("gone-") {
        // No longer a contact of the sender: WeCom lists it in fail_list.
        return Json(json!({"errcode": 0, "errmsg": "ok", "fail_list": [external], "msgid": ""}));
    }
    let msgid = format!("msg-{}", b.tasks.len() + 1);
    b.tasks.push(Task {
        msgid: msgid.clone(),
        sender: sender.to_owned(),
        external_userid: external,
        content: content.to_owned(),
        status: 0,
        cancelled: false,
    });
    Json(json!({"errcode": 0, "errmsg": "ok", "fail_list": [], "msgid": msgid}))
}

async fn result(
    State(peer): State<WecomPeer>,
    Query(q): Query<HashMap<String, String>>,
    Json(body): Json<Value>,
) -> Json<Value> {
    let mut b = peer.books.lock().unwrap();
    if let Err(refusal) = check_token(&mut b, &q) {
        return refusal;
    }
    b.result_calls += 1;
    let Some(t) = b
        .tasks
        .iter()
        .find(|t| Some(t.msgid.as_str()) == body["msgid"].as_str())
    else {
        return Json(json!({"errcode": 41063, "errmsg": "msgid not found"}));
    };
    if body["userid"].as_str() != Some(t.sender.as_str()) {
        return Json(json!({"errcode": 0, "errmsg": "ok", "send_list": []}));
    }
    Json(
        json!({"errcode": 0, "errmsg": "ok", "next_cursor": "", "send_list": [{
            "external_userid": t.external_userid, "userid": t.sender, "status": t.status,
            "send_time": if t.status == 1 { 1_780_000_000 } else { 0 }
        }]}),
    )
}

async fn cancel(
    State(peer): State<WecomPeer>,
    Query(q): Query<HashMap<String, String>>,
    Json(body): Json<Value>,
) -> Json<Value> {
    let mut b = peer.books.lock().unwrap();
    if let Err(refusal) = check_token(&mut b, &q) {
        return refusal;
    }
    match b
        .tasks
        .iter_mut()
        .find(|t| Some(t.msgid.as_str()) == body["msgid"].as_str())
    {
        Some(t) => {
            t.cancelled = true;
            Json(json!({"errcode": 0, "errmsg": "ok"}))
        }
        None => Json(json!({"errcode": 41063, "errmsg": "msgid not found"})),
    }
}

/// Customers of BJ-HA-001 born on 15 May; (code, phone, WeCom contact, staff contact).
async fn import(env: &TestEnv, rows: &[(&str, &str, Option<&str>, Option<&str>)]) {
    let customers: Vec<Value> = rows
        .iter()
        .map(|(code, phone, contact, staff)| {
            json!({"customer_code": code, "wecom_external_userid": contact, "wecom_userid": staff,
                   "person": {"name": "周婷", "gender": "女", "birthday": "1990-05-15", "phone": phone}})
        })
        .collect();
    let dir = write_tree(&[
        ("common/institutions.json", INSTITUTIONS),
        (
            "BJ-HA-001/customers.json",
            &serde_json::to_string(&customers).unwrap(),
        ),
    ]);
    import_tree(env, dir.path()).await;
}

async fn env_for(backend: Backend, api: &str, confirm_hours: &str) -> TestEnv {
    TestEnv::new(
        backend,
        &[
            ("REVISIT__REMINDERS__CHANNEL", "wecom"),
            ("REVISIT__WECOM__API_BASE", api),
            ("REVISIT__WECOM__CORP_ID", CORP),
            ("REVISIT__WECOM__CORP_SECRET", SECRET),
            ("REVISIT__WECOM__SENDERS", "{\"BJ-HA-001\" = \"wangfang\"}"),
            ("REVISIT__WECOM__POLL_SECS", "1"),
            ("REVISIT__WECOM__CONFIRM_HOURS", confirm_hours),
            // The institution asks for approval: the WeCom confirmation stands in for it.
            ("REVISIT__CONSENT__APPROVAL_INSTITUTIONS", "[\"BJ-HA-001\"]"),
            ("REVISIT__JOBS__MESSAGE_SEND__BASE_DELAY_SECS", "1"),
            ("REVISIT__JOBS__WECOM_CONFIRM__BASE_DELAY_SECS", "1"),
            ("REVISIT__JOBS__WECOM_CONFIRM__MAX_DELAY_SECS", "1"),
        ],
    )
    .await
}

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

/// (status, approval, approved by, last error) of a revisit.
type RevisitState = (String, Option<String>, Option<String>, Option<String>);

/// Every revisit's state, by customer code.
async fn states(env: &TestEnv) -> HashMap<String, RevisitState> {
    type Row = (
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Row> = env
        .rows(
            "SELECT c.code, r.status, r.approval, r.approved_by, r.last_error FROM revisits r
             JOIN customers c ON c.id = r.customer_id",
        )
        .await;
    rows.into_iter()
        .map(|(c, s, a, b, e)| (c, (s, a, b, e)))
        .collect()
}

async fn wait_status(env: &TestEnv, code: &str, want: &str) {
    eventually(
        Duration::from_secs(30),
        &format!("{code} to be {want}"),
        || async {
            states(env)
                .await
                .get(code)
                .is_some_and(|s| s.0 == want)
                .then_some(())
        },
    )
    .await;
}

async fn a_wecom_broadcast_is_sent_only_once_its_staff_member_confirms_it(backend: Backend) {
    let peer = WecomPeer::default();
    peer.books.lock().unwrap().expire_next_add = true;
    let api = peer.clone().start().await;
    let env = env_for(backend, &api, "72").await;
    import(
        &env,
        &[
            // The institution's sender; their own staff contact; no WeCom contact; a contact
            // who has left the sender.
            ("BJ-HA-001-C1", "13800000001", Some("wm-c1"), None),
            ("BJ-HA-001-C2", "13800000002", Some("wm-c2"), Some("lisi")),
            ("BJ-HA-001-C3", "13800000003", None, None),
            ("BJ-HA-001-C4", "13800000004", Some("gone-c4"), None),
        ],
    )
    .await;
    real_scan(&env).await;
    let workers = env.start_workers(vec![
        ReminderScan::QUEUE,
        GreetingGenerate::QUEUE,
        MessageSend::QUEUE,
        WecomConfirm::QUEUE,
    ]);
    for code in ["BJ-HA-001-C1", "BJ-HA-001-C2"] {
        wait_status(&env, code, "submitted").await;
    }
    wait_status(&env, "BJ-HA-001-C3", "failed").await;
    wait_status(&env, "BJ-HA-001-C4", "failed").await;
    let s = states(&env).await;
    assert!(
        s["BJ-HA-001-C3"]
            .3
            .as_deref()
            .unwrap()
            .contains("企业微信联系人"),
        "{:?}",
        s["BJ-HA-001-C3"]
    );
    assert!(
        s["BJ-HA-001-C4"]
            .3
            .as_deref()
            .unwrap()
            .contains("客户联系人"),
        "{:?}",
        s["BJ-HA-001-C4"]
    );
    // One task each, from the right staff member, with the message as saved; the expired
    // token was fetched again without a second task.
    let tasks = peer.tasks();
    let mut senders: Vec<(&str, &str)> = tasks
        .iter()
        .map(|t| (t.external_userid.as_str(), t.sender.as_str()))
        .collect();
    senders.sort();
    assert_eq!(senders, vec![("wm-c1", "wangfang"), ("wm-c2", "lisi")]);
    let messages: Vec<(String, Option<String>)> = env
        .rows("SELECT c.code, r.message FROM revisits r JOIN customers c ON c.id = r.customer_id")
        .await;
    let c1_message = messages
        .iter()
        .find(|(c, _)| c == "BJ-HA-001-C1")
        .and_then(|(_, m)| m.clone())
        .unwrap();
    let c1_task = tasks.iter().find(|t| t.external_userid == "wm-c1").unwrap();
    assert_eq!(c1_task.content, c1_message);
    assert_eq!(peer.books.lock().unwrap().tokens_issued, 2);
    // Not approved by anyone inside Revisit, and nothing sent while nobody confirmed.
    eventually(
        Duration::from_secs(10),
        "a few looks at the tasks",
        || async { (peer.books.lock().unwrap().result_calls >= 4).then_some(()) },
    )
    .await;
    let s = states(&env).await;
    assert_eq!(s["BJ-HA-001-C1"].0, "submitted");
    assert_eq!(s["BJ-HA-001-C1"].1, None, "no Revisit approval asked");
    // The daily report counts them as waiting for staff.
    let tz = env.app.settings.tz();
    let today = chrono::Utc::now().with_timezone(&tz).date_naive();
    let report = env.store().daily_report(today, tz).await.unwrap();
    let bj = report
        .institutions
        .iter()
        .find(|i| i.code == "BJ-HA-001")
        .unwrap();
    assert_eq!((bj.created, bj.awaiting_staff, bj.failed), (4, 2, 2));
    assert!(
        report.render().contains("待员工审批或确认 2 条"),
        "{}",
        report.render()
    );
    // The staff member confirms C1's task; C2 turns out not to be lisi's contact any more.
    peer.set_status("wm-c1", 1);
    peer.set_status("wm-c2", 2);
    wait_status(&env, "BJ-HA-001-C1", "sent").await;
    wait_status(&env, "BJ-HA-001-C2", "failed").await;
    workers.stop().await;
    let s = states(&env).await;
    assert_eq!(s["BJ-HA-001-C1"].1.as_deref(), Some("approved"));
    assert_eq!(s["BJ-HA-001-C1"].2.as_deref(), Some("企业微信：wangfang"));
    assert!(
        s["BJ-HA-001-C2"]
            .3
            .as_deref()
            .unwrap()
            .contains("不是该员工的企业微信联系人"),
        "{:?}",
        s["BJ-HA-001-C2"]
    );
    assert_eq!(peer.tasks().len(), 2, "never a second task");
    assert!(peer.tasks().iter().all(|t| !t.cancelled));
}

async fn an_unconfirmed_wecom_task_is_withdrawn_at_its_deadline(backend: Backend) {
    let peer = WecomPeer::default();
    let api = peer.clone().start().await;
    // 3.6 seconds to confirm.
    let env = env_for(backend, &api, "0.001").await;
    import(
        &env,
        &[("BJ-HA-001-C1", "13800000001", Some("wm-c1"), None)],
    )
    .await;
    real_scan(&env).await;
    let workers = env.start_workers(vec![
        ReminderScan::QUEUE,
        GreetingGenerate::QUEUE,
        MessageSend::QUEUE,
        WecomConfirm::QUEUE,
    ]);
    wait_status(&env, "BJ-HA-001-C1", "submitted").await;
    wait_status(&env, "BJ-HA-001-C1", "skipped").await;
    workers.stop().await;
    let tasks = peer.tasks();
    assert_eq!(tasks.len(), 1);
    assert!(
        tasks[0].cancelled,
        "the task is withdrawn before the revisit is given up"
    );
    let s = states(&env).await;
    assert!(
        s["BJ-HA-001-C1"]
            .3
            .as_deref()
            .unwrap()
            .contains("未在企业微信确认群发"),
        "{:?}",
        s["BJ-HA-001-C1"]
    );
    let confirm = env.jobs_of(WecomConfirm::QUEUE).await;
    assert_eq!(confirm.len(), 1);
    assert_eq!(confirm[0].state, "done");
}
