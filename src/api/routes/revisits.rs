//! `GET /api/v1/revisits` (by institution and status, newest first) and
//! `POST /api/v1/revisits/{id}/retry` (put a failed revisit's step back in the queue).

use std::sync::Arc;

use axum::{
    Json,
    extract::{Path, State},
    http::{StatusCode, Uri},
};
use chrono::{DateTime, NaiveDate, Utc};
use revisit_jobs::{GreetingGenerate, MessageSend};
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
    domain::{
        privacy::mask_phone,
        revisit::{Approval, RevisitStatus},
    },
    store::{
        NewJob,
        directory::{RevisitQuery, RevisitRetry, RevisitRow},
    },
};

const STATUSES: &[&str] = &[
    "pending",
    "generated",
    "sending",
    "submitted",
    "sent",
    "failed",
    "skipped",
];

/// A revisit as staff see it (the phone masked).
#[derive(Debug, Serialize, ToSchema)]
pub struct RevisitItem {
    pub id: i64,
    pub institution: String,
    pub customer_code: String,
    pub name: String,
    pub phone: String,
    /// birthday | checkin | cycle | winback
    pub occasion: String,
    /// The occasion in Chinese (生日问候, 术后回访, 疗程提醒, 沉睡唤醒).
    pub occasion_label: String,
    pub occasion_date: NaiveDate,
    /// Generated and shown, never sent.
    pub test_mode: bool,
    /// pending | generated | sending | submitted (a WeCom task waiting for staff) | sent | failed | skipped
    pub status: String,
    /// The status in Chinese.
    pub status_label: String,
    /// llm | template
    pub generated_by: Option<String>,
    pub message: Option<String>,
    pub channel: Option<String>,
    pub send_attempts: i32,
    pub last_error: Option<String>,
    /// The last delivery try may have arrived: a retry could send it twice.
    pub delivery_uncertain: bool,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    /// pending (waiting for staff approval) | approved | rejected; absent when not asked for.
    pub approval: Option<String>,
    /// A failed revisit that retrying may deliver (it ran out of attempts, e.g. a gateway was
    /// down). One that failed permanently (refused by the compliance check or the channel) is
    /// not: its cause must be fixed first.
    pub retryable: bool,
}

