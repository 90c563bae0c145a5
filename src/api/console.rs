//! The staff console: one page in Simplified Chinese with its script, styles and the chart
//! library, compiled into the binary (no CDN, no build step). It logs in with a token and talks
//! to the same API as any other client.

use std::sync::Arc;

use axum::{
    Router,
    http::header,
    response::{Html, IntoResponse},
    routing::get,
};

use super::docs::asset;
use crate::app::App;

const PAGE: &str = include_str!("assets/console/index.html");
const SCRIPT: &[u8] = include_bytes!("assets/console/app.js");
const STYLES: &[u8] = include_bytes!("assets/console/app.css");
const CHARTS: &[u8] = include_bytes!("assets/vendor/chart.umd.min.js");

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route(
            "/console/app.js",
            get(|| async { fresh("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/console/app.css",
            get(|| async { fresh("text/css; charset=utf-8", STYLES) }),
        )
        .route(
            "/console/chart.umd.min.js",
            get(|| async { asset("text/javascript; charset=utf-8", CHARTS) }),
        )
}

/// The console's own files: checked on every load, so a new binary's console is used at once.
fn fresh(content_type: &'static str, body: &'static [u8]) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}
