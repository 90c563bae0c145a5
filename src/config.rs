//! Settings in layers: built-in defaults (`config/default.toml`, compiled in), then an optional
//! file (`--config` or `REVISIT_CONFIG`), then environment variables: `REVISIT__SECTION__KEY`
//! and the seed document's own names (`DATABASE_URL`, `LLM_API_URL`, `LLM_API_KEY`, `LLM_MODEL`,
//! `BIRTHDAY_REMINDER_DAYS_AHEAD`, `CLICKHOUSE_URL`).
//!
//! Everything is validated once at start-up; an error names the key at fault. Secrets are a
//! [`Secret`], whose `Debug` and `Display` print `[redacted]`.

use std::{collections::BTreeMap, fmt, path::Path, time::Duration};

use chrono_tz::Tz;
use revisit_jobs::{KindInfo, RetryPolicy};
use serde::Deserialize;

const DEFAULTS: &str = include_str!("../config/default.toml");

/// The seed's environment variable names and the keys they set.
const SEED_ENV_NAMES: &[(&str, &str)] = &[
    ("DATABASE_URL", "database.url"),
    ("LLM_API_URL", "llm.api_url"),
    ("LLM_API_KEY", "llm.api_key"),
    ("LLM_MODEL", "llm.model"),
    ("BIRTHDAY_REMINDER_DAYS_AHEAD", "reminders.days_ahead"),
    ("CLICKHOUSE_URL", "clickhouse.url"),
    ("QDRANT_URL", "vectors.url"),
    ("NEBULA_ADDR", "graph.nebula_addr"),
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("无法读取配置文件 {path}：{reason}")]
    Read { path: String, reason: String },
    #[error("配置文件 {path} 第 {line} 行第 {column} 列不是有效的 TOML：{message}")]
    Parse {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("配置有误：{0}")]
    Shape(String),
    #[error("配置项 `{key}`：{message}")]
    Invalid { key: String, message: String },
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        message: message.into(),
    }
}

/// A secret string. Never printed: `Debug` and `Display` show `[redacted]`.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub app: AppSettings,
    pub reminders: ReminderSettings,
    pub database: DatabaseSettings,
    pub llm: LlmSettings,
    pub webhook: WebhookSettings,
    pub sms: SmsSettings,
    pub wecom: WecomSettings,
    pub vectors: VectorSettings,
    pub graph: GraphSettings,
    pub clickhouse: ClickhouseSettings,
    pub compliance: ComplianceSettings,
    pub consent: ConsentSettings,
    pub followups: FollowupSettings,
    pub alerts: AlertSettings,
    pub api: ApiSettings,
    pub worker: WorkerSettings,
    pub cron: CronSettings,
    pub rate_limits: RateLimitSettings,
    #[serde(default)]
    pub jobs: BTreeMap<String, PolicyOverride>,
}

/// Limits every worker process obeys together (`store::rate_limits`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    /// LLM requests per second, all workers together; 0: no pace.
    pub llm_calls_per_second: f64,
    /// LLM requests at once, all workers together; 0: no cap (`llm.max_concurrent_calls` still
    /// caps each process).
    pub llm_concurrent_calls: u32,
    /// Messages per second through a channel (console, webhook, sms, wecom), all workers
    /// together; a channel not named has no limit.
    #[serde(default)]
    pub channels: BTreeMap<String, f64>,
}

/// Alibaba Cloud SMS (`reminders.channel = "sms"`): SendSms with an approved signature and
/// template.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsSettings {
    pub endpoint: String,
    pub access_key_id: String,
    pub access_key_secret: Secret,
    /// The approved signature (短信签名).
    pub sign_name: String,
    /// The approved template's code (模板 CODE, `SMS_…`).
    pub template_code: String,
    /// The template's variables; each value may hold `{message}`, the greeting.
    pub template_param: BTreeMap<String, String>,
    pub timeout_secs: u64,
}

/// WeCom customer broadcast (`reminders.channel = "wecom"`): each message goes as a broadcast
/// task that the customer's staff contact confirms in WeCom (which doubles as approval).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WecomSettings {
    /// `https://qyapi.weixin.qq.com/cgi-bin`
    pub api_base: String,
    /// The chain's WeCom corp id (企业ID).
    pub corp_id: String,
    /// The secret of the customer-contact app (客户联系 Secret).
    pub corp_secret: Secret,
    /// Institution code → the userid of the staff member who sends for customers whose
    /// `wecom_userid` is not known.
    pub senders: BTreeMap<String, String>,
    /// How long staff have to confirm a task before it is withdrawn and the revisit skipped
    /// (hours, may be fractional).
    pub confirm_hours: f64,
    /// How often a task's result is looked up while it waits.
    pub poll_secs: u64,
    pub timeout_secs: u64,
}

