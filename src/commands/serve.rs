//! `revisit serve` and `revisit worker --serve`: the REST API and the console, alone or beside
//! the worker pool in one process.

use std::{net::SocketAddr, sync::Arc};

use anyhow::Context;

use crate::{
    api,
    app::App,
    queue::worker::{PoolOptions, run_pool, shutdown_signal},
};

/// The address to listen on: the one given, or the configured one.
pub fn addr(app: &App, given: Option<&str>) -> anyhow::Result<SocketAddr> {
    let raw = given
        .filter(|a| !a.is_empty())
        .unwrap_or(&app.settings.api.addr);
    raw.parse().with_context(|| {
        format!("--addr {raw:?}: give host:port with an IP address, e.g. 127.0.0.1:8000")
    })
}

pub async fn serve(app: Arc<App>, addr: SocketAddr) -> anyhow::Result<()> {
    println!("🌐 API 与控制台：http://{addr}/ （文档 /docs，健康检查 /health）");
    api::serve(app, addr, shutdown_signal()).await
}

/// The worker pool and the API in one process; either stopping stops both.
pub async fn worker_and_api(
    app: Arc<App>,
    options: PoolOptions,
    addr: SocketAddr,
) -> anyhow::Result<()> {
    println!("🌐 API 与控制台：http://{addr}/ （文档 /docs，健康检查 /health）");
    beside_pool(app, options, addr, Served::Api).await
}

/// The worker pool, with /metrics and the health probes on `addr`.
pub async fn worker_and_probes(
    app: Arc<App>,
    options: PoolOptions,
    addr: SocketAddr,
) -> anyhow::Result<()> {
    println!("📈 监控指标：http://{addr}/metrics （健康检查 /health/live、/health/ready）");
    beside_pool(app, options, addr, Served::Probes).await
}

enum Served {
    Api,
    Probes,
}

async fn beside_pool(
    app: Arc<App>,
    options: PoolOptions,
    addr: SocketAddr,
    served: Served,
) -> anyhow::Result<()> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let stop = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let signal = tokio::spawn(async move {
        shutdown_signal().await;
        let _ = tx.send(true);
    });
    let http = async {
        match served {
            Served::Api => api::serve(app.clone(), addr, stop(rx.clone())).await,
            Served::Probes => api::serve_probes(app.clone(), addr, stop(rx.clone())).await,
        }
    };
    let result = tokio::try_join!(http, run_pool(app.clone(), options, stop(rx.clone())));
    signal.abort();
    result.map(|_| ())
}
