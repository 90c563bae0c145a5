//! `GET /health` (liveness without a token, details with one), who the token is
//! (`/api/v1/me`), the institutions it sees, the system check and initialisation.

use std::sync::Arc;

use axum::{Json, extract::State, http::request::Parts};
use revisit_jobs::ProjectionName;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::JsonBody;
use crate::{
    api::{
        auth::{self, Caller},
        error::{ApiError, ApiResult, ErrorBody},
    },
    app::App,
    handlers::{projection_rebuild, run_checks},
    projections::Projection,
    store::{self, directory::InstitutionRef},
};

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` while the process serves requests.
    pub status: String,
    /// With an admin's token only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<HealthDetails>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HealthDetails {
    pub version: String,
    /// postgresql | sqlite
    pub store: String,
    pub store_ok: bool,
    pub jobs_pending: i64,
    pub jobs_failed: i64,
    /// Changes ClickHouse has still to receive (absent without ClickHouse).
    pub clickhouse_lag: Option<i64>,
}

/// Liveness; with an admin's token, the state of the store and the queue.
#[utoipa::path(
    get, path = "/health", tag = "system",
    responses((status = 200, body = Health), (status = 401, body = ErrorBody))
)]
pub async fn health(State(app): State<Arc<App>>, parts: Parts) -> ApiResult<Json<Health>> {
    let details = match auth::principal(&app, &parts).await? {
        // The queue and index counts are the whole chain's: an admin's view.
        Some(p) if p.role == store::access::Role::Admin => {
            let version = app.store.version().await;
            let store::QueueSummary { pending, failed } = app
                .store
                .queue_summary()
                .await
                .unwrap_or(store::QueueSummary {
                    pending: -1,
                    failed: -1,
                });
            let clickhouse_lag = match &app.projections.clickhouse {
                Some(_) => app
                    .store
                    .projection_lag(ProjectionName::Clickhouse)
                    .await
                    .ok()
                    .map(|l| l.total()),
                None => None,
            };
            Some(HealthDetails {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                store: app.store.backend().name().to_owned(),
                store_ok: version.is_ok(),
                jobs_pending: pending,
                jobs_failed: failed,
                clickhouse_lag,
            })
        }
        _ => None,
    };
    Ok(Json(Health {
        status: "ok".into(),
        details,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Probe {
    /// `ok` (live), `ready`, or `not_ready`.
    pub status: String,
    /// Why it is not ready, in Chinese.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Prometheus metrics (text format 0.0.4): queue depth, jobs, LLM calls, sends, compliance,
/// imports, projection lag. No token: the figures name no customer, phone or token, only
/// queues, kinds, channels and outcomes; keep the port on the monitoring network.
#[utoipa::path(get, path = "/metrics", tag = "system", responses((status = 200, body = String, content_type = "text/plain")))]
pub async fn metrics(State(app): State<Arc<App>>) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::api::exposition::render(&app).await,
    )
        .into_response()
}

/// Liveness for an orchestrator: the process answers. Touches nothing else.
#[utoipa::path(get, path = "/health/live", tag = "system", responses((status = 200, body = Probe)))]
pub async fn live() -> Json<Probe> {
    Json(Probe {
        status: "ok".into(),
        reason: None,
    })
}

/// Why this process's workers are not ready: it runs a pool, and no heartbeat of it reached the
/// database within the time after which other workers would take its jobs for a dead one's.
fn worker_not_ready(app: &App) -> Option<String> {
    if !app.runs_workers.load(std::sync::atomic::Ordering::Relaxed) {
        return None;
    }
    let w = &app.settings.worker;
    let limit = w.heartbeat() * w.missed_heartbeats.max(1) as u32;
    match crate::queue::backend::since_last_heartbeat() {
        Some(ago) if ago <= limit => None,
        Some(ago) => Some(format!(
            "worker 已 {} 秒没有心跳写入数据库：它的任务会被其他 worker 接手",
            ago.as_secs()
        )),
        None => Some("worker 正在启动：还没有心跳".to_owned()),
    }
}

/// Readiness: the database answers and carries every migration of this build, and in a worker
/// process its heartbeats reach the database. 503 otherwise,
/// with the reason (a load balancer sends no traffic, an orchestrator waits).
#[utoipa::path(
    get, path = "/health/ready", tag = "system",
    responses((status = 200, body = Probe), (status = 503, body = Probe))
)]
pub async fn ready(State(app): State<Arc<App>>) -> (axum::http::StatusCode, Json<Probe>) {
    let reason = match app.store.schema_current().await {
        Ok(true) => worker_not_ready(&app),
        Ok(false) => {
            Some("数据库结构不是本版本的：请运行 revisit init 或重启服务以完成迁移".to_owned())
        }
        Err(e) => {
            tracing::warn!(error = %crate::domain::privacy::redact_secrets(&e.to_string()), "readiness check failed");
            Some("数据库不可用".to_owned())
        }
    };
    let status = if reason.is_none() {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Probe {
            status: if reason.is_none() {
                "ready"
            } else {
                "not_ready"
            }
            .into(),
            reason,
        }),
    )
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// staff | admin
    pub role: String,
    /// The institution a staff token is limited to.
    pub institution: Option<String>,
    /// The institutions this token sees.
    pub institutions: Vec<InstitutionItem>,
    /// The chain's time zone (`app.timezone`): the console shows every time on its clock.
    pub timezone: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InstitutionItem {
    pub code: String,
    pub name: String,
    pub status: String,
}

impl From<InstitutionRef> for InstitutionItem {
    fn from(i: InstitutionRef) -> Self {
        Self {
            code: i.code,
            name: i.name,
            status: i.status,
        }
    }
}

/// Who this token is and what it sees.
#[utoipa::path(
    get, path = "/api/v1/me", tag = "system",
    responses((status = 200, body = Me), (status = 401, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn me(State(app): State<Arc<App>>, caller: Caller) -> ApiResult<Json<Me>> {
    let institutions = app
        .store
        .institutions()
        .await?
        .into_iter()
        .filter(|i| caller.sees(i.id))
        .map(InstitutionItem::from)
        .collect();
    Ok(Json(Me {
        role: caller.0.role.as_str().to_owned(),
        institution: caller.0.institution_code.clone(),
        institutions,
        timezone: app.settings.app.timezone.clone(),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckItem {
    pub name: String,
    /// true ✅, false ❌, null: not configured.
    pub ok: Option<bool>,
    pub detail: String,
}

/// The system check (`revisit check`): every store and integration, ✅ or ❌.
#[utoipa::path(
    get, path = "/api/v1/system/check", tag = "system",
    responses((status = 200, body = Vec<CheckItem>), (status = 401, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn check(State(app): State<Arc<App>>, caller: Caller) -> Json<Vec<CheckItem>> {
    let admin = caller.is_admin();
    let mut lines = run_checks(&app).await;
    if !app.runs_workers.load(std::sync::atomic::Ordering::Relaxed) {
        from_the_workers(&app, &mut lines).await;
    }
    Json(
        lines
            .into_iter()
            .map(|r| CheckItem {
                name: r.name.to_owned(),
                ok: r.ok,
                // Staff see whether each part works, not the chain's addresses, queue or
                // index counts (those are the whole chain's, and an address may name a host
                // staff have no business reaching).
                detail: if admin {
                    r.detail
                } else {
                    staff_detail(r.ok).to_owned()
                },
            })
            .collect(),
    )
}

/// The lines about what the workers use (the LLM, the channel): this process's settings may
/// not be theirs, so they are read from the check a worker last recorded (`system.health`,
/// every 30 minutes), with its time.
async fn from_the_workers(app: &App, lines: &mut [crate::handlers::CheckResult]) {
    const WORKER_SIDE: [&str; 2] = ["LLM", "发送渠道"];
    let recorded = app.store.latest_health().await.ok().flatten();
    for line in lines.iter_mut().filter(|l| WORKER_SIDE.contains(&l.name)) {
        let theirs = recorded.as_ref().and_then(|h| {
            let (at, results) = (&h.checked_at, &h.results);
            let item = results
                .as_array()?
                .iter()
                .find(|r| r["name"].as_str() == Some(line.name))?;
            Some((
                *at,
                item["ok"].as_bool(),
                item["detail"].as_str().unwrap_or_default().to_owned(),
            ))
        });
        match theirs {
            Some((at, ok, detail)) => {
                line.ok = ok;
                line.detail = format!("{detail}（worker 于 {} 检查）", app.settings.local_time(at));
            }
            None => {
                line.ok = None;
                line.detail =
                    "还没有 worker 报告过（运行中的 worker 每 30 分钟检查一次）".to_owned();
            }
        }
    }
}

/// A check line as staff read it.
fn staff_detail(ok: Option<bool>) -> &'static str {
    match ok {
        Some(true) => "正常",
        Some(false) => "异常：请联系系统管理员查看详情",
        None => "未启用",
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InitRequest {
    /// Do not create ClickHouse's database and tables.
    #[serde(default)]
    pub skip_clickhouse: bool,
    /// Import the sample data shipped in `examples/import/initial` (two institutions).
    #[serde(default)]
    pub sample_data: bool,
    /// Drop ClickHouse's tables and rebuild them from the primary store. Needs `confirm`.
    #[serde(default)]
    pub rebuild_projections: bool,
    /// The primary database's name, typed by the person who asked for the rebuild.
    #[serde(default)]
    pub confirm: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InitAnswer {
    pub steps: Vec<CheckItem>,
    /// The sample data's import, to follow at `/api/v1/imports/{batch}`.
    pub import_batch: Option<String>,
}

/// Initialises what is missing (admin): the primary store's tables are already migrated when
/// the server starts; ClickHouse's are created unless skipped, or rebuilt from the primary store
/// when asked and confirmed with the database's name; the sample data is imported if asked.
/// Dropping the primary store's data (`revisit init --force`) is only offered on the command
/// line.
#[utoipa::path(
    post, path = "/api/v1/system/init", tag = "system",
    request_body(content = InitRequest, description = "可省略"),
    responses(
        (status = 200, body = InitAnswer),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn init(
    State(app): State<Arc<App>>,
    caller: Caller,
    body: JsonBody<InitRequest>,
) -> ApiResult<Json<InitAnswer>> {
    caller.require_admin()?;
    let req = body.or_default();
    let database = store::database_name(&app.settings.database.url);
    if req.rebuild_projections && req.confirm.as_deref() != Some(database.as_str()) {
        return Err(ApiError {
            param: Some("confirm".into()),
            ..ApiError::bad_body("强制重建需要在 confirm 中填写主库的数据库名以确认")
        });
    }
    let mut steps = vec![CheckItem {
        name: app.store.backend().name().to_owned(),
        ok: Some(true),
        detail: format!("数据库 {database} 的迁移已是最新"),
    }];
    steps.push(match (&app.projections.clickhouse, req.skip_clickhouse) {
        (None, _) => CheckItem {
            name: "ClickHouse".into(),
            ok: None,
            detail: "未配置（CLICKHOUSE_URL）".into(),
        },
        (Some(_), true) => CheckItem {
            name: "ClickHouse".into(),
            ok: None,
            detail: "已跳过".into(),
        },
        (Some(_), false) if req.rebuild_projections => {
            match projection_rebuild::rebuild(&app, ProjectionName::Clickhouse, |_, _| {}).await {
                Ok(n) => CheckItem {
                    name: "ClickHouse".into(),
                    ok: Some(true),
                    detail: format!("已清空重建，排队同步 {n} 条实体"),
                },
                Err(e) => CheckItem {
                    name: "ClickHouse".into(),
                    ok: Some(false),
                    detail: format!("重建失败：{e:#}"),
                },
            }
        }
        (Some(ch), false) => match ch.init().await {
            Ok(()) => {
                app.store
                    .register_projection(ProjectionName::Clickhouse)
                    .await?;
                CheckItem {
                    name: "ClickHouse".into(),
                    ok: Some(true),
                    detail: format!("库 {} 的表已就绪", ch.database()),
                }
            }
            Err(e) => CheckItem {
                name: "ClickHouse".into(),
                ok: Some(false),
                detail: format!("初始化失败：{e:#}"),
            },
        },
    });
    let mut import_batch = None;
    if req.sample_data {
        let dir = std::path::Path::new(crate::import::SAMPLE_DATA);
        match crate::import::enqueue_plan(&app, dir).await {
            Ok((batch, files)) => {
                steps.push(CheckItem {
                    name: "示例数据".into(),
                    ok: Some(true),
                    detail: format!("已排队导入 {files} 个文件"),
                });
                import_batch = Some(batch);
            }
            Err(e) => steps.push(CheckItem {
                name: "示例数据".into(),
                ok: Some(false),
                detail: format!("无法导入 {}：{e:#}", dir.display()),
            }),
        }
    }
    Ok(Json(InitAnswer {
        steps,
        import_batch,
    }))
}
