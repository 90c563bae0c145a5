//! The job runtime's guarantees: migrations, transactional enqueue, stored backoff, crash rescue,
//! crash-loop limit, dead jobs and their retry.

use std::time::Duration;

use revisit::{
    db,
    queue::{EnqueueOptions, admin, enqueue},
};
use revisit_jobs::{GreetingGenerate, Job, SystemHealth};

use crate::harness::*;

#[tokio::test]
async fn migrations_apply_on_a_fresh_database_and_again_on_every_start() {
    let test_db = TestDb::new().await;
    let settings = settings(&test_db.url, &[]);
    for _ in 0..3 {
        let pool = db::connect(&settings).await.unwrap();
        db::migrate(&pool).await.unwrap();
        pool.close().await;
    }
    let pool = db::connect(&settings).await.unwrap();
    let ours: i64 = sqlx::query_scalar("SELECT count(*) FROM public.revisit_migrations")
        .fetch_one(&pool)
        .await
        .unwrap();
    let apalis: i64 = sqlx::query_scalar("SELECT count(*) FROM apalis._sqlx_migrations")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(ours >= 1 && apalis >= 10, "ours {ours}, apalis {apalis}");
}

#[tokio::test]
async fn a_rolled_back_enqueue_leaves_no_job_and_a_duplicate_key_does_not_abort() {
    let env = TestEnv::new(&[]).await;
    let mut tx = env.pool().begin().await.unwrap();
    let id = enqueue(
        &mut tx,
        &env.app.settings,
        &SystemHealth {},
        EnqueueOptions::keyed("k1"),
    )
    .await
    .unwrap();
    assert!(id.is_some());
    tx.rollback().await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM apalis.jobs")
        .fetch_one(env.pool())
        .await
        .unwrap();
    assert_eq!(n, 0, "a rolled-back enqueue must leave nothing");

    let mut tx = env.pool().begin().await.unwrap();
    let first = enqueue(
        &mut tx,
        &env.app.settings,
        &SystemHealth {},
        EnqueueOptions::keyed("k2"),
    )
    .await
    .unwrap();
    let again = enqueue(
        &mut tx,
        &env.app.settings,
        &SystemHealth {},
        EnqueueOptions::keyed("k2"),
    )
    .await
    .unwrap();
    assert!(first.is_some() && again.is_none());
    // The transaction is still usable after the duplicate.
    sqlx::query("SELECT 1").execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM apalis.jobs")
        .fetch_one(env.pool())
        .await
        .unwrap();
    assert_eq!(n, 1);
}

/// Sets up one customer with a revisit and its greeting job; returns (revisit id, job id).
pub async fn one_greeting(env: &TestEnv, test_mode: bool) -> (i64, String) {
    let dir = write_tree(&[
        ("common/institutions.json", INSTITUTIONS),
        (
            "BJ-HA-001/customers.json",
            &customers_json(&[("BJ-HA-001-C1", "张丽", "1990-05-15", "13800138000")]),
        ),
    ]);
    import_tree(env, dir.path()).await;
    let customer: i64 = sqlx::query_scalar("SELECT id FROM customers WHERE code = 'BJ-HA-001-C1'")
        .fetch_one(env.pool())
        .await
        .unwrap();
    let mut tx = env.pool().begin().await.unwrap();
    let date = chrono::NaiveDate::from_ymd_opt(2026, 5, 15).unwrap();
    let revisit = revisit::db::revisits::create(&mut tx, customer, "birthday", date, test_mode)
        .await
        .unwrap()
        .unwrap();
    let job = enqueue(
        &mut tx,
        &env.app.settings,
        &GreetingGenerate {
            revisit_id: revisit,
        },
        EnqueueOptions::default(),
    )
    .await
    .unwrap()
    .unwrap();
    tx.commit().await.unwrap();
    (revisit, job)
}

