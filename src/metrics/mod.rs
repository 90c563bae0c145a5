//! Prometheus metrics: what this process counts as it works (jobs, LLM calls, sends, compliance,
//! imports), and (`api::exposition`) the figures read from the database when scraped (queue depth,
//! projection lag). Served at `/metrics` by `revisit serve` and by `revisit worker` (with
//! `--serve`, or on `worker.metrics_addr` alone).
//!
//! Every label takes its values from a fixed list (job kinds, channels, outcomes, projections):
//! never a customer, a phone number, a token or an institution's data.

use std::{
    sync::LazyLock,
    time::{Duration, Instant},
};

use prometheus_client::{
    metrics::{
        counter::Counter,
        family::{Family, MetricConstructor},
        gauge::Gauge,
        histogram::Histogram,
    },
    registry::Registry,
};

/// Label sets: fixed names, values from fixed lists.
pub type Labels1 = [(&'static str, &'static str); 1];
pub type Labels2 = [(&'static str, &'static str); 2];

/// Histogram buckets for job and call durations, in seconds: 5 ms to about 10 minutes.
#[derive(Clone)]
pub struct Buckets(&'static [f64]);

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(self.0.iter().copied())
    }
}

const JOB_SECONDS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0,
];
const CALL_SECONDS: &[f64] = &[0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0];

/// How a send ends, as `revisit_sends_total` counts it.
const SEND_OUTCOMES: [&str; 7] = [
    "sent",
    "submitted",
    "deferred",
    "suppressed",
    "uncertain",
    "not_delivered",
    "refused",
];

