//! The birthday revisit: who has a birthday coming (`GET …/upcoming-birthdays`), running the
//! scan now (`POST …/run`, test mode unless told otherwise) and following that run.

use std::sync::Arc;

use axum::{
    Json,
    extract::{Path, State},
    http::{StatusCode, Uri},
};
use chrono::{NaiveDate, Utc};
use revisit_jobs::ScanScope;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{JsonBody, customers::CustomerItem};
use crate::{
    api::{
        auth::Caller,
        error::{ApiError, ApiResult, ErrorBody},
        params::Params,
    },
    app::App,
    domain::{birthday::BirthdayWindow, followup::Occasion},
    queue::scans::{SCAN_QUEUES, scan_job},
};

#[derive(Debug, Serialize, ToSchema)]
pub struct BirthdayItem {
    #[serde(flatten)]
    pub customer: CustomerItem,
    /// The day the birthday is kept on (for a lunar birthday, this year's solar date of it).
    pub next_birthday: NaiveDate,
    pub days_until: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UpcomingBirthdays {
    pub institution: String,
    pub from: NaiveDate,
    pub days: i64,
    /// Soonest first.
    pub items: Vec<BirthdayItem>,
}

/// Customers of institution `code` whose birthday falls in the next `days` days.
#[utoipa::path(
    get, path = "/api/v1/reminders/{code}/upcoming-birthdays", tag = "reminders",
    params(
        ("code" = String, Path, description = "机构代码"),
        ("days" = Option<i64>, Query, description = "往后看几天，0–60，默认配置的 days_ahead（7）"),
        ("from" = Option<String>, Query, description = "从哪天算起（YYYY-MM-DD），默认今天"),
    ),
    responses(
        (status = 200, body = UpcomingBirthdays),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn upcoming(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(code): Path<String>,
    uri: Uri,
) -> ApiResult<Json<UpcomingBirthdays>> {
    let q = Params::of(&uri, &["days", "from"])?;
    let days = q.int("days", 0..=60, i64::from(app.settings.reminders.days_ahead))?;
    let from = q.date("from")?.unwrap_or_else(|| today(&app));
    let inst = caller.institution(&app, &code).await?;
    let window = BirthdayWindow::new(from, days as u32);
    let rows = app.store.birthdays_of(inst.id, &window).await?;
    let mut items: Vec<BirthdayItem> = rows
        .into_iter()
        .filter_map(|r| {
            let next = window.kept_on(r.birthday, r.lunar_birthday)?;
            Some(BirthdayItem {
                days_until: (next - from).num_days(),
                customer: r.into(),
                next_birthday: next,
            })
        })
        .collect();
    items.sort_by(|a, b| (a.days_until, &a.customer.code).cmp(&(b.days_until, &b.customer.code)));
    Ok(Json(UpcomingBirthdays {
        institution: inst.code,
        from,
        days,
        items,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    /// Generate and show greetings, send nothing. On unless set to false; false (a real scan
    /// that contacts customers) needs an admin's token and today's date.
    #[serde(default = "yes")]
    pub test_mode: bool,
    /// Start the window on this day instead of today.
    #[serde(default)]
    pub today: Option<NaiveDate>,
    /// birthday (default), checkin, cycle or winback.
    #[serde(default)]
    pub kind: Option<String>,
}

fn yes() -> bool {
    true
}

impl Default for RunRequest {
    fn default() -> Self {
        Self {
            test_mode: true,
            today: None,
            kind: None,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunAnswer {
    /// The scan job: follow it at `/api/v1/reminders/runs/{job_id}`, and the revisits it makes
    /// at `/api/v1/revisits`.
    pub job_id: String,
    /// The institution, or `all`.
    pub institution: String,
    pub test_mode: bool,
}

/// Runs a revisit scan now (the birthday greeting by default, or `kind`: check-ins,
/// maintenance reminders, win-back) for institution `code` (an admin may say `all`).
#[utoipa::path(
    post, path = "/api/v1/reminders/{code}/run", tag = "reminders",
    params(("code" = String, Path, description = "机构代码；管理员可用 all 表示全部机构")),
    request_body(content = RunRequest, description = "可省略：默认测试模式"),
    responses(
        (status = 202, body = RunAnswer),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn run(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(code): Path<String>,
    body: JsonBody<RunRequest>,
) -> ApiResult<(StatusCode, Json<RunAnswer>)> {
    let req = body.or_default();
    // A real scan contacts customers: an admin's decision, and only for today's window (a
    // scan dated ahead would send a birthday greeting weeks early). Staff try things in test
    // mode, for any day.
    if !req.test_mode {
        if !caller.is_admin() {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "员工只能以测试模式运行扫描（不发送）；正式发送由管理员执行",
            ));
        }
        if !app.store.sending_live().await? {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "sending_off",
                "正式发送尚未开启：管理员确认将发送的内容后运行 revisit sending on；现在只能以测试模式运行",
            ));
        }
        if req.today.is_some_and(|d| d != today(&app)) {
            return Err(ApiError::bad_param(
                "today",
                "正式发送只能针对今天的扫描；其他日期请用测试模式",
            ));
        }
    }
    let institution = if code == "all" {
        caller.require_admin()?;
        None
    } else {
        Some(caller.institution(&app, &code).await?.code)
    };
    let occasion = match req.kind.as_deref() {
        None => Occasion::Birthday,
        Some(k) => Occasion::parse(k).ok_or_else(|| {
            ApiError::bad_param(
                "kind",
                format!("kind 应为 birthday、checkin、cycle 或 winback，收到 {k:?}"),
            )
        })?,
    };
    let scope = ScanScope {
        institution: institution.clone(),
        test_mode: req.test_mode,
        today: req.today,
    };
    let (job, _) = scan_job(&app.settings, occasion, scope);
    let job_id = app
        .store
        .enqueue(job)
        .await?
        .ok_or_else(|| ApiError::internal("the scan was not enqueued"))?;
    Ok((
        StatusCode::ACCEPTED,
        Json(RunAnswer {
            job_id,
            institution: institution.unwrap_or_else(|| "all".to_owned()),
            test_mode: req.test_mode,
        }),
    ))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunState {
    pub job_id: String,
    /// pending | running | done | failed
    pub state: String,
    pub error: Option<String>,
}

/// The state of a scan started through the API.
#[utoipa::path(
    get, path = "/api/v1/reminders/runs/{job_id}", tag = "reminders",
    params(("job_id" = String, Path, description = "run 返回的 job_id")),
    responses(
        (status = 200, body = RunState),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn run_state(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(job_id): Path<String>,
) -> ApiResult<Json<RunState>> {
    let not_found = || ApiError::not_found("回访任务");
    let job = app.store.job_args(&job_id).await?.ok_or_else(not_found)?;
    if !SCAN_QUEUES.contains(&job.queue.as_str()) {
        return Err(not_found());
    }
    let scan: ScanScope = serde_json::from_slice(&job.payload).map_err(|_| not_found())?;
    // A staff token follows its own institution's runs; others look like no run at all.
    if !caller.is_admin() && scan.institution != caller.0.institution_code {
        return Err(not_found());
    }
    let status = app.store.job_state(&job_id).await?.ok_or_else(not_found)?;
    Ok(Json(RunState {
        job_id,
        state: status.state,
        error: status.last_error,
    }))
}

/// Today in the chain's time zone.
pub fn today(app: &App) -> NaiveDate {
    Utc::now().with_timezone(&app.settings.tz()).date_naive()
}