impl From<RevisitRow> for RevisitItem {
    fn from(r: RevisitRow) -> Self {
        let sent = r.status == RevisitStatus::Sent;
        let retryable = r.status == RevisitStatus::Failed && !r.failure_permanent;
        Self {
            status_label: match (r.status, r.approval) {
                (RevisitStatus::Generated, Some(Approval::Pending)) => "待审批",
                (status, _) => status.label(),
            }
            .to_owned(),
            id: r.id,
            institution: r.institution,
            customer_code: r.customer_code,
            name: r.name,
            phone: mask_phone(&r.phone),
            occasion_label: r.occasion.label().to_owned(),
            occasion: r.occasion.as_str().to_owned(),
            occasion_date: r.occasion_date,
            test_mode: r.test_mode,
            status: r.status.as_str().to_owned(),
            generated_by: r.generated_by.map(|w| w.as_str().to_owned()),
            message: r.message,
            channel: r.channel,
            send_attempts: r.send_attempts,
            // An error is what went wrong with a revisit that did not go out; once sent, an
            // earlier try's error is history.
            last_error: r.last_error.filter(|_| !sent),
            delivery_uncertain: r.delivery_uncertain,
            created_at: r.created_at,
            sent_at: r.sent_at,
            approval: r.approval.map(|a| a.as_str().to_owned()),
            retryable,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RevisitPage {
    pub items: Vec<RevisitItem>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next_before: Option<i64>,
}

/// Revisits, newest first. A staff token sees its institution's only.
#[utoipa::path(
    get, path = "/api/v1/revisits", tag = "revisits",
    params(
        ("institution" = Option<String>, Query, description = "机构代码（员工令牌只能是自己的机构）"),
        ("status" = Option<String>, Query, description = "pending、generated、sending、submitted、sent、failed、skipped"),
        ("test_mode" = Option<bool>, Query, description = "只看测试模式（true）或正式（false）"),
        ("before" = Option<i64>, Query, description = "上一页的 next_before"),
        ("limit" = Option<i64>, Query, description = "1–200，默认 50"),
    ),
    responses(
        (status = 200, body = RevisitPage),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(app): State<Arc<App>>,
    caller: Caller,
    uri: Uri,
) -> ApiResult<Json<RevisitPage>> {
    let q = Params::of(
        &uri,
        &["institution", "status", "test_mode", "before", "limit"],
    )?;
    let limit = q.int("limit", 1..=200, 50)?;
    let institution_id = match q.text("institution") {
        Some(code) => Some(caller.institution(&app, &code).await?.id),
        None => caller.scope(),
    };
    let mut rows = app
        .store
        .revisit_list(&RevisitQuery {
            institution_id,
            status: q
                .choice("status", STATUSES)?
                .and_then(|s| RevisitStatus::parse(&s)),
            test_mode: q.bool("test_mode")?,
            before_id: q.opt_int("before")?,
            limit: limit + 1,
        })
        .await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_before = more.then(|| rows.last().map(|r| r.id)).flatten();
    Ok(Json(RevisitPage {
        items: rows.into_iter().map(RevisitItem::from).collect(),
        next_before,
    }))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryRequest {
    /// Retry even though the last delivery try may have arrived (it may then arrive twice).
    #[serde(default)]
    pub even_if_uncertain: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RetryAnswer {
    pub revisit_id: i64,
    /// The queued job (follow it in the jobs list).
    pub job_id: String,
}

/// Puts a failed revisit back in the queue: generated again if it has no message yet, sent
/// again if it has one.
#[utoipa::path(
    post, path = "/api/v1/revisits/{id}/retry", tag = "revisits",
    params(("id" = i64, Path, description = "回访编号")),
    request_body(content = RetryRequest, description = "可省略"),
    responses(
        (status = 202, body = RetryAnswer),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "未失败，或上次可能已送达"),
    ),
    security(("bearer" = []))
)]
pub async fn retry(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
    body: JsonBody<RetryRequest>,
) -> ApiResult<(StatusCode, Json<RetryAnswer>)> {
    let id = parse_id(&id, "id")?;
    let req = body.or_default();
    // Another institution's revisit is answered exactly like one that does not exist.
    match app.store.revisit_institution(id).await? {
        Some(inst) if caller.sees(inst) => {}
        _ => return Err(ApiError::not_found("回访")),
    }
    let policy = |info| app.settings.policy(&info).max_attempts as i32;
    let generate = NewJob::for_revisit(
        &GreetingGenerate { revisit_id: id },
        policy(revisit_jobs::KindInfo::of::<GreetingGenerate>()),
        id,
    );
    let send = NewJob::for_revisit(
        &MessageSend { revisit_id: id },
        policy(revisit_jobs::KindInfo::of::<MessageSend>()),
        id,
    );
    match app
        .store
        .retry_revisit(id, generate, send, req.even_if_uncertain)
        .await?
    {
        RevisitRetry::Queued(job_id) => Ok((
            StatusCode::ACCEPTED,
            Json(RetryAnswer {
                revisit_id: id,
                job_id,
            }),
        )),
        RevisitRetry::NotFailed(status) => Err(ApiError::conflict(
            "not_failed",
            format!("该回访状态为「{}」，只有失败的回访可以重试", status.label()),
        )),
        RevisitRetry::Uncertain => Err(ApiError::conflict(
            "delivery_uncertain",
            "上次发送可能已经送达，重试可能让客户收到两次；请先核实，确认后以 even_if_uncertain=true 重试",
        )),
        RevisitRetry::NotFound => Err(ApiError::not_found("回访")),
    }
}
