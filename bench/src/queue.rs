//! `revisit bench queue`: the job queue's own speed, with no-op jobs on the configured database.
//!
//! Phases: (1) enqueue `--single` jobs one statement each; (2) enqueue `--jobs` jobs in batches
//! of 1,000; (3) start a worker and drain everything, timing from start to the last completion;
//! (4) for `--latency-secs`, enqueue at half the measured drain rate while the worker runs and
//! record each job's enqueue-to-start latency. Bench rows are deleted before and after.

use std::time::{Duration, Instant};

use revisit_jobs::{Job, Noop};

use crate::cli::BenchQueueArgs;
use revisit::{
    app::App,
    config::{PolicyOverride, Settings},
    queue::worker::InProcessPool,
    store::{self, NewJob},
};

fn noop(seq: u64, sleep_ms: u64) -> Noop {
    Noop {
        seq,
        enqueued_at_micros: chrono::Utc::now().timestamp_micros(),
        sleep_ms,
    }
}

async fn enqueue_batch(app: &App, jobs: impl Iterator<Item = Noop>) -> anyhow::Result<()> {
    let max_attempts = app
        .settings
        .policy(&revisit_jobs::KindInfo::of::<Noop>())
        .max_attempts as i32;
    let payloads = jobs
        .map(|j| serde_json::to_vec(&j))
        .collect::<Result<Vec<_>, _>>()?;
    app.store
        .enqueue_many(Noop::QUEUE, payloads, max_attempts)
        .await?;
    Ok(())
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx] as f64 / 1000.0
}

pub async fn queue(mut settings: Settings, args: BenchQueueArgs) -> anyhow::Result<()> {
    settings.jobs.insert(
        Noop::NAME.to_owned(),
        PolicyOverride {
            concurrency: Some(args.concurrency),
            fetch_size: Some(args.batch),
            ..Default::default()
        },
    );
    settings.cron.enabled = false;
    store::create_if_missing(&settings.database.url).await?;
    let app = App::new(store::open(&settings).await?, settings)?;
    let backend = app.store.backend().name();
    app.store.clear_queue(Noop::QUEUE).await?;
    println!(
        "队列基准 queue benchmark on {backend}: {} single + {} batched no-op jobs of {} ms, concurrency {}, batch {}",
        args.single, args.jobs, args.job_ms, args.concurrency, args.batch
    );

    // 1. One statement per job.
    let t = Instant::now();
    for i in 0..args.single {
        app.store
            .enqueue(NewJob::of(
                &app.settings,
                &noop(i as u64, args.job_ms),
                None,
            ))
            .await?;
    }
    let single_rate = args.single as f64 / t.elapsed().as_secs_f64();

    // 2. Batches of 1,000 in one statement each.
    let t = Instant::now();
    for chunk in (0..args.jobs).collect::<Vec<_>>().chunks(1000) {
        enqueue_batch(&app, chunk.iter().map(|i| noop(*i as u64, args.job_ms))).await?;
    }
    let batch_rate = args.jobs as f64 / t.elapsed().as_secs_f64();

    // 3. Drain with a worker.
    let total = (args.single + args.jobs) as i64;
    let worker = InProcessPool::start(app.clone(), vec![Noop::QUEUE]);
    let t = Instant::now();
    // The end is seen from the queue's small indexes: counting finished rows would scan the table
    // every 20 ms and slow the drain it measures.
    loop {
        if app.store.queue_is_idle(Noop::QUEUE).await? {
            break;
        }
        if t.elapsed() > Duration::from_secs(600) {
            anyhow::bail!("drain did not finish in 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drain_rate = total as f64 / t.elapsed().as_secs_f64();
    let done = app.store.done_count(Noop::QUEUE).await?;
    anyhow::ensure!(done == total, "{done} of {total} jobs ended done");

    // 4. Latency at half load.
    app.bench_latencies.lock().expect("not poisoned").clear();
    let rate = (drain_rate / 2.0).max(10.0);
    let tick = Duration::from_millis(10);
    let per_tick = (rate * tick.as_secs_f64()).max(1.0);
    let t = Instant::now();
    let mut sent = 0u64;
    let mut next = tokio::time::Instant::now();
    while t.elapsed() < Duration::from_secs(args.latency_secs) {
        let due = (t.elapsed().as_secs_f64() / tick.as_secs_f64() * per_tick) as u64;
        let jobs: Vec<Noop> = (sent..due.max(sent))
            .map(|i| noop(i, args.job_ms))
            .collect();
        if !jobs.is_empty() {
            sent += jobs.len() as u64;
            enqueue_batch(&app, jobs.into_iter()).await?;
        }
        next += tick;
        tokio::time::sleep_until(next).await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while (app.bench_latencies.lock().expect("not poisoned").len() as u64) < sent
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    worker.stop().await?;
    let mut lat = app.bench_latencies.lock().expect("not poisoned").clone();
    lat.sort_unstable();
    app.store.clear_queue(Noop::QUEUE).await?;

    println!("| measure | result |");
    println!("|---|---|");
    println!("| enqueue, one statement per job | {single_rate:.0} jobs/s |");
    println!("| enqueue, batches of 1,000 | {batch_rate:.0} jobs/s |");
    println!("| processed (drain of {total} no-op jobs) | {drain_rate:.0} jobs/s |");
    println!(
        "| enqueue-to-start latency at {rate:.0} jobs/s ({} jobs) | p50 {:.1} ms, p99 {:.1} ms |",
        lat.len(),
        percentile(&lat, 0.50),
        percentile(&lat, 0.99)
    );
    Ok(())
}
