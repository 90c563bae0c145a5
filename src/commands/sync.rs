//! `revisit sync <store> [--full] [--wait]`: bring a projection up to date with the primary
//! store. Without `--full` it catches up: creates what is missing, revives sync jobs that gave
//! up (the store was down too long), and dispatches the pending changes. With `--full` it drops
//! the projection's tables and rebuilds them from the primary store (after the store is first
//! configured, after `init --force`, after data loss on the store's side).

use std::{io::Write, sync::Arc, time::Duration};

use anyhow::Context;
use revisit_jobs::{Job, ProjectionDispatch, ProjectionName, ProjectionSync};

use crate::{
    app::App,
    handlers::{describe_lag, projection_rebuild},
    store,
};

pub async fn sync(
    app: &Arc<App>,
    store_name: &str,
    full: bool,
    wait: bool,
    stop: bool,
) -> anyhow::Result<()> {
    let name = ProjectionName::parse(store_name).with_context(|| {
        let known: Vec<&str> = ProjectionName::ALL.iter().map(|p| p.as_str()).collect();
        format!("没有名为 {store_name:?} 的投影；可用：{}", known.join("、"))
    })?;
    if stop {
        let known = app.store.unregister_projection(name).await?;
        println!(
            "{} 不再接收主库的变更{}。已排队的同步任务照常执行；配置了它的 worker 启动时会重新登记，请先去掉它的配置（CLICKHOUSE_URL）。",
            name.as_str(),
            if known {
                ""
            } else {
                "（本来就没有登记）"
            }
        );
        return Ok(());
    }
    let Some(projection) = app.projections.get(name).cloned() else {
        anyhow::bail!(
            "{} 未配置：{}",
            name.as_str(),
            match name.as_str() {
                "clickhouse" => "请设置 CLICKHOUSE_URL（或配置中的 clickhouse.url）",
                "vectors" =>
                    "请在配置中设置 vectors.enabled = true（或 vectors.url 指向 Qdrant 服务器）",
                _ => "请在配置中启用 graph（graph.enabled 或 graph.nebula_addr）",
            }
        );
    };
    app.store.register_projection(name).await?;
    // Jobs that gave up while the store was down: their changes are still owed.
    let revived = app
        .store
        .retry_jobs(None, Some(ProjectionSync::QUEUE))
        .await?;
    if !revived.is_empty() {
        println!("🔁 已重新排队 {} 个放弃了的同步任务", revived.len());
    }
    if full {
        let mut shown = None;
        let queued = projection_rebuild::rebuild(app, name, |kind, n| {
            if shown.replace(kind).is_some_and(|k| k != kind) {
                eprintln!();
            }
            eprint!("\r   {} {n} 条    ", projection_rebuild::label(kind));
            let _ = std::io::stderr().flush();
        })
        .await
        .with_context(|| format!("rebuilding {}", name.as_str()))?;
        eprintln!();
        println!(
            "🗑️  已清空并重建 {} 的表；📋 已排队 {queued} 条实体的同步任务",
            name.as_str()
        );
    } else {
        projection
            .init()
            .await
            .with_context(|| format!("creating the {} tables", name.as_str()))?;
    }
    store::enqueue(
        app.store.as_ref(),
        &app.settings,
        &ProjectionDispatch {},
        None,
    )
    .await?;
    if !wait {
        let lag = app.store.projection_lag(name).await?;
        println!(
            "✅ 已开始同步 {}（{}）；worker 会在后台完成，`revisit check` 可看进度",
            name.as_str(),
            describe_lag(&lag, chrono::Utc::now())
        );
        return Ok(());
    }
    super::wait::warn_if_no_worker(app, ProjectionSync::QUEUE).await?;
    follow(app, name).await
}

/// Prints the lag until it is zero. Stops with an error when sync jobs gave up.
async fn follow(app: &App, name: ProjectionName) -> anyhow::Result<()> {
    let mut last = String::new();
    loop {
        let lag = app.store.projection_lag(name).await?;
        let line = format!("   {}", describe_lag(&lag, chrono::Utc::now()));
        if line != last {
            eprint!("\r{line}    ");
            let _ = std::io::stderr().flush();
            last = line;
        }
        if lag.total() == 0 {
            eprintln!();
            println!("✅ {} 已与主库同步", name.as_str());
            return Ok(());
        }
        let dead = app
            .store
            .list_jobs(
                Some(store::JobState::Failed),
                Some(ProjectionSync::QUEUE),
                1,
            )
            .await?;
        if let Some(job) = dead.first() {
            eprintln!();
            anyhow::bail!(
                "有同步任务已放弃（{}）：修复该存储后再运行 `revisit sync {}`",
                job.last_error.as_deref().unwrap_or("没有记录错误"),
                name.as_str()
            );
        }
        if lag.undispatched > 0 {
            // Changes made while we wait: dispatch them too (a no-op when one is queued).
            store::enqueue(
                app.store.as_ref(),
                &app.settings,
                &ProjectionDispatch {},
                Some(format!("sync-wait-{}", chrono::Utc::now().timestamp() / 10)),
            )
            .await?;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
