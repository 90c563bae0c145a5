//! A token bucket: at most `capacity` events at once, refilled at `per` for each token. Pure: the
//! caller passes the time, so tests need no clock.

use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct TokenBucket {
    capacity: f64,
    tokens: f64,
    /// How long one token takes to come back.
    per: Duration,
    last: Instant,
}

impl TokenBucket {
    /// `capacity` events per `window` (e.g. 20 a minute), full at `now`.
    pub fn new(capacity: u32, window: Duration, now: Instant) -> Self {
        Self {
            capacity: f64::from(capacity),
            tokens: f64::from(capacity),
            per: window / capacity.max(1),
            last: now,
        }
    }

    /// Takes a token at `now`, or says how long until one is there.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.last);
        self.tokens =
            (self.tokens + elapsed.as_secs_f64() / self.per.as_secs_f64()).min(self.capacity);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(self.per.mul_f64(1.0 - self.tokens))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twenty_a_minute() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(20, Duration::from_secs(60), t0);
        for _ in 0..20 {
            assert!(b.take(t0).is_ok());
        }
        let wait = b.take(t0).unwrap_err();
        assert_eq!(wait, Duration::from_secs(3), "one token every 3 s");
        assert!(b.take(t0 + Duration::from_millis(2900)).is_err());
        assert!(b.take(t0 + Duration::from_secs(3)).is_ok());
        // A quiet minute fills it again, never beyond its capacity.
        let later = t0 + Duration::from_secs(600);
        for _ in 0..20 {
            assert!(b.take(later).is_ok());
        }
        assert!(b.take(later).is_err());
    }
}
