//! Rate limits shared by every worker process (issue #24): two worker daemons, each allowed
//! four LLM calls at once, make at most two together, and their webhook sends leave at the
//! channel's pace.

use std::{sync::Arc, time::Duration};

use revisit::config::Backend;

use crate::harness::*;

crate::on_both_backends!(two_worker_daemons_share_the_llm_and_channel_limits);

const CUSTOMERS: usize = 12;
const SENDS_PER_SECOND: f64 = 5.0;

async fn two_worker_daemons_share_the_llm_and_channel_limits(backend: Backend) {
    let env = TestEnv::new(backend, &[]).await;
    let birthday = birthday_in_days(2);
    let rows: Vec<(String, String)> = (0..CUSTOMERS)
        .map(|i| (format!("BJ-HA-001-C{i:02}"), format!("1380000{i:04}")))
        .collect();
    let rows: Vec<(&str, &str, &str, &str)> = rows
        .iter()
        .map(|(code, phone)| (code.as_str(), "张丽", birthday.as_str(), phone.as_str()))
        .collect();
    let tree = write_tree(&[
        ("common/institutions.json", INSTITUTIONS),
        ("BJ-HA-001/customers.json", &customers_json(&rows)),
    ]);
    import_tree(&env, tree.path()).await;

    let llm = MockServer::start(Arc::new(|_, _| {
        (
            200,
            vec![],
            chat_answer("女士您好，生日快乐！感谢您一直以来的信任，愿您新的一岁心情愉快。"),
        )
    }))
    .await;
    llm.set_delay(Duration::from_millis(250));
    let hook = MockServer::start(Arc::new(|_, _| {
        (200, vec![], serde_json::json!({"ok": true}))
    }))
    .await;
    let pace = SENDS_PER_SECOND.to_string();
    let vars = [
        ("LLM_API_URL", llm.url.as_str()),
        ("LLM_API_KEY", "sk-test"),
        ("REVISIT__LLM__MAX_CONCURRENT_CALLS", "4"),
        ("REVISIT__RATE_LIMITS__LLM_CONCURRENT_CALLS", "2"),
        ("REVISIT__REMINDERS__CHANNEL", "webhook"),
        ("REVISIT__WEBHOOK__URL", hook.url.as_str()),
        ("REVISIT__RATE_LIMITS__CHANNELS__WEBHOOK", pace.as_str()),
    ];
    let mut daemons = [
        worker_daemon(&env, &[], &vars),
        worker_daemon(&env, &[], &vars),
    ];
    let (code, out, err) = run_cli_with(
        &env,
        &vars,
        args(&["run-reminders", "--institution", "BJ-HA-001", "--wait"]),
        None,
    )
    .await;
    for d in &mut daemons {
        d.kill().await.unwrap();
    }
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert_eq!(hook.count(), CUSTOMERS, "every greeting sent once");
    // Each process alone would have made four calls at once.
    assert!(llm.count() >= CUSTOMERS);
    assert_eq!(
        llm.peak_in_flight(),
        2,
        "LLM calls at once across both workers"
    );
    // Sends are spaced 1/5 s apart whichever worker makes them: no second holds more than
    // five (one more allowed for the jitter of two processes' HTTP requests).
    let mut at: Vec<std::time::Instant> = hook.received().iter().map(|r| r.at).collect();
    at.sort();
    for (i, start) in at.iter().enumerate() {
        let within = at[i..]
            .iter()
            .take_while(|t| t.duration_since(*start) < Duration::from_secs(1))
            .count();
        assert!(
            within <= SENDS_PER_SECOND as usize + 1,
            "{within} sends within one second"
        );
    }
    let span = at.last().unwrap().duration_since(at[0]);
    let least = Duration::from_secs_f64((CUSTOMERS - 1) as f64 / SENDS_PER_SECOND * 0.9);
    assert!(
        span >= least,
        "{CUSTOMERS} sends took {span:?}, less than the pace allows"
    );
}
