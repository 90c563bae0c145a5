//! The worker runtime: one apalis worker per queue, supervised by an apalis `Monitor`, on
//! Revisit's own apalis backend ([`super::backend`]), which fetches in batches, heartbeats and
//! stores outcomes in batches. apalis leaves these guarantees to us, and
//! [`run_job`] and [`run_pool`] provide them:
//! - **stored backoff**: after a retryable failure the job's `run_at` is moved forward in
//!   Postgres before apalis marks it `Failed`, so the fetch query (`run_at < now()`) skips it until
//!   then. No worker slot sleeps, and a restart forgets nothing.
//! - **crash loops end**: a worker that dies mid-job has its job re-queued by a live worker's
//!   heartbeat with `attempts + 1` but as `Pending`, which apalis would fetch forever. A job that
//!   starts with more attempts than allowed is killed instead of run.
//! - **permanent failures are not retried**: they end as `Killed` at once.
//! - **graceful shutdown**: on the signal, fetching stops, in-flight jobs get the configured
//!   timeout, and the jobs this process fetched but never started are released to the queue at
//!   once. A job whose handler is still running is not released (another worker would run it
//!   beside it); if the process ends first, the heartbeat rule rescues it.

use std::{future::Future, sync::Arc};

use apalis::prelude::*;
use revisit_jobs::KindInfo;
use tokio::sync::watch;
use tracing::{Instrument, error, info, info_span, warn};

use super::{
    backend::{Keepers, QueueBackend, QueueConfig},
    wakeups::{WakeCount, WakeHub},
};
use crate::{
    app::App,
    handlers::{Handler, JobCtx, JobError},
    metrics::JobEnd,
    store::DbPool,
};

/// What apalis tells a handler about the task it runs.
pub struct JobMeta {
    pub id: String,
    attempt: Attempt,
    pub max_attempts: u32,
}

impl<Args: Sync> FromRequest<Task<Args>> for JobMeta {
    type Error = std::convert::Infallible;

    async fn from_request(req: &Task<Args>) -> Result<Self, Self::Error> {
        Ok(Self {
            id: req.task_id().map(ToString::to_string).unwrap_or_default(),
            attempt: req.raw_attempt().clone(),
            max_attempts: req.max_attempts().unwrap_or(1) as u32,
        })
    }
}

/// Marks a job as running in this process for as long as it lives.
struct RunningGuard {
    app: Arc<App>,
    id: String,
}

impl RunningGuard {
    fn new(app: Arc<App>, id: &str) -> Self {
        lock_running(&app).insert(id.to_owned());
        Self {
            app,
            id: id.to_owned(),
        }
    }
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        lock_running(&self.app).remove(&self.id);
    }
}

fn lock_running(app: &App) -> std::sync::MutexGuard<'_, std::collections::HashSet<String>> {
    // A panic while the set is held cannot leave it half-changed; keep using it.
    app.running_jobs
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs one job through its handler and turns the outcome into what apalis stores.
async fn run_job<J: Handler>(
    args: J,
    meta: JobMeta,
    app: Data<Arc<App>>,
) -> Result<(), BoxDynError> {
    let _running = RunningGuard::new(Arc::clone(&app), &meta.id);
    // apalis counts this attempt when the task starts, before the handler body runs.
    let attempt = meta.attempt.current() as u32;
    let span = info_span!("job", queue = J::QUEUE, job_id = %meta.id, attempt, max_attempts = meta.max_attempts);
    let started = std::time::Instant::now();
    let ended = |end| crate::metrics::job_finished(J::NAME, end, started.elapsed());
    async move {
        let ctx = JobCtx {
            app: &app,
            job_id: &meta.id,
            attempt,
            max_attempts: meta.max_attempts,
        };
        if attempt > meta.max_attempts {
            let message = format!(
                "已尝试 {} 次，每次都在执行中被中断（worker 被终止或崩溃），不再自动重试",
                meta.max_attempts
            );
            error!(attempts = meta.max_attempts, "job is dead: interrupted on every attempt");
            args.on_dead(&ctx, &message, false).await;
            ended(JobEnd::Dead);
            return Err(AbortError::new(message).into());
        }
        match args.run(&ctx).await {
            Ok(()) => {
                ended(JobEnd::Completed);
                Ok(())
            }
            Err(JobError::Permanent(e)) => {
                let message = stored_error(&e);
                error!(error = %message, "job failed permanently; not retried");
                args.on_dead(&ctx, &message, true).await;
                ended(JobEnd::Dead);
                Err(AbortError::new(message).into())
            }
            Err(JobError::Retry { error: e, after }) => {
                let message = stored_error(&e);
                let policy = app.settings.policy(&KindInfo::of::<J>());
                if attempt >= meta.max_attempts {
                    error!(error = %message, "job failed on its last attempt; it is dead until retried by hand");
                    args.on_dead(&ctx, &message, false).await;
                    ended(JobEnd::Dead);
                    return Err(message.into());
                }
                ended(JobEnd::Retried);
                let backoff = policy.backoff_with_jitter(attempt, fastrand::f64());
                let delay = after.map_or(backoff, |a| a.max(backoff));
                warn!(error = %message, retry_in_ms = delay.as_millis() as u64, "job failed; will retry");
                if let Err(db) = app.store.store_backoff(&meta.id, delay).await {
                    error!(error = %db, "could not store the retry time; the job may retry at once");
                }
                Err(message.into())
            }
        }
    }
    .instrument(span)
    .await
}

