//! Sending: a webhook that fails then succeeds delivers once; a worker killed after the receiver
//! got the message does not make the customer get it twice.

use std::{collections::HashSet, sync::Arc, time::Duration};

use revisit::store::Backend;
use revisit_jobs::{GreetingGenerate, Job, MessageSend};

use crate::{
    harness::*,
    runtime::{Victim, kill, one_greeting, spawn_worker},
};

crate::on_both_backends!(
    a_webhook_500_then_200_delivers_once,
    a_worker_killed_after_sending_does_not_send_twice,
);

/// Distinct idempotency keys among the requests the webhook accepted: what a de-duplicating
/// gateway actually delivers.
fn delivered(hook: &MockServer, accepted: impl Fn(usize) -> bool) -> HashSet<String> {
    hook.received()
        .iter()
        .enumerate()
        .filter(|(n, _)| accepted(*n))
        .map(|(_, r)| r.headers["idempotency-key"].to_str().unwrap().to_owned())
        .collect()
}

async fn a_webhook_500_then_200_delivers_once(backend: Backend) {
    let hook = MockServer::start(Arc::new(|n, _| {
        if n == 0 {
            (500, vec![], serde_json::json!({"error": "down"}))
        } else {
            (200, vec![], serde_json::json!({"ok": true}))
        }
    }))
    .await;
    let env = TestEnv::new(
        backend,
        &[
            ("REVISIT__REMINDERS__CHANNEL", "webhook"),
            ("REVISIT__WEBHOOK__URL", &hook.url),
            ("REVISIT__JOBS__MESSAGE_SEND__BASE_DELAY_SECS", "1"),
        ],
    )
    .await;
    let (revisit, _) = one_greeting(&env, false).await;
    let workers = env.start_workers(vec![GreetingGenerate::QUEUE, MessageSend::QUEUE]);
    let r = eventually(Duration::from_secs(30), "delivery", || async {
        let r = env.store().revisit(revisit).await.unwrap().unwrap();
        (r.status == "sent").then_some(r)
    })
    .await;
    assert_eq!(r.channel.as_deref(), Some("webhook"));
    assert_eq!(r.send_attempts, 2);
    assert_eq!(hook.count(), 2);
    assert_eq!(delivered(&hook, |n| n >= 1).len(), 1);
    let body = &hook.received()[1].body;
    assert_eq!(
        body["phone"], "13800138000",
        "the gateway needs the number to send to"
    );
    assert_eq!(body["send_key"], r.send_key.as_str());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(hook.count(), 2, "nothing more after the delivery");
    workers.stop().await;
}

async fn a_worker_killed_after_sending_does_not_send_twice(backend: Backend) {
    let victim: Victim = Default::default();
    let v = victim.clone();
    // The gateway receives the message, then the worker dies before it hears back.
    let hook = MockServer::start(Arc::new(move |n, _| {
        if n == 0 {
            kill(&v);
        }
        (200, vec![], serde_json::json!({"ok": true}))
    }))
    .await;
    let env = TestEnv::new(backend, &[]).await;
    let (revisit, _) = one_greeting(&env, false).await;
    let hook_env = [
        ("REVISIT__REMINDERS__CHANNEL", "webhook"),
        ("REVISIT__WEBHOOK__URL", hook.url.as_str()),
    ];
    let mut first = spawn_worker(&env, &hook_env);
    *victim.lock().unwrap() = first.id();
    eventually(
        Duration::from_secs(30),
        "the first worker to die after sending",
        || {
            let done = first.try_wait().unwrap().is_some();
            async move { done.then_some(()) }
        },
    )
    .await;
    let r = env.store().revisit(revisit).await.unwrap().unwrap();
    assert_eq!(
        r.status, "sending",
        "the crash happened between delivery and its record"
    );
    let mut second = spawn_worker(&env, &hook_env);
    let r = eventually(Duration::from_secs(60), "the send to complete", || async {
        let r = env.store().revisit(revisit).await.unwrap().unwrap();
        (r.status == "sent").then_some(r)
    })
    .await;
    let keys: Vec<String> = hook
        .received()
        .iter()
        .map(|x| x.headers["idempotency-key"].to_str().unwrap().to_owned())
        .collect();
    assert!(
        keys.iter().all(|k| *k == r.send_key),
        "every try carries the revisit's key: {keys:?}"
    );
    assert_eq!(
        delivered(&hook, |_| true).len(),
        1,
        "the customer gets one message"
    );
    second.kill().await.unwrap();
}
