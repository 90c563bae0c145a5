//! Following enqueued work from the CLI: progress lines while jobs run, a summary at the end.

use std::{io::Write, time::Duration};

use chrono::{DateTime, Utc};
use revisit_jobs::{ImportFile, Job};

use crate::{app::App, domain::records::RecordError, queue::admin};

const POLL: Duration = Duration::from_millis(200);

/// Tells the operator when no live worker serves `queue`: waiting would then last until the timeout.
pub async fn warn_if_no_worker(app: &App, queue: &str) -> anyhow::Result<()> {
    let w = &app.settings.worker;
    let silent_for = (w.heartbeat_secs * w.missed_heartbeats as u64) as f64;
    let live: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM apalis.workers
         WHERE worker_type = $1 AND last_seen > now() - make_interval(secs => $2)",
    )
    .bind(queue)
    .bind(silent_for)
    .fetch_one(&app.pool)
    .await?;
    if live == 0 {
        eprintln!(
            "⚠️  没有正在运行的 worker 处理 {queue}：请另开终端运行 `revisit worker`，否则会一直等待"
        );
    }
    Ok(())
}

/// Waits until every file of an import batch is logged. Fails if one of its jobs is dead.
pub async fn import_batch(
    app: &App,
    batch: &str,
    files: usize,
    timeout: Duration,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let mut last = usize::MAX;
    loop {
        let done: i64 = sqlx::query_scalar("SELECT count(*) FROM import_log WHERE batch = $1")
            .bind(batch)
            .fetch_one(&app.pool)
            .await?;
        let done = done as usize;
        if done != last {
            eprint!("\r   导入进度 {done}/{files} 个文件");
            let _ = std::io::stderr().flush();
            last = done;
        }
        if done >= files {
            eprintln!();
            return Ok(());
        }
        let dead: Option<String> = sqlx::query_scalar(
            "SELECT COALESCE(last_result ->> 'Err', 'failed') FROM apalis.jobs
             WHERE job_type = $1 AND convert_from(job, 'UTF8')::jsonb ->> 'batch' = $2
               AND (status = 'Killed' OR (status = 'Failed' AND attempts >= max_attempts))
             LIMIT 1",
        )
        .bind(ImportFile::QUEUE)
        .bind(batch)
        .fetch_optional(&app.pool)
        .await?;
        if let Some(err) = dead {
            eprintln!();
            anyhow::bail!("import stopped after {done} of {files} files: {err}");
        }
        if started.elapsed() > timeout {
            eprintln!();
            anyhow::bail!(
                "import not finished after {timeout:?} ({done}/{files} files); is a worker running?"
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

#[derive(sqlx::FromRow)]
struct LogRow {
    path: String,
    total: i32,
    inserted: i32,
    updated: i32,
    unchanged: i32,
    rejected: i32,
    errors: sqlx::types::Json<Vec<RecordError>>,
}

pub async fn print_import_summary(app: &App, batch: &str) -> anyhow::Result<()> {
    let rows: Vec<LogRow> = sqlx::query_as(
        "SELECT path, total, inserted, updated, unchanged, rejected, errors FROM import_log
         WHERE batch = $1 ORDER BY id",
    )
    .bind(batch)
    .fetch_all(&app.pool)
    .await?;
    for r in &rows {
        println!(
            "   {}：共 {} 条，新增 {}，更新 {}，未变 {}，拒绝 {}",
            r.path, r.total, r.inserted, r.updated, r.unchanged, r.rejected
        );
        for e in r.errors.iter().take(10) {
            println!("     ⚠️  {}: {e}", r.path);
        }
        if r.errors.len() > 10 {
            println!("     …… 另有 {} 条错误，见 import_log", r.errors.len() - 10);
        }
    }
    Ok(())
}

/// Waits until a job is done; fails with its error if it is dead.
pub async fn job(app: &App, id: &str, timeout: Duration) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    loop {
        match admin::state_of(&app.pool, id).await? {
            Some((state, _)) if state == "done" => return Ok(()),
            Some((state, err)) if state == "failed" => {
                anyhow::bail!("job {id} failed: {}", err.unwrap_or_default())
            }
            None => anyhow::bail!("job {id} does not exist"),
            _ => {}
        }
        if started.elapsed() > timeout {
            anyhow::bail!("job {id} not finished after {timeout:?}; is a worker running?");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until no revisit created since `since` is still on its way (pending, generated, sending).
pub async fn revisits_settled(
    app: &App,
    since: DateTime<Utc>,
    timeout: Duration,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let mut last = (-1, -1);
    loop {
        let (open, all): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE status IN ('pending', 'generated', 'sending')), count(*)
             FROM revisits WHERE created_at >= $1",
        )
        .bind(since)
        .fetch_one(&app.pool)
        .await?;
        if (open, all) != last {
            eprint!("\r   回访进度 {}/{} 位客户", all - open, all);
            let _ = std::io::stderr().flush();
            last = (open, all);
        }
        if open == 0 {
            eprintln!();
            return Ok(());
        }
        if started.elapsed() > timeout {
            eprintln!();
            anyhow::bail!("{open} revisits still open after {timeout:?}; see `revisit jobs list`");
        }
        tokio::time::sleep(POLL).await;
    }
}
