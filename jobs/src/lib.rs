//! The Revisit job catalogue: the contract between whoever enqueues work and the workers that run it.
//!
//! One args type per job kind, each with an explicit, versioned queue name. The queue name is what is
//! stored in Postgres (`apalis.jobs.job_type`), so it must never be derived from a Rust type name:
//! renaming a type would silently strand its jobs. A change to an args type that old workers cannot
//! read gets a new queue name (`.v2`), and both versions are drained until the old one is empty.
//!
//! This crate does no I/O. Anything that only wants to enqueue work depends on it alone.

mod policy;
mod schedule;

pub use policy::RetryPolicy;
pub use schedule::{CRON_SCHEDULES, CronSchedule};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// A kind of job: its args type, queue name and default retry policy.
pub trait Job: Serialize + DeserializeOwned + Send + Sync + Unpin + 'static {
    /// The stored queue name, explicit and versioned, e.g. `greeting.generate.v1`.
    const QUEUE: &'static str;
    /// The short name used in config (`[jobs.<name>]`) and on the command line.
    const NAME: &'static str;
    /// The policy used when config does not override it.
    const DEFAULT_POLICY: RetryPolicy;
}

/// Every job kind, for listings and for starting one worker pool per queue.
pub const ALL_KINDS: &[KindInfo] = &[
    KindInfo::of::<ImportFile>(),
    KindInfo::of::<ImportScan>(),
    KindInfo::of::<ReminderScan>(),
    KindInfo::of::<CheckinScan>(),
    KindInfo::of::<CycleScan>(),
    KindInfo::of::<WinbackScan>(),
    KindInfo::of::<GreetingGenerate>(),
    KindInfo::of::<MessageSend>(),
    KindInfo::of::<WecomConfirm>(),
    KindInfo::of::<ReportDaily>(),
    KindInfo::of::<AlertSend>(),
    KindInfo::of::<SystemHealth>(),
    KindInfo::of::<JobsPrune>(),
    KindInfo::of::<ProjectionDispatch>(),
    KindInfo::of::<ProjectionSync>(),
    KindInfo::of::<Noop>(),
];

/// Name, queue and default policy of one job kind, without its args type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindInfo {
    pub name: &'static str,
    pub queue: &'static str,
    pub default_policy: RetryPolicy,
}

impl KindInfo {
    pub const fn of<J: Job>() -> Self {
        Self {
            name: J::NAME,
            queue: J::QUEUE,
            default_policy: J::DEFAULT_POLICY,
        }
    }

    /// Looks a kind up by its short name (`greeting.generate`) or its queue name.
    pub fn find(name_or_queue: &str) -> Option<&'static KindInfo> {
        ALL_KINDS
            .iter()
            .find(|k| k.name == name_or_queue || k.queue == name_or_queue)
    }
}

/// What an import file holds; decides the parser and the table it lands in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportKind {
    Institutions,
    Doctors,
    Projects,
    Products,
    Customers,
    ConsumptionRecords,
    /// Consultation records (咨询记录): what a customer asked about, and when.
    Consultations,
}

impl ImportKind {
    /// Files of a later stage refer to rows of earlier stages (a customer to its institution,
    /// a consumption record to its customer), so an import runs stage by stage.
    pub fn stage(self) -> u8 {
        match self {
            Self::Institutions => 0,
            Self::Doctors | Self::Projects | Self::Products => 1,
            Self::Customers => 2,
            Self::ConsumptionRecords | Self::Consultations => 3,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Institutions => "institutions",
            Self::Doctors => "doctors",
            Self::Projects => "projects",
            Self::Products => "products",
            Self::Customers => "customers",
            Self::ConsumptionRecords => "consumption_records",
            Self::Consultations => "consultations",
        }
    }

    /// Whether records of this kind belong to one institution, named by the folder they sit in.
    pub fn per_institution(self) -> bool {
        matches!(
            self,
            Self::Customers | Self::ConsumptionRecords | Self::Consultations
        )
    }
}

/// One file to import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportSource {
    /// Path of the JSON file, as the worker sees it.
    pub path: String,
    pub kind: ImportKind,
    /// The institution code for per-institution files (customers, consumption records).
    pub institution: Option<String>,
}

/// `import.file`: import one JSON file in one transaction, then enqueue the next file of the plan.
///
/// The files of a plan run one after another so that later stages find the rows they refer to;
/// the next job is enqueued in the same transaction that commits this file's rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportFile {
    pub source: ImportSource,
    /// The files still to import after this one, in order.
    #[serde(default)]
    pub then: Vec<ImportSource>,
    /// Identifies the whole plan, so `import --wait` can follow it.
    pub batch: String,
}

