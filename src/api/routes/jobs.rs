//! The job queue, for admins: list (failed first when asked), retry a dead job, cancel one that
//! has not started.

use std::sync::Arc;

use axum::{
    Json,
    extract::{Path, State},
    http::Uri,
};
use chrono::{DateTime, Utc};
use revisit_jobs::{ALL_KINDS, KindInfo};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    api::{
        auth::Caller,
        error::{ApiError, ApiResult, ErrorBody},
        params::Params,
    },
    app::App,
    store::{JobRow, JobState},
};

#[derive(Debug, Serialize, ToSchema)]
pub struct JobItem {
    pub id: String,
    /// The job kind (`greeting.generate`, `message.send`, …).
    pub kind: String,
    /// pending | running | done | failed
    pub state: String,
    pub attempts: i32,
    pub max_attempts: i32,
    pub run_at: DateTime<Utc>,
    pub done_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

impl From<JobRow> for JobItem {
    fn from(r: JobRow) -> Self {
        Self {
            kind: kind_name(&r.queue),
            id: r.id,
            state: r.state,
            attempts: r.attempts,
            max_attempts: r.max_attempts,
            run_at: r.run_at,
            done_at: r.done_at,
            last_error: r.last_error,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobCount {
    pub kind: String,
    pub state: String,
    pub count: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobList {
    pub items: Vec<JobItem>,
    /// Every kind and state present, with how many jobs.
    pub counts: Vec<JobCount>,
}

fn kind_name(queue: &str) -> String {
    ALL_KINDS
        .iter()
        .find(|k| k.queue == queue)
        .map_or_else(|| queue.to_owned(), |k| k.name.to_owned())
}

/// Jobs, newest first (admin).
#[utoipa::path(
    get, path = "/api/v1/jobs", tag = "jobs",
    params(
        ("state" = Option<String>, Query, description = "pending、running、done、failed"),
        ("kind" = Option<String>, Query, description = "任务类型，如 message.send"),
        ("limit" = Option<i64>, Query, description = "1–500，默认 100"),
    ),
    responses(
        (status = 200, body = JobList),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(app): State<Arc<App>>,
    caller: Caller,
    uri: Uri,
) -> ApiResult<Json<JobList>> {
    caller.require_admin()?;
    let q = Params::of(&uri, &["state", "kind", "limit"])?;
    let state = match q
        .choice("state", &["pending", "running", "done", "failed"])?
        .as_deref()
    {
        Some("pending") => Some(JobState::Pending),
        Some("running") => Some(JobState::Running),
        Some("done") => Some(JobState::Done),
        Some("failed") => Some(JobState::Failed),
        _ => None,
    };
    let queue = match q.text("kind") {
        Some(k) => Some(
            KindInfo::find(&k)
                .ok_or_else(|| ApiError::bad_param("kind", format!("没有任务类型 {k:?}")))?
                .queue,
        ),
        None => None,
    };
    let limit = q.int("limit", 1..=500, 100)?;
    let items = app.store.list_jobs(state, queue, limit).await?;
    let counts = app.store.job_counts().await?;
    Ok(Json(JobList {
        items: items.into_iter().map(JobItem::from).collect(),
        counts: counts
            .into_iter()
            .map(|c| JobCount {
                kind: kind_name(&c.queue),
                state: c.state,
                count: c.count,
            })
            .collect(),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobAction {
    pub job_id: String,
    /// retried | cancelled
    pub done: String,
}

/// Puts a dead job back in the queue with a full set of attempts (admin).
#[utoipa::path(
    post, path = "/api/v1/jobs/{id}/retry", tag = "jobs",
    params(("id" = String, Path, description = "任务编号")),
    responses(
        (status = 200, body = JobAction),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "任务不存在或没有失败"),
    ),
    security(("bearer" = []))
)]
pub async fn retry(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<JobAction>> {
    caller.require_admin()?;
    if app.store.retry_jobs(Some(&id), None).await?.is_empty() {
        return Err(ApiError::conflict(
            "not_failed",
            "任务不存在，或不是失败状态",
        ));
    }
    Ok(Json(JobAction {
        job_id: id,
        done: "retried".into(),
    }))
}

/// Cancels a job that has not started (admin).
#[utoipa::path(
    post, path = "/api/v1/jobs/{id}/cancel", tag = "jobs",
    params(("id" = String, Path, description = "任务编号")),
    responses(
        (status = 200, body = JobAction),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "任务不存在或已开始"),
    ),
    security(("bearer" = []))
)]
pub async fn cancel(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<JobAction>> {
    caller.require_admin()?;
    if !app.store.cancel_job(&id).await? {
        return Err(ApiError::conflict(
            "not_pending",
            "任务不存在，或已经开始执行",
        ));
    }
    Ok(Json(JobAction {
        job_id: id,
        done: "cancelled".into(),
    }))
}
