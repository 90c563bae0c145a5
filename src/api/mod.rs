//! The REST API, its OpenAPI document and docs page, and the staff console, served by
//! `revisit serve` (or `revisit worker --serve`) on the same store as the workers.
//!
//! - `routes/`: the endpoints, a file per area;
//! - [`auth`]: bearer tokens and what a token may see;
//! - [`params`], [`error`]: strict parameters and JSON errors with Chinese messages;
//! - [`docs`]: `/openapi.json` (generated from the handlers) and `/docs` (Swagger UI, served
//!   from the binary);
//! - [`console`]: the console's page and scripts, compiled in.

pub mod auth;
pub mod console;
pub mod docs;
pub mod error;
pub mod exposition;
pub mod params;
pub mod routes;

use std::{net::SocketAddr, sync::Arc, time::Instant};

use axum::{
    Router,
    extract::{DefaultBodyLimit, Request},
    middleware::{self, Next},
    response::Response,
    routing::{get, post},
};
use tracing::info;

use crate::app::App;
use error::ApiError;
use routes::{
    analytics, consent, customers, imports, jobs, queues, reminders, revisits, search, system,
    tasks,
};

/// Every endpoint, the docs and the console.
pub fn router(app: Arc<App>) -> Router {
    let body_limit = (app.settings.api.max_body_kb * 1024) as usize;
    let api = Router::new()
        .route("/me", get(system::me))
        .route("/system/check", get(system::check))
        .route("/system/init", post(system::init))
        .route("/customers/{code}", get(customers::list))
        .route("/customers/{code}/{customer_code}", get(customers::one))
        .route(
            "/customers/{code}/{customer_code}/similar",
            get(search::similar),
        )
        .route("/search/{collection}", get(search::catalogue))
        .route(
            "/reminders/{code}/upcoming-birthdays",
            get(reminders::upcoming),
        )
        .route("/reminders/{code}/run", post(reminders::run))
        .route("/reminders/runs/{job_id}", get(reminders::run_state))
        .route("/analytics/dashboard", get(analytics::dashboard))
        .route("/revisits", get(revisits::list))
        .route("/revisits/{id}/retry", post(revisits::retry))
        .route("/revisits/{id}/score", post(tasks::score))
        .route("/tasks", get(tasks::list))
        .route("/tasks/{id}/done", post(tasks::done))
        .route("/approvals", get(consent::waiting))
        .route("/approvals/approve", post(consent::approve))
        .route("/approvals/reject", post(consent::reject))
        .route("/inbound/replies", post(consent::replies))
        .route("/jobs", get(jobs::list))
        .route("/jobs/{id}/retry", post(jobs::retry))
        .route("/jobs/{id}/cancel", post(jobs::cancel))
        .route("/queues", get(queues::overview))
        .route("/queues/{queue}/pause", post(queues::pause))
        .route("/queues/{queue}/resume", post(queues::resume))
        // Uploads are streamed to disk and limited by api.max_upload_mb as they arrive.
        .route(
            "/imports",
            post(imports::upload).layer(DefaultBodyLimit::disable()),
        )
        .route("/imports/{batch}", get(imports::state))
        .fallback(not_found);
    Router::new()
        .route("/health", get(system::health))
        .merge(probes())
        .nest("/api/v1", api)
        .merge(docs::routes())
        .merge(console::routes())
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn(log_request))
        .layer(middleware::from_fn(security_headers))
        .with_state(app)
}

/// What a monitor and an orchestrator ask of every process: liveness, readiness, metrics.
fn probes() -> Router<Arc<App>> {
    Router::new()
        .route("/health/live", get(system::live))
        .route("/health/ready", get(system::ready))
        .route("/metrics", get(system::metrics))
}

/// Listens on `addr`, or says in Chinese why not.
async fn listen(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("无法监听 {addr}：{e}（端口已被占用，或地址不属于本机？）"))
}

/// Serves only [`probes`] on `addr` until `shutdown` resolves: a worker that serves no API
/// (`worker.metrics_addr`).
pub async fn serve_probes(
    app: Arc<App>,
    addr: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = listen(addr).await?;
    info!(addr = %listener.local_addr()?, "metrics and probes serving: /metrics, /health/live, /health/ready");
    axum::serve(listener, probes().fallback(not_found).with_state(app))
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

/// Headers every answer carries: no sniffing of types, no framing (clickjacking), no referrer
/// leaving with a URL, scripts and styles from this server only (the docs page's one inline
/// script and the console's inline styles allowed), and no caching of the API's answers, which
/// hold personal data. TLS is the reverse proxy's (README: 部署（docker-compose）).
async fn security_headers(req: Request, next: Next) -> Response {
    use axum::http::{HeaderValue, header};
    let api = req.uri().path().starts_with("/api/");
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; \
             img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
    );
    if api {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

async fn not_found() -> ApiError {
    ApiError::not_found("该地址")
}

/// One line per request: method, path (never the query, which may hold a searched phone
/// number or name), status and time.
async fn log_request(req: Request, next: Next) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let started = Instant::now();
    let res = next.run(req).await;
    tracing::debug!(
        %method,
        path,
        status = res.status().as_u16(),
        ms = started.elapsed().as_millis() as u64,
        "request"
    );
    res
}

/// Serves the API on `addr` until `shutdown` resolves; requests under way are finished first.
pub async fn serve(
    app: Arc<App>,
    addr: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = listen(addr).await?;
    info!(
        addr = %listener.local_addr()?,
        "API serving: console /, docs /docs, health /health"
    );
    let refresher = tokio::spawn(keep_dashboard_fresh(app.clone()));
    let served = axum::serve(listener, router(app))
        .with_graceful_shutdown(shutdown)
        .await;
    refresher.abort();
    served?;
    Ok(())
}

/// How often the server checks whether today's dashboard needs computing again.
const DASHBOARD_REFRESH: std::time::Duration = std::time::Duration::from_secs(15);

/// Computes today's dashboard facts ahead of the staff who will ask for them: every
/// [`DASHBOARD_REFRESH`] the remembered facts are checked (two small queries) and computed again
/// only if a write, a sync or a new day has made them old. So a request finds them ready unless
/// it comes within seconds of a change.
async fn keep_dashboard_fresh(app: Arc<App>) {
    loop {
        let today = routes::reminders::today(&app);
        let window = crate::domain::dashboard::Window::new(today);
        if let Err(e) = crate::analytics::facts(app.dashboard_sources(), &window).await {
            tracing::warn!(error = %format!("{e:#}"), "could not refresh the dashboard");
        }
        tokio::time::sleep(DASHBOARD_REFRESH).await;
    }
}
