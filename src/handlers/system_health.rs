//! `system.health` and `revisit check`: the state of every configured store and integration.

use revisit_jobs::SystemHealth;
use serde::Serialize;
use tracing::{info, warn};

use super::{Handler, JobCtx, JobError};
use crate::{
    app::App,
    config::{redact_url, url_origin},
};

/// One line of the system check.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub name: &'static str,
    /// `None`: not configured / not part of this version.
    pub ok: Option<bool>,
    pub detail: String,
}

/// Checks the primary store (PostgreSQL or SQLite), the job queue, the LLM and the channel,
/// and lists the projection stores.
pub async fn run_checks(app: &App) -> Vec<CheckResult> {
    let mut out = Vec::new();
    let backend = app.store.backend().name();
    out.push(match app.store.version().await {
        Ok(v) => CheckResult {
            name: backend,
            ok: Some(true),
            detail: format!("{v}（{}）", redact_url(&app.settings.database.url)),
        },
        Err(e) => CheckResult {
            name: backend,
            ok: Some(false),
            detail: format!("连接失败：{e}"),
        },
    });
    if let Some(line) = connections_check(app).await {
        out.push(line);
    }
    out.push(match app.store.queue_summary().await {
        Ok(crate::store::QueueSummary { pending, failed }) => CheckResult {
            name: "任务队列",
            ok: Some(true),
            detail: format!("待执行 {pending} 个，失败 {failed} 个"),
        },
        Err(e) => CheckResult {
            name: "任务队列",
            ok: Some(false),
            detail: format!("不可用（请先运行 revisit init）：{e}"),
        },
    });
    out.push(llm_check(app).await);
    out.push(CheckResult {
        name: "发送渠道",
        ok: Some(true),
        detail: match app.channel.name() {
            "webhook" => format!(
                "webhook → {}",
                url_origin(app.settings.webhook.url.expose())
            ),
            "sms" => format!(
                "阿里云短信 → {}（签名「{}」，模板 {}）",
                url_origin(&app.settings.sms.endpoint),
                app.settings.sms.sign_name,
                app.settings.sms.template_code
            ),
            _ => "console（只记录并在控制台显示，不发给客户）".to_owned(),
        },
    });
    out.push(sending_check(app).await);
    let projections = [
        clickhouse_check(app).await,
        vectors_check(app).await,
        graph_check(app).await,
    ];
    // A projection is only kept up to date by a running worker: without one, "caught up"
    // is true only until the next change.
    let syncing = live_workers(
        app,
        <revisit_jobs::ProjectionSync as revisit_jobs::Job>::QUEUE,
    )
    .await;
    for mut p in projections {
        if p.ok == Some(true) && syncing == Some(0) {
            p.ok = None;
            p.detail
                .push_str("；没有运行中的 worker，之后的变更不会同步（请运行 revisit worker）");
        }
        out.push(p);
    }
    // Whatever a line quotes (a URL, a driver's error), no credential leaves in it.
    for r in &mut out {
        r.detail = crate::domain::privacy::redact_secrets(&r.detail);
    }
    out
}

/// Workers alive (a heartbeat within the dead-worker timeout) that serve `queue`.
async fn live_workers(app: &App, queue: &str) -> Option<i64> {
    let w = &app.settings.worker;
    let within = std::time::Duration::from_secs(w.heartbeat_secs * w.missed_heartbeats as u64);
    app.store.live_workers(queue, within).await.ok()
}

/// The LLM: asked whether it answers, not only whether it is configured.
async fn llm_check(app: &App) -> CheckResult {
    let name = "LLM";
    if !app.settings.llm_enabled() {
        return CheckResult {
            name,
            ok: None,
            detail: "未配置 LLM_API_KEY：使用模板话术".to_owned(),
        };
    }
    let at = format!(
        "{}（{}）",
        app.settings.llm.model,
        redact_url(&app.settings.llm.api_url)
    );
    match app.llm.reachable().await {
        Ok(()) => CheckResult {
            name,
            ok: Some(true),
            detail: format!("{at}，有应答"),
        },
        Err(why) => CheckResult {
            name,
            ok: Some(false),
            detail: format!("{at}：{why}；在它恢复前，话术会重试，最终改用模板"),
        },
    }
}