/// Vector search: the embedded engine's folder and how texts become vectors.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VectorSettings {
    /// Off: no vector search, and no sync jobs for it.
    pub enabled: bool,
    /// A Qdrant server's gRPC URL (`http://host:6334`); empty: the embedded engine in `dir`.
    pub url: String,
    pub api_key: Secret,
    /// The embedded engine's collections, a folder each.
    pub dir: String,
    /// How long the embedded engine waits for a folder another process holds.
    pub lock_wait_secs: u64,
    /// An embedded collection idle this long is closed, so that another process can open it.
    pub hold_secs: u64,
    /// Dimensions of every vector (the embedding model's, when one is configured).
    pub dimension: usize,
    /// An OpenAI-compatible `/v1/embeddings` URL; empty: the offline lexical embedder.
    pub embeddings_url: String,
    pub embeddings_key: Secret,
    pub embeddings_model: String,
    pub timeout_secs: u64,
}

/// The relation graph: in the primary store by default, or in NebulaGraph.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphSettings {
    /// Off: no relation graph, and no sync jobs for it.
    pub enabled: bool,
    /// A NebulaGraph graphd `host:port`; empty: the embedded graph in the primary store.
    pub nebula_addr: String,
    pub nebula_user: String,
    pub nebula_password: Secret,
    pub nebula_space: String,
    pub timeout_secs: u64,
}

/// The check every message passes before it is saved for sending.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComplianceSettings {
    /// Institutions (codes) whose messages may mention prices and discounts.
    pub allow_prices: Vec<String>,
}

/// Opt-out, unsubscribe replies and staff approval.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentSettings {
    /// Appended to every marketing message and counted in its length; empty when the channel's
    /// approved template carries it already.
    pub opt_out_text: String,
    /// For `POST /api/v1/inbound/replies?secret=…` from a gateway that cannot send a bearer
    /// token. Empty: only an admin token may post replies.
    pub inbound_secret: Secret,
    /// Institutions (codes) whose real messages wait for a person's approval before sending.
    pub approval_institutions: Vec<String>,
    /// At most this many real marketing messages to one person within
    /// `marketing_window_days` (0: no cap).
    pub max_marketing_messages: u32,
    pub marketing_window_days: u32,
}

/// Staff alerts (failed revisits, the daily report) to a WeCom group robot.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertSettings {
    /// The robot's webhook URL (`https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…`), a
    /// secret. Empty: no alerts.
    pub wecom_robot_url: Secret,
}

/// The follow-ups beside the birthday greeting (see [`crate::domain::followup`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FollowupSettings {
    /// Maintenance reminders go this many days before a treatment's cycle comes round.
    pub cycle_lead_days: u32,
    /// A customer with no visit for this many days gets a win-back message (0: none).
    pub winback_days: u32,
    /// The first check-in on or after this day after a treatment asks for a score of 1–5.
    pub satisfaction_day: u32,
    /// A score at or below this opens a task for staff.
    pub low_score: u8,
    /// A reply counts as the score of a question sent within this many days.
    pub score_reply_days: u32,
}

impl WecomSettings {
    /// How long staff have to confirm a task.
    pub fn confirm_within(&self) -> chrono::Duration {
        chrono::Duration::milliseconds((self.confirm_hours * 3_600_000.0) as i64)
    }
}

impl ConsentSettings {
    pub fn needs_approval(&self, institution: &str) -> bool {
        self.approval_institutions.iter().any(|i| i == institution)
    }

    pub fn cap(&self) -> crate::domain::followup::FrequencyCap {
        crate::domain::followup::FrequencyCap {
            max: self.max_marketing_messages,
            days: self.marketing_window_days,
        }
    }
}

