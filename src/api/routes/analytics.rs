//! `GET /api/v1/analytics/dashboard`: the chain's or one institution's figures.

use std::sync::Arc;

use axum::{Json, extract::State, http::Uri};
use serde::Serialize;
use utoipa::ToSchema;

use super::reminders::today;
use crate::{
    analytics::{self, Source},
    api::{
        auth::Caller,
        error::{ApiResult, ErrorBody},
        params::Params,
    },
    app::App,
    domain::dashboard::Dashboard,
};

#[derive(Debug, Serialize, ToSchema)]
pub struct DashboardAnswer {
    /// clickhouse | primary_store | primary_store_fallback
    #[schema(value_type = String)]
    pub source: Source,
    /// Where the figures came from, in Chinese.
    pub source_label: String,
    pub dashboard: Dashboard,
}

/// The dashboard. A staff token gets its institution's; an admin the chain's, or one
/// institution's with `institution`.
#[utoipa::path(
    get, path = "/api/v1/analytics/dashboard", tag = "analytics",
    params(
        ("institution" = Option<String>, Query, description = "机构代码；员工令牌默认且只能是自己的机构"),
        ("date" = Option<String>, Query, description = "截至哪天（YYYY-MM-DD），默认今天"),
    ),
    responses(
        (status = 200, body = DashboardAnswer),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn dashboard(
    State(app): State<Arc<App>>,
    caller: Caller,
    uri: Uri,
) -> ApiResult<Json<DashboardAnswer>> {
    let q = Params::of(&uri, &["institution", "date"])?;
    let as_of = q.date("date")?.unwrap_or_else(|| today(&app));
    let institution = match (q.text("institution"), caller.is_admin()) {
        (Some(code), _) => Some(caller.institution(&app, &code).await?.code),
        (None, true) => None,
        (None, false) => caller.0.institution_code.clone(),
    };
    let (dashboard, source) =
        analytics::dashboard(app.dashboard_sources(), institution.as_deref(), as_of).await?;
    Ok(Json(DashboardAnswer {
        source,
        source_label: source.label().to_owned(),
        dashboard,
    }))
}
