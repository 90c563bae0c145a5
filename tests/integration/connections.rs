//! The connection budget (issue #24): eight worker daemons and the API on one PostgreSQL with
//! its default `max_connections = 100` start, drain a burst of greetings, and never open more
//! than their budget. Runs alone (.config/nextest.toml), since it counts the server's
//! connections.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
    time::Duration,
};

use revisit::{
    config::Backend,
    store::connection_budget::{Budget, Role},
};

use crate::harness::*;

const WORKERS: usize = 8;
const CUSTOMERS: usize = 240;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_worker_daemons_and_the_api_stay_within_the_connection_budget() {
    let env = TestEnv::new(Backend::Postgres, &[]).await;
    let revisit::store::DbPool::Postgres(pool) = env.app.pool.clone() else {
        unreachable!()
    };
    let (max, reserved): (String, String) =
        sqlx::query_as("SELECT current_setting('max_connections'), current_setting('superuser_reserved_connections')")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        max, "100",
        "the test stands for a server with the default limit"
    );
    let room = 100 - reserved.parse::<u32>().unwrap();

    // The defaults a chain runs with (the harness lowers database.max_connections).
    let defaults = revisit::config::Settings::load(None).unwrap();
    let worker = Budget::of(
        &defaults,
        Role::Worker {
            queues: &[],
            api: false,
        },
    );
    let api = Budget::of(&defaults, Role::Api);
    let command = Budget::of(&defaults, Role::Command);
    let budget = WORKERS as u32 * worker.total() + api.total() + command.total();
    assert!(budget <= room, "{budget} > {room}");

    let birthday = birthday_in_days(2);
    let rows: Vec<(String, String, String, String)> = (0..CUSTOMERS)
        .map(|i| {
            (
                format!("BJ-HA-001-C{i:04}"),
                "张丽".to_owned(),
                birthday.clone(),
                format!("138{i:08}"),
            )
        })
        .collect();
    let rows: Vec<(&str, &str, &str, &str)> = rows
        .iter()
        .map(|(a, b, c, d)| (a.as_str(), b.as_str(), c.as_str(), d.as_str()))
        .collect();
    let tree = write_tree(&[
        ("common/institutions.json", INSTITUTIONS),
        ("BJ-HA-001/customers.json", &customers_json(&rows)),
    ]);
    import_tree(&env, tree.path()).await;

    // Every connection of this database's revisit processes, sampled while they work.
    let db_name = env.db.url.rsplit('/').next().unwrap().to_owned();
    let peak = Arc::new(AtomicU32::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (pool, peak, done) = (pool.clone(), peak.clone(), done.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                let n: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM pg_stat_activity
                      WHERE datname = $1 AND application_name LIKE 'revisit%'",
                )
                .bind(&db_name)
                .fetch_one(&pool)
                .await
                .unwrap();
                peak.fetch_max(n as u32, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    let llm = MockServer::start(Arc::new(|_, _| {
        (
            200,
            vec![],
            chat_answer("女士您好，生日快乐！感谢您一直以来的信任，愿您新的一岁心情愉快。"),
        )
    }))
    .await;
    // Slow enough that every worker has greetings in flight at once.
    llm.set_delay(Duration::from_millis(150));
    let vars = [
        ("LLM_API_URL", llm.url.as_str()),
        ("LLM_API_KEY", "sk-test"),
        // The default cap, as a chain runs it (the harness lowers it for its many tests).
        ("REVISIT__DATABASE__MAX_CONNECTIONS", "16"),
    ];
    let mut daemons: Vec<_> = (0..WORKERS)
        .map(|_| worker_daemon(&env, &[], &vars))
        .collect();
    let addr = free_addr();
    let mut api_process = tokio::process::Command::new(env!("CARGO_BIN_EXE_revisit"))
        .args(["serve", "--addr", &addr])
        .env_clear()
        .envs(env.child_env(&vars))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    eventually(Duration::from_secs(30), "the API to be ready", || {
        let (http, url) = (http.clone(), format!("http://{addr}/health/ready"));
        async move {
            let r = http.get(url).send().await.ok()?;
            r.status().is_success().then_some(())
        }
    })
    .await;
    eventually(Duration::from_secs(30), "eight live worker daemons", || {
        let pool = pool.clone();
        async move {
            let n: i64 = sqlx::query_scalar(
                "SELECT count(DISTINCT id) FROM apalis.workers
                  WHERE worker_type = 'greeting.generate.v1' AND last_seen > now() - interval '5 seconds'",
            )
            .fetch_one(&pool)
            .await
            .ok()?;
            (n as usize >= WORKERS).then_some(())
        }
    })
    .await;

    let (code, stdout, stderr) = run_cli(
        &env,
        args(&["run-reminders", "--institution", "BJ-HA-001", "--wait"]),
        None,
    )
    .await;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let sent: i64 = sqlx::query_scalar("SELECT count(*) FROM revisits WHERE status = 'sent'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(sent, CUSTOMERS as i64, "{stdout}");
    // Every daemon took part: the burst was spread, not drained by one.
    let takers: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT lock_by) FROM apalis.jobs WHERE job_type = 'greeting.generate.v1'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(takers >= 2, "greetings ran on {takers} daemon(s)");

    // What `revisit check` tells the operator, while they all run.
    let (code, stdout, stderr) = run_cli_with(&env, &vars, args(&["check"]), None).await;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.contains("数据库连接"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(line.contains("上限 100"), "{line}");
    assert!(
        line.contains(&format!("最多占 {} 个", worker.total())),
        "{line}"
    );

    done.store(true, Ordering::Relaxed);
    sampler.await.unwrap();
    for d in &mut daemons {
        d.kill().await.unwrap();
    }
    api_process.kill().await.unwrap();
    let peak = peak.load(Ordering::Relaxed);
    eprintln!("peak {peak} connections of a budget of {budget}");
    // Each daemon holds at least its LISTEN connection and its queue's, so the sampling saw them.
    assert!(
        peak >= 2 * WORKERS as u32,
        "peak {peak}: the sampling missed the daemons"
    );
    assert!(peak <= budget, "peak {peak} connections > budget {budget}");
}
