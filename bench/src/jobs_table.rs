//! `revisit bench jobs-table`: what a million jobs leave behind. Runs N no-op jobs through the
//! real queue, then reports the job table's size, how long the monitoring reads take over it
//! (`/metrics`' queue depths, the console's queue page), and what `jobs.prune` deletes and
//! frees.

use std::{sync::Arc, time::Instant};

use revisit_jobs::{Job, Noop};

use crate::cli::BenchJobsTableArgs;
use revisit::{
    app::App,
    config::{PolicyOverride, Settings},
    queue::worker::InProcessPool,
    store::{self, DbPool},
};

/// The job table's bytes on disk with its indexes, and its dead tuples (PostgreSQL); the
/// database file's bytes (SQLite, where freed pages stay in the file until VACUUM).
async fn table_size(app: &App) -> anyhow::Result<(i64, i64)> {
    Ok(match &app.pool {
        DbPool::Postgres(p) => {
            sqlx::query_as(
                "SELECT pg_total_relation_size('apalis.jobs'),
                    COALESCE((SELECT n_dead_tup FROM pg_stat_user_tables
                               WHERE schemaname = 'apalis' AND relname = 'jobs'), 0)",
            )
            .fetch_one(p)
            .await?
        }
        DbPool::Sqlite(p) => {
            let pages: i64 = sqlx::query_scalar("PRAGMA page_count").fetch_one(p).await?;
            let size: i64 = sqlx::query_scalar("PRAGMA page_size").fetch_one(p).await?;
            (pages * size, 0)
        }
    })
}

async fn vacuum(app: &App) -> anyhow::Result<()> {
    match &app.pool {
        DbPool::Postgres(p) => {
            sqlx::query("VACUUM apalis.jobs").execute(p).await?;
        }
        DbPool::Sqlite(p) => {
            sqlx::query("VACUUM").execute(p).await?;
        }
    }
    Ok(())
}

fn mb(bytes: i64) -> String {
    format!("{:.1} MB", bytes as f64 / 1_048_576.0)
}

/// Median of `runs` timings of `f`, in milliseconds.
async fn median_ms<F, Fut>(runs: usize, mut f: F) -> anyhow::Result<f64>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut ms = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        f().await?;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    Ok(ms[ms.len() / 2])
}

pub async fn run(mut settings: Settings, args: BenchJobsTableArgs) -> anyhow::Result<()> {
    settings.jobs.insert(
        Noop::NAME.to_owned(),
        PolicyOverride {
            concurrency: Some(64),
            fetch_size: Some(500),
            ..Default::default()
        },
    );
    settings.cron.enabled = false;
    store::create_if_missing(&settings.database.url).await?;
    let app: Arc<App> = App::new(store::open(&settings).await?, settings)?;
    let backend = app.store.backend().name();
    app.store.clear_queue(Noop::QUEUE).await?;
    vacuum(&app).await?;
    let (empty, _) = table_size(&app).await?;
    println!(
        "任务表基准 jobs-table benchmark on {backend}: {} no-op jobs through the queue",
        args.jobs
    );

    let t = Instant::now();
    let max_attempts = app
        .settings
        .policy(&revisit_jobs::KindInfo::of::<Noop>())
        .max_attempts as i32;
    let pool = InProcessPool::start(app.clone(), vec![Noop::QUEUE]);
    let mut seq = 0u64;
    while seq < args.jobs as u64 {
        let n = (args.jobs as u64 - seq).min(10_000);
        let payloads = (seq..seq + n)
            .map(|i| {
                serde_json::to_vec(&Noop {
                    seq: i,
                    ..Default::default()
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        app.store
            .enqueue_many(Noop::QUEUE, payloads, max_attempts)
            .await?;
        seq += n;
        eprint!("\r  入队 {seq}/{} …", args.jobs);
    }
    eprintln!();
    while !app.store.queue_is_idle(Noop::QUEUE).await? {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    pool.stop().await?;
    let run_secs = t.elapsed().as_secs_f64();
    let done = app.store.done_count(Noop::QUEUE).await?;
    anyhow::ensure!(
        done == args.jobs as i64,
        "{done} of {} jobs ended done",
        args.jobs
    );
    let (full, full_dead) = table_size(&app).await?;

    // The reads that run while the table is full: every scrape and every look at the queue page.
    let depths_ms = median_ms(21, || async {
        app.store.queue_depths().await?;
        Ok(())
    })
    .await?;
    let scrape_ms = median_ms(21, || async {
        revisit::api::exposition::render(&app).await;
        Ok(())
    })
    .await?;

    let t = Instant::now();
    let pruned = app
        .store
        .prune(std::time::Duration::ZERO, std::time::Duration::ZERO)
        .await?;
    let prune_secs = t.elapsed().as_secs_f64();
    let (after_prune, dead_after_prune) = table_size(&app).await?;
    let t = Instant::now();
    vacuum(&app).await?;
    let vacuum_secs = t.elapsed().as_secs_f64();
    let (after_vacuum, _) = table_size(&app).await?;
    let depths_after_ms = median_ms(21, || async {
        app.store.queue_depths().await?;
        Ok(())
    })
    .await?;

    println!("| measure | result |");
    println!("|---|---|");
    println!("| job table, empty (with indexes) | {} |", mb(empty));
    println!(
        "| {} jobs run (enqueue + drain) | {run_secs:.1} s ({:.0} jobs/s) |",
        args.jobs,
        args.jobs as f64 / run_secs
    );
    println!(
        "| job table after them | {} ({:.0} bytes a job; {full_dead} dead tuples) |",
        mb(full),
        (full - empty) as f64 / args.jobs as f64
    );
    println!("| queue depths over the full table (median of 21) | {depths_ms:.2} ms |");
    println!("| /metrics scrape over the full table (median of 21) | {scrape_ms:.2} ms |");
    println!(
        "| jobs.prune of every finished row | {prune_secs:.1} s, {} rows |",
        pruned.done_jobs
    );
    println!(
        "| job table after the prune | {} ({dead_after_prune} dead tuples until vacuumed) |",
        mb(after_prune)
    );
    println!(
        "| after VACUUM ({vacuum_secs:.1} s; autovacuum does this on PostgreSQL) | {} |",
        mb(after_vacuum)
    );
    println!("| queue depths after the prune (median of 21) | {depths_after_ms:.2} ms |");
    Ok(())
}
