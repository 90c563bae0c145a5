//! Sending: one delivery per revisit. A webhook that fails then succeeds delivers once; two runs
//! of one send deliver once; a worker killed after the receiver got the message never makes the
//! customer get it twice (the revisit is flagged "delivery uncertain"), unless the operator says
//! the receiver drops repeats, and then the repeat carries the same key.
//!
//! Every assertion counts the POSTs the receiver got for a revisit, not distinct keys: a test
//! here fails if one revisit causes two POSTs where one is allowed.

use std::{sync::Arc, time::Duration};

use revisit::{
    config::Backend,
    handlers::{Handler, JobCtx, JobError},
};
use revisit_jobs::{GreetingGenerate, Job, MessageSend};

use crate::{
    harness::*,
    runtime::{Victim, kill, one_greeting, spawn_worker},
};

crate::on_both_backends!(
    a_webhook_500_then_200_delivers_once,
    two_runs_of_one_send_at_once_deliver_once,
    a_worker_killed_after_sending_is_flagged_uncertain_and_not_sent_again,
    a_deduplicating_receiver_gets_the_repeat_with_the_same_key,
    a_greeting_made_in_quiet_hours_waits_for_the_window,
);

/// A real greeting made outside the send window is kept, with its send held until the window
/// opens; a test-mode one is shown at once.
async fn a_greeting_made_in_quiet_hours_waits_for_the_window(backend: Backend) {
    use chrono::Timelike;
    let hook = MockServer::start(ok_hook()).await;
    // A window that does not hold now (Asia/Shanghai, the default time zone).
    let local = chrono::Utc::now().with_timezone(&chrono_tz::Asia::Shanghai);
    let window = if local.hour() < 22 {
        "23:00-23:30"
    } else {
        "01:00-02:00"
    };
    let env = TestEnv::new(
        backend,
        &[
            ("REVISIT__REMINDERS__CHANNEL", "webhook"),
            ("REVISIT__WEBHOOK__URL", &hook.url),
            ("REVISIT__REMINDERS__SEND_WINDOW", window),
        ],
    )
    .await;
    let (revisit, _) = one_greeting(&env, false).await;
    let workers = env.start_workers(vec![GreetingGenerate::QUEUE, MessageSend::QUEUE]);
    let r = eventually(Duration::from_secs(30), "the greeting", || async {
        let r = env.store().revisit(revisit).await.unwrap().unwrap();
        (r.status == revisit::domain::revisit::RevisitStatus::Generated).then_some(r)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    workers.stop().await;
    assert!(r.message.is_some());
    assert_eq!(hook.count(), 0, "nothing sent in quiet hours");
    let send = env.jobs_of(MessageSend::QUEUE).await;
    assert_eq!(send.len(), 1, "the send is kept, not dropped");
    assert_eq!(send[0].state, "pending");
    let wait = send[0].run_at - chrono::Utc::now();
    assert!(
        wait > chrono::Duration::minutes(20) && wait < chrono::Duration::hours(24),
        "held until the window opens: {wait}"
    );
    assert_eq!(
        env.store().revisit(revisit).await.unwrap().unwrap().status,
        revisit::domain::revisit::RevisitStatus::Generated
    );
}

/// POSTs the receiver got for this revisit's key.
fn posts_for(hook: &MockServer, send_key: &str) -> usize {
    hook.received()
        .iter()
        .filter(|r| r.headers["idempotency-key"].to_str().unwrap() == send_key)
        .count()
}

/// A receiver that gets the first message, then SIGKILLs the worker that sent it before
/// answering (the worker whose pid is put in the victim).
async fn hook_that_kills_the_first_sender() -> (MockServer, Victim) {
    let victim: Victim = Default::default();
    let v = victim.clone();
    let hook = MockServer::start(Arc::new(move |n, _| {
        if n == 0 {
            kill(&v);
        }
        (200, vec![], serde_json::json!({"ok": true}))
    }))
    .await;
    (hook, victim)
}

fn ok_hook() -> Script {
    Arc::new(|_, _| (200, vec![], serde_json::json!({"ok": true})))
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
        (r.status == revisit::domain::revisit::RevisitStatus::Sent).then_some(r)
    })
    .await;
    assert_eq!(r.channel.as_deref(), Some("webhook"));
    assert_eq!(r.send_attempts, 2);
    assert_eq!(hook.count(), 2, "one refused try, one delivery");
    assert_eq!(posts_for(&hook, &r.send_key), 2);
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

async fn two_runs_of_one_send_at_once_deliver_once(backend: Backend) {
    let hook = MockServer::start(ok_hook()).await;
    // A slow receiver: the second run starts while the first is still waiting for it.
    hook.set_delay(Duration::from_millis(800));
    let env = TestEnv::new(
        backend,
        &[
            ("REVISIT__REMINDERS__CHANNEL", "webhook"),
            ("REVISIT__WEBHOOK__URL", &hook.url),
        ],
    )
    .await;
    let (revisit, _) = one_greeting(&env, false).await;
    let workers = env.start_workers(vec![GreetingGenerate::QUEUE]);
    let r = eventually(Duration::from_secs(30), "the message", || async {
        let r = env.store().revisit(revisit).await.unwrap().unwrap();
        (r.status == revisit::domain::revisit::RevisitStatus::Generated).then_some(r)
    })
    .await;
    workers.stop().await;
    let ctx = |job_id: &'static str| JobCtx {
        app: &env.app,
        job_id,
        attempt: 1,
        max_attempts: 8,
    };
    let send = MessageSend {
        revisit_id: revisit,
    };
    let (a, b) = (ctx("run-a"), ctx("run-b"));
    let (first, second) = tokio::join!(send.run(&a), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        send.run(&b).await
    });
    assert!(first.is_ok(), "the first run delivers: {first:?}");
    match second {
        Err(JobError::Retry {
            after: Some(after), ..
        }) => assert!(
            after > Duration::from_secs(1),
            "the second run looks again only after the first run's lease: {after:?}"
        ),
        other => panic!("the second run must not send, only look again later: {other:?}"),
    }
    assert_eq!(posts_for(&hook, &r.send_key), 1, "one POST for one revisit");
    // The second run's retry, after the first has finished, finds it sent.
    assert!(send.run(&ctx("run-c")).await.is_ok());
    assert_eq!(posts_for(&hook, &r.send_key), 1);
    let r = env.store().revisit(revisit).await.unwrap().unwrap();
    assert_eq!((r.status.as_str(), r.send_attempts), ("sent", 1));
}