/// The REST API and the console.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSettings {
    pub addr: String,
    pub uploads_dir: String,
    pub max_upload_mb: u64,
    pub max_body_kb: u64,
    /// Customer searches one token may make a minute (0: no limit). Each answer tells a little
    /// about who is and is not a customer, so a script cannot ask without end.
    pub searches_per_minute: usize,
    /// Days an uploaded file is kept after its import (0: deleted once imported).
    pub keep_uploads_days: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppSettings {
    pub name: String,
    pub environment: String,
    pub institutions: Vec<String>,
    pub timezone: String,
    pub import_dir: String,
    /// Where the daily report's HTML pages are written.
    pub reports_dir: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReminderSettings {
    pub days_ahead: u32,
    pub max_message_chars: usize,
    pub channel: String,
    /// When messages may reach customers, `HH:MM-HH:MM` in the chain's time zone; a message
    /// made outside it waits for its start. Empty: any time.
    pub send_window: String,
}

impl ReminderSettings {
    /// The send window as (start, end) times of day; `None`: any time.
    pub fn send_window(&self) -> Option<(chrono::NaiveTime, chrono::NaiveTime)> {
        if self.send_window.trim().is_empty() {
            return None;
        }
        Some(crate::domain::delivery::parse_window(&self.send_window).expect("validated at load"))
    }
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: String,
    pub max_connections: u32,
    /// This process's PostgreSQL pool size and what its connections call themselves
    /// (`application_name`), set from its role at start (`store::connection_budget`); not
    /// settings. Without them: `max_connections`, and no name.
    #[serde(skip)]
    pub pool_size: Option<u32>,
    #[serde(skip)]
    pub application_name: Option<&'static str>,
}

impl fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

/// Scheme and host of a URL whose path or query may carry a token (a webhook), fit for logs,
/// `revisit check` and stored health rows: `https://hooks.example.com/…`.
/// A name that can stand unquoted in SQL: ASCII letters, digits and `_`, not starting with a digit.
pub fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub fn url_origin(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "[redacted]".to_owned();
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    // user:password@host keeps only the host.
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let more = rest.len() > host.len() || rest.contains('@');
    format!("{scheme}://{host}{}", if more { "/…" } else { "" })
}

/// A URL with its credentials replaced (password, query values), fit for logs and
/// `revisit check`: see [`crate::domain::privacy::redact_secrets`].
pub fn redact_url(url: &str) -> String {
    crate::domain::privacy::redact_secrets(url)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmSettings {
    pub api_url: String,
    pub api_key: Secret,
    pub model: String,
    /// Sent as `"thinking": {"type": <this>}` (DeepSeek V4: "disabled" for greetings); empty
    /// leaves the field out, for OpenAI-compatible APIs that do not know it.
    pub thinking: String,
    pub timeout_secs: u64,
    pub max_concurrent_calls: usize,
    pub max_tries_per_attempt: u32,
    pub temperature: f32,
    /// The model runs on the chain's own server (vLLM, Ollama, …: any OpenAI-compatible API):
    /// greetings come from it without an API key, and nothing leaves the chain.
    #[serde(default)]
    pub self_hosted: bool,
    /// What prompts carry beyond the salutation, occasion and institution, for every
    /// institution not named in `share_by_institution` (see `domain::sharing`).
    pub share: Vec<crate::domain::sharing::Share>,
    /// Per institution code: what its prompts carry instead of `share`, its explicit choice.
    #[serde(default)]
    pub share_by_institution: BTreeMap<String, Vec<crate::domain::sharing::Share>>,
}

impl LlmSettings {
    /// What the prompts of `institution` carry.
    pub fn sharing_for(&self, institution: &str) -> crate::domain::sharing::Sharing {
        let shares = self
            .share_by_institution
            .get(institution)
            .unwrap_or(&self.share);
        crate::domain::sharing::Sharing::of(shares)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// A secret: such URLs often carry a token. Shown only as [`url_origin`].
    pub url: Secret,
    pub timeout_secs: u64,
    /// The receiver drops a repeat with the same `Idempotency-Key`. Only then does a send that
    /// was cut off mid-request go out again; otherwise it is flagged for a person to check.
    pub deduplicates: bool,
}

/// The analytics projection; `url` empty means none.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClickhouseSettings {
    pub url: String,
    pub database: String,
    pub user: String,
    pub password: Secret,
    /// The client checks row types against the server's schema (needs a 2019+ server).
    pub validation: bool,
}

impl ClickhouseSettings {
    pub fn enabled(&self) -> bool {
        !self.url.trim().is_empty()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSettings {
    pub heartbeat_secs: u64,
    pub missed_heartbeats: usize,
    pub poll_interval_ms: u64,
    pub batch_size: usize,
    pub shutdown_timeout_secs: u64,
    pub keep_done_days: u32,
    /// Dead job rows, cron ticks and health-check rows are kept this many days.
    pub keep_history_days: u32,
    /// Where a worker that serves no API answers /metrics, /health/live and /health/ready
    /// (host:port); empty: nowhere.
    #[serde(default)]
    pub metrics_addr: String,
    /// How often a worker writes its activity for the console's queue page.
    pub stats_secs: u64,
}

/// `n` days, for retention settings.
pub fn days(n: u32) -> Duration {
    Duration::from_secs(u64::from(n) * 86_400)
}

impl WorkerSettings {
    pub fn heartbeat(&self) -> Duration {
        Duration::from_secs(self.heartbeat_secs)
    }
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout_secs)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MissedTicks {
    /// Enqueue the latest missed tick of each schedule once, on start-up.
    Once,
    /// Drop ticks missed while no daemon ran.
    Skip,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CronSettings {
    pub enabled: bool,
    pub missed: MissedTicks,
}

/// Optional per-kind overrides of a [`RetryPolicy`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyOverride {
    pub max_attempts: Option<u32>,
    pub base_delay_secs: Option<u64>,
    pub max_delay_secs: Option<u64>,
    pub concurrency: Option<usize>,
    /// Jobs of this kind one fetch locks: `worker.batch_size`, at most the concurrency, unless
    /// set here. Above the concurrency, the rest wait in the worker's local buffer: fewer
    /// statements per job for short jobs, but jobs another process cannot take meanwhile.
    pub fetch_size: Option<usize>,
}

impl Settings {
    /// Loads the layers and validates the result. `file` is the optional override file.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_from(file, &env)
    }

    /// As [`Settings::load`], with the environment passed in (for tests).
    pub fn load_from(file: Option<&Path>, env: &[(String, String)]) -> Result<Self, ConfigError> {
        let mut merged = parse_toml(DEFAULTS, "<built-in defaults>")?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
                path: path.display().to_string(),
                reason: match e.kind() {
                    std::io::ErrorKind::NotFound => "文件不存在".to_owned(),
                    std::io::ErrorKind::PermissionDenied => "没有读取权限".to_owned(),
                    std::io::ErrorKind::InvalidData => "不是 UTF-8 编码的文本".to_owned(),
                    _ => e.to_string(),
                },
            })?;
            let overlay = parse_toml(&text, &path.display().to_string())?;
            merge(&mut merged, overlay);
        }
        apply_env(&mut merged, env)?;
        // The path of what does not fit, for the message: `reminders.days_ahead`.
        let settings: Settings = serde_path_to_error::deserialize(toml::Value::Table(merged))
            .map_err(|e| {
                let words = crate::domain::records::type_error_in_words(e.inner().message());
                match e.path().to_string().as_str() {
                    "." | "" => ConfigError::Shape(words),
                    key => invalid(key, words),
                }
            })?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.timezone()?;
        let rl = &self.rate_limits;
        if !(rl.llm_calls_per_second >= 0.0 && rl.llm_calls_per_second.is_finite()) {
            return Err(invalid(
                "rate_limits.llm_calls_per_second",
                "应为 0（不限）或正数",
            ));
        }
        for (channel, per_second) in &rl.channels {
            if !crate::domain::delivery::CHANNELS.contains(&channel.as_str()) {
                return Err(invalid(
                    "rate_limits.channels",
                    format!("没有名为 {channel:?} 的渠道（可用：console、webhook、sms、wecom）"),
                ));
            }
            if !(*per_second >= 0.0 && per_second.is_finite()) {
                return Err(invalid(
                    "rate_limits.channels",
                    format!("{channel} 的每秒条数应为 0（不限）或正数"),
                ));
            }
        }
        if self.app.institutions.is_empty() {
            return Err(invalid("app.institutions", "至少填写一个机构编码"));
        }
        if !(0..=60).contains(&self.reminders.days_ahead) {
            return Err(invalid(
                "reminders.days_ahead",
                format!(
                    "应为 0 到 60 之间的天数，现在是 {}",
                    self.reminders.days_ahead
                ),
            ));
        }
        if !self.reminders.send_window.trim().is_empty()
            && crate::domain::delivery::parse_window(&self.reminders.send_window).is_none()
        {
            return Err(invalid(
                "reminders.send_window",
                format!(
                    "应为 HH:MM-HH:MM（开始早于结束），例如 08:00-21:00；留空表示不限时段；现在是 {:?}",
                    self.reminders.send_window
                ),
            ));
        }
        if self.reminders.max_message_chars < 10 {
            return Err(invalid("reminders.max_message_chars", "至少为 10"));
        }
        let opt_out = crate::domain::consent::opt_out_chars(&self.consent.opt_out_text);
        if opt_out * 2 > self.reminders.max_message_chars {
            return Err(invalid(
                "consent.opt_out_text",
                format!(
                    "占去了消息 {} 字上限（reminders.max_message_chars）中的 {opt_out} 字，请缩短",
                    self.reminders.max_message_chars
                ),
            ));
        }
        if !self.alerts.wecom_robot_url.is_empty()
            && !is_http_url(self.alerts.wecom_robot_url.expose())
        {
            return Err(invalid(
                "alerts.wecom_robot_url",
                "应为 http(s) 网址，或留空",
            ));
        }
        match self.reminders.channel.as_str() {
            "console" => {}
            "webhook" => {
                if !is_http_url(self.webhook.url.expose()) {
                    return Err(invalid(
                        "webhook.url",
                        "reminders.channel 为 webhook，必须填写 http(s) 网址",
                    ));
                }
            }
            "sms" => {
                let s = &self.sms;
                for (key, value) in [
                    ("sms.access_key_id", s.access_key_id.as_str()),
                    ("sms.access_key_secret", s.access_key_secret.expose()),
                    ("sms.sign_name", s.sign_name.as_str()),
                    ("sms.template_code", s.template_code.as_str()),
                ] {
                    if value.trim().is_empty() {
                        return Err(invalid(key, "reminders.channel 为 sms，此项必填"));
                    }
                }
                if !is_http_url(&s.endpoint) {
                    return Err(invalid("sms.endpoint", "应为 http(s) 网址"));
                }
                if !s.template_param.values().any(|v| v.contains("{message}")) {
                    return Err(invalid(
                        "sms.template_param",
                        "没有任何变量包含 {message}：回访内容将无法发出",
                    ));
                }
            }
            "wecom" => {
                let w = &self.wecom;
                for (key, value) in [
                    ("wecom.corp_id", w.corp_id.as_str()),
                    ("wecom.corp_secret", w.corp_secret.expose()),
                ] {
                    if value.trim().is_empty() {
                        return Err(invalid(key, "reminders.channel 为 wecom，此项必填"));
                    }
                }
                if !is_http_url(&w.api_base) {
                    return Err(invalid("wecom.api_base", "应为 http(s) 网址"));
                }
                if !(w.confirm_hours > 0.0 && w.confirm_hours <= 24.0 * 30.0) {
                    return Err(invalid(
                        "wecom.confirm_hours",
                        "应大于 0 且不超过 720（30 天）",
                    ));
                }
                if w.poll_secs == 0 {
                    return Err(invalid("wecom.poll_secs", "至少为 1"));
                }
            }
            other => {
                return Err(invalid(
                    "reminders.channel",
                    format!("没有名为 {other:?} 的渠道；可用：console、webhook、sms、wecom"),
                ));
            }
        }
        if !(8..=4096).contains(&self.vectors.dimension) {
            return Err(invalid("vectors.dimension", "应在 8 到 4096 之间"));
        }
        if !self.vectors.embeddings_url.is_empty() {
            if !is_http_url(&self.vectors.embeddings_url) {
                return Err(invalid(
                    "vectors.embeddings_url",
                    "应为 http(s) 网址；留空则使用离线向量化",
                ));
            }
            if self.vectors.embeddings_model.trim().is_empty() {
                return Err(invalid(
                    "vectors.embeddings_model",
                    "已设置 vectors.embeddings_url，必须同时填写模型名",
                ));
            }
        }
        if !self.graph.nebula_addr.is_empty() {
            let port = self.graph.nebula_addr.rsplit_once(':').map(|(_, p)| p);
            if port.is_none_or(|p| p.parse::<u16>().is_err()) {
                return Err(invalid(
                    "graph.nebula_addr",
                    "应为 主机:端口，例如 127.0.0.1:9669",
                ));
            }
            let space = &self.graph.nebula_space;
            if space.is_empty()
                || !space.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                || space.starts_with(|c: char| c.is_ascii_digit())
            {
                return Err(invalid(
                    "graph.nebula_space",
                    "只能包含字母、数字和下划线，且不能以数字开头",
                ));
            }
        }
        if !self.vectors.url.is_empty() && !is_http_url(&self.vectors.url) {
            return Err(invalid(
                "vectors.url",
                "应为 Qdrant 服务器的 gRPC 地址，例如 http://127.0.0.1:6334（设置 QDRANT_URL），或留空",
            ));
        }
        if Backend::of_url(&self.database.url).is_none() {
            return Err(invalid(
                "database.url",
                "应为 postgres://… 或 sqlite://… 地址（设置 DATABASE_URL）",
            ));
        }
        if self.clickhouse.enabled() && !is_http_url(&self.clickhouse.url) {
            return Err(invalid(
                "clickhouse.url",
                "应为 ClickHouse 的 HTTP 地址，例如 http://127.0.0.1:8123（设置 CLICKHOUSE_URL），或留空",
            ));
        }
        if self.clickhouse.enabled() && !is_identifier(&self.clickhouse.database) {
            return Err(invalid("clickhouse.database", "只能包含字母、数字和下划线"));
        }
        if self.api.addr.parse::<std::net::SocketAddr>().is_err() {
            return Err(invalid(
                "api.addr",
                format!(
                    "应为 IP地址:端口，例如 127.0.0.1:8000；现在是 {:?}",
                    self.api.addr
                ),
            ));
        }
        if self.api.max_upload_mb == 0 || self.api.max_body_kb == 0 {
            return Err(invalid("api.max_upload_mb", "上限必须大于 0"));
        }
        if self.database.max_connections < 2 {
            return Err(invalid("database.max_connections", "至少为 2"));
        }
        if !is_http_url(&self.llm.api_url) {
            return Err(invalid(
                "llm.api_url",
                "应为 http(s) 网址（设置 LLM_API_URL）",
            ));
        }
        if !matches!(self.llm.thinking.as_str(), "" | "disabled" | "enabled") {
            return Err(invalid(
                "llm.thinking",
                "应为 \"disabled\"、\"enabled\" 或留空",
            ));
        }
        if self.llm.model.trim().is_empty() {
            return Err(invalid("llm.model", "不能为空（设置 LLM_MODEL）"));
        }
        if self.llm.max_concurrent_calls == 0 {
            return Err(invalid("llm.max_concurrent_calls", "至少为 1"));
        }
        if self.llm.max_tries_per_attempt == 0 {
            return Err(invalid("llm.max_tries_per_attempt", "至少为 1"));
        }
        if self.worker.heartbeat_secs == 0 || self.worker.missed_heartbeats == 0 {
            return Err(invalid(
                "worker.heartbeat_secs",
                "heartbeat_secs 和 missed_heartbeats 都至少为 1",
            ));
        }
        if self.worker.batch_size == 0 {
            return Err(invalid("worker.batch_size", "至少为 1"));
        }
        for name in self.jobs.keys() {
            if KindInfo::find(&normalize_kind(name)).is_none() {
                return Err(invalid(
                    &format!("jobs.{name}"),
                    "没有这种任务类型；可运行 revisit jobs kinds 查看",
                ));
            }
        }
        for kind in revisit_jobs::ALL_KINDS {
            let p = self.policy(kind);
            if p.max_attempts == 0 || p.concurrency == 0 {
                return Err(invalid(
                    &format!("jobs.\"{}\"", kind.name),
                    "max_attempts 和 concurrency 都至少为 1",
                ));
            }
        }
        Ok(())
    }

    pub fn timezone(&self) -> Result<Tz, ConfigError> {
        self.app.timezone.parse::<Tz>().map_err(|_| {
            invalid(
                "app.timezone",
                format!("不认识的时区 {:?}（例如 Asia/Shanghai）", self.app.timezone),
            )
        })
    }

    /// The time zone, already validated at load.
    pub fn tz(&self) -> Tz {
        self.timezone().expect("validated at load")
    }

    /// `t` on the chain's clock, to the minute (`2026-12-07 09:00`): what staff read. Pair it
    /// with [`Settings::zone_note`] once per listing.
    pub fn local_time(&self, t: chrono::DateTime<chrono::Utc>) -> String {
        t.with_timezone(&self.tz())
            .format("%Y-%m-%d %H:%M")
            .to_string()
    }

    /// `t` on the chain's clock, to the second without the year (`12-07 09:00:05`).
    pub fn local_time_short(&self, t: chrono::DateTime<chrono::Utc>) -> String {
        t.with_timezone(&self.tz())
            .format("%m-%d %H:%M:%S")
            .to_string()
    }

    /// Which clock the times of a listing are on: `时间为 Asia/Shanghai，UTC+08:00`.
    pub fn zone_note(&self) -> String {
        let offset = chrono::Utc::now().with_timezone(&self.tz()).format("%:z");
        format!("时间为 {}，UTC{offset}", self.app.timezone)
    }

    /// An institution's time zone: its own (validated at import), else the chain's.
    pub fn tz_of(&self, institution_timezone: Option<&str>) -> Tz {
        institution_timezone
            .and_then(|name| name.parse::<Tz>().ok())
            .unwrap_or_else(|| self.tz())
    }

    /// The retry policy of a job kind: its default with config overrides applied.
    pub fn policy(&self, kind: &KindInfo) -> RetryPolicy {
        let mut p = kind.default_policy;
        if let Some(o) = self.override_for(kind) {
            p.max_attempts = o.max_attempts.unwrap_or(p.max_attempts);
            p.base_delay_secs = o.base_delay_secs.unwrap_or(p.base_delay_secs);
            p.max_delay_secs = o.max_delay_secs.unwrap_or(p.max_delay_secs);
            p.concurrency = o.concurrency.unwrap_or(p.concurrency);
        }
        p
    }

    /// The `[jobs.<kind>]` table naming `kind` by its name or its queue.
    fn override_for(&self, kind: &KindInfo) -> Option<&PolicyOverride> {
        self.jobs
            .iter()
            .find(|(name, _)| {
                let n = normalize_kind(name);
                n == kind.name || n == kind.queue
            })
            .map(|(_, o)| o)
    }

    /// Jobs of `kind` one fetch locks (see [`PolicyOverride::fetch_size`]).
    pub fn fetch_size(&self, kind: &KindInfo) -> usize {
        let over = self.override_for(kind).and_then(|o| o.fetch_size);
        over.unwrap_or_else(|| self.worker.batch_size.min(self.policy(kind).concurrency))
            .max(1)
    }

    /// The engine the database URL names (validated at load).
    pub fn backend(&self) -> Backend {
        Backend::of_url(&self.database.url).expect("validated at load")
    }

    /// Whether greetings come from the LLM (an API key is configured) or from the template.
    /// Greetings come from the LLM: an API key is set, or the model is the chain's own.
    pub fn llm_enabled(&self) -> bool {
        !self.llm.api_key.is_empty() || self.llm.self_hosted
    }
}