/// A job's error as it is logged, stored on the job and shown to staff: no credential (a URL's
/// password, an API key) and no phone number (a channel's answer may echo the recipient's).
fn stored_error(e: &anyhow::Error) -> String {
    use crate::domain::privacy::{mask_digit_runs, redact_secrets};
    mask_digit_runs(&redact_secrets(&format!("{e:#}")))
}

/// Which queues a pool serves and whether it runs the cron producers.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// Queue names; all kinds but the benchmark's when empty.
    pub queues: Vec<&'static str>,
    pub cron: bool,
}

/// This machine's name, for names that say where a worker process runs.
pub(super) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "host".to_owned())
}

/// A name unique to this process and queue: apalis refuses two live workers with one name.
fn worker_name(queue: &str) -> String {
    format!(
        "{}-{}-{}-{queue}",
        host_name(),
        std::process::id(),
        ulid::Ulid::generate().to_string()[20..].to_lowercase()
    )
}

/// What every worker of a pool shares: on PostgreSQL the process's one LISTEN connection and
/// the queue's own pool, and the workers' keepers (outcomes and heartbeats).
struct PoolShared {
    wake_hub: Option<Arc<WakeHub>>,
    queue: Option<sqlx::PgPool>,
    keepers: Keepers,
}

fn register<J: Handler>(
    monitor: Monitor,
    app: &Arc<App>,
    shared: &PoolShared,
    names: &mut Vec<String>,
) -> Monitor {
    let name = worker_name(J::QUEUE);
    names.push(name.clone());
    let policy = app.settings.policy(&KindInfo::of::<J>());
    let w = app.settings.worker.clone();
    let batch = app.settings.fetch_size(&KindInfo::of::<J>());
    let app = app.clone();
    let wake_hub = shared.wake_hub.clone();
    let queue_pool = shared.queue.clone();
    let keepers = shared.keepers.clone();
    let config = QueueConfig {
        queue: J::QUEUE,
        fetch_size: batch,
        heartbeat: w.heartbeat(),
        orphaned_after: w.heartbeat() * w.missed_heartbeats.max(1) as u32,
        wakes: None,
    };
    // In both cases the interval picks up jobs whose backoff has ended, which nothing announces.
    match app.pool.clone() {
        DbPool::Postgres(_) => monitor.register(move |_restarts| {
            let pool = queue_pool
                .clone()
                .expect("run_pool makes a queue pool for PostgreSQL");
            // LISTEN/NOTIFY wakes the worker for new jobs, through the process's one listener.
            let wakes = WakeCount::default();
            let wakeups = wake_hub
                .as_ref()
                .expect("run_pool starts a wake-up hub for PostgreSQL")
                .wakeups(J::QUEUE, wakes.clone());
            let config = QueueConfig {
                wakes: Some(wakes),
                ..config.clone()
            };
            let storage = QueueBackend::<_, J>::new(pool, config, &name, &keepers);
            let strategy = Strategy::new().stream(wakeups).interval(w.poll_interval());
            WorkerBuilder::new(name.clone())
                .backend(PollWith::new(storage, strategy))
                .data(app.clone())
                .concurrency(policy.concurrency)
                .parallelize(tokio::spawn)
                .build(run_job::<J>)
        }),
        DbPool::Sqlite(pool) => monitor.register(move |_restarts| {
            let storage = QueueBackend::<_, J>::new(pool.clone(), config.clone(), &name, &keepers);
            let strategy = Strategy::new().interval(w.poll_interval());
            WorkerBuilder::new(name.clone())
                .backend(PollWith::new(storage, strategy))
                .data(app.clone())
                .concurrency(policy.concurrency)
                .parallelize(tokio::spawn)
                .build(run_job::<J>)
        }),
    }
}

