//! Real sending is an operator's choice: on a fresh database every scan, whoever asked for it,
//! runs in test mode and nobody is contacted; `revisit sending on` says what will be sent and
//! needs a confirmation; `off` stops at once, and a real message still queued is not sent.

use std::{sync::Arc, time::Duration};

use revisit::config::Backend;
use revisit_jobs::{GreetingGenerate, Job, MessageSend, ReminderScan};

use crate::harness::*;

crate::on_both_backends!(
    a_fresh_database_contacts_nobody_until_an_operator_switches_sending_on,
    switching_off_stops_a_real_message_already_queued,
);

fn hook() -> Script {
    Arc::new(|_, _| (200, vec![], serde_json::json!({"ok": true})))
}

async fn one_customer_with_a_birthday(env: &TestEnv) {
    let birthday = birthday_in_days(2);
    let tree = write_tree(&[
        ("common/institutions.json", INSTITUTIONS),
        (
            "BJ-HA-001/customers.json",
            &customers_json(&[("BJ-HA-001-C1", "张丽", &birthday, "13800000001")]),
        ),
    ]);
    import_tree(env, tree.path()).await;
}

/// The scan a cron tick enqueues: real, unless sending is off.
async fn enqueue_tick(env: &TestEnv) {
    revisit::store::enqueue(
        env.store(),
        &env.app.settings,
        &ReminderScan {
            institution: Some("BJ-HA-001".into()),
            test_mode: false,
            today: None,
        },
        None,
    )
    .await
    .unwrap();
}

async fn a_fresh_database_contacts_nobody_until_an_operator_switches_sending_on(backend: Backend) {
    let hook = MockServer::start(hook()).await;
    let channel = [
        ("REVISIT__REMINDERS__CHANNEL", "webhook"),
        ("REVISIT__WEBHOOK__URL", hook.url.as_str()),
    ];
    let env = TestEnv::fresh(backend, &channel).await;
    one_customer_with_a_birthday(&env).await;

    // Asked for a real scan by hand: refused, in Chinese, saying how to go on.
    let (code, stdout, stderr) = run_cli_with(
        &env,
        &channel,
        args(&["run-reminders", "--institution", "BJ-HA-001"]),
        None,
    )
    .await;
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains("正式发送尚未开启") && stderr.contains("revisit sending on"),
        "{stderr}"
    );

    // A real scan that reaches a worker anyway (a cron tick) runs in test mode.
    enqueue_tick(&env).await;
    let workers = env.start_workers(vec![
        ReminderScan::QUEUE,
        GreetingGenerate::QUEUE,
        MessageSend::QUEUE,
    ]);
    let shown = eventually(
        Duration::from_secs(30),
        "the test-mode greeting",
        || async {
            let n = env
                .count("SELECT count(*) FROM revisits WHERE test_mode AND status = 'sent'")
                .await;
            (n == 1).then_some(n)
        },
    )
    .await;
    assert_eq!(shown, 1);
    assert_eq!(
        env.count("SELECT count(*) FROM revisits WHERE NOT test_mode")
            .await,
        0
    );
    assert_eq!(hook.count(), 0, "nobody was contacted");

    // Without a terminal and without --yes, nobody confirmed: still off.
    let (code, stdout, stderr) = run_cli_with(&env, &channel, args(&["sending", "on"]), None).await;
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("渠道：webhook"),
        "says what will be sent: {stdout}"
    );
    assert!(stdout.contains("每天 09:00"), "{stdout}");
    assert!(
        stdout.contains("1 位"),
        "today's birthdays counted: {stdout}"
    );
    assert!(
        stdout.contains("revisit sending off"),
        "says how to stop: {stdout}"
    );
    assert!(stderr.contains("--yes"), "{stderr}");
    assert!(!env.store().sending_live().await.unwrap());

    let (code, stdout, stderr) = run_cli_with(
        &env,
        &channel,
        args(&["sending", "on", "--yes", "--by", "王经理"]),
        None,
    )
    .await;
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let state = env.store().sending_state().await.unwrap();
    assert!(state.live);
    assert_eq!(state.changed_by, "cli:王经理");
    let (_, status, _) = run_cli(&env, args(&["sending", "status"]), None).await;
    assert!(
        status.contains("已开启") && status.contains("王经理"),
        "{status}"
    );

    // Now the same tick sends for real, once.
    enqueue_tick(&env).await;
    eventually(Duration::from_secs(30), "the real greeting", || async {
        (hook.count() == 1).then_some(())
    })
    .await;
    workers.stop().await;
    assert_eq!(
        env.count("SELECT count(*) FROM revisits WHERE NOT test_mode AND status = 'sent'")
            .await,
        1
    );
}

async fn switching_off_stops_a_real_message_already_queued(backend: Backend) {
    let hook = MockServer::start(hook()).await;
    let env = TestEnv::new(
        backend,
        &[
            ("REVISIT__REMINDERS__CHANNEL", "webhook"),
            ("REVISIT__WEBHOOK__URL", &hook.url),
        ],
    )
    .await;
    one_customer_with_a_birthday(&env).await;
    enqueue_tick(&env).await;
    // Generated while sending was on, its send not yet run.
    let workers = env.start_workers(vec![ReminderScan::QUEUE, GreetingGenerate::QUEUE]);
    eventually(Duration::from_secs(30), "the real greeting", || async {
        let n = env
            .count("SELECT count(*) FROM revisits WHERE NOT test_mode AND status = 'generated'")
            .await;
        (n == 1).then_some(())
    })
    .await;
    workers.stop().await;

    let (code, stdout, stderr) = run_cli(&env, args(&["sending", "off"]), None).await;
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("已关闭"), "{stdout}");

    let workers = env.start_workers(vec![MessageSend::QUEUE]);
    let error: String = eventually(Duration::from_secs(30), "the skipped send", || async {
        let rows: Vec<(String, Option<String>)> =
            env.rows("SELECT status, last_error FROM revisits").await;
        (rows[0].0 == "skipped").then(|| rows[0].1.clone().unwrap_or_default())
    })
    .await;
    workers.stop().await;
    assert_eq!(hook.count(), 0, "switched off: not sent");
    assert!(error.contains("正式发送已关闭"), "{error}");
}
