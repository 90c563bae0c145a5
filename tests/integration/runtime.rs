//! The job runtime's guarantees: migrations, transactional enqueue, stored backoff, crash rescue,
//! crash-loop limit, dead jobs and their retry, graceful shutdown. On both backends.

use std::{sync::Arc, time::Duration};

use revisit::{
    config::Backend,
    domain::followup::FrequencyCap,
    store::{self, DbPool, NewJob, NewRevisit},
};
use revisit_jobs::{GreetingGenerate, Job, MessageSend, SystemHealth};

use crate::harness::*;

crate::on_both_backends!(
    migrations_apply_on_a_fresh_database_and_again_on_every_start,
    a_rolled_back_enqueue_leaves_no_job_and_a_duplicate_key_does_not_abort,
    a_failed_attempt_stores_its_next_run_time_and_no_slot_waits,
    a_dead_job_keeps_its_error_and_runs_again_after_jobs_retry,
    a_worker_killed_mid_job_has_its_job_finished_by_another_within_60s,
    a_job_that_always_kills_its_worker_stops_at_max_attempts,
    sigterm_lets_an_in_flight_job_finish,
    a_job_still_running_at_the_shutdown_timeout_is_not_released_but_rescued_later,
    pruning_deletes_finished_jobs_then_old_dead_jobs_and_health_rows,
);

async fn migrations_apply_on_a_fresh_database_and_again_on_every_start(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    let settings = settings(&test_db.url, &[]);
    for _ in 0..3 {
        let opened = store::open(&settings).await.unwrap();
        match opened.pool {
            DbPool::Postgres(p) => p.close().await,
            DbPool::Sqlite(p) => p.close().await,
        }
    }
    let opened = store::open(&settings).await.unwrap();
    let (ours, apalis): (i64, i64) = match &opened.pool {
        DbPool::Postgres(p) => (
            sqlx::query_scalar("SELECT count(*) FROM public.revisit_migrations")
                .fetch_one(p)
                .await
                .unwrap(),
            sqlx::query_scalar("SELECT count(*) FROM apalis._sqlx_migrations")
                .fetch_one(p)
                .await
                .unwrap(),
        ),
        DbPool::Sqlite(p) => (
            sqlx::query_scalar("SELECT count(*) FROM revisit_migrations")
                .fetch_one(p)
                .await
                .unwrap(),
            sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
                .fetch_one(p)
                .await
                .unwrap(),
        ),
    };
    assert!(ours >= 1 && apalis >= 5, "ours {ours}, apalis {apalis}");
}

async fn a_rolled_back_enqueue_leaves_no_job_and_a_duplicate_key_does_not_abort(backend: Backend) {
    let env = TestEnv::new(backend, &[]).await;
    let job = |key: &str| NewJob::of(&env.app.settings, &SystemHealth {}, Some(key.to_owned()));
    match &env.app.pool {
        DbPool::Postgres(pool) => {
            use revisit::store::postgres::jobs::insert;
            let mut tx = pool.begin().await.unwrap();
            assert!(insert(&mut tx, &job("k1")).await.unwrap().is_some());
            tx.rollback().await.unwrap();
            assert_eq!(
                env.jobs_of(SystemHealth::QUEUE).await.len(),
                0,
                "a rolled-back enqueue must leave nothing"
            );
            let mut tx = pool.begin().await.unwrap();
            assert!(insert(&mut tx, &job("k2")).await.unwrap().is_some());
            assert!(insert(&mut tx, &job("k2")).await.unwrap().is_none());
            sqlx::query("SELECT 1").execute(&mut *tx).await.unwrap();
            tx.commit().await.unwrap();
        }
        DbPool::Sqlite(pool) => {
            use revisit::store::sqlite::{begin_write, jobs::insert};
            let mut tx = begin_write(pool).await.unwrap();
            assert!(insert(&mut tx, &job("k1")).await.unwrap().is_some());
            tx.rollback().await.unwrap();
            assert_eq!(
                env.jobs_of(SystemHealth::QUEUE).await.len(),
                0,
                "a rolled-back enqueue must leave nothing"
            );
            let mut tx = begin_write(pool).await.unwrap();
            assert!(insert(&mut tx, &job("k2")).await.unwrap().is_some());
            assert!(insert(&mut tx, &job("k2")).await.unwrap().is_none());
            sqlx::query("SELECT 1").execute(&mut *tx).await.unwrap();
            tx.commit().await.unwrap();
        }
    }
    assert_eq!(env.jobs_of(SystemHealth::QUEUE).await.len(), 1);
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
    let (customer_id, person_id): (i64, i64) = env
        .rows("SELECT id, person_id FROM customers WHERE code = 'BJ-HA-001-C1'")
        .await[0];
    let date = chrono::NaiveDate::from_ymd_opt(2026, 5, 15).unwrap();
    let max = env
        .app
        .settings
        .policy(&revisit_jobs::KindInfo::of::<GreetingGenerate>())
        .max_attempts as i32;
    let since = chrono::Utc::now() - chrono::Duration::seconds(5);
    assert_eq!(
        env.store()
            .create_revisits(
                &[NewRevisit::birthday(customer_id, person_id, date)],
                test_mode,
                max,
                FrequencyCap::NONE,
            )
            .await
            .unwrap()
            .created,
        1
    );
    let revisit = env.store().revisits_since(since).await.unwrap()[0].id;
    let job = env.jobs_of(GreetingGenerate::QUEUE).await[0].id.clone();
    (revisit, job)
}