/// Real sending: on (since when, by whom) or off (test mode only).
async fn sending_check(app: &App) -> CheckResult {
    let name = "正式发送";
    match app.store.sending_state().await {
        Ok(s) if s.live && s.changed_by == "migration" => CheckResult {
            name,
            ok: Some(true),
            detail: "已开启（升级时沿用，此前已有正式发送）；关闭：revisit sending off".to_owned(),
        },
        Ok(s) if s.live => CheckResult {
            name,
            ok: Some(true),
            detail: format!(
                "已开启（{}，{} {}）；关闭：revisit sending off",
                s.changed_by.strip_prefix("cli:").unwrap_or(&s.changed_by),
                app.settings.local_time(s.changed_at),
                app.settings.app.timezone
            ),
        },
        Ok(_) => CheckResult {
            name,
            ok: None,
            detail: "未开启：只以测试模式生成和显示，不发给客户（确认后运行 revisit sending on）"
                .to_owned(),
        },
        Err(e) => CheckResult {
            name,
            ok: Some(false),
            detail: format!("无法读取：{e}"),
        },
    }
}

/// PostgreSQL's connections: its limit, what is open, and what one more worker would take.
async fn connections_check(app: &App) -> Option<CheckResult> {
    use crate::store::connection_budget::{Budget, Role};
    let name = "数据库连接";
    let room = match app.store.connection_room().await {
        Ok(room) => room?,
        Err(e) => {
            return Some(CheckResult {
                name,
                ok: Some(false),
                detail: format!("无法读取连接数：{e}"),
            });
        }
    };
    let worker = Budget::of(
        &app.settings,
        Role::Worker {
            queues: &[],
            api: false,
        },
    );
    let api = Budget::of(&app.settings, Role::Api);
    let fits = room.fits(&worker);
    let mut detail = format!(
        "上限 {}（其中 {} 个留给超级用户），已用 {}（本系统 {}），可用 {}；\
         再起一个处理全部队列的 worker 最多占 {} 个，API 占 {} 个，还可再起 {fits} 个 worker",
        room.max_connections,
        room.reserved,
        room.in_use,
        room.revisit,
        room.free(),
        worker.total(),
        api.total(),
    );
    if fits == 0 {
        detail.push_str(
            "（⚠️ 已不够再起一个：调低 database.max_connections 或提高服务器的 max_connections）",
        );
    }
    Some(CheckResult {
        name,
        ok: Some(true),
        detail,
    })
}

/// The relation graph (NebulaGraph or the primary store's tables): reachable, its size, how far
/// behind.
async fn graph_check(app: &App) -> CheckResult {
    let name = "关系图";
    let Some(g) = &app.projections.graph else {
        return CheckResult {
            name,
            ok: None,
            detail: "已关闭（graph.enabled = false）：没有客户关系查询".to_owned(),
        };
    };
    let size = match g.store.size().await {
        Ok(size) => size,
        Err(e) => {
            return CheckResult {
                name,
                ok: Some(false),
                detail: format!(
                    "{}：{e:#}；同步任务会重试，恢复后自动补齐",
                    g.store.describe()
                ),
            };
        }
    };
    let lag = lag_in_words(app, revisit_jobs::ProjectionName::Graph).await;
    CheckResult {
        name,
        ok: Some(true),
        detail: format!(
            "{}，顶点 {}，边 {}；{lag}",
            g.store.describe(),
            size.vertices,
            size.edges
        ),
    }
}

/// Vector search (Qdrant or its embedded engine): reachable, its points, how far behind.
async fn vectors_check(app: &App) -> CheckResult {
    let name = "Qdrant";
    let Some(v) = &app.projections.vectors else {
        return CheckResult {
            name,
            ok: None,
            detail: "已关闭（vectors.enabled = false）：没有相似客户与项目搜索".to_owned(),
        };
    };
    let mut counts = Vec::new();
    for c in crate::projections::vectors::Collection::ALL {
        match v.index.count(c).await {
            Ok(n) => counts.push(format!("{} {n}", c.as_str())),
            Err(e) => {
                return CheckResult {
                    name,
                    ok: Some(false),
                    detail: format!("{}：{e:#}；同步任务会重试，恢复后自动补齐", v.location),
                };
            }
        }
    }
    let lag = lag_in_words(app, revisit_jobs::ProjectionName::Vectors).await;
    CheckResult {
        name,
        ok: Some(true),
        detail: format!(
            "{}，集合数: 3（{}），向量：{}；{lag}",
            v.location,
            counts.join("，"),
            v.embedder.describe()
        ),
    }
}

