//! Retry policy: how many attempts a job gets and how long it waits between them.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Attempts, backoff and concurrency for one job kind. Config may override every field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included. A job out of attempts is dead: kept with its
    /// last error until someone retries it by hand.
    pub max_attempts: u32,
    /// Delay before the second attempt; doubles with every further attempt.
    pub base_delay_secs: u64,
    /// Upper bound of one delay.
    pub max_delay_secs: u64,
    /// Jobs of this kind that one worker process runs at the same time.
    pub concurrency: usize,
}

impl RetryPolicy {
    pub const fn new(
        max_attempts: u32,
        base_delay_secs: u64,
        max_delay_secs: u64,
        concurrency: usize,
    ) -> Self {
        Self {
            max_attempts,
            base_delay_secs,
            max_delay_secs,
            concurrency,
        }
    }

    /// The delay after failed attempt number `attempt` (1-based), before jitter:
    /// `base * 2^(attempt-1)`, capped at `max_delay_secs`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(32);
        let secs = self
            .base_delay_secs
            .saturating_mul(1u64 << exp)
            .min(self.max_delay_secs.max(self.base_delay_secs));
        Duration::from_secs(secs)
    }

    /// The backoff with "equal jitter": half fixed, half random, so retries of many jobs that
    /// failed together (an LLM outage) spread out instead of returning in one wave.
    /// `unit` is a random number in `[0, 1)`, passed in so that this stays a pure function.
    pub fn backoff_with_jitter(&self, attempt: u32, unit: f64) -> Duration {
        let full = self.backoff(attempt);
        let half = full / 2;
        half + half.mul_f64(unit.clamp(0.0, 1.0))
    }

    /// Whether the attempt that just failed was the last one allowed.
    pub fn exhausted(&self, attempt: u32) -> bool {
        attempt >= self.max_attempts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_then_caps() {
        let p = RetryPolicy::new(10, 5, 60, 1);
        let secs: Vec<u64> = (1..=6).map(|a| p.backoff(a).as_secs()).collect();
        assert_eq!(secs, vec![5, 10, 20, 40, 60, 60]);
    }

    #[test]
    fn jitter_stays_between_half_and_full() {
        let p = RetryPolicy::new(10, 8, 600, 1);
        for unit in [0.0, 0.3, 0.999] {
            let d = p.backoff_with_jitter(3, unit);
            assert!(
                d >= Duration::from_secs(16) && d <= Duration::from_secs(32),
                "{d:?}"
            );
        }
    }

    #[test]
    fn huge_attempt_numbers_do_not_overflow() {
        let p = RetryPolicy::new(u32::MAX, 30, 3600, 1);
        assert_eq!(p.backoff(u32::MAX), Duration::from_secs(3600));
    }

    #[test]
    fn exhausted_at_max() {
        let p = RetryPolicy::new(3, 1, 1, 1);
        assert!(!p.exhausted(2));
        assert!(p.exhausted(3));
    }
}