async fn wait_state(env: &TestEnv, job: &str, want: &str, timeout: Duration) -> Option<String> {
    eventually(timeout, &format!("job {job} to be {want}"), || async {
        match env.store().job_state(job).await.unwrap() {
            Some(s) if s.state == want => Some(s.last_error),
            _ => None,
        }
    })
    .await
}

async fn a_failed_attempt_stores_its_next_run_time_and_no_slot_waits(backend: Backend) {
    let llm = MockServer::start(Arc::new(|_, _| {
        (503, vec![], serde_json::json!({"error": "busy"}))
    }))
    .await;
    let env = TestEnv::new(
        backend,
        &[
            ("LLM_API_URL", &llm.url),
            ("LLM_API_KEY", "sk-test"),
            ("REVISIT__LLM__MAX_TRIES_PER_ATTEMPT", "1"),
            ("REVISIT__JOBS__GREETING_GENERATE__BASE_DELAY_SECS", "60"),
        ],
    )
    .await;
    let (_, job) = one_greeting(&env, true).await;
    let workers = env.start_workers(vec![GreetingGenerate::QUEUE]);
    let row = eventually(Duration::from_secs(20), "the failed attempt", || async {
        let j = env.job(&job).await;
        (j.attempts == 1 && j.state == "pending").then_some(j)
    })
    .await;
    // Backoff 60s with equal jitter: between 30 and 60 seconds from now, stored in the row.
    let wait = (row.run_at - chrono::Utc::now()).num_seconds();
    assert!((25..=61).contains(&wait), "next run in {wait}s");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        llm.count(),
        1,
        "the job must not run again before its stored run time"
    );
    workers.stop().await;
}

async fn a_dead_job_keeps_its_error_and_runs_again_after_jobs_retry(backend: Backend) {
    let llm = MockServer::start(Arc::new(|_, _| (500, vec![], serde_json::json!({})))).await;
    let env = TestEnv::new(
        backend,
        &[
            ("LLM_API_URL", &llm.url),
            ("LLM_API_KEY", "sk-test"),
            ("REVISIT__LLM__MAX_TRIES_PER_ATTEMPT", "1"),
            ("REVISIT__JOBS__GREETING_GENERATE__MAX_ATTEMPTS", "2"),
            ("REVISIT__JOBS__GREETING_GENERATE__BASE_DELAY_SECS", "1"),
        ],
    )
    .await;
    let (revisit, job) = one_greeting(&env, true).await;
    let workers = env.start_workers(vec![GreetingGenerate::QUEUE, MessageSend::QUEUE]);
    let err = wait_state(&env, &job, "failed", Duration::from_secs(30))
        .await
        .unwrap_or_default();
    assert!(err.contains("HTTP 500"), "{err}");
    assert_eq!(llm.count(), 2, "two attempts in all");
    let listed = env
        .store()
        .list_jobs(
            Some(store::JobState::Failed),
            Some(GreetingGenerate::QUEUE),
            10,
        )
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        env.store().revisit(revisit).await.unwrap().unwrap().status,
        revisit::domain::revisit::RevisitStatus::Failed
    );

    llm.set_script(Arc::new(|_, _| {
        (
            200,
            vec![],
            chat_answer("张女士，生日快乐！愿您每天都美丽自信。"),
        )
    }));
    assert_eq!(
        env.store().retry_jobs(Some(&job), None).await.unwrap(),
        vec![job.clone()]
    );
    let r = eventually(
        Duration::from_secs(30),
        "the retried greeting to be sent",
        || async {
            let r = env.store().revisit(revisit).await.unwrap().unwrap();
            (r.status == revisit::domain::revisit::RevisitStatus::Sent).then_some(r)
        },
    )
    .await;
    assert_eq!(r.generated_by.map(|w| w.as_str()), Some("llm"));
    assert_eq!(
        r.message.as_deref(),
        Some("张女士，生日快乐！愿您每天都美丽自信。拒收请回复R")
    );
    workers.stop().await;
}

