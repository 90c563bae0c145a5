//! The state every handler shares: the store, settings and integration clients.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
};

use crate::{
    config::Settings,
    llm::LlmClient,
    notify::{AliyunSms, Channel, WebhookChannel, wecom_robot::WecomRobot},
    projections::Projections,
    store::{
        Database, DbPool, Repository,
        rate_limits::{Gate, RateLimits},
    },
};

pub struct App {
    /// The primary store (PostgreSQL or SQLite).
    pub store: Arc<dyn Repository>,
    /// The same database's pool, for the job queue's workers.
    pub pool: DbPool,
    pub settings: Arc<Settings>,
    pub llm: LlmClient,
    /// The configured channel for real sends; test-mode revisits always use the console.
    pub channel: Channel,
    /// Staff alerts' WeCom group robot, when configured.
    pub robot: Option<WecomRobot>,
    /// The configured projections (ClickHouse when configured; vector search by default).
    pub projections: Projections,
    /// Ids of the jobs whose handlers run in this process now: at shutdown only the others
    /// (fetched, never started) are put back in the queue at once.
    pub running_jobs: Mutex<HashSet<String>>,
    /// The dashboard's last facts, served again while nothing they depend on has changed.
    pub dashboard_memo: Mutex<Option<crate::analytics::Memo>>,
    /// Enqueue-to-start latencies of `bench.noop` jobs, in microseconds, while a benchmark runs.
    pub bench_latencies: Mutex<Vec<u64>>,
    /// Staff customer searches per token (`api.searches_per_minute`).
    pub search_limits: crate::domain::rate_limit::PerKeyLimiter,
    /// Limits every worker process obeys together (`rate_limits`).
    pub gates: Gates,
    /// Whether this process runs a worker pool now (its readiness then needs live heartbeats).
    pub runs_workers: std::sync::atomic::AtomicBool,
}

/// The shared rate limits this deployment configured.
#[derive(Default)]
pub struct Gates {
    pub llm: Option<Gate>,
    channels: Vec<Gate>,
}

impl Gates {
    fn new(store: &Arc<dyn Repository>, settings: &Settings) -> Self {
        let limits: Arc<dyn RateLimits> = store.clone();
        let rl = &settings.rate_limits;
        // A slot is held through the call's own retries; past that a dead holder's is freed.
        let llm_lease = std::time::Duration::from_secs(
            settings.llm.timeout_secs * u64::from(settings.llm.max_tries_per_attempt.max(1)) + 30,
        );
        Self {
            llm: Gate::new(
                limits.clone(),
                "llm",
                rl.llm_calls_per_second,
                rl.llm_concurrent_calls,
                llm_lease,
            ),
            channels: crate::domain::delivery::CHANNELS
                .into_iter()
                .filter_map(|channel| {
                    let per_second = rl.channels.get(channel).copied().unwrap_or(0.0);
                    Gate::new(
                        limits.clone(),
                        channel,
                        per_second,
                        0,
                        std::time::Duration::ZERO,
                    )
                })
                .collect(),
        }
    }

    /// The limit of sends through `channel`, if one is set.
    pub fn channel(&self, channel: &str) -> Option<&Gate> {
        self.channels.iter().find(|g| g.name() == channel)
    }
}

impl App {
    /// Where the dashboard reads its figures.
    pub fn dashboard_sources(&self) -> crate::analytics::Sources<'_> {
        crate::analytics::Sources {
            store: self.store.as_ref(),
            clickhouse: self.projections.clickhouse.as_deref(),
            memo: &self.dashboard_memo,
        }
    }

    pub fn new(db: Database, settings: Settings) -> anyhow::Result<Arc<Self>> {
        let channel = match settings.reminders.channel.as_str() {
            "webhook" => Channel::Webhook(WebhookChannel::new(&settings.webhook)?),
            "sms" => Channel::Sms(AliyunSms::new(&settings.sms)?),
            "wecom" => Channel::Wecom(crate::notify::WecomBroadcast::new(&settings.wecom)?),
            _ => Channel::Console,
        };
        let search_limits = crate::domain::rate_limit::PerKeyLimiter::new(
            settings.api.searches_per_minute,
            std::time::Duration::from_secs(60),
        );
        Ok(Arc::new(Self {
            llm: LlmClient::new(&settings.llm)?,
            channel,
            robot: match settings.alerts.wecom_robot_url.expose() {
                "" => None,
                url => Some(WecomRobot::new(url)?),
            },
            projections: Projections::from_settings(&settings, &db.pool)?,
            gates: Gates::new(&db.repo, &settings),
            runs_workers: std::sync::atomic::AtomicBool::new(false),
            store: db.repo,
            pool: db.pool,
            settings: Arc::new(settings),
            running_jobs: Mutex::new(HashSet::new()),
            dashboard_memo: Mutex::new(None),
            bench_latencies: Mutex::new(Vec::new()),
            search_limits,
        }))
    }
}
