//! `/openapi.json`, generated from the handlers' `#[utoipa::path]`, and `/docs`, Swagger UI
//! served from the binary (no CDN: it works with no internet).

use std::sync::Arc;

use axum::{
    Json, Router,
    http::header,
    response::{Html, IntoResponse},
    routing::get,
};
use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

use super::routes::{
    analytics, consent, customers, imports, jobs, queues, reminders, revisits, search, system,
    tasks,
};
use crate::app::App;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Revisit 医美客户回访系统 API",
        description = "所有 /api/v1 接口都需要令牌：`Authorization: Bearer rv_…`（由 `revisit tokens create` 生成）。\
员工令牌只能访问自己的机构；管理员令牌可以访问整个连锁。错误统一为 JSON：`{\"error\": {\"code\", \"message\", \"param\"}}`。"
    ),
    paths(
        system::health, system::live, system::ready, system::metrics, system::me, system::check, system::init,
        customers::list, customers::one,
        search::similar, search::catalogue,
        reminders::upcoming, reminders::run, reminders::run_state,
        analytics::dashboard,
        revisits::list, revisits::retry,
        consent::replies, consent::waiting, consent::approve, consent::reject,
        tasks::score, tasks::list, tasks::done,
        jobs::list, jobs::retry, jobs::cancel,
        queues::overview, queues::pause, queues::resume,
        imports::upload, imports::state,
    ),
    modifiers(&BearerToken),
    tags(
        (name = "system", description = "健康检查、系统检查、初始化"),
        (name = "customers", description = "客户（手机号已脱敏）"),
        (name = "search", description = "向量检索：相似客户，项目与产品搜索"),
        (name = "reminders", description = "生日回访"),
        (name = "revisits", description = "回访记录与失败重试"),
        (name = "consent", description = "退订回复与发送前审批"),
        (name = "tasks", description = "满意度评分与员工待办"),
        (name = "analytics", description = "数据看板"),
        (name = "jobs", description = "任务队列（管理员）"),
        (name = "imports", description = "数据导入"),
    )
)]
pub struct ApiDoc;

struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

const SWAGGER_JS: &[u8] = include_bytes!("assets/vendor/swagger-ui-bundle.js");
const SWAGGER_CSS: &[u8] = include_bytes!("assets/vendor/swagger-ui.css");

const DOCS_PAGE: &str = r##"<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<title>Revisit API 文档</title>
<link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
</script>
</body>
</html>
"##;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/openapi.json", get(|| async { Json(ApiDoc::openapi()) }))
        .route("/docs", get(|| async { Html(DOCS_PAGE) }))
        .route(
            "/docs/swagger-ui-bundle.js",
            get(|| async { asset("text/javascript; charset=utf-8", SWAGGER_JS) }),
        )
        .route(
            "/docs/swagger-ui.css",
            get(|| async { asset("text/css; charset=utf-8", SWAGGER_CSS) }),
        )
}

/// A compiled-in file, cached for a day (it changes only with the binary).
pub fn asset(content_type: &'static str, body: &'static [u8]) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        body,
    )
}
