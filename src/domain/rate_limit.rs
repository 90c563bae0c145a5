//! A per-key rate limit: at most `limit` events per key in any `window`-long stretch (a
//! sliding log of the key's recent events). Pure: the caller passes the time, so tests need no
//! clock. Used for staff searches, where each answer tells a little more about a customer.

use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
    time::{Duration, Instant},
};

#[derive(Debug)]
pub struct PerKeyLimiter {
    limit: usize,
    window: Duration,
    seen: Mutex<HashMap<i64, VecDeque<Instant>>>,
}

impl PerKeyLimiter {
    /// `limit` 0 turns the limit off.
    pub fn new(limit: usize, window: Duration) -> Self {
        Self {
            limit,
            window,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Records an event of `key` at `now` if the key is within its limit. `Err`: refused, with
    /// how long until the oldest event in the window leaves it.
    pub fn check(&self, key: i64, now: Instant) -> Result<(), Duration> {
        if self.limit == 0 {
            return Ok(());
        }
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        // Keys idle for a whole window are dropped, so the map stays as small as the active set.
        if seen.len() > 1024 {
            seen.retain(|_, log| log.back().is_some_and(|t| now - *t < self.window));
        }
        let log = seen.entry(key).or_default();
        while log.front().is_some_and(|t| now - *t >= self.window) {
            log.pop_front();
        }
        if log.len() >= self.limit {
            let oldest = *log.front().expect("a full log has a front");
            return Err(self.window - (now - oldest));
        }
        log.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_over_its_limit_waits_until_its_oldest_event_leaves_the_window() {
        let l = PerKeyLimiter::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        for i in 0..3 {
            assert!(l.check(1, t0 + Duration::from_secs(i)).is_ok());
        }
        assert_eq!(
            l.check(1, t0 + Duration::from_secs(10)),
            Err(Duration::from_secs(50))
        );
        assert!(
            l.check(2, t0 + Duration::from_secs(10)).is_ok(),
            "keys apart"
        );
        assert!(l.check(1, t0 + Duration::from_secs(60)).is_ok());
        assert!(
            PerKeyLimiter::new(0, Duration::from_secs(1))
                .check(1, t0)
                .is_ok()
        );
    }
}
