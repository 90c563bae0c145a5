//! Consent and approval: `POST /api/v1/inbound/replies` (replies from an SMS gateway; an
//! unsubscribe such as 回T退订 suppresses the number), and the messages waiting for staff approval
//! (`GET /api/v1/approvals`, `POST /api/v1/approvals/approve`, `POST /api/v1/approvals/reject`).

use std::sync::Arc;

use axum::{
    Json,
    body::Bytes,
    extract::State,
    http::{Uri, request::Parts},
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::JsonBody;
use crate::{
    api::{
        auth::{self, Caller},
        error::{ApiError, ApiResult, ErrorBody},
        params::Params,
    },
    app::App,
    consent::{self, ReplyError, ReplyOutcome},
    store::RevisitView,
};

/// One reply, in Alibaba Cloud SMS's push format (短信上行, `phone_number`, `content`, …) or the
/// plain one (`phone`, `text`, optional `channel`).
#[derive(Debug, Deserialize, ToSchema)]
pub struct Reply {
    #[serde(alias = "phone_number")]
    pub phone: String,
    #[serde(alias = "content")]
    pub text: String,
    /// The channel it came back over: sms, webhook, wecom (default: the configured channel;
    /// Alibaba Cloud's pushes are sms).
    pub channel: Option<String>,
    /// Alibaba Cloud's sign name: its presence marks an SMS reply.
    pub sign_name: Option<String>,
}

/// One reply or a list of them (Alibaba Cloud pushes a list).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Replies {
    Many(Vec<Reply>),
    One(Reply),
}

/// The answer Alibaba Cloud's push expects (`code` 0 is success), with what was done.
#[derive(Debug, Serialize, ToSchema)]
pub struct RepliesAnswer {
    pub code: i32,
    pub msg: String,
    /// Replies that unsubscribed a number (or found it unsubscribed already).
    pub unsubscribed: usize,
    /// Replies that answered a satisfaction question with a score.
    pub scored: usize,
    /// Replies that were neither.
    pub ignored: usize,
}

