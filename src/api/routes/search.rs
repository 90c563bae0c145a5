//! Vector search over the API: `GET /api/v1/customers/{code}/{customer_code}/similar` (customers
//! of the same institution like this one, with what they share) and
//! `GET /api/v1/search/{collection}?q=` (the chain's projects or products by text).

use std::sync::Arc;

use axum::{
    Json,
    extract::{Path, State},
    http::{StatusCode, Uri},
};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    api::{
        auth::Caller,
        error::{ApiError, ApiResult, ErrorBody},
        params::Params,
    },
    app::App,
    projections::vectors::{
        Collection, Vectors,
        search::{CatalogueHit, SearchError, SimilarCustomer},
    },
};

#[derive(Debug, Serialize, ToSchema)]
pub struct SimilarPage {
    pub institution: String,
    pub customer_code: String,
    /// Nearest first; never the customer themself, never one who opted out.
    pub items: Vec<SimilarCustomer>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CataloguePage {
    /// `projects` or `products`.
    pub collection: String,
    pub items: Vec<CatalogueHit>,
}

fn vectors(app: &App) -> ApiResult<&Arc<Vectors>> {
    app.projections.vectors.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "vectors_off",
            "向量检索未开启（vectors.enabled = false）",
        )
    })
}

/// The engine is down or busy: say so without its details (paths, addresses), log them.
fn unavailable(e: anyhow::Error) -> ApiError {
    tracing::warn!(error = %format!("{e:#}"), "vector search failed");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "vectors_unavailable",
        "向量检索暂时不可用，请稍后再试",
    )
}

/// Customers of institution `code` most like `customer_code`.
#[utoipa::path(
    get, path = "/api/v1/customers/{code}/{customer_code}/similar", tag = "search",
    params(
        ("code" = String, Path, description = "机构代码"),
        ("customer_code" = String, Path, description = "客户编号"),
        ("limit" = Option<i64>, Query, description = "条数，1–100，默认 10"),
    ),
    responses(
        (status = 200, body = SimilarPage),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn similar(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path((code, customer_code)): Path<(String, String)>,
    uri: Uri,
) -> ApiResult<Json<SimilarPage>> {
    let q = Params::of(&uri, &["limit"])?;
    let limit = q.int("limit", 1..=100, 10)?;
    let inst = caller.institution(&app, &code).await?;
    let v = vectors(&app)?;
    let (me, items) = match v
        .similar(
            app.store.as_ref(),
            &customer_code,
            Some(inst.id),
            limit as usize,
        )
        .await
    {
        Ok(found) => found,
        // Another institution's customer is not found here, whatever the token may see.
        Err(SearchError::UnknownCustomer(_)) => return Err(ApiError::not_found("客户")),
        Err(SearchError::Failed(e)) => return Err(unavailable(e)),
    };
    Ok(Json(SimilarPage {
        institution: inst.code,
        customer_code: me.code,
        items,
    }))
}

/// Projects or products nearest a text.
#[utoipa::path(
    get, path = "/api/v1/search/{collection}", tag = "search",
    params(
        ("collection" = String, Path, description = "projects 或 products"),
        ("q" = String, Query, description = "搜索文字，1–64 个字"),
        ("limit" = Option<i64>, Query, description = "条数，1–100，默认 10"),
    ),
    responses(
        (status = 200, body = CataloguePage),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn catalogue(
    State(app): State<Arc<App>>,
    _caller: Caller,
    Path(collection): Path<String>,
    uri: Uri,
) -> ApiResult<Json<CataloguePage>> {
    let q = Params::of(&uri, &["q", "limit"])?;
    let limit = q.int("limit", 1..=100, 10)?;
    let c = match collection.as_str() {
        "projects" => Collection::Projects,
        "products" => Collection::Products,
        _ => return Err(ApiError::not_found("集合")),
    };
    let text = q
        .text("q")
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| ApiError::bad_param("q", "请输入搜索文字"))?;
    if text.chars().count() > 64 {
        return Err(ApiError::bad_param("q", "搜索词最多 64 个字"));
    }
    let items = vectors(&app)?
        .search_catalogue(c, &text, limit as usize)
        .await
        .map_err(unavailable)?;
    Ok(Json(CataloguePage { collection, items }))
}
