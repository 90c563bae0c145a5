//! Revisit's own apalis backend, on apalis's tables, for PostgreSQL and SQLite alike (the SQL is
//! the store's: [`WorkerQueue`]).
//!
//! apalis's storages spend a transaction per fetch and another per batch of results, and a
//! worker waits for each: fetch, run, store the results, fetch again. Here (what graphile-worker
//! and River do):
//! - a fetch is one statement that locks a batch of due jobs into the worker's local buffer
//!   (`fetch_size` of them; more than the concurrency makes a buffer that is refilled only when
//!   empty);
//! - outcomes go to a keeper task of the worker's own, which stores everything that finished
//!   while its previous statement ran in one statement: the worker never waits for an outcome to
//!   be stored before it fetches again, and the more jobs finish at once, the fewer statements
//!   per job;
//! - on PostgreSQL an insert wakes the queue's workers once per statement ([`super::wakeups`]).
//!
//! What is kept: a job is locked by its worker until its result is stored; a worker that stops
//! heartbeating loses its jobs to the queue (charged one attempt); jobs fetched but never started
//! go back at shutdown, uncharged; the keeper keeps retrying a failed store while the process
//! lives, and [`Keepers::finish`] waits for it at shutdown before anything is released. A
//! process killed between a job's end and its flush leaves the job locked: the heartbeat rule
//! gives it back and it runs again (every handler is idempotent; that is the queue's contract).

use std::{
    marker::PhantomData,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use apalis_codec::json::JsonCodec;
use apalis_core::{
    backend::{
        Backend, BackendConfig, WireFormatBackend,
        finalize::Durable,
        persistence::{Persisted, Persistence, TaskEvent},
    },
    error::BoxDynError,
    task::{Task, builder::TaskBuilder, status::Status, task_id::TaskId},
    worker::context::WorkerContext,
};
use futures::{FutureExt, future::BoxFuture};
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tracing::{debug, warn};
use ulid::Ulid;

use super::wakeups::WakeCount;
use crate::store::StoreError;
use crate::store::worker_queue::{Outcome, WorkerQueue};

/// Most outcomes stored by one statement.
const MAX_FLUSH: usize = 5_000;

/// How long a stopping worker keeps retrying to store its last outcomes.
const FLUSH_AT_SHUTDOWN: Duration = Duration::from_secs(30);

/// What one queue's worker needs to know about its table.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    pub queue: &'static str,
    /// Jobs locked by one fetch: the local buffer.
    pub fetch_size: usize,
    pub heartbeat: Duration,
    /// A worker silent this long has its jobs given back.
    pub orphaned_after: Duration,
    /// The queue's wake-ups (PostgreSQL): a fetch that found nothing while one arrived looks
    /// again at once instead of waiting for the next wake-up or the polling interval.
    pub wakes: Option<WakeCount>,
}

/// The keeper tasks of a pool's workers (outcomes and heartbeats), awaited at shutdown.
#[derive(Clone)]
pub struct Keepers {
    handles: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    closing: watch::Sender<bool>,
}

impl Default for Keepers {
    fn default() -> Self {
        Self {
            handles: Arc::default(),
            closing: watch::channel(false).0,
        }
    }
}

impl Keepers {
    fn track(&self, handle: tokio::task::JoinHandle<()>) {
        let mut all = self
            .handles
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        all.retain(|h| !h.is_finished());
        all.push(handle);
    }

    /// Once the pool's workers have stopped: each keeper stores what it has received and ends.
    pub async fn finish(&self) {
        self.closing.send_replace(true);
        let handles: Vec<_> = std::mem::take(
            &mut *self
                .handles
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for handle in handles {
            let _ = handle.await;
        }
    }
}

#[derive(Clone)]
struct QueuePersistence<T> {
    table: T,
    config: QueueConfig,
}

impl<T: WorkerQueue> Persistence for QueuePersistence<T> {
    type Compact = Vec<u8>;
    type Response = Value;
    type Error = StoreError;