/// Every metric of the process.
pub struct Metrics {
    registry: Registry,
    // Read from the database when scraped (see `exposition`).
    pub queue_jobs: Family<Labels2, Gauge>,
    pub queue_oldest_waiting: Family<Labels1, Gauge<f64, std::sync::atomic::AtomicU64>>,
    pub queue_paused: Family<Labels1, Gauge>,
    pub projection_pending: Family<Labels1, Gauge>,
    pub projection_lag: Family<Labels1, Gauge<f64, std::sync::atomic::AtomicU64>>,
    pub scrape_errors: Counter,
    // Counted by this process as it works.
    pub jobs_completed: Family<Labels1, Counter>,
    pub jobs_failed: Family<Labels1, Counter>,
    pub jobs_retried: Family<Labels1, Counter>,
    pub job_duration: Family<Labels1, Histogram, Buckets>,
    pub jobs_rescued: Family<Labels1, Counter>,
    pub llm_calls: Family<Labels1, Counter>,
    pub llm_duration: Family<Labels1, Histogram, Buckets>,
    pub llm_tokens: Family<Labels1, Counter>,
    pub sends: Family<Labels2, Counter>,
    pub compliance: Family<Labels1, Counter>,
    pub import_rows: Family<Labels1, Counter>,
    pub import_files: Family<Labels1, Counter>,
    pub rate_limit_passes: Family<Labels1, Counter>,
    pub rate_limit_wait: Family<Labels1, Counter<f64, std::sync::atomic::AtomicU64>>,
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("revisit");
        let m = Self {
            queue_jobs: Family::default(),
            queue_oldest_waiting: Family::default(),
            queue_paused: Family::default(),
            projection_pending: Family::default(),
            projection_lag: Family::default(),
            scrape_errors: Counter::default(),
            jobs_completed: Family::default(),
            jobs_failed: Family::default(),
            jobs_retried: Family::default(),
            job_duration: Family::new_with_constructor(Buckets(JOB_SECONDS)),
            jobs_rescued: Family::default(),
            llm_calls: Family::default(),
            llm_duration: Family::new_with_constructor(Buckets(CALL_SECONDS)),
            llm_tokens: Family::default(),
            sends: Family::default(),
            compliance: Family::default(),
            import_rows: Family::default(),
            import_files: Family::default(),
            rate_limit_passes: Family::default(),
            rate_limit_wait: Family::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "queue_jobs",
            "Jobs by queue and state: waiting (due now), scheduled (a retry's backoff or a later run), running, dead (failed for good or cancelled)",
            m.queue_jobs.clone(),
        );
        r.register(
            "queue_oldest_waiting_seconds",
            "How long the oldest job that is due has waited, by queue (0: none waiting)",
            m.queue_oldest_waiting.clone(),
        );
        r.register(
            "queue_paused",
            "1 while an operator has paused the queue (revisit jobs pause)",
            m.queue_paused.clone(),
        );
        r.register(
            "projection_pending_changes",
            "Changes a projection has still to receive",
            m.projection_pending.clone(),
        );
        r.register(
            "projection_lag_seconds",
            "Age of the oldest change a projection has still to receive (0: caught up)",
            m.projection_lag.clone(),
        );
        r.register(
            "scrape_errors",
            "Scrapes whose database figures could not be read",
            m.scrape_errors.clone(),
        );
        r.register(
            "jobs_completed",
            "Jobs that finished, by kind",
            m.jobs_completed.clone(),
        );
        r.register(
            "jobs_failed",
            "Jobs that failed for good (dead), by kind",
            m.jobs_failed.clone(),
        );
        r.register(
            "jobs_retried",
            "Job attempts that failed and were scheduled again, by kind",
            m.jobs_retried.clone(),
        );
        r.register(
            "job_duration_seconds",
            "How long a job's handler ran, by kind",
            m.job_duration.clone(),
        );
        r.register(
            "jobs_rescued",
            "Jobs of dead workers given back to the queue by a heartbeat, by queue",
            m.jobs_rescued.clone(),
        );
        r.register(
            "llm_calls",
            "LLM chat completion requests, by outcome (ok, unavailable: 429/5xx/timeout, refused)",
            m.llm_calls.clone(),
        );
        r.register(
            "llm_call_duration_seconds",
            "LLM request latency, by outcome",
            m.llm_duration.clone(),
        );
        r.register(
            "llm_tokens",
            "Tokens the LLM reported using, by kind (prompt, completion)",
            m.llm_tokens.clone(),
        );
        r.register(
            "sends",
            "Message sends by channel and outcome (sent, submitted, uncertain, not_delivered, refused, suppressed, deferred)",
            m.sends.clone(),
        );
        r.register(
            "compliance",
            "Compliance check results of generated messages (rewritten, replaced_by_template, refused)",
            m.compliance.clone(),
        );
        r.register(
            "import_rows",
            "Imported records by outcome (inserted, updated, unchanged, rejected)",
            m.import_rows.clone(),
        );
        r.register(
            "rate_limit_passes",
            "Calls through a shared rate limit (llm, or a channel's name)",
            m.rate_limit_passes.clone(),
        );
        r.register(
            "rate_limit_wait_seconds",
            "Time calls waited at a shared rate limit for a slot or their start",
            m.rate_limit_wait.clone(),
        );
        r.register(
            "import_files",
            "Imported files by outcome (imported, refused)",
            m.import_files.clone(),
        );
        // Every counter starts at 0 for each value its labels can take (all bounded lists), so
        // a rate is 0 rather than missing before the first event.
        for kind in revisit_jobs::ALL_KINDS {
            let labels = [("kind", kind.name)];
            let _ = m.jobs_completed.get_or_create(&labels);
            let _ = m.jobs_failed.get_or_create(&labels);
            let _ = m.jobs_retried.get_or_create(&labels);
            let _ = m.jobs_rescued.get_or_create(&[("queue", kind.queue)]);
        }
        for outcome in ["ok", "unavailable", "refused"] {
            let _ = m.llm_calls.get_or_create(&[("outcome", outcome)]);
        }
        for kind in ["prompt", "completion"] {
            let _ = m.llm_tokens.get_or_create(&[("kind", kind)]);
        }
        for channel in crate::domain::delivery::CHANNELS {
            for outcome in SEND_OUTCOMES {
                let _ = m
                    .sends
                    .get_or_create(&[("channel", channel), ("outcome", outcome)]);
            }
        }
        for result in ["rewritten", "replaced_by_template", "refused"] {
            let _ = m.compliance.get_or_create(&[("result", result)]);
        }
        for outcome in ["inserted", "updated", "unchanged", "rejected"] {
            let _ = m.import_rows.get_or_create(&[("outcome", outcome)]);
        }
        for outcome in ["imported", "refused"] {
            let _ = m.import_files.get_or_create(&[("outcome", outcome)]);
        }
        Self { registry, ..m }
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn get() -> &'static Metrics {
    &METRICS
}