/// Runs `revisit worker` for the greeting and send queues as a child process.
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

pub type Victim = Arc<std::sync::Mutex<Option<u32>>>;

pub fn kill(victim: &Victim) {
    if let Some(pid) = victim.lock().unwrap().take() {
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
    }
}

async fn a_worker_killed_mid_job_has_its_job_finished_by_another_within_60s(backend: Backend) {
    let victim: Victim = Default::default();
    let v = victim.clone();
    // The first LLM call SIGKILLs the worker making it; later calls answer.
    let llm = MockServer::start(Arc::new(move |n, _| {
        if n == 0 {
            kill(&v);
        }
        (200, vec![], chat_answer("张女士，生日快乐！"))
    }))
    .await;
    let env = TestEnv::new(backend, &[]).await;
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
    eventually(
        Duration::from_secs(60),
        "the job to finish on the second worker",
        || async {
            (env.store().revisit(revisit).await.unwrap().unwrap().status
                == revisit::domain::revisit::RevisitStatus::Sent)
                .then_some(())
        },
    )
    .await;
    assert!(killed_at.elapsed() < Duration::from_secs(60));
    // apalis records a job's completion asynchronously, just after its handler returns.
    wait_state(&env, &job, "done", Duration::from_secs(10)).await;
    assert_eq!(llm.count(), 2);
    second.kill().await.unwrap();
}