fn register_queue(
    monitor: Monitor,
    app: &Arc<App>,
    queue: &str,
    shared: &PoolShared,
    names: &mut Vec<String>,
) -> Monitor {
    use revisit_jobs::*;
    match queue {
        q if q == ImportFile::QUEUE => register::<ImportFile>(monitor, app, shared, names),
        q if q == ImportScan::QUEUE => register::<ImportScan>(monitor, app, shared, names),
        q if q == ReminderScan::QUEUE => register::<ReminderScan>(monitor, app, shared, names),
        q if q == CheckinScan::QUEUE => register::<CheckinScan>(monitor, app, shared, names),
        q if q == CycleScan::QUEUE => register::<CycleScan>(monitor, app, shared, names),
        q if q == WinbackScan::QUEUE => register::<WinbackScan>(monitor, app, shared, names),
        q if q == GreetingGenerate::QUEUE => {
            register::<GreetingGenerate>(monitor, app, shared, names)
        }
        q if q == MessageSend::QUEUE => register::<MessageSend>(monitor, app, shared, names),
        q if q == WecomConfirm::QUEUE => register::<WecomConfirm>(monitor, app, shared, names),
        q if q == ReportDaily::QUEUE => register::<ReportDaily>(monitor, app, shared, names),
        q if q == AlertSend::QUEUE => register::<AlertSend>(monitor, app, shared, names),
        q if q == SystemHealth::QUEUE => register::<SystemHealth>(monitor, app, shared, names),
        q if q == JobsPrune::QUEUE => register::<JobsPrune>(monitor, app, shared, names),
        q if q == ProjectionDispatch::QUEUE => {
            register::<ProjectionDispatch>(monitor, app, shared, names)
        }
        q if q == ProjectionSync::QUEUE => register::<ProjectionSync>(monitor, app, shared, names),
        q if q == Noop::QUEUE => register::<Noop>(monitor, app, shared, names),
        other => unreachable!("queue {other} has no handler"),
    }
}