/// The first worker's POST reaches the receiver, which SIGKILLs the worker before it answers;
/// then a second worker takes the job over. Returns the revisit after the second worker is done.
async fn kill_after_the_receiver_got_it(
    env: &TestEnv,
    hook: &MockServer,
    victim: &Victim,
    extra: &[(&str, &str)],
    settled: &str,
) -> revisit::store::Revisit {
    let (revisit, _) = one_greeting(env, false).await;
    let mut hook_env = vec![
        ("REVISIT__REMINDERS__CHANNEL", "webhook"),
        ("REVISIT__WEBHOOK__URL", hook.url.as_str()),
        // A short lease (2 × 2 s + 5 s) so that the test does not wait long for it to end.
        ("REVISIT__WEBHOOK__TIMEOUT_SECS", "2"),
        ("REVISIT__JOBS__MESSAGE_SEND__BASE_DELAY_SECS", "1"),
    ];
    hook_env.extend_from_slice(extra);
    let mut first = spawn_worker(env, &hook_env);
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
        r.status,
        revisit::domain::revisit::RevisitStatus::Sending,
        "the crash happened between delivery and its record"
    );
    assert_eq!(posts_for(hook, &r.send_key), 1);
    let mut second = spawn_worker(env, &hook_env);
    let r = eventually(
        Duration::from_secs(60),
        &format!("the send to end {settled}"),
        || async {
            let r = env.store().revisit(revisit).await.unwrap().unwrap();
            (r.status.as_str() == settled).then_some(r)
        },
    )
    .await;
    second.kill().await.unwrap();
    r
}

async fn a_worker_killed_after_sending_is_flagged_uncertain_and_not_sent_again(backend: Backend) {
    let (hook, victim) = hook_that_kills_the_first_sender().await;
    let env = TestEnv::new(backend, &[]).await;
    let r = kill_after_the_receiver_got_it(&env, &hook, &victim, &[], "failed").await;
    assert!(r.delivery_uncertain, "flagged for a person to check");
    assert!(
        r.last_error
            .as_deref()
            .unwrap_or("")
            .contains("送达情况不明"),
        "{:?}",
        r.last_error
    );
    // Give any stray retry time to show itself.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        posts_for(&hook, &r.send_key),
        1,
        "a receiver that does not drop repeats gets the message once"
    );
}

async fn a_deduplicating_receiver_gets_the_repeat_with_the_same_key(backend: Backend) {
    let (hook, victim) = hook_that_kills_the_first_sender().await;
    let env = TestEnv::new(backend, &[]).await;
    let r = kill_after_the_receiver_got_it(
        &env,
        &hook,
        &victim,
        &[("REVISIT__WEBHOOK__DEDUPLICATES", "true")],
        "sent",
    )
    .await;
    assert!(!r.delivery_uncertain);
    assert_eq!(
        posts_for(&hook, &r.send_key),
        2,
        "the repeat goes out once, with the revisit's key, for the receiver to drop"
    );
    assert_eq!(hook.count(), 2);
}
