//! The queue's batching: one fetch locks many jobs into a worker's local buffer, results are
//! stored many to a statement, and an insert announces itself once. What must still hold:
//! every job runs once, a job fetched but never started goes back uncharged when the worker
//! stops, and nothing is left locked.

use std::time::Duration;

use revisit::{config::Backend, store::NewJob};
use revisit_jobs::{Job, KindInfo, Noop};

use crate::harness::*;

crate::on_both_backends!(
    jobs_fetched_beyond_the_concurrency_each_run_once,
    jobs_fetched_but_never_started_go_back_uncharged_when_the_worker_stops,
    a_worker_busy_with_its_buffer_keeps_heartbeating_so_no_job_runs_twice,
    a_paused_queue_starts_nothing_until_it_is_resumed,
);

fn noop(seq: u64, sleep_ms: u64) -> Noop {
    Noop {
        seq,
        enqueued_at_micros: chrono::Utc::now().timestamp_micros(),
        sleep_ms,
    }
}

async fn enqueue(env: &TestEnv, jobs: impl Iterator<Item = Noop>) {
    let max_attempts = env
        .app
        .settings
        .policy(&KindInfo::of::<Noop>())
        .max_attempts as i32;
    let payloads = jobs.map(|j| serde_json::to_vec(&j).unwrap()).collect();
    env.store()
        .enqueue_many(Noop::QUEUE, payloads, max_attempts)
        .await
        .unwrap();
}

fn runs(env: &TestEnv) -> usize {
    env.app.bench_latencies.lock().unwrap().len()
}

async fn jobs_fetched_beyond_the_concurrency_each_run_once(backend: Backend) {
    let env = TestEnv::new(
        backend,
        &[
            ("REVISIT__JOBS__BENCH_NOOP__CONCURRENCY", "4"),
            ("REVISIT__JOBS__BENCH_NOOP__FETCH_SIZE", "100"),
        ],
    )
    .await;
    for chunk in 0..5u64 {
        enqueue(&env, (chunk * 100..(chunk + 1) * 100).map(|i| noop(i, 0))).await;
    }
    let workers = env.start_workers(vec![Noop::QUEUE]);
    eventually(Duration::from_secs(60), "500 jobs done", || async {
        (env.store().done_count(Noop::QUEUE).await.unwrap() == 500).then_some(())
    })
    .await;
    workers.stop().await;
    assert_eq!(runs(&env), 500, "every job ran exactly once");
    let jobs = env.jobs_of(Noop::QUEUE).await;
    assert_eq!(jobs.len(), 500);
    for j in &jobs {
        assert_eq!((j.state.as_str(), j.attempts), ("done", 1), "{j:?}");
        assert!(j.done_at.is_some(), "{j:?}");
    }
}

async fn jobs_fetched_but_never_started_go_back_uncharged_when_the_worker_stops(backend: Backend) {
    let env = TestEnv::new(
        backend,
        &[
            ("REVISIT__JOBS__BENCH_NOOP__CONCURRENCY", "1"),
            ("REVISIT__JOBS__BENCH_NOOP__FETCH_SIZE", "10"),
        ],
    )
    .await;
    enqueue(&env, (0..20).map(|i| noop(i, 400))).await;
    let workers = env.start_workers(vec![Noop::QUEUE]);
    eventually(
        Duration::from_secs(30),
        "the first job to start",
        || async { (runs(&env) >= 1).then_some(()) },
    )
    .await;
    // The worker holds a batch of ten and runs one: the graceful stop lets that one finish and
    // gives the nine others back.
    workers.stop().await;
    let jobs = env.jobs_of(Noop::QUEUE).await;
    let done = jobs.iter().filter(|j| j.state == "done").count();
    assert!((1..=2).contains(&done), "{jobs:?}");
    assert_eq!(done, runs(&env), "the finished jobs are the ones that ran");
    for j in jobs.iter().filter(|j| j.state != "done") {
        assert_eq!(j.state, "pending", "{j:?}");
        assert_eq!(
            j.attempts, 0,
            "a job that never started is not charged: {j:?}"
        );
        assert!(j.lock_by.is_none(), "{j:?}");
    }
    // Another worker takes them at once: nothing waits for a heartbeat timeout.
    let fast = env
        .app_with(&[
            ("REVISIT__JOBS__BENCH_NOOP__CONCURRENCY", "20"),
            ("REVISIT__WORKER__HEARTBEAT_SECS", "600"),
        ])
        .await;
    let again = start_workers_on(fast, vec![Noop::QUEUE]);
    eventually(Duration::from_secs(20), "all 20 jobs done", || async {
        (env.store().done_count(Noop::QUEUE).await.unwrap() == 20).then_some(())
    })
    .await;
    again.stop().await;
    let jobs = env.jobs_of(Noop::QUEUE).await;
    assert!(jobs.iter().all(|j| j.attempts == 1), "{jobs:?}");
}