#[tokio::test]
async fn a_failed_attempt_stores_its_next_run_time_and_no_slot_waits() {
    let llm = MockServer::start(std::sync::Arc::new(|_, _| {
        (503, vec![], serde_json::json!({"error": "busy"}))
    }))
    .await;
    let env = TestEnv::new(&[
        ("LLM_API_URL", &llm.url),
        ("LLM_API_KEY", "sk-test"),
        ("REVISIT__LLM__MAX_TRIES_PER_ATTEMPT", "1"),
        ("REVISIT__JOBS__GREETING_GENERATE__BASE_DELAY_SECS", "60"),
    ])
    .await;
    let (_, job) = one_greeting(&env, true).await;
    let workers = env.start_workers(vec![GreetingGenerate::QUEUE]);
    let pool = env.pool().clone();
    let j = job.clone();
    let (status, attempts, wait_secs): (String, i32, f64) = eventually(Duration::from_secs(20), "the failed attempt", || {
        let pool = pool.clone();
        let j = j.clone();
        async move {
            let row: (String, i32, f64) = sqlx::query_as(
                "SELECT status, attempts, EXTRACT(EPOCH FROM run_at - now())::float8 FROM apalis.jobs WHERE id = $1",
            )
            .bind(&j)
            .fetch_one(&pool)
            .await
            .unwrap();
            (row.0 == "Failed").then_some(row)
        }
    })
    .await;
    assert_eq!((status.as_str(), attempts), ("Failed", 1));
    // Backoff 60s with equal jitter: between 30 and 60 seconds from now, stored in the row.
    assert!(
        wait_secs > 25.0 && wait_secs <= 60.0,
        "next run in {wait_secs}s"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        llm.count(),
        1,
        "the job must not run again before its stored run time"
    );
    workers.stop().await;
}

#[tokio::test]
async fn a_dead_job_keeps_its_error_and_runs_again_after_jobs_retry() {
    let llm = MockServer::start(std::sync::Arc::new(|_, _| {
        (500, vec![], serde_json::json!({}))
    }))
    .await;
    let env = TestEnv::new(&[
        ("LLM_API_URL", &llm.url),
        ("LLM_API_KEY", "sk-test"),
        ("REVISIT__LLM__MAX_TRIES_PER_ATTEMPT", "1"),
        ("REVISIT__JOBS__GREETING_GENERATE__MAX_ATTEMPTS", "2"),
        ("REVISIT__JOBS__GREETING_GENERATE__BASE_DELAY_SECS", "1"),
    ])
    .await;
    let (revisit, job) = one_greeting(&env, true).await;
    let workers = env.start_workers(vec![
        GreetingGenerate::QUEUE,
        revisit_jobs::MessageSend::QUEUE,
    ]);
    let pool = env.pool().clone();
    let j = job.clone();
    let err = eventually(Duration::from_secs(30), "the job to die", || {
        let pool = pool.clone();
        let j = j.clone();
        async move {
            match admin::state_of(&pool, &j).await.unwrap() {
                Some((s, e)) if s == "failed" => Some(e.unwrap_or_default()),
                _ => None,
            }
        }
    })
    .await;
    assert!(err.contains("HTTP 500"), "{err}");
    assert_eq!(llm.count(), 2, "two attempts in all");
    let listed = admin::list(
        env.pool(),
        Some(admin::JobState::Failed),
        Some(GreetingGenerate::QUEUE),
        10,
    )
    .await
    .unwrap();
    assert_eq!(listed.len(), 1);
    let r = revisit::db::revisits::get(env.pool(), revisit)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.status, "failed");

    llm.set_script(std::sync::Arc::new(|_, _| {
        (
            200,
            vec![],
            chat_answer("张女士，生日快乐！愿您每天都美丽自信。"),
        )
    }));
    assert_eq!(
        admin::retry(env.pool(), Some(&job), None).await.unwrap(),
        vec![job.clone()]
    );
    let pool = env.pool().clone();
    let r = eventually(
        Duration::from_secs(30),
        "the retried greeting to be sent",
        || {
            let pool = pool.clone();
            async move {
                let r = revisit::db::revisits::get(&pool, revisit)
                    .await
                    .unwrap()
                    .unwrap();
                (r.status == "sent").then_some(r)
            }
        },
    )
    .await;
    assert_eq!(r.generated_by.as_deref(), Some("llm"));
    assert_eq!(
        r.message.as_deref(),
        Some("张女士，生日快乐！愿您每天都美丽自信。")
    );
    workers.stop().await;
}

