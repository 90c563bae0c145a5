//! `revisit sync <store> [--full] [--wait]`: bring a projection up to date with the primary
//! store. Without `--full` it catches up: creates what is missing, revives sync jobs that gave
//! up (the store was down too long), and dispatches the pending changes. With `--full` it drops
//! the projection's tables and rebuilds them from the primary store (after the store is first
//! configured, after `init --force`, after data loss on the store's side).

use std::{io::Write, sync::Arc, time::Duration};

use anyhow::Context;
use revisit_jobs::{EntityKind, Job, KindInfo, ProjectionDispatch, ProjectionName, ProjectionSync};

use crate::{app::App, handlers::describe_lag, store};

pub async fn sync(
    app: &Arc<App>,
    store_name: &str,
    full: bool,
    wait: bool,
    stop: bool,
) -> anyhow::Result<()> {
    let name = ProjectionName::parse(store_name).with_context(|| {
        let known: Vec<&str> = ProjectionName::ALL.iter().map(|p| p.as_str()).collect();
        format!("unknown store {store_name:?}; known: {}", known.join(", "))
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
            "{} is not configured: set its URL (CLICKHOUSE_URL, or clickhouse.url in the config)",
            name.as_str()
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
        projection
            .reset()
            .await
            .with_context(|| format!("recreating the {} tables", name.as_str()))?;
        println!(
            "🗑️  已清空并重建 {} 的表，开始从主库全量同步",
            name.as_str()
        );
        let queued = enqueue_full(app, name).await?;
        println!("📋 已排队 {queued} 条实体的同步任务");
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

/// Enqueues a sync of every entity, kind by kind, with progress; returns how many.
async fn enqueue_full(app: &App, name: ProjectionName) -> anyhow::Result<u64> {
    let attempts = app
        .settings
        .policy(&KindInfo::of::<ProjectionSync>())
        .max_attempts as i32;
    let mut total = 0u64;
    // A person's state reaches the projections through its customers.
    for kind in EntityKind::ALL.iter().filter(|k| **k != EntityKind::Person) {
        let mut after = None;
        let mut n = 0u64;
        while let Some((last, queued)) = app
            .store
            .enqueue_full_sync(name, *kind, after.clone(), attempts)
            .await?
        {
            n += queued;
            after = Some(last);
            eprint!("\r   {} {n} 条    ", label(*kind));
            let _ = std::io::stderr().flush();
        }
        if n > 0 {
            eprintln!();
        }
        total += n;
    }
    Ok(total)
}

/// What staff call a kind of entity.
fn label(kind: EntityKind) -> &'static str {
    match kind {
        EntityKind::Institution => "机构",
        EntityKind::Doctor => "医生",
        EntityKind::Project => "项目",
        EntityKind::Product => "产品",
        EntityKind::Person => "人员",
        EntityKind::Customer => "客户",
        EntityKind::Order => "订单",
        EntityKind::Revisit => "回访",
    }
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
                "a sync job gave up ({}); fix the store and run `revisit sync {}` again",
                job.last_error.as_deref().unwrap_or("no error recorded"),
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