/// Runs the worker pool (and the cron producers) until `shutdown` resolves, then stops
/// gracefully. Returns when every worker has stopped and held jobs were released.
pub async fn run_pool(
    app: Arc<App>,
    options: PoolOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let queues: Vec<&'static str> = if options.queues.is_empty() {
        // The same default the connection budget counts.
        revisit_jobs::ALL_KINDS
            .iter()
            .map(|k| k.queue)
            .filter(|q| crate::store::connection_budget::served(&[], q))
            .collect()
    } else {
        options.queues.clone()
    };
    // The projections this process is configured for are kept by the deployment from now on:
    // every dispatcher sends them changes, even one that lacks their settings.
    for projection in app.projections.names() {
        if let Err(e) = app.store.register_projection(projection).await {
            warn!(projection = projection.as_str(), error = %e, "could not register the projection");
        }
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut names = Vec::new();
    let mut monitor = Monitor::new()
        .shutdown_timeout(app.settings.worker.shutdown_timeout())
        // A worker stops on a database error (a connection reset); start it again.
        .should_restart(|ctx, err| {
            warn!(worker = ctx.name(), error = %err, "worker stopped; restarting it");
            true
        });
    // The LISTEN connection stays checked out for as long as the pool runs: it gets a pool of
    // its own, of one, so it never takes a connection jobs work with. It serves every queue.
    let wake_hub = match &app.pool {
        DbPool::Postgres(pool) => Some(Arc::new(WakeHub::start(
            sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .connect_lazy_with((*pool.connect_options()).clone()),
        ))),
        DbPool::Sqlite(_) => None,
    };
    // The queue's own statements (fetch, outcomes, heartbeats) run on a small pool of their
    // own: they never wait behind the jobs' connections, and they keep PostgreSQL's default
    // plan cache (their prepared statements run on a generic plan after five executions; the
    // store's custom-plan setting, which its other statements need, would plan every fetch anew,
    // as long as the fetch itself).
    let queue = match &app.pool {
        DbPool::Postgres(pool) => Some(
            sqlx::postgres::PgPoolOptions::new()
                // Fetch, outcomes and heartbeats, all short, for every queue of the process.
                .max_connections(crate::store::connection_budget::QUEUE_CONNECTIONS)
                .connect_lazy_with(
                    (*pool.connect_options())
                        .clone()
                        .options([("plan_cache_mode", "auto")]),
                ),
        ),
        DbPool::Sqlite(_) => None,
    };
    let shared = PoolShared {
        wake_hub,
        queue,
        keepers: Keepers::default(),
    };
    for queue in &queues {
        monitor = register_queue(monitor, &app, queue, &shared, &mut names);
    }
    let cron = if options.cron && app.settings.cron.enabled {
        let app = app.clone();
        let rx = stop_rx.clone();
        Some(tokio::spawn(async move {
            super::cron::run_producers(&app, revisit_jobs::CRON_SCHEDULES, rx).await
        }))
    } else {
        None
    };
    let activity = tokio::spawn(super::activity::record(
        app.clone(),
        queues.clone(),
        stop_rx.clone(),
    ));
    info!(queues = ?queues, cron = cron.is_some(), "worker pool started");
    let mut monitor_stop = stop_rx.clone();
    let signal = async move {
        let _ = monitor_stop.wait_for(|s| *s).await;
        Ok(())
    };
    tokio::spawn(async move {
        shutdown.await;
        info!("shutdown requested: no new jobs are fetched; in-flight jobs may finish");
        let _ = stop_tx.send(true);
    });
    app.runs_workers
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let result = monitor.run_with_signal(signal).await;
    app.runs_workers
        .store(false, std::sync::atomic::Ordering::Relaxed);
    if let Some(cron) = cron {
        let _ = cron.await;
    }
    let _ = activity.await;
    // Results of finished jobs are stored before anything is released: a finished job released
    // as unstarted would run again.
    shared.keepers.finish().await;
    // Jobs this process fetched but never started go back at once instead of after the heartbeat
    // timeout; attempts are not charged. Jobs still running past the shutdown timeout stay held:
    // released now, another worker would run them beside this one.
    let still_running: Vec<String> = lock_running(&app).iter().cloned().collect();
    if !still_running.is_empty() {
        warn!(
            jobs = ?still_running,
            "jobs still running at the shutdown timeout are left to the heartbeat rule, not released"
        );
    }
    let released = app.store.release_held_jobs(&names, &still_running).await?;
    if released > 0 {
        warn!(
            released,
            "jobs still held at shutdown were put back in the queue"
        );
    }
    info!("worker pool stopped");
    result.map_err(|e| anyhow::anyhow!("worker monitor: {e}"))
}

/// A worker pool running in this process (no cron producers) until [`InProcessPool::stop`]:
/// what the demo and the benchmarks run their jobs with.
pub struct InProcessPool {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl InProcessPool {
    /// Starts workers for `queues` (all kinds when empty).
    pub fn start(app: Arc<App>, queues: Vec<&'static str>) -> Self {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(run_pool(
            app,
            PoolOptions {
                queues,
                cron: false,
            },
            async move {
                let _ = stopped.await;
            },
        ));
        Self { stop, task }
    }

    /// Stops gracefully and waits until every worker has stopped.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task.await?
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
