//! Wake-ups for PostgreSQL workers: inserts announce themselves on [`WAKE_CHANNEL`] once per
//! statement and queue (the trigger of migration `20261204000001_queue_speed`), and each queue's
//! worker listens for its own name.

use std::{
    sync::Mutex,
    task::{Context, Poll},
    time::Duration,
};

use futures::{Stream, StreamExt, stream::BoxStream};
use sqlx::{PgPool, postgres::PgListener};
use tracing::debug;

/// The channel inserts are announced on; the payload is the queue's name.
pub const WAKE_CHANNEL: &str = "revisit::jobs";

/// Wakes a queue's worker when jobs for it are inserted (see [`WAKE_CHANNEL`]). Listens on its
/// own connection from `pool`, reconnecting after a loss; a wake-up missed meanwhile is caught
/// by the worker's polling interval.
pub struct Wakeups(Mutex<BoxStream<'static, ()>>);

impl Wakeups {
    pub fn new(pool: PgPool, queue: &'static str) -> Self {
        let stream = futures::stream::unfold(None::<PgListener>, move |mut listener| {
            let pool = pool.clone();
            async move {
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
                        Ok(n) if n.payload() == queue => return Some(((), listener)),
                        Ok(_) => {}
                        Err(e) => {
                            debug!(queue, error = %e, "wake-up listener lost its connection");
                            listener = None;
                        }
                    }
                }
            }
        });
        Self(Mutex::new(stream.boxed()))
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
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .poll_next_unpin(cx)
    }
}