async fn a_worker_busy_with_its_buffer_keeps_heartbeating_so_no_job_runs_twice(backend: Backend) {
    // Orphaned after 2 s of silence; four jobs of 1.5 s, one at a time, all in one buffer: the
    // worker is busy for 6 s without fetching.
    let env = TestEnv::new(
        backend,
        &[
            ("REVISIT__JOBS__BENCH_NOOP__CONCURRENCY", "1"),
            ("REVISIT__JOBS__BENCH_NOOP__FETCH_SIZE", "4"),
        ],
    )
    .await;
    enqueue(&env, (0..4).map(|i| noop(i, 1500))).await;
    let busy = env.start_workers(vec![Noop::QUEUE]);
    eventually(
        Duration::from_secs(20),
        "the first job to start",
        || async { (runs(&env) >= 1).then_some(()) },
    )
    .await;
    // A second worker whose heartbeats would give the busy one's jobs back if it looked dead.
    let other_app = env.app_with(&[]).await;
    let other = start_workers_on(other_app.clone(), vec![Noop::QUEUE]);
    eventually(Duration::from_secs(30), "four jobs done", || async {
        (env.store().done_count(Noop::QUEUE).await.unwrap() == 4).then_some(())
    })
    .await;
    busy.stop().await;
    other.stop().await;
    let ran_elsewhere = other_app.bench_latencies.lock().unwrap().len();
    assert_eq!(
        (runs(&env), ran_elsewhere),
        (4, 0),
        "the busy worker ran its four jobs, none was taken from it"
    );
    let jobs = env.jobs_of(Noop::QUEUE).await;
    assert!(jobs.iter().all(|j| j.attempts == 1), "{jobs:?}");
}

/// An insert of many jobs wakes the workers of its queue once, not once per job.
#[tokio::test]
async fn postgres_announces_an_insert_once_per_statement_and_queue() {
    let env = TestEnv::new(Backend::Postgres, &[]).await;
    let mut listener = sqlx::postgres::PgListener::connect(&env.db.url)
        .await
        .unwrap();
    listener
        .listen(revisit::queue::wakeups::WAKE_CHANNEL)
        .await
        .unwrap();
    enqueue(&env, (0..1000).map(|i| noop(i, 0))).await;
    let first = tokio::time::timeout(Duration::from_secs(5), listener.recv())
        .await
        .expect("a wake-up")
        .unwrap();
    assert_eq!(first.payload(), Noop::QUEUE);
    let more = tokio::time::timeout(Duration::from_millis(500), listener.recv()).await;
    assert!(more.is_err(), "a second wake-up for one insert: {more:?}");
    // A job due later wakes nobody: the polling interval picks it up when it is due.
    let later = NewJob {
        run_at: Some(chrono::Utc::now() + chrono::Duration::hours(1)),
        ..NewJob::of(&env.app.settings, &noop(1000, 0), None)
    };
    env.store().enqueue(later).await.unwrap();
    let woke = tokio::time::timeout(Duration::from_millis(500), listener.recv()).await;
    assert!(
        woke.is_err(),
        "a job due in an hour woke the workers: {woke:?}"
    );
}

/// A process serving every queue holds one LISTEN connection (it held one per queue, 15), and
/// each queue's worker is still woken by its own inserts at once.
#[tokio::test]
async fn postgres_one_listen_connection_serves_every_queue() {
    let env = TestEnv::new(
        Backend::Postgres,
        &[("REVISIT__WORKER__POLL_INTERVAL_MS", "5000")],
    )
    .await;
    let queues: Vec<&'static str> = revisit_jobs::ALL_KINDS.iter().map(|k| k.queue).collect();
    assert!(queues.len() > 10);
    let workers = env.start_workers(queues);
    let db = env.db.url.rsplit('/').next().unwrap().to_owned();
    let listening = || async {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND query LIKE 'LISTEN%'",
        )
        .bind(&db)
        .fetch_one(&admin_pool().await)
        .await
        .unwrap();
        n
    };
    eventually(
        Duration::from_secs(10),
        "the listener to connect",
        || async { (listening().await >= 1).then_some(()) },
    )
    .await;
    // Woken, not polled (the interval is 5 s): the job runs well before the next poll.
    let started = std::time::Instant::now();
    enqueue(&env, std::iter::once(noop(0, 0))).await;
    eventually(Duration::from_secs(4), "the job to run", || async {
        (runs(&env) == 1).then_some(())
    })
    .await;
    assert!(started.elapsed() < Duration::from_secs(4));
    assert_eq!(
        listening().await,
        1,
        "one LISTEN connection for every queue"
    );
    workers.stop().await;
}

/// A connection to the test server's `postgres` database, to look at the others.
async fn admin_pool() -> sqlx::PgPool {
    sqlx::PgPool::connect(&format!("{}/postgres", server_url()))
        .await
        .unwrap()
}

/// `revisit jobs pause`: stored in the database, obeyed by a running worker at its next fetch;
/// the jobs wait, untouched, and run once the queue is resumed.
async fn a_paused_queue_starts_nothing_until_it_is_resumed(backend: Backend) {
    let env = TestEnv::new(backend, &[]).await;
    assert!(
        env.store()
            .pause_queue(Noop::QUEUE, Some("网关维护"))
            .await
            .unwrap()
    );
    assert!(!env.store().pause_queue(Noop::QUEUE, None).await.unwrap());
    let paused = env.store().paused_queues().await.unwrap();
    assert_eq!(paused.len(), 1);
    assert_eq!(paused[0].reason.as_deref(), Some("网关维护"));
    let workers = env.start_workers(vec![Noop::QUEUE]);
    enqueue(&env, (0..5).map(|i| noop(i, 0))).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(runs(&env), 0, "a paused queue starts nothing");
    let jobs = env.jobs_of(Noop::QUEUE).await;
    assert!(jobs.iter().all(|j| j.attempts == 0), "{jobs:?}");
    assert!(env.store().resume_queue(Noop::QUEUE).await.unwrap());
    assert!(env.store().paused_queues().await.unwrap().is_empty());
    let started = std::time::Instant::now();
    eventually(Duration::from_secs(10), "the jobs to run", || async {
        (runs(&env) == 5).then_some(())
    })
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "resumed within a second: {:?}",
        started.elapsed()
    );
    workers.stop().await;
}