/// Records replies from customers: an unsubscribe (T, TD, R, N, 退订, 拒收…) suppresses the
/// number for the channel it came over; a score (1–5) answers the satisfaction question last
/// sent to it, and a low one opens a task for staff. Needs an admin token, or
/// `consent.inbound_secret` for a gateway that cannot send one: in the `X-Revisit-Secret`
/// header, or (only where the gateway can be given nothing but a URL) as `?secret=`.
#[utoipa::path(
    post, path = "/api/v1/inbound/replies", tag = "consent",
    params(
        ("X-Revisit-Secret" = Option<String>, Header, description = "consent.inbound_secret（无法带令牌的短信网关用；优先于地址参数）"),
        ("secret" = Option<String>, Query, description = "consent.inbound_secret（仅当网关只能配置地址时使用：会出现在访问日志中）"),
    ),
    request_body = Replies,
    responses(
        (status = 200, body = RepliesAnswer),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    ),
    security(("bearer" = []), ())
)]
pub async fn replies(
    State(app): State<Arc<App>>,
    parts: Parts,
    uri: Uri,
    body: Bytes,
) -> ApiResult<Json<RepliesAnswer>> {
    let q = Params::of(&uri, &["secret"])?;
    let configured = app.settings.consent.inbound_secret.expose();
    // The header keeps the secret out of access logs and proxies' records; the query string
    // stays for gateways that can only be given a URL.
    let header = parts
        .headers
        .get(INBOUND_SECRET_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let by_secret = match header.or_else(|| q.text("secret")) {
        Some(given) => {
            if configured.is_empty() || !same_secret(&given, configured) {
                return Err(ApiError::unauthorized("secret 不正确"));
            }
            true
        }
        None => false,
    };
    if !by_secret {
        match auth::principal(&app, &parts).await? {
            Some(p) => Caller(p).require_admin()?,
            None => {
                return Err(ApiError::unauthorized(
                    "缺少令牌：请用管理员令牌，或在 X-Revisit-Secret 头（或地址的 secret 参数）中带上入站密钥",
                ));
            }
        }
    }
    let de = &mut serde_json::Deserializer::from_slice(&body);
    let replies: Replies = serde_path_to_error::deserialize(de).map_err(|e| ApiError {
        param: Some(e.path().to_string()),
        ..ApiError::bad_body(format!("请求体无法解析：{}", e.inner()))
    })?;
    let list = match replies {
        Replies::Many(v) => v,
        Replies::One(r) => vec![r],
    };
    let (mut unsubscribed, mut scored, mut ignored) = (0, 0, 0);
    for (i, r) in list.iter().enumerate() {
        let channel = r.channel.as_deref().or(r.sign_name.as_ref().map(|_| "sms"));
        match consent::record_reply(&app, &r.phone, &r.text, channel).await {
            Ok(ReplyOutcome::Unsubscribed { .. }) => unsubscribed += 1,
            Ok(ReplyOutcome::Scored { .. }) => scored += 1,
            Ok(ReplyOutcome::Ignored) => ignored += 1,
            Err(ReplyError::Store(e)) => return Err(e.into()),
            Err(e) => return Err(ApiError::bad_param(&format!("[{i}]"), e.to_string())),
        }
    }
    Ok(Json(RepliesAnswer {
        code: 0,
        msg: "成功".into(),
        unsubscribed,
        scored,
        ignored,
    }))
}

/// The header a gateway puts `consent.inbound_secret` in (or, if it cannot, `?secret=`).
pub const INBOUND_SECRET_HEADER: &str = "x-revisit-secret";

/// Compares digests, so the time taken says nothing of how much of the secret matched.
fn same_secret(given: &str, configured: &str) -> bool {
    Sha256::digest(given.as_bytes()) == Sha256::digest(configured.as_bytes())
}

/// A message waiting for approval (name and phone masked).
#[derive(Debug, Serialize, ToSchema)]
pub struct WaitingItem {
    pub id: i64,
    pub institution: String,
    pub customer_code: String,
    pub name: String,
    pub phone: String,
    pub occasion_date: chrono::NaiveDate,
    pub generated_by: Option<String>,
    pub message: Option<String>,
}

impl From<RevisitView> for WaitingItem {
    fn from(r: RevisitView) -> Self {
        Self {
            id: r.id,
            institution: r.institution,
            customer_code: r.customer_code,
            name: r.name,
            phone: r.phone,
            occasion_date: r.occasion_date,
            generated_by: r.generated_by.map(|w| w.as_str().to_owned()),
            message: r.message,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Waiting {
    /// Oldest first.
    pub items: Vec<WaitingItem>,
}

/// Real messages waiting for a person's approval. A staff token sees its institution's only.
#[utoipa::path(
    get, path = "/api/v1/approvals", tag = "consent",
    params(
        ("institution" = Option<String>, Query, description = "机构代码（员工令牌只能是自己的机构）"),
        ("limit" = Option<i64>, Query, description = "1–200，默认 100"),
    ),
    responses(
        (status = 200, body = Waiting),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn waiting(
    State(app): State<Arc<App>>,
    caller: Caller,
    uri: Uri,
) -> ApiResult<Json<Waiting>> {
    let q = Params::of(&uri, &["institution", "limit"])?;
    let limit = q.int("limit", 1..=200, 100)?;
    let institution = scope(&app, &caller, q.text("institution")).await?;
    let rows = app
        .store
        .awaiting_approval(institution.as_deref(), limit)
        .await?;
    Ok(Json(Waiting {
        items: rows.into_iter().map(WaitingItem::from).collect(),
    }))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// Revisit ids; empty: every waiting message of `institution`.
    #[serde(default)]
    pub ids: Vec<i64>,
    /// Only this institution's (a staff token: always its own).
    pub institution: Option<String>,
    /// Why a message is rejected (kept with it for staff).
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Decided {
    /// The revisits decided now; ids asked for but not among them were not waiting.
    pub ids: Vec<i64>,
}

/// Approves waiting messages: their sending is enqueued (held for quiet hours).
#[utoipa::path(
    post, path = "/api/v1/approvals/approve", tag = "consent",
    request_body = Decision,
    responses(
        (status = 200, body = Decided),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn approve(
    State(app): State<Arc<App>>,
    caller: Caller,
    body: JsonBody<Decision>,
) -> ApiResult<Json<Decided>> {
    let d = body.or_default();
    let institution = decided_scope(&app, &caller, &d).await?;
    let done = consent::approve(&app, &d.ids, institution.as_deref(), &by(&caller)).await?;
    Ok(Json(Decided { ids: done.ids }))
}

/// Rejects waiting messages: they are skipped and never sent.
#[utoipa::path(
    post, path = "/api/v1/approvals/reject", tag = "consent",
    request_body = Decision,
    responses(
        (status = 200, body = Decided),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn reject(
    State(app): State<Arc<App>>,
    caller: Caller,
    body: JsonBody<Decision>,
) -> ApiResult<Json<Decided>> {
    let d = body.or_default();
    let institution = decided_scope(&app, &caller, &d).await?;
    let done = consent::reject(
        &app,
        &d.ids,
        institution.as_deref(),
        &by(&caller),
        d.reason.as_deref(),
    )
    .await?;
    Ok(Json(Decided { ids: done.ids }))
}

/// The institution a request may act on: a staff token's own (naming another is refused), or
/// the one an admin names, or none (the chain) for an admin who names none.
async fn scope(app: &App, caller: &Caller, named: Option<String>) -> ApiResult<Option<String>> {
    match named {
        Some(code) => Ok(Some(caller.institution(app, &code).await?.code)),
        None if caller.is_admin() => Ok(None),
        None => Ok(caller.0.institution_code.clone()),
    }
}

async fn decided_scope(app: &App, caller: &Caller, d: &Decision) -> ApiResult<Option<String>> {
    let institution = scope(app, caller, d.institution.clone()).await?;
    if d.ids.is_empty() && institution.is_none() {
        return Err(ApiError::bad_param(
            "ids",
            "请列出回访编号，或用 institution 指定一家机构的全部待审批消息",
        ));
    }
    Ok(institution)
}

/// Who decided, as kept with the revisit.
fn by(caller: &Caller) -> String {
    format!("令牌#{}", caller.0.token_id)
}