impl Job for ImportFile {
    const QUEUE: &'static str = "import.file.v1";
    const NAME: &'static str = "import.file";
    const DEFAULT_POLICY: RetryPolicy = RetryPolicy::new(5, 5, 300, 1);
}

/// `import.scan`: look for dated incremental folders not imported yet and enqueue their import.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportScan {}

impl Job for ImportScan {
    const QUEUE: &'static str = "import.scan.v1";
    const NAME: &'static str = "import.scan";
    const DEFAULT_POLICY: RetryPolicy = RetryPolicy::new(3, 30, 600, 1);
}

/// `reminder.scan`: find customers with a birthday in the window and enqueue one greeting each.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReminderScan {
    /// Only this institution; all configured institutions when `None`.
    pub institution: Option<String>,
    /// Test mode: greetings are generated and shown, never sent to a customer.
    pub test_mode: bool,
    /// The day the window starts; today in the configured time zone when `None`.
    pub today: Option<NaiveDate>,
}

impl Job for ReminderScan {
    const QUEUE: &'static str = "reminder.scan.v1";
    const NAME: &'static str = "reminder.scan";
    const DEFAULT_POLICY: RetryPolicy = RetryPolicy::new(5, 10, 600, 1);
}

/// What a follow-up scan looks at: one institution or all, test mode, and its day.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanScope {
    /// Only this institution; all configured institutions when `None`.
    pub institution: Option<String>,
    /// Test mode: messages are generated and shown, never sent to a customer.
    pub test_mode: bool,
    /// The day scanned; today in the configured time zone when `None`.
    pub today: Option<NaiveDate>,
}

/// `checkin.scan`: treatments whose check-in day (1, 3, 7, 30 … days after) has come get a
/// check-in revisit each (术后回访).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckinScan {
    #[serde(flatten)]
    pub scope: ScanScope,
}

impl Job for CheckinScan {
    const QUEUE: &'static str = "checkin.scan.v1";
    const NAME: &'static str = "checkin.scan";
    const DEFAULT_POLICY: RetryPolicy = RetryPolicy::new(5, 10, 600, 1);
}

/// `cycle.scan`: treatments whose cycle (`cycle_days`) comes round soon get a maintenance
/// reminder (疗程提醒), unless the customer has had the treatment again since.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CycleScan {
    #[serde(flatten)]
    pub scope: ScanScope,
}

impl Job for CycleScan {
    const QUEUE: &'static str = "cycle.scan.v1";
    const NAME: &'static str = "cycle.scan";
    const DEFAULT_POLICY: RetryPolicy = RetryPolicy::new(5, 10, 600, 1);
}

/// `winback.scan`: customers whose last visit was `followups.winback_days` ago get a win-back
/// message (沉睡唤醒).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WinbackScan {
    #[serde(flatten)]
    pub scope: ScanScope,
}

impl Job for WinbackScan {
    const QUEUE: &'static str = "winback.scan.v1";
    const NAME: &'static str = "winback.scan";
    const DEFAULT_POLICY: RetryPolicy = RetryPolicy::new(5, 10, 600, 1);
}

/// `greeting.generate`: gather one customer's history, write the message, enqueue its sending.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GreetingGenerate {
    pub revisit_id: i64,
}

impl Job for GreetingGenerate {
    const QUEUE: &'static str = "greeting.generate.v1";
    const NAME: &'static str = "greeting.generate";
    // Twice the LLM's default 4 calls at a time: while some greetings read and write the
    // store, the others keep every LLM slot busy.
    const DEFAULT_POLICY: RetryPolicy = RetryPolicy::new(6, 5, 600, 8);
}

/// `message.send`: deliver one generated message through its channel, at most once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageSend {
    pub revisit_id: i64,
}

impl Job for MessageSend {
    const QUEUE: &'static str = "message.send.v1";
    const NAME: &'static str = "message.send";
    const DEFAULT_POLICY: RetryPolicy = RetryPolicy::new(8, 10, 1800, 4);
}

/// `report.daily`: build the daily report for one day.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportDaily {
    /// The day reported on; yesterday in the configured time zone when `None`.
    pub date: Option<NaiveDate>,
}

impl Job for ReportDaily {
    const QUEUE: &'static str = "report.daily.v1";
    const NAME: &'static str = "report.daily";
    const DEFAULT_POLICY: RetryPolicy = RetryPolicy::new(3, 60, 1800, 1);
}