async fn a_job_that_always_kills_its_worker_stops_at_max_attempts(backend: Backend) {
    let victim: Victim = Default::default();
    let v = victim.clone();
    let llm = MockServer::start(Arc::new(move |_, _| {
        kill(&v);
        (200, vec![], chat_answer("不会到达"))
    }))
    .await;
    // max_attempts is stored with the job when it is enqueued.
    let env = TestEnv::new(
        backend,
        &[("REVISIT__JOBS__GREETING_GENERATE__MAX_ATTEMPTS", "2")],
    )
    .await;
    let (revisit, job) = one_greeting(&env, true).await;
    let llm_env = [
        ("LLM_API_URL", llm.url.as_str()),
        ("LLM_API_KEY", "sk-test"),
    ];
    let mut workers: Vec<tokio::process::Child> = Vec::new();
    let started = std::time::Instant::now();
    loop {
        let status = env.store().job_state(&job).await.unwrap().unwrap();
        if status.state == "failed" {
            let err = status.last_error.unwrap_or_default();
            assert!(err.contains("已尝试 2 次"), "{err}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the crash loop did not stop"
        );
        // Keep one live worker: it rescues the dead one's job, and is killed in turn.
        let alive = workers
            .last_mut()
            .map(|w| w.try_wait().unwrap().is_none())
            .unwrap_or(false);
        if !alive {
            let w = spawn_worker(&env, &llm_env);
            *victim.lock().unwrap() = w.id();
            workers.push(w);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(llm.count(), 2, "the job ran exactly max_attempts times");
    assert_eq!(
        env.store().revisit(revisit).await.unwrap().unwrap().status,
        revisit::domain::revisit::RevisitStatus::Failed
    );
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

async fn sigterm_lets_an_in_flight_job_finish(backend: Backend) {
    let llm = MockServer::start(Arc::new(|_, _| {
        (200, vec![], chat_answer("张女士，生日快乐！"))
    }))
    .await;
    llm.set_delay(Duration::from_secs(2));
    let env = TestEnv::new(backend, &[]).await;
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
    assert_eq!(
        env.store().job_state(&job).await.unwrap().unwrap().state,
        "done",
        "the in-flight job finished first"
    );
    let r = env.store().revisit(revisit).await.unwrap().unwrap();
    assert_eq!(r.generated_by.map(|w| w.as_str()), Some("llm"));
}

async fn a_job_still_running_at_the_shutdown_timeout_is_not_released_but_rescued_later(
    backend: Backend,
) {
    let llm = MockServer::start(Arc::new(|_, _| {
        (200, vec![], chat_answer("张女士，生日快乐！"))
    }))
    .await;
    llm.set_delay(Duration::from_secs(20));
    let env = TestEnv::new(backend, &[]).await;
    let (revisit, job) = one_greeting(&env, true).await;
    let llm_env = [
        ("LLM_API_URL", llm.url.as_str()),
        ("LLM_API_KEY", "sk-test"),
        ("REVISIT__WORKER__SHUTDOWN_TIMEOUT_SECS", "1"),
    ];
    let mut worker = spawn_worker(&env, &llm_env);
    wait_llm_called(&llm).await;
    sigterm(&worker);
    tokio::time::timeout(Duration::from_secs(15), worker.wait())
        .await
        .expect("worker exits")
        .unwrap();
    // Its handler was still running: released at shutdown, another worker would have run it
    // beside it. It stays held by the stopped worker until the heartbeat rule rescues it.
    let j = env.job(&job).await;
    assert_ne!(j.state, "pending", "a started job is not released: {j:?}");
    assert!(j.lock_by.is_some(), "{j:?}");
    llm.set_delay(Duration::ZERO);
    let mut second = spawn_worker(&env, &llm_env);
    eventually(
        Duration::from_secs(30),
        "the rescued job to finish",
        || async {
            let r = env.store().revisit(revisit).await.unwrap().unwrap();
            (r.generated_by.map(|w| w.as_str()) == Some("llm")).then_some(())
        },
    )
    .await;
    second.kill().await.unwrap();
}

async fn pruning_deletes_finished_jobs_then_old_dead_jobs_and_health_rows(backend: Backend) {
    let env = TestEnv::new(backend, &[]).await;
    for _ in 0..3 {
        store::enqueue(env.store(), &env.app.settings, &SystemHealth {}, None)
            .await
            .unwrap();
    }
    // A file that does not exist: a permanent failure, kept for operators.
    let missing = revisit_jobs::ImportFile {
        source: revisit_jobs::ImportSource {
            path: "/nonexistent/institutions.json".into(),
            kind: revisit_jobs::ImportKind::Institutions,
            institution: None,
        },
        then: vec![],
        batch: "gone".into(),
    };
    let failed = store::enqueue(env.store(), &env.app.settings, &missing, None)
        .await
        .unwrap()
        .unwrap();
    let workers = env.start_workers(vec![SystemHealth::QUEUE, revisit_jobs::ImportFile::QUEUE]);
    wait_state(&env, &failed, "failed", Duration::from_secs(20)).await;
    eventually(
        Duration::from_secs(20),
        "the health checks to finish",
        || async {
            (env.store().done_count(SystemHealth::QUEUE).await.unwrap() == 3).then_some(())
        },
    )
    .await;
    workers.stop().await;
    // A week's retention keeps what finished just now; dead jobs, cron ticks and health rows
    // have a longer retention of their own.
    let week = Duration::from_secs(7 * 86_400);
    let month = Duration::from_secs(30 * 86_400);
    assert_eq!(
        env.store().prune(week, month).await.unwrap(),
        revisit::store::Pruned::default()
    );
    let p = env.store().prune(Duration::ZERO, month).await.unwrap();
    assert_eq!((p.done_jobs, p.dead_jobs), (3, 0));
    assert_eq!(
        env.store().done_count(SystemHealth::QUEUE).await.unwrap(),
        0
    );
    assert_eq!(
        env.store().job_state(&failed).await.unwrap().unwrap().state,
        "failed",
        "failed jobs are kept within their retention"
    );
    assert_eq!(env.count("SELECT count(*) FROM health_checks").await, 3);
    let p = env
        .store()
        .prune(Duration::ZERO, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!((p.dead_jobs, p.health_checks), (1, 3));
    assert!(env.store().job_state(&failed).await.unwrap().is_none());
    assert_eq!(p.dead_workers, 0, "a worker seen within a day is kept");
    // Rows of worker processes gone for two days are pruned.
    let workers_table = match &env.app.pool {
        revisit::store::DbPool::Postgres(pool) => {
            sqlx::query("UPDATE apalis.workers SET last_seen = now() - interval '2 days'")
                .execute(pool)
                .await
                .unwrap();
            "apalis.workers"
        }
        revisit::store::DbPool::Sqlite(pool) => {
            sqlx::query("UPDATE Workers SET last_seen = last_seen - 172800")
                .execute(pool)
                .await
                .unwrap();
            "Workers"
        }
    };
    let p = env
        .store()
        .prune(Duration::ZERO, Duration::ZERO)
        .await
        .unwrap();
    assert!(p.dead_workers >= 1, "{workers_table}: {p:?}");
}
