//! `/metrics`: the database's figures (queue depth, paused queues, projection lag) read at
//! scrape time, beside what this process counted, in Prometheus's text format.

use revisit_jobs::ALL_KINDS;

use crate::app::App;
use crate::metrics::{encode, get};

/// The body of a `/metrics` answer.
pub async fn render(app: &App) -> String {
    if let Err(e) = refresh(app).await {
        get().scrape_errors.inc();
        tracing::warn!(error = %e, "metrics: could not read the queue and projection figures");
    }
    encode()
}

/// Reads the database's figures into the gauges. Every known queue gets a value (0 when it has
/// no jobs), so a queue that drained shows 0 rather than its last figure.
async fn refresh(app: &App) -> anyhow::Result<()> {
    let m = get();
    let depths = app.store.queue_depths().await?;
    let paused = app.store.paused_queues().await?;
    for kind in ALL_KINDS {
        let q = kind.queue;
        let d = depths.iter().find(|d| d.queue == q);
        for (state, n) in [
            ("waiting", d.map_or(0, |d| d.waiting)),
            ("scheduled", d.map_or(0, |d| d.scheduled)),
            ("running", d.map_or(0, |d| d.running)),
            ("dead", d.map_or(0, |d| d.dead)),
        ] {
            m.queue_jobs
                .get_or_create(&[("queue", q), ("state", state)])
                .set(n);
        }
        m.queue_oldest_waiting
            .get_or_create(&[("queue", q)])
            .set(d.map_or(0.0, |d| d.oldest_waiting_secs.max(0.0)));
        m.queue_paused
            .get_or_create(&[("queue", q)])
            .set(i64::from(paused.iter().any(|p| p.queue == q)));
    }
    for projection in app.projections.names() {
        let lag = app.store.projection_lag(projection).await?;
        let labels = [("projection", projection.as_str())];
        m.projection_pending.get_or_create(&labels).set(lag.total());
        let age = lag.oldest.filter(|_| lag.total() > 0).map_or(0.0, |t| {
            (chrono::Utc::now() - t).num_milliseconds().max(0) as f64 / 1000.0
        });
        m.projection_lag.get_or_create(&labels).set(age);
    }
    Ok(())
}
