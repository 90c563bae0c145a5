//! Scores and staff tasks: `POST /api/v1/revisits/{id}/score` (staff record the answer to a
//! check-in's satisfaction question), `GET /api/v1/tasks` and `POST /api/v1/tasks/{id}/done`.

use std::sync::Arc;

use axum::{
    Json,
    extract::{Path, State},
    http::Uri,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{JsonBody, parse_id};
use crate::{
    api::{
        auth::Caller,
        error::{ApiError, ApiResult, ErrorBody},
        params::Params,
    },
    app::App,
    store::tasks::TaskRow,
};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScoreRequest {
    /// 1 (very unhappy) to 5 (very happy).
    pub score: u8,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScoreAnswer {
    pub revisit_id: i64,
    pub score: u8,
    /// The task a low score opened.
    pub task_id: Option<i64>,
}

/// Records the score a customer gave (by phone, in person) for a check-in that asked for one;
/// a low score opens a task for staff and alerts them.
#[utoipa::path(
    post, path = "/api/v1/revisits/{id}/score", tag = "tasks",
    params(("id" = i64, Path, description = "回访编号")),
    request_body = ScoreRequest,
    responses(
        (status = 200, body = ScoreAnswer),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn score(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
    body: JsonBody<ScoreRequest>,
) -> ApiResult<Json<ScoreAnswer>> {
    let id = parse_id(&id, "id")?;
    let Some(req) = body.0 else {
        return Err(ApiError::bad_body("请求体应为 {\"score\": 1–5}"));
    };
    if !(1..=5).contains(&req.score) {
        return Err(ApiError::bad_param("score", "score 应为 1–5 的整数"));
    }
    // Another institution's revisit is answered exactly like one that does not exist.
    match app.store.revisit_institution(id).await? {
        Some(inst) if caller.sees(inst) => {}
        _ => return Err(ApiError::not_found("回访")),
    }
    let Some(scored) = app
        .store
        .score_revisit(id, req.score, app.settings.followups.low_score)
        .await?
    else {
        return Err(ApiError::not_found("需要评分的回访"));
    };
    crate::consent::scored_alert(&app, &scored, req.score).await;
    Ok(Json(ScoreAnswer {
        revisit_id: id,
        score: req.score,
        task_id: scored.task_id,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TaskList {
    /// Newest first; names masked.
    pub items: Vec<TaskItem>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TaskItem {
    pub id: i64,
    pub institution: String,
    pub customer_code: String,
    pub name: String,
    pub revisit_id: Option<i64>,
    /// low_score
    pub kind: String,
    pub note: String,
    /// open | done
    pub status: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub done_at: Option<chrono::DateTime<chrono::Utc>>,
    pub done_by: Option<String>,
    pub done_note: Option<String>,
}

impl From<TaskRow> for TaskItem {
    fn from(t: TaskRow) -> Self {
        Self {
            id: t.id,
            institution: t.institution,
            customer_code: t.customer_code,
            name: t.name,
            revisit_id: t.revisit_id,
            kind: t.kind,
            note: t.note,
            status: t.status,
            created_at: t.created_at,
            done_at: t.done_at,
            done_by: t.done_by,
            done_note: t.done_note,
        }
    }
}

/// Tasks for staff (a low score to follow up), newest first. A staff token sees its
/// institution's only.
#[utoipa::path(
    get, path = "/api/v1/tasks", tag = "tasks",
    params(
        ("institution" = Option<String>, Query, description = "机构代码（员工令牌只能是自己的机构）"),
        ("status" = Option<String>, Query, description = "open（默认）或 all"),
        ("limit" = Option<i64>, Query, description = "1–200，默认 100"),
    ),
    responses(
        (status = 200, body = TaskList),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(app): State<Arc<App>>,
    caller: Caller,
    uri: Uri,
) -> ApiResult<Json<TaskList>> {
    let q = Params::of(&uri, &["institution", "status", "limit"])?;
    let limit = q.int("limit", 1..=200, 100)?;
    let open_only = q.choice("status", &["open", "all"])?.as_deref() != Some("all");
    let institution_id = match q.text("institution") {
        Some(code) => Some(caller.institution(&app, &code).await?.id),
        None => caller.scope(),
    };
    let rows = app.store.tasks(institution_id, open_only, limit).await?;
    Ok(Json(TaskList {
        items: rows.into_iter().map(TaskItem::from).collect(),
    }))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DoneRequest {
    /// What was done (kept with the task).
    pub note: Option<String>,
}

/// Closes an open task.
#[utoipa::path(
    post, path = "/api/v1/tasks/{id}/done", tag = "tasks",
    params(("id" = i64, Path, description = "待办编号")),
    request_body(content = DoneRequest, description = "可省略"),
    responses(
        (status = 200, body = TaskItem),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "已处理"),
    ),
    security(("bearer" = []))
)]
pub async fn done(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
    body: JsonBody<DoneRequest>,
) -> ApiResult<Json<TaskItem>> {
    let id = parse_id(&id, "id")?;
    let req = body.or_default();
    match app.store.task(id).await? {
        Some(t) if caller.sees(t.institution_id) => {}
        _ => return Err(ApiError::not_found("待办")),
    }
    let by = format!("令牌#{}", caller.0.token_id);
    if !app.store.finish_task(id, &by, req.note.as_deref()).await? {
        return Err(ApiError::conflict("task_done", "该待办已处理"));
    }
    let done = app
        .store
        .task(id)
        .await?
        .ok_or_else(|| ApiError::not_found("待办"))?;
    Ok(Json(TaskItem::from(done)))
}