/// The ClickHouse projection: reachable, and how far behind the primary store it is.
async fn clickhouse_check(app: &App) -> CheckResult {
    let name = "ClickHouse";
    let Some(ch) = &app.projections.clickhouse else {
        return CheckResult {
            name,
            ok: None,
            detail: "未配置（CLICKHOUSE_URL）：看板与日报由主库计算".to_owned(),
        };
    };
    let version = match crate::projections::Projection::version(ch.as_ref()).await {
        Ok(v) => v,
        Err(e) => {
            return CheckResult {
                name,
                ok: Some(false),
                detail: format!(
                    "连接失败（{}）：{e:#}；同步任务会重试，恢复后自动补齐",
                    url_origin(&app.settings.clickhouse.url)
                ),
            };
        }
    };
    match ch.missing_tables().await {
        Ok(missing) if missing.is_empty() => {}
        Ok(missing) => {
            return CheckResult {
                name,
                ok: Some(false),
                detail: format!(
                    "{version}：库 {} 缺少表 {}，请运行 `revisit init` 或 `revisit sync clickhouse --full`",
                    ch.database(),
                    missing.join("、")
                ),
            };
        }
        Err(e) => {
            return CheckResult {
                name,
                ok: Some(false),
                detail: format!("{version}：无法列出库 {} 的表：{e:#}", ch.database()),
            };
        }
    }
    let lag = lag_in_words(app, revisit_jobs::ProjectionName::Clickhouse).await;
    CheckResult {
        name,
        ok: Some(true),
        detail: format!(
            "{version}（{}，库 {}）；{lag}",
            url_origin(&app.settings.clickhouse.url),
            ch.database()
        ),
    }
}

/// How far behind `projection` is, in words, for a check's line.
async fn lag_in_words(app: &App, projection: revisit_jobs::ProjectionName) -> String {
    match app.store.projection_lag(projection).await {
        Ok(lag) => describe_lag(&lag, chrono::Utc::now()),
        Err(e) => format!("同步进度未知：{e}"),
    }
}

/// A projection's lag in words: caught up, or how many changes wait and since when.
pub fn describe_lag(
    lag: &crate::store::ProjectionLag,
    now: chrono::DateTime<chrono::Utc>,
) -> String {
    if lag.total() == 0 {
        return "已同步".to_owned();
    }
    let age = lag
        .oldest
        .map(|t| (now - t).num_seconds().max(0))
        .unwrap_or(0);
    let age = if age < 120 {
        format!("{age} 秒")
    } else if age < 7200 {
        format!("{} 分钟", age / 60)
    } else {
        format!("{} 小时", age / 3600)
    };
    format!(
        "待同步 {} 条（未分发 {}，同步任务中 {}），最早的变更在 {age}前",
        lag.total(),
        lag.undispatched,
        lag.in_jobs
    )
}

impl Handler for SystemHealth {
    async fn run(&self, ctx: &JobCtx<'_>) -> Result<(), JobError> {
        let results = run_checks(ctx.app).await;
        let healthy = results.iter().all(|r| r.ok != Some(false));
        let json = serde_json::to_value(&results).map_err(JobError::permanent)?;
        ctx.app.store.record_health(healthy, json).await?;
        if healthy {
            info!("health check passed");
        } else {
            for r in results.iter().filter(|r| r.ok == Some(false)) {
                warn!(store = r.name, detail = %r.detail, "health check failed");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ProjectionLag;
    use chrono::{TimeZone, Utc};

    #[test]
    fn a_lag_says_how_much_waits_and_since_when() {
        let now = Utc.with_ymd_and_hms(2026, 11, 26, 9, 0, 0).unwrap();
        assert_eq!(describe_lag(&ProjectionLag::default(), now), "已同步");
        let lag = ProjectionLag {
            undispatched: 3,
            in_jobs: 5000,
            oldest: Some(now - chrono::Duration::minutes(12)),
        };
        assert_eq!(
            describe_lag(&lag, now),
            "待同步 5003 条（未分发 3，同步任务中 5000），最早的变更在 12 分钟前"
        );
    }
}
