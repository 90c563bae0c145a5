//! Wake-ups for PostgreSQL workers: inserts announce themselves on [`WAKE_CHANNEL`] once per
//! statement and queue (the trigger of migration `20261204000001_queue_speed`), and each queue's
//! worker listens for its own name.

use std::{
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

/// Wakes a queue's worker when jobs for it are inserted (see [`WAKE_CHANNEL`]). A task of its
/// own listens on a connection from `pool`, reconnecting after a loss (a wake-up missed meanwhile
/// is caught by the worker's polling interval), and counts each wake-up in [`WakeCount`]. It
/// ends when this stream is dropped.
pub struct Wakeups {
    stream: Mutex<BoxStream<'static, ()>>,
    listener: tokio::task::AbortHandle,
}

impl Wakeups {
    pub fn new(pool: PgPool, queue: &'static str, count: WakeCount) -> Self {
        let notify = Arc::new(Notify::new());
        let listener = tokio::spawn(listen(pool, queue, count, notify.clone())).abort_handle();
        // A wake-up while nobody waits is kept (one permit), so none is lost between polls.
        let stream = futures::stream::unfold(notify, |notify| async move {
            notify.notified().await;
            Some(((), notify))
        });
        Self {
            stream: Mutex::new(stream.boxed()),
            listener,
        }
    }
}

impl Drop for Wakeups {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

async fn listen(pool: PgPool, queue: &'static str, count: WakeCount, notify: Arc<Notify>) {
    let mut listener: Option<PgListener> = None;
    loop {
        let Some(l) = listener.as_mut() else {
            match connect(&pool).await {
                Ok(l) => listener = Some(l),
                Err(e) => {
                    debug!(queue, error = %e, "wake-up listener could not connect; polling meanwhile");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            continue;
        };
        match l.recv().await {
            Ok(n) if n.payload() == queue => {
                count.0.fetch_add(1, Ordering::SeqCst);
                notify.notify_one();
            }
            Ok(_) => {}
            Err(e) => {
                debug!(queue, error = %e, "wake-up listener lost its connection");
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