/// `wecom.confirm`: watch a message that went as a WeCom customer broadcast task until its staff
/// member confirms it (sent), WeCom cannot deliver it (failed), or its deadline passes (the task
/// is withdrawn, skipped). Each look that finds it still waiting is a retry after the poll
/// interval, so its attempts cover the deadline many times over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WecomConfirm {
    pub revisit_id: i64,
}

impl Job for WecomConfirm {
    const QUEUE: &'static str = "wecom.confirm.v1";
    const NAME: &'static str = "wecom.confirm";
    // A look that finds the task waiting retries after `wecom.poll_secs` (or this backoff, if
    // longer); WeCom being down backs off from 5 s to a minute.
    const DEFAULT_POLICY: RetryPolicy = RetryPolicy::new(1000, 5, 60, 4);
}

/// `alert.send`: post a staff alert to the WeCom group robot (a failed revisit, the daily
/// report). Never to a customer; carries no full name or phone number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertSend {
    pub text: String,
}

impl Job for AlertSend {
    const QUEUE: &'static str = "alert.send.v1";
    const NAME: &'static str = "alert.send";
    const DEFAULT_POLICY: RetryPolicy = RetryPolicy::new(10, 30, 1800, 1);
}

/// `system.health`: check every configured store and record the result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemHealth {}

impl Job for SystemHealth {
    const QUEUE: &'static str = "system.health.v1";
    const NAME: &'static str = "system.health";
    const DEFAULT_POLICY: RetryPolicy = RetryPolicy::new(1, 1, 1, 1);
}

/// `jobs.prune`: delete finished (Done) job rows older than the retention. Failed jobs are kept
/// for operators; revisits, import logs and cron ticks keep their own records.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobsPrune {
    /// Keep this many days; the configured retention when `None`.
    pub older_than_days: Option<u32>,
}

impl Job for JobsPrune {
    const QUEUE: &'static str = "jobs.prune.v1";
    const NAME: &'static str = "jobs.prune";
    const DEFAULT_POLICY: RetryPolicy = RetryPolicy::new(3, 60, 600, 1);
}

/// A store the primary store is projected into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProjectionName {
    /// Analytics: the dashboard and the daily report.
    Clickhouse,
    /// Vector search: customers like this one, a text search of the catalogue.
    Vectors,
    /// The relation graph: who bought what, served by whom, referred by whom.
    Graph,
}

impl ProjectionName {
    pub const ALL: &'static [ProjectionName] = &[
        ProjectionName::Clickhouse,
        ProjectionName::Vectors,
        ProjectionName::Graph,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Clickhouse => "clickhouse",
            Self::Vectors => "vectors",
            Self::Graph => "graph",
        }
    }

    /// Whether a full rebuild queues every entity of `kind`: the kinds it takes, less those
    /// that reach it only through another (vector search reads a customer's orders with the
    /// customer, so rebuilding orders too would embed every customer twice).
    pub fn rebuilds(self, kind: EntityKind) -> bool {
        self.takes(kind) && !(self == Self::Vectors && kind == EntityKind::Order)
    }

    /// Whether changes of `kind` reach this projection (no sync job is made for the others).
    /// Vector search keeps customers (a person's change reaches it through them; an order's
    /// re-embeds its customer), projects and products; the graph, all master data but no
    /// revisits.
    pub fn takes(self, kind: EntityKind) -> bool {
        match self {
            Self::Clickhouse => true,
            Self::Vectors => matches!(
                kind,
                EntityKind::Project
                    | EntityKind::Product
                    | EntityKind::Person
                    | EntityKind::Customer
                    | EntityKind::Order
            ),
            Self::Graph => kind != EntityKind::Revisit,
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|p| p.as_str() == name)
    }
}

/// What a captured change is about; the key of each kind is its row id as text, except an
/// order's, which is `<institution id>/<order number>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    Institution,
    Doctor,
    Project,
    Product,
    Person,
    Customer,
    Order,
    Revisit,
}

impl EntityKind {
    pub const ALL: &'static [EntityKind] = &[
        EntityKind::Institution,
        EntityKind::Doctor,
        EntityKind::Project,
        EntityKind::Product,
        EntityKind::Person,
        EntityKind::Customer,
        EntityKind::Order,
        EntityKind::Revisit,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Institution => "institution",
            Self::Doctor => "doctor",
            Self::Project => "project",
            Self::Product => "product",
            Self::Person => "person",
            Self::Customer => "customer",
            Self::Order => "order",
            Self::Revisit => "revisit",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.as_str() == name)
    }
}

/// `projection.dispatch`: turn the captured changes into sync jobs, a small batch of one kind
/// per job and projection, deleting them in the same transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectionDispatch {}

