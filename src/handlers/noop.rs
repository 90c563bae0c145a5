//! `bench.noop`: does nothing (or sleeps, when asked to) but note how long it waited, for
//! `revisit bench queue` and the queue's tests.

use revisit_jobs::Noop;

use super::{Handler, JobCtx, JobError};

impl Handler for Noop {
    async fn run(&self, ctx: &JobCtx<'_>) -> Result<(), JobError> {
        let waited = chrono::Utc::now().timestamp_micros() - self.enqueued_at_micros;
        if let Ok(mut l) = ctx.app.bench_latencies.lock() {
            l.push(waited.max(0) as u64);
        }
        if self.sleep_ms > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(self.sleep_ms)).await;
        }
        Ok(())
    }
}