    async fn register(&mut self, worker: &WorkerContext) -> Result<(), StoreError> {
        beat(&self.table, &self.config, worker.name()).await
    }

    /// apalis calls this only between batches, when the local buffer is empty: a worker busy
    /// with a large buffer of long jobs would look dead. The keeper task ([`keep_worker`])
    /// heartbeats on its own clock instead.
    async fn heartbeat(&mut self, _worker: &WorkerContext) -> Result<(), StoreError> {
        Ok(())
    }

    async fn fetch_next(
        &mut self,
        worker: &WorkerContext,
    ) -> Result<Vec<Task<Vec<u8>>>, StoreError> {
        let c = &self.config;
        let mut seen = c.wakes.as_ref().map(WakeCount::get);
        let rows = loop {
            let rows = self
                .table
                .fetch(c.queue, worker.name(), c.fetch_size as i32)
                .await?;
            let now = c.wakes.as_ref().map(WakeCount::get);
            if !rows.is_empty() || now == seen {
                break rows;
            }
            seen = now;
        };
        rows.into_iter()
            .map(|row| {
                let id = Ulid::from_string(&row.id)
                    .map_err(|e| StoreError::protocol(format!("job id {}: {e}", row.id)))?;
                let mut task = TaskBuilder::new(row.job)
                    .task_id(TaskId::from_ulid(id))
                    .queue(c.queue.to_owned().into())
                    .status(Status::Queued)
                    .attempt(row.attempts.max(0) as usize)
                    .max_attempts(row.max_attempts.max(1) as usize)
                    .run_at_timestamp(row.run_at.max(0) as u64)
                    .lock_by(Some(worker.name().to_owned()))
                    .priority(row.priority.max(0) as usize);
                if let Some(key) = row.idempotency_key {
                    task = task.idempotency_key(key);
                }
                Ok(task.build())
            })
            .collect()
    }

    async fn reenqueue_abandoned(
        &mut self,
        tasks: Vec<Task<Vec<u8>>>,
        worker: &WorkerContext,
    ) -> Result<u64, StoreError> {
        let ids: Vec<String> = tasks
            .iter()
            .filter_map(|t| t.task_id().map(ToString::to_string))
            .collect();
        self.table
            .give_back(self.config.queue, worker.name(), &ids)
            .await
    }

    /// Outcomes do not come this way (apalis would hand them over only between batches): the
    /// backend's own layer ([`OutcomeLayer`]) sends each to the keeper task as its job ends.
    async fn handle_events(
        &mut self,
        _events: Vec<TaskEvent<Value>>,
        _worker: &WorkerContext,
    ) -> Result<(), StoreError> {
        Ok(())
    }