impl Job for ProjectionDispatch {
    const QUEUE: &'static str = "projection.dispatch.v1";
    const NAME: &'static str = "projection.dispatch";
    const DEFAULT_POLICY: RetryPolicy = RetryPolicy::new(3, 5, 60, 1);
}

/// `projection.sync`: write the current state of some entities of one kind to one projection.
///
/// Idempotent: it reads the entities when it runs and writes them with `version`, the largest
/// change sequence it carries, and the projection keeps the highest version of each row; so a
/// repeated or late job never overwrites newer data. A projection that is down makes it retry
/// (many attempts, up to half an hour apart); `revisit sync <store>` revives dead ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectionSync {
    pub projection: ProjectionName,
    pub kind: EntityKind,
    pub keys: Vec<String>,
    pub version: i64,
    /// The backlog row this job clears when it is done.
    pub batch: String,
}

impl Job for ProjectionSync {
    const QUEUE: &'static str = "projection.sync.v1";
    const NAME: &'static str = "projection.sync";
    const DEFAULT_POLICY: RetryPolicy = RetryPolicy::new(20, 5, 1800, 2);
}

/// `bench.noop`: does nothing; used by `revisit bench queue` to measure the queue itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Noop {
    pub seq: u64,
    /// Microseconds since the Unix epoch when it was enqueued, for latency figures.
    pub enqueued_at_micros: i64,
    /// How long the job takes, for jobs that must still be running when something happens.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub sleep_ms: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Job for Noop {
    const QUEUE: &'static str = "bench.noop.v1";
    const NAME: &'static str = "bench.noop";
    const DEFAULT_POLICY: RetryPolicy = RetryPolicy::new(3, 1, 10, 16);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_names_are_unique_and_versioned() {
        let mut seen = std::collections::HashSet::new();
        for kind in ALL_KINDS {
            assert!(seen.insert(kind.queue), "duplicate queue {}", kind.queue);
            assert!(
                kind.queue.starts_with(kind.name) && kind.queue.contains(".v"),
                "queue {} is not `<name>.v<N>`",
                kind.queue
            );
        }
    }

    #[test]
    fn vector_search_takes_only_what_it_embeds() {
        for kind in EntityKind::ALL {
            assert!(ProjectionName::Clickhouse.takes(*kind));
            assert!(ProjectionName::Clickhouse.rebuilds(*kind));
        }
        let v = ProjectionName::Vectors;
        assert!(!v.takes(EntityKind::Revisit) && !v.takes(EntityKind::Doctor));
        assert!(
            v.takes(EntityKind::Order),
            "an order re-embeds its customer"
        );
        assert!(
            !v.rebuilds(EntityKind::Order),
            "a rebuild reads orders with customers"
        );
        assert!(v.rebuilds(EntityKind::Customer) && v.rebuilds(EntityKind::Product));
    }

    #[test]
    fn the_graph_takes_master_data_but_no_revisits() {
        let g = ProjectionName::Graph;
        assert!(!g.takes(EntityKind::Revisit));
        for kind in EntityKind::ALL
            .iter()
            .filter(|k| **k != EntityKind::Revisit)
        {
            assert!(g.takes(*kind) && g.rebuilds(*kind), "{kind:?}");
        }
        assert_eq!(ProjectionName::parse("graph"), Some(g));
    }

    #[test]
    fn find_by_name_or_queue() {
        assert_eq!(
            KindInfo::find("message.send").unwrap().queue,
            "message.send.v1"
        );
        assert_eq!(
            KindInfo::find("message.send.v1").unwrap().name,
            "message.send"
        );
        assert!(KindInfo::find("nope").is_none());
    }

    #[test]
    fn import_stages_order_dependencies() {
        assert!(ImportKind::Institutions.stage() < ImportKind::Doctors.stage());
        assert!(ImportKind::Doctors.stage() < ImportKind::Customers.stage());
        assert!(ImportKind::Customers.stage() < ImportKind::ConsumptionRecords.stage());
    }

    #[test]
    fn args_round_trip_through_json() {
        let job = ImportFile {
            source: ImportSource {
                path: "a.json".into(),
                kind: ImportKind::ConsumptionRecords,
                institution: Some("BJ-HA-001".into()),
            },
            then: vec![],
            batch: "b1".into(),
        };
        let text = serde_json::to_string(&job).unwrap();
        assert!(text.contains("\"consumption_records\""));
        assert_eq!(serde_json::from_str::<ImportFile>(&text).unwrap(), job);
    }
}
