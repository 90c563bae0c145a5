//! Real channels against peers on 127.0.0.1 that speak their documented protocols, on both
//! engines. Alibaba Cloud SMS: the peer checks every request as the platform does (the V3
//! signature recomputed from what arrived, the date, a nonce never seen before, the action and
//! version, the required parameters) and answers with the platform's codes: flow control is
//! retried and sent once, a refused number is not retried, and a wrong secret is refused.

use std::{
    collections::{BTreeMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{RawQuery, State},
    http::{HeaderMap, Method, StatusCode},
};
use hmac::{Hmac, KeyInit, Mac};
use revisit::config::Backend;
use revisit_jobs::{AlertSend, GreetingGenerate, Job, MessageSend};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{harness::*, runtime::one_greeting};

crate::on_both_backends!(
    alibaba_cloud_sms_gets_a_signed_request_and_flow_control_is_retried_once,
    alibaba_cloud_sms_refusals_are_not_retried,
    a_failed_revisit_alerts_staff_through_the_wecom_robot_without_personal_data,
    the_wecom_robot_gets_at_most_20_alerts_a_minute_and_the_rest_later,
);

const KEY_ID: &str = "LTAI-test-key";
const SECRET: &str = "test-secret-2026";

/// One SendSms request as the peer understood it.
#[derive(Debug, Clone)]
struct SmsRequest {
    params: BTreeMap<String, String>,
    /// Why the peer refused the request's authentication, if it did.
    auth_error: Option<String>,
}

/// The platform's answer to request `n`: (Code, Message).
type SmsScript = Arc<dyn Fn(usize) -> (&'static str, &'static str) + Send + Sync>;

#[derive(Clone)]
struct Peer {
    seen: Arc<Mutex<Vec<SmsRequest>>>,
    nonces: Arc<Mutex<HashSet<String>>>,
    script: SmsScript,
}

struct SmsPeer {
    url: String,
    seen: Arc<Mutex<Vec<SmsRequest>>>,
    _task: tokio::task::JoinHandle<()>,
}

impl SmsPeer {
    async fn start(script: SmsScript) -> Self {
        let peer = Peer {
            seen: Arc::default(),
            nonces: Arc::default(),
            script,
        };
        let seen = peer.seen.clone();
        let app = Router::new().fallback(answer).with_state(peer);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            url,
            seen,
            _task: task,
        }
    }

    fn requests(&self) -> Vec<SmsRequest> {
        self.seen.lock().unwrap().clone()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// RFC 3986 percent-encoding, written here from the platform's documentation, independently of
/// the client's.
fn rfc3986(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// Checks the request's authentication as the platform's gateway does; `Err` says why not.
fn verify(
    method: &Method,
    query: &str,
    headers: &HeaderMap,
    body: &[u8],
    nonces: &Mutex<HashSet<String>>,
) -> Result<(), String> {
    let h = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| format!("missing header {name}"))
    };
    if h("x-acs-action")? != "SendSms" || h("x-acs-version")? != "2017-05-25" {
        return Err("wrong action or version".into());
    }
    if h("x-acs-content-sha256")? != hex(&Sha256::digest(body)) {
        return Err("x-acs-content-sha256 is not the body's".into());
    }
    let date = chrono::NaiveDateTime::parse_from_str(&h("x-acs-date")?, "%Y-%m-%dT%H:%M:%SZ")
        .map_err(|e| format!("x-acs-date: {e}"))?
        .and_utc();
    if (chrono::Utc::now() - date).num_minutes().abs() > 15 {
        return Err("x-acs-date is more than 15 minutes off".into());
    }
    if !nonces.lock().unwrap().insert(h("x-acs-signature-nonce")?) {
        return Err("the nonce was used before".into());
    }
    let auth = h("authorization")?;
    let rest = auth
        .strip_prefix("ACS3-HMAC-SHA256 ")
        .ok_or("not ACS3-HMAC-SHA256")?;
    let part = |key: &str| {
        rest.split(',')
            .find_map(|p| p.strip_prefix(&format!("{key}=")))
            .map(str::to_owned)
            .ok_or_else(|| format!("Authorization lacks {key}"))
    };
    if part("Credential")? != KEY_ID {
        return Err("unknown AccessKeyId".into());
    }
    let signed = part("SignedHeaders")?;
    for needed in [
        "host",
        "x-acs-action",
        "x-acs-content-sha256",
        "x-acs-date",
        "x-acs-signature-nonce",
        "x-acs-version",
    ] {
        if !signed.split(';').any(|s| s == needed) {
            return Err(format!("{needed} is not signed"));
        }
    }
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect();
    pairs.sort();
    let canonical_query = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", rfc3986(k), rfc3986(v)))
        .collect::<Vec<_>>()
        .join("&");
    let mut canonical_headers = String::new();
    for name in signed.split(';') {
        canonical_headers.push_str(&format!("{name}:{}\n", h(name)?.trim()));
    }
    let request = format!(
        "{method}\n/\n{canonical_query}\n{canonical_headers}\n{signed}\n{}",
        h("x-acs-content-sha256")?
    );
    let to_sign = format!(
        "ACS3-HMAC-SHA256\n{}",
        hex(&Sha256::digest(request.as_bytes()))
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(to_sign.as_bytes());
    if part("Signature")? != hex(&mac.finalize().into_bytes()) {
        return Err("the signature does not match".into());
    }
    Ok(())
}

async fn answer(
    State(peer): State<Peer>,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    let query = query.unwrap_or_default();
    let auth = verify(&method, &query, &headers, &body, &peer.nonces);
    let params: BTreeMap<String, String> = query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect();
    let n = {
        let mut seen = peer.seen.lock().unwrap();
        seen.push(SmsRequest {
            params: params.clone(),
            auth_error: auth.clone().err(),
        });
        seen.len() - 1
    };
    if let Err(why) = auth {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"Code": "SignatureDoesNotMatch", "Message": why, "RequestId": "r"})),
        );
    }
    for required in ["PhoneNumbers", "SignName", "TemplateCode"] {
        if !params.contains_key(required) {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"Code": "MissingParameter", "Message": required})),
            );
        }
    }
    let (code, message) = (peer.script)(n);
    (
        StatusCode::OK,
        Json(
            json!({"Code": code, "Message": message, "BizId": format!("biz-{n}"), "RequestId": format!("req-{n}")}),
        ),
    )
}

