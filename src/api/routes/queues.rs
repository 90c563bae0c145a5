//! The queues, for admins (the console's queue page): each queue's depth, whether it is paused,
//! what it did minute by minute over the last hour; pause and resume.

use std::sync::Arc;

use axum::{
    Json,
    extract::{Path, State},
};
use chrono::{DateTime, Utc};
use revisit_jobs::{ALL_KINDS, KindInfo};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::JsonBody;
use crate::{
    api::{
        auth::Caller,
        error::{ApiError, ApiResult, ErrorBody},
    },
    app::App,
    store::queue_control::ActivityMinute,
};

#[derive(Debug, Serialize, ToSchema)]
pub struct QueueItem {
    pub queue: String,
    /// The job kind it runs (`message.send`, …).
    pub kind: String,
    pub waiting: i64,
    pub scheduled: i64,
    pub running: i64,
    pub dead: i64,
    /// How long the oldest waiting job has been due, in seconds.
    pub oldest_waiting_secs: f64,
    /// Jobs completed and failed for good in the last hour, by every worker.
    pub completed_last_hour: i64,
    pub failed_last_hour: i64,
    pub paused: bool,
    pub paused_at: Option<DateTime<Utc>>,
    pub paused_reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueueOverview {
    /// Every queue, in the order `revisit jobs kinds` lists them.
    pub queues: Vec<QueueItem>,
    /// The last hour by minute and queue (minutes with no activity are left out).
    pub minutes: Vec<ActivityMinute>,
}

/// Every queue's state and its last hour (admin).
#[utoipa::path(
    get, path = "/api/v1/queues", tag = "jobs",
    responses(
        (status = 200, body = QueueOverview),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn overview(
    State(app): State<Arc<App>>,
    caller: Caller,
) -> ApiResult<Json<QueueOverview>> {
    caller.require_admin()?;
    let depths = app.store.queue_depths().await?;
    let paused = app.store.paused_queues().await?;
    let minutes = app
        .store
        .activity_since(Utc::now() - chrono::Duration::hours(1))
        .await?;
    let queues = ALL_KINDS
        .iter()
        .filter(|k| k.queue != <revisit_jobs::Noop as revisit_jobs::Job>::QUEUE)
        .map(|k| {
            let d = depths.iter().find(|d| d.queue == k.queue);
            let p = paused.iter().find(|p| p.queue == k.queue);
            let hour = minutes.iter().filter(|m| m.queue == k.queue);
            QueueItem {
                queue: k.queue.to_owned(),
                kind: k.name.to_owned(),
                waiting: d.map_or(0, |d| d.waiting),
                scheduled: d.map_or(0, |d| d.scheduled),
                running: d.map_or(0, |d| d.running),
                dead: d.map_or(0, |d| d.dead),
                oldest_waiting_secs: d.map_or(0.0, |d| d.oldest_waiting_secs),
                completed_last_hour: hour.clone().map(|m| m.completed).sum(),
                failed_last_hour: hour.map(|m| m.failed).sum(),
                paused: p.is_some(),
                paused_at: p.map(|p| p.paused_at),
                paused_reason: p.and_then(|p| p.reason.clone()),
            }
        })
        .collect();
    Ok(Json(QueueOverview { queues, minutes }))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PauseRequest {
    /// Why (a gateway outage, a compliance review, a migration), shown to other admins.
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueueAction {
    pub queue: String,
    /// paused | resumed
    pub done: String,
}

fn queue_of(name: &str) -> ApiResult<&'static str> {
    KindInfo::find(name)
        .map(|k| k.queue)
        .ok_or_else(|| ApiError::not_found("队列"))
}

/// Pauses a queue for every worker: its jobs stay where they are until it is resumed; running
/// ones finish (admin).
#[utoipa::path(
    post, path = "/api/v1/queues/{queue}/pause", tag = "jobs",
    params(("queue" = String, Path, description = "队列或任务类型，如 message.send")),
    request_body(content = PauseRequest, description = "可省略"),
    responses(
        (status = 200, body = QueueAction),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "已经暂停"),
    ),
    security(("bearer" = []))
)]
pub async fn pause(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
    body: JsonBody<PauseRequest>,
) -> ApiResult<Json<QueueAction>> {
    caller.require_admin()?;
    let queue = queue_of(&name)?;
    let reason = body
        .or_default()
        .reason
        .map(|r| r.trim().chars().take(200).collect::<String>())
        .filter(|r| !r.is_empty());
    let reason = reason.unwrap_or_else(|| format!("令牌#{} 在控制台暂停", caller.0.token_id));
    if !app.store.pause_queue(queue, Some(&reason)).await? {
        return Err(ApiError::conflict("already_paused", "该队列已经暂停"));
    }
    tracing::info!(
        queue,
        token = caller.0.token_id,
        "queue paused through the API"
    );
    Ok(Json(QueueAction {
        queue: queue.to_owned(),
        done: "paused".into(),
    }))
}

/// Resumes a paused queue (admin).
#[utoipa::path(
    post, path = "/api/v1/queues/{queue}/resume", tag = "jobs",
    params(("queue" = String, Path, description = "队列或任务类型，如 message.send")),
    responses(
        (status = 200, body = QueueAction),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "没有暂停"),
    ),
    security(("bearer" = []))
)]
pub async fn resume(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<QueueAction>> {
    caller.require_admin()?;
    let queue = queue_of(&name)?;
    if !app.store.resume_queue(queue).await? {
        return Err(ApiError::conflict("not_paused", "该队列没有暂停"));
    }
    tracing::info!(
        queue,
        token = caller.0.token_id,
        "queue resumed through the API"
    );
    Ok(Json(QueueAction {
        queue: queue.to_owned(),
        done: "resumed".into(),
    }))
}
