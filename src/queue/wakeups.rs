//! Wake-ups for PostgreSQL workers: inserts announce themselves on [`WAKE_CHANNEL`] once per
//! statement and queue (the trigger of migration `20261204000001_queue_speed`). One
//! [`WakeHub`] per process listens on one connection for every queue and wakes the worker of the
//! queue each notification names: a process holds one LISTEN connection, whatever the number of
//! queues it serves (it held one per queue, 15, before).

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use futures::{Stream, StreamExt, stream::BoxStream};
use sqlx::{PgPool, postgres::PgListener};
use tokio::sync::Notify;
use tracing::debug;

/// The channel inserts are announced on; the payload is the queue's name.
pub const WAKE_CHANNEL: &str = "revisit::jobs";

/// How many wake-ups a queue's listener has received: the backend fetches again when one came
/// while its fetch ran, which the fetch may have missed (the insert committed after it looked).
#[derive(Debug, Clone, Default)]
pub struct WakeCount(Arc<AtomicU64>);

impl WakeCount {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The queues a hub wakes: each one's signal and wake-up count.
type Subscribers = Arc<Mutex<HashMap<&'static str, (Arc<Notify>, WakeCount)>>>;

/// The process's one LISTEN connection. A task of its own listens on a connection of `pool`
/// (give it a pool of one: the connection stays checked out), reconnecting after a loss (a
/// wake-up missed meanwhile is caught by the workers' polling interval), and wakes the worker
/// of the queue each notification names. It ends when the hub is dropped.
pub struct WakeHub {
    subscribers: Subscribers,
    listener: tokio::task::AbortHandle,
}

impl WakeHub {
    pub fn start(pool: PgPool) -> Self {
        let subscribers = Subscribers::default();
        let listener = tokio::spawn(listen(pool, subscribers.clone())).abort_handle();
        Self {
            subscribers,
            listener,
        }
    }

    /// The wake-ups of `queue`, counted in `count`. A later call for the same queue (a worker
    /// restarted) takes its place.
    pub fn wakeups(&self, queue: &'static str, count: WakeCount) -> Wakeups {
        let notify = Arc::new(Notify::new());
        self.subscribers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(queue, (notify.clone(), count));
        // A wake-up while nobody waits is kept (one permit), so none is lost between polls.
        let stream = futures::stream::unfold(notify, |notify| async move {
            notify.notified().await;
            Some(((), notify))
        });
        Wakeups {
            stream: Mutex::new(stream.boxed()),
        }
    }
}

impl Drop for WakeHub {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// Wakes a queue's worker when jobs for it are inserted (see [`WAKE_CHANNEL`] and
/// [`WakeHub::wakeups`]).
pub struct Wakeups {
    stream: Mutex<BoxStream<'static, ()>>,
}

async fn listen(pool: PgPool, subscribers: Subscribers) {
    let mut listener: Option<PgListener> = None;
    loop {
        let Some(l) = listener.as_mut() else {
            match connect(&pool).await {
                Ok(l) => listener = Some(l),
                Err(e) => {
                    debug!(error = %e, "wake-up listener could not connect; polling meanwhile");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            continue;
        };
        match l.recv().await {
            Ok(n) => {
                let subscribers = subscribers
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if let Some((notify, count)) = subscribers.get(n.payload()) {
                    count.0.fetch_add(1, Ordering::SeqCst);
                    notify.notify_one();
                }
            }
            Err(e) => {
                debug!(error = %e, "wake-up listener lost its connection");
                listener = None;
            }
        }
    }
}

async fn connect(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(WAKE_CHANNEL).await?;
    Ok(listener)
}

impl Stream for Wakeups {
    type Item = ();

    fn poll_next(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<()>> {
        self.stream
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .poll_next_unpin(cx)
    }
}