async fn sms_env(backend: Backend, peer: &SmsPeer, secret: &str) -> TestEnv {
    TestEnv::new(
        backend,
        &[
            ("REVISIT__REMINDERS__CHANNEL", "sms"),
            ("REVISIT__SMS__ENDPOINT", &peer.url),
            ("REVISIT__SMS__ACCESS_KEY_ID", KEY_ID),
            ("REVISIT__SMS__ACCESS_KEY_SECRET", secret),
            ("REVISIT__SMS__SIGN_NAME", "华美医美"),
            ("REVISIT__SMS__TEMPLATE_CODE", "SMS_270000001"),
            ("REVISIT__JOBS__MESSAGE_SEND__BASE_DELAY_SECS", "1"),
        ],
    )
    .await
}

async fn wait_status(env: &TestEnv, revisit: i64, want: &str) -> revisit::store::Revisit {
    eventually(Duration::from_secs(30), want, || async {
        let r = env.store().revisit(revisit).await.unwrap().unwrap();
        (r.status.as_str() == want).then_some(r)
    })
    .await
}

async fn alibaba_cloud_sms_gets_a_signed_request_and_flow_control_is_retried_once(
    backend: Backend,
) {
    let peer = SmsPeer::start(Arc::new(|n| {
        if n == 0 {
            ("isv.BUSINESS_LIMIT_CONTROL", "触发分钟级流控Permits:1")
        } else {
            ("OK", "OK")
        }
    }))
    .await;
    let env = sms_env(backend, &peer, SECRET).await;
    let (revisit, _) = one_greeting(&env, false).await;
    let workers = env.start_workers(vec![GreetingGenerate::QUEUE, MessageSend::QUEUE]);
    let r = wait_status(&env, revisit, "sent").await;
    workers.stop().await;
    let got = peer.requests();
    assert_eq!(got.len(), 2, "flow control, then one delivery: {got:?}");
    for req in &got {
        assert_eq!(req.auth_error, None, "signed as the platform checks it");
        assert_eq!(req.params["PhoneNumbers"], "13800138000");
        assert_eq!(req.params["SignName"], "华美医美");
        assert_eq!(req.params["TemplateCode"], "SMS_270000001");
        assert_eq!(
            req.params["OutId"], r.send_key,
            "the revisit's key, for the records"
        );
        let vars: Value = serde_json::from_str(&req.params["TemplateParam"]).unwrap();
        assert_eq!(vars["content"].as_str(), r.message.as_deref());
    }
    assert!(r.message.unwrap().ends_with("拒收请回复R"));
    assert_eq!(r.channel.as_deref(), Some("sms"));
}