/// The registry as Prometheus's text format (version 0.0.4).
pub fn encode() -> String {
    let mut out = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut out, &get().registry)
        .expect("writing to a String cannot fail");
    out
}

/// How a job attempt ended, for [`job_finished`].
#[derive(Debug, Clone, Copy)]
pub enum JobEnd {
    Completed,
    Retried,
    Dead,
}

pub fn job_finished(kind: &'static str, end: JobEnd, took: Duration) {
    let m = get();
    let labels = [("kind", kind)];
    match end {
        JobEnd::Completed => m.jobs_completed.get_or_create(&labels).inc(),
        JobEnd::Retried => m.jobs_retried.get_or_create(&labels).inc(),
        JobEnd::Dead => m.jobs_failed.get_or_create(&labels).inc(),
    };
    m.job_duration
        .get_or_create(&labels)
        .observe(took.as_secs_f64());
}

pub fn jobs_rescued(queue: &'static str, n: u64) {
    get()
        .jobs_rescued
        .get_or_create(&[("queue", queue)])
        .inc_by(n);
}

/// One LLM request: `outcome` is ok, unavailable or refused.
pub fn llm_call(outcome: &'static str, started: Instant) {
    let m = get();
    let labels = [("outcome", outcome)];
    m.llm_calls.get_or_create(&labels).inc();
    m.llm_duration
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
}

pub fn llm_tokens(prompt: u64, completion: u64) {
    let m = get();
    m.llm_tokens
        .get_or_create(&[("kind", "prompt")])
        .inc_by(prompt);
    m.llm_tokens
        .get_or_create(&[("kind", "completion")])
        .inc_by(completion);
}

/// One send's outcome through `channel` (console, webhook, sms, wecom).
pub fn send(channel: &'static str, outcome: &'static str) {
    get()
        .sends
        .get_or_create(&[("channel", channel), ("outcome", outcome)])
        .inc();
}

/// A generated message's compliance result other than a clean pass.
pub fn compliance(result: &'static str) {
    get().compliance.get_or_create(&[("result", result)]).inc();
}

pub fn import_rows(outcome: &'static str, n: u64) {
    if n > 0 {
        get()
            .import_rows
            .get_or_create(&[("outcome", outcome)])
            .inc_by(n);
    }
}

pub fn import_file(outcome: &'static str) {
    get()
        .import_files
        .get_or_create(&[("outcome", outcome)])
        .inc();
}

/// A call passed the shared rate limit `limit` after waiting `waited`.
pub fn rate_limited(limit: &'static str, waited: Duration) {
    let m = get();
    m.rate_limit_passes.get_or_create(&[("limit", limit)]).inc();
    m.rate_limit_wait
        .get_or_create(&[("limit", limit)])
        .inc_by(waited.as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_show_in_the_text_format_with_bounded_labels() {
        job_finished(
            "greeting.generate",
            JobEnd::Completed,
            Duration::from_millis(30),
        );
        send("console", "sent");
        let text = encode();
        assert!(
            text.contains("revisit_jobs_completed_total{kind=\"greeting.generate\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("revisit_sends_total{channel=\"console\",outcome=\"sent\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("revisit_job_duration_seconds_bucket{"),
            "{text}"
        );
        assert!(
            !text.contains("# EOF"),
            "Prometheus's format, not OpenMetrics'"
        );
    }
}
