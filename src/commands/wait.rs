//! Following enqueued work from the CLI: progress lines while jobs run, a summary at the end.

use std::{io::Write, time::Duration};

use chrono::{DateTime, Utc};

use crate::app::App;

const POLL: Duration = Duration::from_millis(200);

/// Tells the operator when no live worker serves `queue`: waiting would then last until the timeout.
pub async fn warn_if_no_worker(app: &App, queue: &str) -> anyhow::Result<()> {
    let w = &app.settings.worker;
    let silent_for = (w.heartbeat_secs * w.missed_heartbeats as u64) as f64;
    let within = std::time::Duration::from_secs_f64(silent_for);
    let live = app.store.live_workers(queue, within).await?;
    if live == 0 {
        eprintln!(
            "⚠️  没有正在运行的 worker 处理 {queue}：请另开终端运行 `revisit worker`，否则会一直等待"
        );
    }
    Ok(())
}

/// Waits until every file of an import batch is logged: imported, or refused with its reason
/// (a file that cannot be imported is logged too, and the files after it go on). Fails only if
/// a file's job died without being logged.
pub async fn import_batch(
    app: &App,
    batch: &str,
    files: usize,
    timeout: Duration,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let mut last = String::new();
    loop {
        let done = app.store.import_progress(batch).await?;
        let done = done as usize;
        // Within a large file: how many of its records have been written.
        let within = match app.store.file_progress(batch).await? {
            Some(p) if done < files => {
                let name = std::path::Path::new(&p.path)
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or(p.path);
                format!("，{name} {}/{} 条", p.done, p.total)
            }
            _ => String::new(),
        };
        let line = format!("   导入进度 {done}/{files} 个文件{within}");
        if line != last {
            eprint!("\r{line}    ");
            let _ = std::io::stderr().flush();
            last = line;
        }
        if done >= files {
            eprintln!();
            return Ok(());
        }
        if let Some(err) = app.store.dead_import_error(batch).await?
            && (app.store.import_progress(batch).await? as usize) < files
        {
            eprintln!();
            anyhow::bail!("导入在 {done}/{files} 个文件后停止：{err}");
        }
        if started.elapsed() > timeout {
            eprintln!();
            anyhow::bail!(
                "等待 {} 秒后导入仍未完成（{done}/{files} 个文件）；worker 在运行吗？",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Prints each file's counts and first errors; [`super::Incomplete`] when a file was refused
/// or a record rejected.
pub async fn print_import_summary(app: &App, batch: &str) -> anyhow::Result<()> {
    let rows = app.store.import_log(batch).await?;
    let refused = rows
        .iter()
        .filter(|r| {
            r.errors
                .iter()
                .any(|e| e.field == crate::domain::records::FILE_FIELD)
        })
        .count();
    let rejected: i64 = rows.iter().map(|r| i64::from(r.rejected)).sum();
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
    if refused > 0 || rejected > 0 {
        return Err(super::Incomplete(format!(
            "{refused} 个文件被整体拒绝，{rejected} 条记录被拒绝（见上方的错误）"
        ))
        .into());
    }
    Ok(())
}

/// Waits until a job is done; fails with its error if it is dead.
pub async fn job(app: &App, id: &str, timeout: Duration) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    loop {
        match app.store.job_state(id).await? {
            Some(s) if s.state == "done" => return Ok(()),
            Some(s) if s.state == "failed" => {
                anyhow::bail!("任务 {id} 失败：{}", s.last_error.unwrap_or_default())
            }
            None => anyhow::bail!("任务 {id} 不存在"),
            _ => {}
        }
        if started.elapsed() > timeout {
            anyhow::bail!(
                "任务 {id} 在 {} 秒内没有完成：worker 在运行吗？",
                timeout.as_secs()
            );
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
        let crate::store::revisits::RevisitProgress { open, all } =
            app.store.revisit_progress(since).await?;
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
            anyhow::bail!(
                "{} 秒后仍有 {open} 条回访未完成：请查看 `revisit jobs list`",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(POLL).await;
    }
}