async fn alibaba_cloud_sms_refusals_are_not_retried(backend: Backend) {
    // A number the platform refuses.
    let peer = SmsPeer::start(Arc::new(|_| ("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号"))).await;
    let env = sms_env(backend, &peer, SECRET).await;
    let (revisit, _) = one_greeting(&env, false).await;
    let workers = env.start_workers(vec![GreetingGenerate::QUEUE, MessageSend::QUEUE]);
    let r = wait_status(&env, revisit, "failed").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    workers.stop().await;
    assert_eq!(peer.requests().len(), 1, "not retried");
    assert!(
        r.last_error
            .as_deref()
            .unwrap_or_default()
            .contains("isv.MOBILE_NUMBER_ILLEGAL"),
        "{:?}",
        r.last_error
    );
    assert!(!r.delivery_uncertain);

    // A wrong secret: the platform refuses the signature, and nothing is retried.
    let peer = SmsPeer::start(Arc::new(|_| ("OK", "OK"))).await;
    let env = sms_env(backend, &peer, "not-the-secret").await;
    let (revisit, _) = one_greeting(&env, false).await;
    let workers = env.start_workers(vec![GreetingGenerate::QUEUE, MessageSend::QUEUE]);
    let r = wait_status(&env, revisit, "failed").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    workers.stop().await;
    let got = peer.requests();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        got[0].auth_error.as_deref(),
        Some("the signature does not match")
    );
    assert!(
        r.last_error
            .as_deref()
            .unwrap_or_default()
            .contains("SignatureDoesNotMatch")
    );
}

fn robot_ok() -> Script {
    Arc::new(|_, _| (200, vec![], json!({"errcode": 0, "errmsg": "ok"})))
}

async fn a_failed_revisit_alerts_staff_through_the_wecom_robot_without_personal_data(
    backend: Backend,
) {
    let robot = MockServer::start(robot_ok()).await;
    // A receiver that refuses the message: the revisit fails for good.
    let hook = MockServer::start(Arc::new(|_, _| {
        (400, vec![], json!({"error": "bad number"}))
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
    let (revisit, _) = one_greeting(&env, false).await;
    let workers = env.start_workers(vec![
        GreetingGenerate::QUEUE,
        MessageSend::QUEUE,
        AlertSend::QUEUE,
    ]);
    wait_status(&env, revisit, "failed").await;
    let alert = eventually(Duration::from_secs(20), "the alert", || async {
        robot.received().first().cloned()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    workers.stop().await;
    assert_eq!(robot.count(), 1);
    assert_eq!(alert.body["msgtype"], "text");
    let text = alert.body["text"]["content"].as_str().unwrap();
    assert!(
        text.contains("回访失败")
            && text.contains(&format!("#{revisit}"))
            && text.contains("生日问候"),
        "{text}"
    );
    for private in ["13800138000", "张丽"] {
        assert!(
            !text.contains(private),
            "no personal data in a staff alert: {text}"
        );
    }
}

async fn the_wecom_robot_gets_at_most_20_alerts_a_minute_and_the_rest_later(backend: Backend) {
    let robot = MockServer::start(robot_ok()).await;
    let env = TestEnv::new(
        backend,
        &[
            ("REVISIT__ALERTS__WECOM_ROBOT_URL", &robot.url),
            ("REVISIT__JOBS__ALERT_SEND__BASE_DELAY_SECS", "1"),
        ],
    )
    .await;
    for i in 0..23 {
        revisit::store::enqueue(
            env.store(),
            &env.app.settings,
            &AlertSend {
                text: format!("测试提醒 {i}"),
            },
            None,
        )
        .await
        .unwrap();
    }
    let workers = env.start_workers(vec![AlertSend::QUEUE]);
    eventually(Duration::from_secs(20), "the first 20 alerts", || async {
        (robot.count() >= 20).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        robot.count(),
        20,
        "a robot takes 20 a minute: the rest wait"
    );
    // One token comes back every 3 s: the other three follow, spaced out, none lost.
    eventually(Duration::from_secs(30), "the last alerts", || async {
        (robot.count() == 23).then_some(())
    })
    .await;
    workers.stop().await;
    let got = robot.received();
    assert!(
        got[22].at - got[0].at >= Duration::from_secs(6),
        "the last three came after tokens came back"
    );
    let mut texts: Vec<String> = got
        .iter()
        .map(|r| r.body["text"]["content"].as_str().unwrap().to_owned())
        .collect();
    texts.sort();
    texts.dedup();
    assert_eq!(texts.len(), 23, "each alert once");
}
