//! Every `worker.stats_secs` a worker process writes what it did since its last row (jobs
//! completed and failed, from its metrics) and the depth of the queues it serves: the console's
//! queue page charts the last hour from these rows (`store::queue_control`). An idle queue
//! writes nothing.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use chrono::Utc;
use revisit_jobs::ALL_KINDS;
use tokio::sync::watch;
use tracing::warn;

use crate::{app::App, store::queue_control::ActivityRow};

/// Writes the process's activity rows until `stop` turns true, then once more.
pub async fn record(app: Arc<App>, queues: Vec<&'static str>, mut stop: watch::Receiver<bool>) {
    let process = format!("{}-{}", super::worker::host_name(), std::process::id());
    let every = std::time::Duration::from_secs(app.settings.worker.stats_secs.max(1));
    loop {
        let stopping = tokio::select! {
            _ = tokio::time::sleep(every) => false,
            _ = stop.wait_for(|s| *s) => true,
        };
        if let Err(e) = write(&app, &queues, &process).await {
            warn!(error = %e, "could not record the queues' activity");
        }
        if stopping {
            return;
        }
    }
}

/// The counters as last written, for the whole process: two pools in one process (a command
/// that runs its own beside a daemon's) count each job once.
static WRITTEN: Mutex<Option<HashMap<&'static str, (u64, u64)>>> = Mutex::new(None);

async fn write(
    app: &App,
    queues: &[&'static str],
    process: &str,
) -> Result<(), crate::store::StoreError> {
    let m = crate::metrics::get();
    let depths = app.store.queue_depths().await?;
    let rows = {
        let mut rows = Vec::new();
        let mut written = WRITTEN
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let last = written.get_or_insert_with(HashMap::new);
        for kind in ALL_KINDS.iter().filter(|k| queues.contains(&k.queue)) {
            let labels = [("kind", kind.name)];
            let now = (
                m.jobs_completed.get_or_create(&labels).get(),
                m.jobs_failed.get_or_create(&labels).get(),
            );
            let before = last.insert(kind.queue, now).unwrap_or((0, 0));
            let depth = depths.iter().find(|d| d.queue == kind.queue);
            let row = ActivityRow {
                queue: kind.queue,
                completed: now.0.saturating_sub(before.0) as i64,
                failed: now.1.saturating_sub(before.1) as i64,
                waiting: depth.map_or(0, |d| d.waiting),
                running: depth.map_or(0, |d| d.running),
            };
            if row.completed + row.failed + row.waiting + row.running > 0 {
                rows.push(row);
            }
        }
        rows
    };
    app.store.record_activity(Utc::now(), process, &rows).await
}
