//! Rate limits that every worker process obeys together, kept in the primary store: a
//! channel's sends per second (`rate_limits.channels`) and the LLM's calls per second and calls
//! at once (`rate_limits.llm_*`). `llm.max_concurrent_calls` still caps each process; these cap
//! the chain.
//!
//! Calls per second are spaced evenly (GCRA): each call reserves the next start time and waits
//! for it, so a burst from eight workers leaves at the configured pace, in order. Calls at once
//! are slots with a lease: a call holds one while it runs, and a process killed while holding
//! one loses it when the lease ends.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use tracing::debug;

use super::StoreResult;

#[async_trait]
pub trait RateLimits: Send + Sync {
    /// Reserves the next start of `name`, calls spaced `interval` apart, unless it is more than
    /// `max_wait` away. `Ok(wait)`: start after `wait`. `Err(wait)`: nothing reserved; the next
    /// start is `wait` away.
    async fn reserve_start(
        &self,
        name: &str,
        interval: Duration,
        max_wait: Duration,
    ) -> StoreResult<Result<Duration, Duration>>;
    /// Takes a free slot of `name`'s `slots` for `holder` until `lease` ends. `None`: all are
    /// held.
    async fn take_slot(
        &self,
        name: &str,
        slots: u32,
        holder: &str,
        lease: Duration,
    ) -> StoreResult<Option<i32>>;
    /// Gives a slot back (only if `holder` still holds it).
    async fn free_slot(&self, name: &str, slot: i32, holder: &str) -> StoreResult<()>;
}

/// A number of seconds from the database as a duration (0 for one in the past).
pub(crate) fn seconds(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

/// One shared limit: a pace, a number of calls at once, or both.
#[derive(Clone)]
pub struct Gate {
    store: Arc<dyn RateLimits>,
    name: &'static str,
    /// Calls per second; 0: no pace.
    per_second: f64,
    /// Calls at once; 0: no cap.
    slots: u32,
    /// How long a slot is held at most (a call's whole time, with its retries).
    lease: Duration,
}

/// Waiting longer than this for a start or a slot gives the job back to the queue instead.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

/// Why a call did not get through a gate: try again after this long.
#[derive(Debug)]
pub struct Busy {
    pub gate: &'static str,
    pub retry_after: Duration,
}

impl std::error::Error for Busy {}

impl std::fmt::Display for Busy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "限速 {} 已满：{} 秒后再试",
            self.gate,
            self.retry_after.as_secs()
        )
    }
}

/// A slot held: give it back with [`Pass::release`]; dropped without, it is given back in the
/// background.
pub struct Pass {
    held: Option<(Arc<dyn RateLimits>, &'static str, i32, String)>,
}

impl Pass {
    pub async fn release(mut self) {
        if let Some((store, name, slot, holder)) = self.held.take()
            && let Err(e) = store.free_slot(name, slot, &holder).await
        {
            tracing::warn!(gate = %name, error = %e, "could not give a rate-limit slot back; its lease will free it");
        }
    }
}

impl Drop for Pass {
    fn drop(&mut self) {
        if let Some((store, name, slot, holder)) = self.held.take()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            rt.spawn(async move {
                let _ = store.free_slot(name, slot, &holder).await;
            });
        }
    }
}

impl Gate {
    /// `None` when neither a pace nor a cap is set.
    pub fn new(
        store: Arc<dyn RateLimits>,
        name: &'static str,
        per_second: f64,
        slots: u32,
        lease: Duration,
    ) -> Option<Self> {
        (per_second > 0.0 || slots > 0).then(|| Self {
            store,
            name,
            per_second,
            slots,
            lease,
        })
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Waits for this call's turn: a slot (if capped), then its start (if paced). `Err`: the
    /// wait would pass [`MAX_WAIT`]; nothing is held.
    pub async fn enter(&self) -> Result<Pass, anyhow::Error> {
        let started = std::time::Instant::now();
        let mut pass = Pass { held: None };
        if self.slots > 0 {
            let holder = format!(
                "{}:{}",
                std::process::id(),
                ulid::Ulid::generate().to_string()
            );
            let mut pause = Duration::from_millis(20);
            loop {
                match self
                    .store
                    .take_slot(self.name, self.slots, &holder, self.lease)
                    .await?
                {
                    Some(slot) => {
                        pass.held = Some((self.store.clone(), self.name, slot, holder));
                        break;
                    }
                    None if started.elapsed() + pause > MAX_WAIT => {
                        return Err(anyhow::Error::new(Busy {
                            gate: self.name,
                            retry_after: Duration::from_secs(5),
                        }));
                    }
                    None => {
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(Duration::from_millis(500));
                    }
                }
            }
        }
        if self.per_second > 0.0 {
            let interval = Duration::from_secs_f64(1.0 / self.per_second);
            let left = MAX_WAIT.saturating_sub(started.elapsed());
            match self.store.reserve_start(self.name, interval, left).await? {
                Ok(wait) => {
                    debug!(gate = %self.name, wait_ms = wait.as_millis() as u64, "rate limit: waiting for this call's start");
                    tokio::time::sleep(wait).await;
                }
                Err(wait) => {
                    pass.release().await;
                    return Err(anyhow::Error::new(Busy {
                        gate: self.name,
                        retry_after: wait.saturating_sub(left).max(Duration::from_secs(1)),
                    }));
                }
            }
        }
        crate::metrics::rate_limited(self.name, started.elapsed());
        Ok(pass)
    }
}