    async fn push_tasks(&mut self, tasks: Vec<Task<Vec<u8>>>) -> Result<(), StoreError> {
        // One insert per number of attempts (tasks pushed together nearly always share one).
        let mut by_attempts: std::collections::BTreeMap<i32, Vec<Vec<u8>>> = Default::default();
        for task in tasks {
            let max_attempts = task.ctx().max_attempts().unwrap_or(1) as i32;
            by_attempts.entry(max_attempts).or_default().push(task.args);
        }
        for (max_attempts, payloads) in by_attempts {
            self.table
                .push(self.config.queue, payloads, max_attempts)
                .await?;
        }
        Ok(())
    }
}

/// When a heartbeat of this process last reached the database (`/health/ready` of a worker).
static LAST_BEAT: std::sync::Mutex<Option<std::time::Instant>> = std::sync::Mutex::new(None);

/// How long ago a heartbeat of this process last reached the database; `None`: none yet.
pub fn since_last_heartbeat() -> Option<Duration> {
    LAST_BEAT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .map(|t| t.elapsed())
}

/// Marks `worker` alive (registering it the first time) and gives back dead workers' jobs.
async fn beat<T: WorkerQueue>(
    table: &T,
    config: &QueueConfig,
    worker: &str,
) -> Result<(), StoreError> {
    let rescued = table
        .heartbeat(config.queue, worker, config.orphaned_after)
        .await?;
    *LAST_BEAT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(std::time::Instant::now());
    if rescued > 0 {
        crate::metrics::jobs_rescued(config.queue, rescued);
        warn!(
            queue = config.queue,
            rescued, "jobs of dead workers were given back to the queue"
        );
    }
    Ok(())
}

/// A worker's keeper: stores the outcomes its jobs send, as many per statement as have arrived,
/// and marks the worker alive every heartbeat interval (giving back dead workers' jobs), until
/// the worker is gone or the pool closes (then it stores what it has and ends). A failed store
/// is retried while the pool runs; once it closes, for at most [`FLUSH_AT_SHUTDOWN`].
async fn keep_worker<T: WorkerQueue>(
    table: T,
    config: QueueConfig,
    worker: String,
    mut rx: mpsc::UnboundedReceiver<Outcome>,
    mut closing: watch::Receiver<bool>,
) {
    let queue = config.queue;
    let mut batch = Vec::with_capacity(64);
    let mut ticks = tokio::time::interval_at(
        tokio::time::Instant::now() + config.heartbeat,
        config.heartbeat,
    );
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pool_gone = false;
    loop {
        let closed = pool_gone || *closing.borrow();
        if closed {
            while let Ok(outcome) = rx.try_recv() {
                batch.push(outcome);
            }
            if batch.is_empty() {
                return;
            }
        } else {
            tokio::select! {
                got = rx.recv() => match got {
                    Some(outcome) => batch.push(outcome),
                    // The worker is gone (stopped, or restarted with a keeper of its own).
                    None => return,
                },
                _ = ticks.tick() => {
                    if let Err(e) = beat(&table, &config, &worker).await {
                        warn!(queue, error = %e, "heartbeat failed; retrying at the next one");
                    }
                    continue;
                }
                changed = closing.changed() => {
                    pool_gone = changed.is_err();
                    continue;
                }
            }
        }
        while batch.len() < MAX_FLUSH {
            match rx.try_recv() {
                Ok(outcome) => batch.push(outcome),
                Err(_) => break,
            }
        }
        let mut delay = Duration::from_millis(50);
        let mut failing_since: Option<Instant> = None;
        loop {
            match table.store_outcomes(&worker, &batch).await {
                Ok(stored) => {
                    debug!(queue, outcomes = batch.len(), stored, "job outcomes stored");
                    break;
                }
                Err(e) => {
                    let since = *failing_since.get_or_insert_with(Instant::now);
                    if (pool_gone || *closing.borrow()) && since.elapsed() > FLUSH_AT_SHUTDOWN {
                        warn!(queue, outcomes = batch.len(), error = %e, "could not store job outcomes at shutdown; the heartbeat rule will run those jobs again");
                        break;
                    }
                    warn!(queue, outcomes = batch.len(), error = %e, retry_in_ms = delay.as_millis() as u64, "could not store job outcomes; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
        batch.clear();
        if closed && rx.is_empty() {
            return;
        }
    }
}

/// The backend's middleware: when a job ends, its outcome (status, attempt, result) goes to the
/// worker's keeper at once, whatever the worker's fetch loop is doing.
#[derive(Clone)]
pub struct OutcomeLayer {
    outcomes: mpsc::UnboundedSender<Outcome>,
}

impl<S> tower_layer::Layer<S> for OutcomeLayer {
    type Service = OutcomeService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        OutcomeService {
            inner,
            outcomes: self.outcomes.clone(),
        }
    }
}

#[derive(Clone)]
pub struct OutcomeService<S> {
    inner: S,
    outcomes: mpsc::UnboundedSender<Outcome>,
}

impl<S, Args> tower_service::Service<Task<Args>> for OutcomeService<S>
where
    S: tower_service::Service<Task<Args>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxDynError>,
    S::Response: serde::Serialize + Send,
    Args: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxDynError;
    type Future = BoxFuture<'static, Result<S::Response, BoxDynError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxDynError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, task: Task<Args>) -> Self::Future {
        let ctx = task.ctx().clone();
        let job = self.inner.call(task);
        let outcomes = self.outcomes.clone();
        async move {
            let done = job.await.map_err(Into::into);
            if let Some(id) = ctx.task_id() {
                let result = match &done {
                    Ok(response) => serde_json::json!({
                        "Ok": serde_json::to_value(response).unwrap_or(Value::Null)
                    }),
                    Err(e) => serde_json::json!({ "Err": e.to_string() }),
                };
                let outcome = Outcome {
                    id: id.to_string(),
                    status: ctx.status().to_string(),
                    attempts: ctx.attempt() as i32,
                    result,
                };
                if outcomes.send(outcome).is_err() {
                    warn!(job_id = %id, "job outcome after the worker's keeper ended; the heartbeat rule will run the job again");
                }
            }
            done
        }
        .boxed()
    }
}

/// One queue's jobs, as an apalis backend.
pub struct QueueBackend<T: WorkerQueue, Args> {
    persisted: Persisted<QueuePersistence<T>>,
    codec: JsonCodec<Vec<u8>>,
    config: QueueConfig,
    outcomes: mpsc::UnboundedSender<Outcome>,
    _args: PhantomData<Args>,
}

impl<T: WorkerQueue, Args> QueueBackend<T, Args> {
    /// A backend for `config.queue` worked by the worker named `worker`; its keeper task is
    /// tracked by `keepers`.
    pub fn new(table: T, config: QueueConfig, worker: &str, keepers: &Keepers) -> Self {
        let (outcomes, rx) = mpsc::unbounded_channel();
        keepers.track(tokio::spawn(keep_worker(
            table.clone(),
            config.clone(),
            worker.to_owned(),
            rx,
            keepers.closing.subscribe(),
        )));
        Self {
            persisted: Persisted::new(QueuePersistence {
                table,
                config: config.clone(),
            }),
            codec: JsonCodec::default(),
            config,
            outcomes,
            _args: PhantomData,
        }
    }
}

impl<T: WorkerQueue, Args> Backend for QueueBackend<T, Args> {
    type Task = Task<Vec<u8>>;
    type Error = StoreError;

    fn poll_ready(
        &mut self,
        cx: &mut Context<'_>,
        worker: &WorkerContext,
    ) -> Poll<Result<(), Self::Error>> {
        self.persisted.poll_ready(cx, worker, self.config.heartbeat)
    }

    fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
        worker: &WorkerContext,
    ) -> Poll<Option<Result<Self::Task, Self::Error>>> {
        self.persisted.poll_next(cx, worker)
    }

    fn poll_close(
        &mut self,
        cx: &mut Context<'_>,
        worker: &WorkerContext,
    ) -> Poll<Result<(), Self::Error>> {
        self.persisted.poll_close(cx, worker)
    }
}

impl<T: WorkerQueue, Args> BackendConfig for QueueBackend<T, Args> {
    type Args = Args;
    type Kind = Durable;
    type Id = Ulid;
    type Config = QueueConfig;
    type Layer = OutcomeLayer;

    fn config(&self) -> &Self::Config {
        &self.config
    }

    fn middleware(&mut self, _: &mut WorkerContext) -> Self::Layer {
        OutcomeLayer {
            outcomes: self.outcomes.clone(),
        }
    }
}

impl<T: WorkerQueue, Args> WireFormatBackend for QueueBackend<T, Args> {
    type Codec = JsonCodec<Vec<u8>>;
    type Compact = Vec<u8>;

    fn codec(&self) -> &Self::Codec {
        &self.codec
    }
}