/// Runs `revisit worker --queue greeting.generate` as a child process.
pub fn spawn_worker(env: &TestEnv, extra: &[(&str, &str)]) -> tokio::process::Child {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_revisit"));
    cmd.args([
        "worker",
        "--no-cron",
        "--queue",
        "greeting.generate",
        "--queue",
        "message.send",
    ])
    .env_clear()
    .envs(env.child_env(extra))
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .kill_on_drop(true);
    cmd.spawn().expect("spawn worker")
}

pub type Victim = std::sync::Arc<std::sync::Mutex<Option<u32>>>;

pub fn kill(victim: &Victim) {
    if let Some(pid) = victim.lock().unwrap().take() {
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
    }
}

#[tokio::test]
async fn a_worker_killed_mid_job_has_its_job_finished_by_another_within_60s() {
    let victim: Victim = Default::default();
    let v = victim.clone();
    // The first LLM call SIGKILLs the worker making it; later calls answer.
    let llm = MockServer::start(std::sync::Arc::new(move |n, _| {
        if n == 0 {
            kill(&v);
        }
        (200, vec![], chat_answer("张女士，生日快乐！"))
    }))
    .await;
    let env = TestEnv::new(&[]).await;
    let (revisit, job) = one_greeting(&env, true).await;
    let llm_env = [
        ("LLM_API_URL", llm.url.as_str()),
        ("LLM_API_KEY", "sk-test"),
    ];
    let mut first = spawn_worker(&env, &llm_env);
    *victim.lock().unwrap() = first.id();
    let killed_at = eventually(
        Duration::from_secs(30),
        "the first worker to be killed",
        || {
            let done = first.try_wait().unwrap().is_some();
            async move { done.then(std::time::Instant::now) }
        },
    )
    .await;
    let mut second = spawn_worker(&env, &llm_env);
    let pool = env.pool().clone();
    eventually(
        Duration::from_secs(60),
        "the job to finish on the second worker",
        || {
            let pool = pool.clone();
            async move {
                let r = revisit::db::revisits::get(&pool, revisit)
                    .await
                    .unwrap()
                    .unwrap();
                (r.status == "sent").then_some(())
            }
        },
    )
    .await;
    assert!(killed_at.elapsed() < Duration::from_secs(60));
    let (state, _) = admin::state_of(env.pool(), &job).await.unwrap().unwrap();
    assert_eq!(state, "done");
    assert_eq!(llm.count(), 2);
    second.kill().await.unwrap();
}