/// `greeting_generate` (as environment variables must spell it) → `greeting.generate`.
fn normalize_kind(name: &str) -> String {
    name.replace('_', ".")
}

fn is_http_url(url: &str) -> bool {
    (url.starts_with("http://") || url.starts_with("https://")) && url.len() > "https://".len()
}

fn parse_toml(text: &str, origin: &str) -> Result<toml::Table, ConfigError> {
    text.parse::<toml::Table>().map_err(|e| {
        let at = e.span().map_or(0, |s| s.start).min(text.len());
        let before = &text[..at];
        ConfigError::Parse {
            path: origin.to_owned(),
            line: before.matches('\n').count() + 1,
            column: before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1,
            message: format!("语法错误（{}）", e.message().trim()),
        }
    })
}

fn merge(base: &mut toml::Table, overlay: toml::Table) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

fn apply_env(table: &mut toml::Table, env: &[(String, String)]) -> Result<(), ConfigError> {
    let mut sets: Vec<(Vec<String>, &str)> = Vec::new();
    for (name, key) in SEED_ENV_NAMES {
        if let Some((_, value)) = env.iter().find(|(n, _)| n == name) {
            sets.push((key.split('.').map(str::to_owned).collect(), value));
        }
    }
    // REVISIT__ variables come last so that they win over the seed's names.
    for (name, value) in env {
        if let Some(rest) = name.strip_prefix("REVISIT__") {
            let path: Vec<String> = rest.split("__").map(|s| s.to_lowercase()).collect();
            if path.iter().any(|s| s.is_empty()) {
                return Err(ConfigError::Shape(format!(
                    "环境变量 {name} 中有空的键名段"
                )));
            }
            sets.push((path, value));
        }
    }
    for (path, raw) in sets {
        set_path(table, &path, env_value(raw));
    }
    Ok(())
}

