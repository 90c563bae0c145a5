//! `GET /api/v1/customers/{code}` (an institution's customers, a page at a time, searchable)
//! and `GET /api/v1/customers/{code}/{customer_code}` (one customer with history and revisits).
//! Phone numbers are always masked.

use std::sync::Arc;

use axum::{
    Json,
    extract::{Path, State},
    http::Uri,
};
use chrono::NaiveDate;
use serde::Serialize;
use utoipa::ToSchema;

use super::revisits::RevisitItem;
use crate::{
    api::{
        auth::Caller,
        error::{ApiError, ApiResult, ErrorBody},
        params::Params,
    },
    app::App,
    domain::{lunar::LunarBirthday, privacy::mask_phone},
    store::directory::{ConsultationView, CustomerListRow, CustomerQuery, OrderView},
};

/// A customer in a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerItem {
    pub code: String,
    pub name: String,
    /// Masked: `138****8000`.
    pub phone: String,
    pub gender: Option<String>,
    pub birthday: Option<NaiveDate>,
    /// The lunar birthday the customer keeps (`闰六月十五`), which the greeting follows.
    pub lunar_birthday: Option<String>,
    pub vip_level: Option<String>,
    /// Asked this institution not to be contacted: never sent a message.
    pub opted_out: bool,
    /// The same person (phone) asked another institution of the chain not to be contacted:
    /// never sent a message either. Which institution is not said.
    pub opted_out_elsewhere: bool,
    /// The date of the latest order.
    pub last_visit: Option<NaiveDate>,
}

impl From<CustomerListRow> for CustomerItem {
    fn from(r: CustomerListRow) -> Self {
        Self {
            code: r.code,
            name: r.name,
            phone: mask_phone(&r.phone),
            gender: r.gender,
            birthday: r.birthday,
            lunar_birthday: r
                .lunar_birthday
                .and_then(LunarBirthday::from_code)
                .map(LunarBirthday::label),
            vip_level: r.vip_level,
            opted_out: r.opted_out,
            opted_out_elsewhere: r.opted_out_elsewhere,
            last_visit: r.last_visit,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerPage {
    pub institution: String,
    pub items: Vec<CustomerItem>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<String>,
}

/// One customer, with what the institution knows of them.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerView {
    #[serde(flatten)]
    pub customer: CustomerItem,
    pub source: Option<String>,
    pub tags: Vec<String>,
    pub notes: Option<String>,
    /// Newest first (the latest 100).
    pub orders: Vec<OrderView>,
    /// Consultation records (咨询记录), newest first (the latest 50).
    pub consultations: Vec<ConsultationView>,
    /// Newest first (the latest 50).
    pub revisits: Vec<RevisitItem>,
}

/// The customers of institution `code`, in code order.
#[utoipa::path(
    get, path = "/api/v1/customers/{code}", tag = "customers",
    params(
        ("code" = String, Path, description = "机构代码"),
        ("q" = Option<String>, Query, description = "搜索：客户编号开头、姓名中的字、完整手机号或手机号后四位；每个令牌每分钟限 api.searches_per_minute 次"),
        ("after" = Option<String>, Query, description = "上一页的 next_after"),
        ("limit" = Option<i64>, Query, description = "每页条数，1–200，默认 50"),
    ),
    responses(
        (status = 200, body = CustomerPage),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 429, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(code): Path<String>,
    uri: Uri,
) -> ApiResult<Json<CustomerPage>> {
    let q = Params::of(&uri, &["q", "after", "limit"])?;
    let limit = q.int("limit", 1..=200, 50)?;
    let search = q.text("q");
    if search.as_ref().is_some_and(|s| s.chars().count() > 64) {
        return Err(ApiError::bad_param("q", "搜索词最多 64 个字"));
    }
    let inst = caller.institution(&app, &code).await?;
    if search.is_some() {
        app.search_limits
            .check(caller.0.token_id, std::time::Instant::now())
            .map_err(|wait| ApiError::too_many("搜索", wait))?;
    }
    // One more than asked tells whether there is a next page.
    let mut rows = app
        .store
        .customer_page(&CustomerQuery {
            institution_id: inst.id,
            search,
            after: q.text("after"),
            limit: limit + 1,
        })
        .await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_after = more.then(|| rows.last().map(|r| r.code.clone())).flatten();
    Ok(Json(CustomerPage {
        institution: inst.code,
        items: rows.into_iter().map(CustomerItem::from).collect(),
        next_after,
    }))
}

/// One customer of institution `code`.
#[utoipa::path(
    get, path = "/api/v1/customers/{code}/{customer_code}", tag = "customers",
    params(
        ("code" = String, Path, description = "机构代码"),
        ("customer_code" = String, Path, description = "客户编号"),
    ),
    responses(
        (status = 200, body = CustomerView),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn one(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path((code, customer_code)): Path<(String, String)>,
) -> ApiResult<Json<CustomerView>> {
    let inst = caller.institution(&app, &code).await?;
    let d = app
        .store
        .customer_detail(inst.id, &customer_code)
        .await?
        .ok_or_else(|| ApiError::not_found("客户"))?;
    Ok(Json(CustomerView {
        customer: d.customer.into(),
        source: d.source,
        tags: d.tags,
        notes: d.notes,
        orders: d.orders,
        consultations: d.consultations,
        revisits: d.revisits.into_iter().map(RevisitItem::from).collect(),
    }))
}