#[tokio::test]
async fn a_job_that_always_kills_its_worker_stops_at_max_attempts() {
    let victim: Victim = Default::default();
    let v = victim.clone();
    let llm = MockServer::start(std::sync::Arc::new(move |_, _| {
        kill(&v);
        (200, vec![], chat_answer("不会到达"))
    }))
    .await;
    // max_attempts is stored with the job when it is enqueued.
    let env = TestEnv::new(&[("REVISIT__JOBS__GREETING_GENERATE__MAX_ATTEMPTS", "2")]).await;
    let (revisit, job) = one_greeting(&env, true).await;
    let llm_env = [
        ("LLM_API_URL", llm.url.as_str()),
        ("LLM_API_KEY", "sk-test"),
    ];
    let mut workers = Vec::new();
    let pool = env.pool().clone();
    let started = std::time::Instant::now();
    loop {
        let (state, err) = admin::state_of(&pool, &job).await.unwrap().unwrap();
        if state == "failed" {
            let err = err.unwrap_or_default();
            assert!(err.contains("gave up after 2 attempts"), "{err}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the crash loop did not stop"
        );
        // Keep one live worker: it rescues the dead one's job, and is killed in turn.
        let alive = workers
            .last_mut()
            .map(|w: &mut tokio::process::Child| w.try_wait().unwrap().is_none())
            .unwrap_or(false);
        if !alive {
            let w = spawn_worker(&env, &llm_env);
            *victim.lock().unwrap() = w.id();
            workers.push(w);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(llm.count(), 2, "the job ran exactly max_attempts times");
    let r = revisit::db::revisits::get(env.pool(), revisit)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.status, "failed");
    for mut w in workers {
        let _ = w.kill().await;
    }
}

fn sigterm(child: &tokio::process::Child) {
    let pid = child.id().expect("running");
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
}

async fn wait_llm_called(llm: &MockServer) {
    eventually(Duration::from_secs(30), "the LLM call to start", || {
        let n = llm.count();
        async move { (n > 0).then_some(()) }
    })
    .await;
}

#[tokio::test]
async fn sigterm_lets_an_in_flight_job_finish() {
    let llm = MockServer::start(std::sync::Arc::new(|_, _| {
        (200, vec![], chat_answer("张女士，生日快乐！"))
    }))
    .await;
    llm.set_delay(Duration::from_secs(2));
    let env = TestEnv::new(&[]).await;
    let (revisit, job) = one_greeting(&env, true).await;
    let mut worker = spawn_worker(
        &env,
        &[
            ("LLM_API_URL", &llm.url),
            ("LLM_API_KEY", "sk-test"),
            ("REVISIT__WORKER__SHUTDOWN_TIMEOUT_SECS", "20"),
        ],
    );
    wait_llm_called(&llm).await;
    sigterm(&worker);
    let status = tokio::time::timeout(Duration::from_secs(30), worker.wait())
        .await
        .expect("worker exits")
        .unwrap();
    assert!(status.success(), "{status:?}");
    let (state, _) = admin::state_of(env.pool(), &job).await.unwrap().unwrap();
    assert_eq!(
        state, "done",
        "the in-flight job finished before the worker stopped"
    );
    let r = revisit::db::revisits::get(env.pool(), revisit)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.generated_by.as_deref(), Some("llm"));
}

#[tokio::test]
async fn a_job_still_running_at_the_shutdown_timeout_is_released_at_once() {
    let llm = MockServer::start(std::sync::Arc::new(|_, _| {
        (200, vec![], chat_answer("张女士，生日快乐！"))
    }))
    .await;
    llm.set_delay(Duration::from_secs(20));
    let env = TestEnv::new(&[]).await;
    let (_, job) = one_greeting(&env, true).await;
    let mut worker = spawn_worker(
        &env,
        &[
            ("LLM_API_URL", &llm.url),
            ("LLM_API_KEY", "sk-test"),
            ("REVISIT__WORKER__SHUTDOWN_TIMEOUT_SECS", "1"),
        ],
    );
    wait_llm_called(&llm).await;
    sigterm(&worker);
    tokio::time::timeout(Duration::from_secs(15), worker.wait())
        .await
        .expect("worker exits")
        .unwrap();
    // Back in the queue straight away, not after the heartbeat timeout, and not charged.
    let (status, attempts, lock_by): (String, i32, Option<String>) =
        sqlx::query_as("SELECT status, attempts, lock_by FROM apalis.jobs WHERE id = $1")
            .bind(&job)
            .fetch_one(env.pool())
            .await
            .unwrap();
    assert_eq!((status.as_str(), attempts, lock_by), ("Pending", 0, None));
}