/// An environment value as TOML: a number, boolean or array when it parses as one, else a string.
fn env_value(raw: &str) -> toml::Value {
    format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) {
    let (last, parents) = path.split_last().expect("non-empty path");
    let mut cur = table;
    for p in parents {
        let entry = cur
            .entry(p.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        cur = entry.as_table_mut().expect("just made a table");
    }
    // Keep strings strings where the default is a string ("0123" stays text, not a number).
    let value = match (cur.get(last), value) {
        (Some(toml::Value::String(_)), v) if !v.is_str() => toml::Value::String(match v {
            toml::Value::String(s) => s,
            other => other.to_string(),
        }),
        (_, v) => v,
    };
    cur.insert(last.clone(), value);
}

/// Which engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    pub fn of_url(url: &str) -> Option<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Self::Postgres)
        } else if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Postgres => "PostgreSQL",
            Self::Sqlite => "SQLite",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn defaults_load_and_validate() {
        let s = Settings::load_from(None, &[]).unwrap();
        assert_eq!(s.reminders.days_ahead, 7);
        assert_eq!(s.app.timezone, "Asia/Shanghai");
        assert!(!s.llm_enabled());
    }

    #[test]
    fn seed_names_and_prefixed_vars_override() {
        let s = Settings::load_from(
            None,
            &env(&[
                ("BIRTHDAY_REMINDER_DAYS_AHEAD", "3"),
                ("LLM_API_KEY", "sk-123"),
                ("DATABASE_URL", "postgres://u:pw@h/db"),
                ("REVISIT__JOBS__GREETING_GENERATE__CONCURRENCY", "9"),
                ("REVISIT__APP__INSTITUTIONS", "[\"X-1\"]"),
            ]),
        )
        .unwrap();
        assert_eq!(s.reminders.days_ahead, 3);
        assert_eq!(s.llm.api_key.expose(), "sk-123");
        assert_eq!(s.app.institutions, vec!["X-1"]);
        let kind = KindInfo::find("greeting.generate").unwrap();
        assert_eq!(s.policy(kind).concurrency, 9);
        assert_eq!(
            s.policy(kind).max_attempts,
            kind.default_policy.max_attempts
        );
    }

    #[test]
    fn secrets_never_print() {
        let s = Settings::load_from(
            None,
            &env(&[
                ("LLM_API_KEY", "sk-verysecret"),
                ("DATABASE_URL", "postgres://u:hunter2@h/db"),
            ]),
        )
        .unwrap();
        let dump = format!("{s:?}");
        assert!(!dump.contains("sk-verysecret"), "{dump}");
        assert!(!dump.contains("hunter2"), "{dump}");
        assert!(dump.contains("[redacted]"));
    }

    #[test]
    fn errors_name_the_key() {
        let err = Settings::load_from(None, &env(&[("BIRTHDAY_REMINDER_DAYS_AHEAD", "100")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("reminders.days_ahead"), "{err}");

        let err = Settings::load_from(None, &env(&[("REVISIT__REMINDERS__CHANNEL", "webhook")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("webhook.url"), "{err}");

        let err = Settings::load_from(None, &env(&[("REVISIT__APP__TIMEZONE", "Mars/Base")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("app.timezone"), "{err}");

        let err = Settings::load_from(None, &env(&[("REVISIT__JOBS__NOPE__CONCURRENCY", "1")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("jobs.nope"), "{err}");

        let err = Settings::load_from(None, &env(&[("REVISIT__APP__COLOUR", "red")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("colour"), "{err}");
    }

    #[test]
    fn file_layer_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.toml");
        std::fs::write(&path, "[reminders]\ndays_ahead = 2\n").unwrap();
        let s = Settings::load_from(Some(&path), &[]).unwrap();
        assert_eq!(s.reminders.days_ahead, 2);
        assert_eq!(s.reminders.max_message_chars, 70);
    }

    #[test]
    fn example_production_file_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/production.example.toml");
        Settings::load_from(Some(&path), &[]).unwrap();
    }

    #[test]
    fn url_origin_keeps_only_scheme_and_host() {
        assert_eq!(
            url_origin("https://hooks.example.com/send?token=abc"),
            "https://hooks.example.com/…"
        );
        assert_eq!(
            url_origin("http://user:pw@10.0.0.1:8080/x"),
            "http://10.0.0.1:8080/…"
        );
        assert_eq!(url_origin("http://127.0.0.1:9"), "http://127.0.0.1:9");
        assert_eq!(url_origin("not a url token=1"), "[redacted]");
        let s = Settings::load_from(
            None,
            &env(&[
                ("REVISIT__REMINDERS__CHANNEL", "webhook"),
                ("REVISIT__WEBHOOK__URL", "https://h.example/hook?key=s3cret"),
            ]),
        )
        .unwrap();
        assert!(!format!("{s:?}").contains("s3cret"));
    }

    #[test]
    fn redact_url_hides_password_only() {
        assert_eq!(
            redact_url("postgres://u:pw@h:5432/db"),
            "postgres://u:[redacted]@h:5432/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
    }
}
