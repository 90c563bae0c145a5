//! `revisit jobs ...`: list, retry, cancel, kinds, pause and resume.

use std::sync::Arc;

use revisit_jobs::{ALL_KINDS, KindInfo};

use crate::{app::App, cli::JobsCommand};

fn queue_of(kind: Option<&str>) -> anyhow::Result<Option<&'static str>> {
    kind.map(|k| {
        KindInfo::find(k)
            .map(|info| info.queue)
            .ok_or_else(|| anyhow::anyhow!("没有任务类型 {k}：可用的类型见 `revisit jobs kinds`"))
    })
    .transpose()
}

pub async fn jobs(app: &Arc<App>, cmd: JobsCommand) -> anyhow::Result<()> {
    match cmd {
        JobsCommand::List {
            status,
            kind,
            limit,
        } => {
            let rows = app
                .store
                .list_jobs(status, queue_of(kind.as_deref())?, limit)
                .await?;
            if rows.is_empty() {
                println!("没有符合条件的任务");
            } else {
                println!("（{}）", app.settings.zone_note());
            }
            for r in rows {
                println!(
                    "{}  {:<22} {:<6} 尝试 {}/{}  {}{}",
                    r.id,
                    r.queue,
                    crate::store::job_state_label(&r.state),
                    r.attempts,
                    r.max_attempts,
                    match (&r.done_at, r.state.as_str()) {
                        (Some(d), _) => format!("结束 {}", app.settings.local_time_short(*d)),
                        (None, "pending") => {
                            format!("计划 {}", app.settings.local_time_short(r.run_at))
                        }
                        _ => String::new(),
                    },
                    r.last_error
                        .filter(|_| r.state != "done")
                        .map(|e| format!("\n    错误：{e}"))
                        .unwrap_or_default()
                );
            }
            let counts = app.store.job_counts().await?;
            let failed: i64 = counts
                .iter()
                .filter(|c| c.state == "failed")
                .map(|c| c.count)
                .sum();
            if failed > 0 {
                println!("共有 {failed} 个失败任务：revisit jobs retry --all-failed 可全部重试");
            }
        }
        JobsCommand::Retry {
            id,
            all_failed,
            kind,
        } => {
            let queue = queue_of(kind.as_deref())?;
            let ids = if all_failed {
                app.store.retry_jobs(None, queue).await?
            } else {
                app.store.retry_jobs(id.as_deref(), None).await?
            };
            if ids.is_empty() {
                anyhow::bail!("没有匹配的失败任务：只有失败（已放弃）的任务可以重试");
            }
            for id in &ids {
                println!("🔁 已重新排队：{id}");
            }
        }
        JobsCommand::Cancel { id } => {
            if app.store.cancel_job(&id).await? {
                println!("🛑 已取消：{id}");
            } else {
                anyhow::bail!("任务 {id} 不在等待执行（只有等待中的任务可以取消）");
            }
        }
        JobsCommand::Prune { older_than_days } => {
            let days = older_than_days.unwrap_or(app.settings.worker.keep_done_days);
            let history = app.settings.worker.keep_history_days;
            let p = app
                .store
                .prune(crate::config::days(days), crate::config::days(history))
                .await?;
            println!(
                "🧹 已删除 {} 条 {days} 天前完成的任务记录；{} 条 {history} 天前的失败任务、{} 条定时记录、{} 条健康检查记录；{} 个已退出 worker 进程的记录",
                p.done_jobs, p.dead_jobs, p.cron_ticks, p.health_checks, p.dead_workers
            );
        }
        JobsCommand::Kinds => {
            let paused = app.store.paused_queues().await?;
            for k in ALL_KINDS {
                let p = app.settings.policy(k);
                let pause = paused
                    .iter()
                    .find(|q| q.queue == k.queue)
                    .map(|q| {
                        format!(
                            "  ⏸ 已暂停（{}{}）",
                            q.paused_at
                                .with_timezone(&app.settings.tz())
                                .format("%Y-%m-%d %H:%M"),
                            q.reason
                                .as_deref()
                                .map(|r| format!("，{r}"))
                                .unwrap_or_default()
                        )
                    })
                    .unwrap_or_default();
                println!(
                    "{:<18} 队列 {:<22} 最多尝试 {} 次，退避 {}s 起、上限 {}s，并发 {}{pause}",
                    k.name,
                    k.queue,
                    p.max_attempts,
                    p.base_delay_secs,
                    p.max_delay_secs,
                    p.concurrency
                );
            }
        }
        JobsCommand::Pause { queue, reason } => {
            let queue = queue_of(Some(&queue))?.expect("a name was given");
            if app.store.pause_queue(queue, reason.as_deref()).await? {
                println!(
                    "⏸ 队列 {queue} 已暂停：各 worker 不再开始它的任务（正在执行的会做完），恢复：revisit jobs resume {queue}"
                );
            } else {
                println!("队列 {queue} 本来就是暂停的");
            }
        }
        JobsCommand::Resume { queue } => {
            let queue = queue_of(Some(&queue))?.expect("a name was given");
            if app.store.resume_queue(queue).await? {
                println!("▶ 队列 {queue} 已恢复");
            } else {
                println!("队列 {queue} 没有暂停");
            }
        }
    }
    Ok(())
}
