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
    out.push(match app.store.queue_summary().await {
        Ok((pending, failed)) => CheckResult {
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
    out.push(CheckResult {
        name: "LLM",
        ok: Some(true),
        detail: if app.settings.llm_enabled() {
            format!("{}（{}）", app.settings.llm.model, app.settings.llm.api_url)
        } else {
            "未配置 LLM_API_KEY：使用模板话术".to_owned()
        },
    });
    out.push(CheckResult {
        name: "发送渠道",
        ok: Some(true),
        detail: match app.channel.name() {
            "webhook" => format!(
                "webhook → {}",
                url_origin(app.settings.webhook.url.expose())
            ),
            _ => "console（测试模式：只显示，不发送）".to_owned(),
        },
    });
    for store in ["NebulaGraph", "Qdrant", "ClickHouse"] {
        out.push(CheckResult {
            name: store,
            ok: None,
            detail: "未接入（后续版本）".to_owned(),
        });
    }
    out
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
