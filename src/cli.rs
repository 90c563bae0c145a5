//! The `revisit` command line. Doc comments are the help text.

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand};

use crate::store::JobState;

/// Revisit 医美客户回访系统: imports a clinic chain's data, finds customers with upcoming
/// birthdays, writes personal greetings with an LLM and sends them, all as durable jobs in
/// PostgreSQL run by worker daemons.
#[derive(Debug, Parser)]
#[command(
    name = "revisit",
    version,
    after_help = "Environment:\n  DATABASE_URL   the database: sqlite://data/revisit.db (the default, no server) or\n                 postgres://user:password@host:5432/revisit\n  LLM_API_KEY    the LLM's key (DeepSeek by default); without one, greetings use a template\n  CLICKHOUSE_URL the analytics store (e.g. http://127.0.0.1:8123); unset: none\n  LLM_API_URL, LLM_MODEL, BIRTHDAY_REMINDER_DAYS_AHEAD, and REVISIT__<SECTION>__<KEY> for\n  any setting of config/default.toml\n\nThe import layout and every rule a file must meet: docs/data-format.md"
)]
pub struct Cli {
    /// A TOML file overriding the built-in defaults (also: REVISIT_CONFIG).
    #[arg(long, global = true, env = "REVISIT_CONFIG")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the database if it does not exist and apply all migrations (safe to repeat).
    Init {
        /// Drop the database and everything in it first. Asks for the database name to confirm.
        #[arg(long)]
        force: bool,
        /// Confirm --force without asking (for scripts).
        #[arg(long, requires = "force")]
        yes: bool,
        /// Do not create the ClickHouse database and tables (when CLICKHOUSE_URL is set).
        #[arg(long)]
        skip_clickhouse: bool,
        /// Do not create the NebulaGraph space, tags and edge types (when NEBULA_ADDR is set).
        #[arg(long)]
        skip_graph: bool,
    },
    /// Check every configured store and integration (✅/❌).
    Check,
    /// Enqueue the import of a JSON file or a folder in the seed's layout
    /// (initial/common/*.json, initial/institutions/<CODE>/*.json, incremental/pending/<date>/...);
    /// the layout and the rules a file must meet are in docs/data-format.md.
    Import {
        /// A JSON file, or a folder in the import layout; a relative path is taken from where the
        /// command runs.
        path: PathBuf,
        /// Wait until the files are imported (needs a running worker) and print the result.
        #[arg(long)]
        wait: bool,
    },
    /// Real sending: status, on (after showing what will be sent), off (stops at once).
    #[command(subcommand)]
    Sending(SendingCommand),
    /// Enqueue a revisit scan now, as its daily producer does: the birthday greeting (09:00),
    /// check-ins after treatments (10:00), maintenance reminders (10:30) or win-back (11:00).
    RunReminders {
        /// birthday, checkin, cycle or winback.
        #[arg(long, default_value = "birthday", value_parser = ["birthday", "checkin", "cycle", "winback"])]
        kind: String,
        /// Only this institution (default: all configured institutions).
        #[arg(long)]
        institution: Option<String>,
        /// Generate and show greetings, but send nothing to customers.
        #[arg(long)]
        test_mode: bool,
        /// Start the window on this day instead of today (YYYY-MM-DD).
        #[arg(long)]
        today: Option<NaiveDate>,
        /// Wait until every greeting is generated and sent (needs a running worker).
        #[arg(long)]
        wait: bool,
    },
    /// Run the worker pool and the cron producers as a daemon, until SIGTERM or Ctrl-C.
    Worker {
        /// Serve only these queues (repeatable; default: all).
        #[arg(long = "queue")]
        queues: Vec<String>,
        /// Do not run the cron producers in this process.
        #[arg(long)]
        no_cron: bool,
        /// Serve the REST API and the console in this process too, on this address (default:
        /// api.addr, 127.0.0.1:8000).
        #[arg(long, num_args = 0..=1, default_missing_value = "")]
        serve: Option<String>,
        /// Without --serve: answer /metrics, /health/live and /health/ready on this address
        /// (default: worker.metrics_addr; none when that is empty).
        #[arg(long)]
        metrics: Option<String>,
    },
    /// Serve the REST API (/api/v1, /health, /docs) and the staff console (/) until SIGTERM or
    /// Ctrl-C, on the same database as the workers.
    Serve {
        /// Listen here (default: api.addr, 127.0.0.1:8000).
        #[arg(long)]
        addr: Option<String>,
    },
    /// Check a message as every greeting is checked before it is sent (广告法, 医疗美容广告执法指南,
    /// no phone numbers or links, the length limit). Exits with status 1 when it fails.
    Lint {
        /// The message.
        text: String,
        /// Check as this institution's message (its compliance.allow_prices setting).
        #[arg(long)]
        institution: Option<String>,
    },
    /// API tokens: create (the secret is shown once), list, revoke.
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// Consent: numbers that receive nothing more through a channel (unsubscribe replies such as
    /// 回T退订, or staff's word), and feeding in a reply by hand.
    #[command(subcommand)]
    Consent(ConsentCommand),
    /// Messages waiting for a person's approval before they are sent (the institutions of
    /// consent.approval_institutions): list, approve, reject.
    #[command(subcommand)]
    Approvals(ApprovalsCommand),
    /// Tasks for staff: a low score given to a check-in's satisfaction question.
    #[command(subcommand)]
    Tasks(TasksCommand),
    /// Customers like this one (same institution), by vector search over what they bought, their
    /// tags and VIP level, with what they share. Needs the vectors synced (`revisit sync
    /// vectors --full` once, then the workers keep them up to date).
    Similar {
        /// The customer's code.
        customer_code: String,
        /// How many to show.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=100))]
        limit: u16,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// The relation graph, for staff: a customer's relations, who shares their doctors or
    /// projects, and "customers who had X also had Y". Needs the graph synced (`revisit sync
    /// graph --full` once, then the workers keep it up to date).
    #[command(subcommand)]
    Graph(GraphCommand),
    /// Search projects or products by text (lexical similarity with the offline embedder).
    Search {
        /// projects or products.
        #[arg(value_parser = ["projects", "products"])]
        collection: String,
        /// What to look for, e.g. "补水".
        text: String,
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=100))]
        limit: u16,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Bring a projection (clickhouse, vectors) up to date with the primary store: catch up on
    /// pending changes and revive sync jobs that gave up, or with --full rebuild it from scratch.
    Sync {
        /// The projection: clickhouse or vectors.
        store: String,
        /// Drop the projection's tables and rebuild them from the primary store.
        #[arg(long)]
        full: bool,
        /// Wait until the projection has caught up (needs a running worker), showing progress.
        #[arg(long)]
        wait: bool,
        /// Stop sending the projection changes (after removing its settings from every worker).
        #[arg(long, conflicts_with_all = ["full", "wait"])]
        stop: bool,
    },
    /// List, retry and cancel jobs.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// The dashboard: customers, active customers, revenue by month, top projects and products,
    /// the revisit funnel; for the chain (with every institution) or one institution. From
    /// ClickHouse when CLICKHOUSE_URL is set, from the database otherwise.
    Dashboard {
        /// Only this institution (its code).
        #[arg(long)]
        institution: Option<String>,
        /// As of this day (YYYY-MM-DD; default: today in the configured time zone).
        #[arg(long)]
        date: Option<NaiveDate>,
        /// Print JSON (what the API will serve) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Build the daily report for a day now and print it.
    Report {
        /// The day (default: yesterday in the configured time zone).
        #[arg(long)]
        date: Option<NaiveDate>,
    },
    /// On this database: initialise, import the sample data, run the birthday revisit in test
    /// mode through the real queue and workers, and print the greetings.
    Demo {
        /// The sample data folder.
        #[arg(long, default_value = crate::import::SAMPLE_DATA)]
        data: PathBuf,
    },
    /// Benchmarks shipped with the project.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, Subcommand)]
pub enum SendingCommand {
    /// Whether real sending is on, and what it sends.
    Status,
    /// Show what will be sent, ask for confirmation, and switch real sending on.
    On {
        /// Confirm without asking (scripts).
        #[arg(long)]
        yes: bool,
        /// Who switches it (kept with the switch).
        #[arg(long, default_value = "命令行")]
        by: String,
    },
    /// Switch real sending off: scans run in test mode, queued real messages are not sent.
    Off {
        #[arg(long, default_value = "命令行")]
        by: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Create a token and print its secret (shown this once; only its digest is stored).
    Create {
        /// staff: one institution's customers, revisits, imports and dashboard;
        /// admin: the whole chain, the jobs, initialisation.
        #[arg(long, value_parser = ["staff", "admin"])]
        role: String,
        /// The institution (its code): required for staff.
        #[arg(long)]
        institution: Option<String>,
        /// A note on whom it is for.
        #[arg(long)]
        label: Option<String>,
        /// Expire after this many days (default: until revoked).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=3650))]
        expires_days: Option<u32>,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by its id; requests with it are refused at once.
    Revoke { id: i64 },
}

#[derive(Debug, Subcommand)]
pub enum ConsentCommand {
    /// Send this number nothing more through a channel.
    Optout {
        phone: String,
        /// sms, webhook, wecom, or all.
        #[arg(long, default_value = "all")]
        channel: String,
        /// Why (kept with the suppression).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Lift a number's suppressions (of one channel with --channel).
    Restore {
        phone: String,
        #[arg(long)]
        channel: Option<String>,
    },
    /// Suppressions, newest first.
    List {
        /// Only this number.
        #[arg(long)]
        phone: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Record a reply from a number as an inbound gateway would (an unsubscribe such as T, TD,
    /// R or 退订 suppresses the channel; anything else changes nothing).
    Reply {
        phone: String,
        text: String,
        /// The channel it came back over (default: the configured channel).
        #[arg(long)]
        channel: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ApprovalsCommand {
    /// Messages waiting, oldest first (names and phones masked).
    List {
        #[arg(long)]
        institution: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Approve messages by revisit id, or every waiting one of --institution; their sending is
    /// enqueued (held for quiet hours).
    Approve {
        ids: Vec<i64>,
        #[arg(long)]
        institution: Option<String>,
        /// Who approves (kept with the revisit).
        #[arg(long, default_value = "命令行")]
        by: String,
    },
    /// Reject messages: they are skipped and never sent.
    Reject {
        ids: Vec<i64>,
        #[arg(long)]
        institution: Option<String>,
        #[arg(long)]
        reason: Option<String>,
        #[arg(long, default_value = "命令行")]
        by: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum GraphCommand {
    /// A customer's relations to --depth steps: institution, doctors, projects and products,
    /// the same person at other institutions of the chain, who referred them and whom they
    /// referred.
    Relations {
        customer_code: String,
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=3))]
        depth: u32,
        /// Print JSON instead of a list.
        #[arg(long)]
        json: bool,
    },
    /// Customers of the same institution who share doctors, projects or products with this one.
    Shared {
        customer_code: String,
        #[arg(long, default_value = "all", value_parser = ["doctors", "projects", "products", "all"])]
        by: String,
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=100))]
        limit: u16,
        #[arg(long)]
        json: bool,
    },
    /// Customers of an institution who had this project or product: what else they had there.
    AlsoHad {
        institution_code: String,
        /// A project or product code.
        item_code: String,
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=100))]
        limit: u16,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TasksCommand {
    /// Open tasks, newest first (all with --all).
    List {
        #[arg(long)]
        institution: Option<String>,
        #[arg(long)]
        all: bool,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Close a task, saying what was done.
    Done {
        id: i64,
        #[arg(long)]
        note: Option<String>,
        #[arg(long, default_value = "命令行")]
        by: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Jobs, newest first.
    List {
        #[arg(long, value_enum)]
        status: Option<JobState>,
        /// Job kind (e.g. message.send) or queue name.
        #[arg(long)]
        kind: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Put failed (dead) jobs back in the queue with a full set of attempts.
    Retry {
        /// The job id.
        #[arg(required_unless_present = "all_failed", conflicts_with = "all_failed")]
        id: Option<String>,
        /// Every failed job (of --kind, if given).
        #[arg(long)]
        all_failed: bool,
        #[arg(long, requires = "all_failed")]
        kind: Option<String>,
    },
    /// Cancel a job that has not started.
    Cancel { id: String },
    /// Delete finished (done) job rows now, as the nightly clean-up does. Failed jobs are kept.
    Prune {
        /// Keep the last this many days (default: worker.keep_done_days).
        #[arg(long)]
        older_than_days: Option<u32>,
    },
    /// The job kinds with their queues, retry policies and whether they are paused.
    Kinds,
    /// Pause a queue (a kind or its queue name): no worker starts its jobs until it is resumed;
    /// jobs already running finish. Every worker obeys at its next fetch.
    Pause {
        queue: String,
        /// Why (shown by `jobs kinds`).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Resume a paused queue.
    Resume { queue: String },
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Push no-op jobs (one by one and batched), drain them with workers, and measure
    /// enqueue rate, processing rate and enqueue-to-start latency.
    Queue(BenchQueueArgs),
    /// Generate a large institution (customers and orders), import it through the real queue,
    /// and print rows/s and peak memory beside PostgreSQL `COPY` of the same rows from CSV.
    Import(BenchImportArgs),
    /// Deliver greetings through workers that keep being SIGKILLed, on a PostgreSQL cluster of
    /// its own that is restarted once, and count what a webhook receiver got: delivered once,
    /// twice, lost, flagged uncertain.
    Faults(BenchFaultsArgs),
    /// Import a large institution with ClickHouse configured, then time the projection's
    /// catch-up beside clickhouse-client inserting the same rows as TSV, and the dashboard's
    /// answer time from ClickHouse. Needs PostgreSQL (DATABASE_URL) and CLICKHOUSE_URL.
    Clickhouse(BenchClickhouseArgs),
    /// Import a large institution, then time vector search's full resync (points/s, embedding
    /// included) beside one bulk upsert of the same prepared points into the embedded engine,
    /// and its search latency (p50/p99). Uses a fresh vector folder of its own.
    Vectors(BenchVectorsArgs),
    /// Import a large institution, then time the embedded relation graph's full resync
    /// (edges/s) and its queries (p50/p99): relations to depth 2, customers sharing a doctor,
    /// "who had X also had Y".
    Graph(BenchGraphArgs),
    /// The REST API under load: the customers list of a large institution at a fixed request
    /// rate (latency percentiles), and the dashboard's answer time through HTTP.
    Api(BenchApiArgs),
    /// The greeting pipeline (scan, LLM, compliance check, save, send) against an LLM on
    /// 127.0.0.1 that answers after a fixed delay: greetings/s beside the bound that
    /// concurrency and delay allow.
    Greetings(BenchGreetingsArgs),
    /// Import a large institution, then time the daily birthday scan's candidate query
    /// (p50/p99) over windows spread across the year.
    Scan(BenchScanArgs),
    /// Run many no-op jobs through the queue, then report the job table's size, the
    /// monitoring reads over it (queue depths, a /metrics scrape), and what jobs.prune and a
    /// VACUUM free.
    JobsTable(BenchJobsTableArgs),
}

#[derive(Debug, Args)]
pub struct BenchJobsTableArgs {
    /// Jobs to run.
    #[arg(long, default_value_t = 1_000_000)]
    pub jobs: usize,
}

#[derive(Debug, Clone, Args)]
pub struct BenchScanArgs {
    /// Customers of the generated institution (their birthdays cover the year evenly).
    #[arg(long, default_value_t = 1_000_000)]
    pub customers: usize,
    /// Orders of the generated institution (one to three items each).
    #[arg(long, default_value_t = 1_000_000)]
    pub orders: usize,
    /// Days ahead, as `reminders.days_ahead`: the window is today and this many days after.
    #[arg(long, default_value_t = 7)]
    pub days: u32,
    /// Windows to time, spread over the year.
    #[arg(long, default_value_t = 50)]
    pub runs: usize,
    /// Time the database as an earlier run left it (its customers already imported) instead of
    /// generating and importing them again.
    #[arg(long)]
    pub reuse: bool,
}

#[derive(Debug, Clone, Args)]
pub struct BenchGreetingsArgs {
    /// Customers with a birthday in the next days, one greeting each.
    #[arg(long, default_value_t = 3000)]
    pub revisits: usize,
    /// How long the LLM takes to answer each request.
    #[arg(long, default_value_t = 200)]
    pub llm_delay_ms: u64,
    /// LLM calls at a time (`llm.max_concurrent_calls`): the bound is this over the delay.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Greeting and send jobs at a time; more than `--concurrency`, so that a job's database
    /// work overlaps the other jobs' LLM calls. Default: twice `--concurrency`.
    #[arg(long)]
    pub job_concurrency: Option<usize>,
    /// Database connections. Default: twice the jobs plus 8 on PostgreSQL, so that no handler
    /// waits for one; 8 on SQLite, whose single writer makes more connections only contend for
    /// its lock.
    #[arg(long)]
    pub pool: Option<u32>,
    /// Give up after this long.
    #[arg(long, default_value_t = 600)]
    pub timeout_secs: u64,
}

#[derive(Debug, Clone, Args)]
pub struct BenchApiArgs {
    /// Customers of the generated institution (when it is not in the database yet).
    #[arg(long, default_value_t = 300_000)]
    pub customers: usize,
    /// Orders of the generated institution (when it is not in the database yet).
    #[arg(long, default_value_t = 600_000)]
    pub orders: usize,
    /// Requests per second to the customers list.
    #[arg(long, default_value_t = 200)]
    pub rate: u64,
    /// For this many seconds.
    #[arg(long, default_value_t = 30)]
    pub seconds: u64,
    /// Dashboard requests to time after the first.
    #[arg(long, default_value_t = 20)]
    pub dashboard_runs: usize,
}

#[derive(Debug, Clone, Args)]
pub struct BenchClickhouseArgs {
    /// Customers of the generated institution.
    #[arg(long, default_value_t = 300_000)]
    pub customers: usize,
    /// Orders of the generated institution (one to three items each).
    #[arg(long, default_value_t = 600_000)]
    pub orders: usize,
    /// Dashboard queries to time.
    #[arg(long, default_value_t = 20)]
    pub dashboard_runs: usize,
}

#[derive(Debug, Clone, Args)]
pub struct BenchVectorsArgs {
    /// Customers of the generated institution.
    #[arg(long, default_value_t = 300_000)]
    pub customers: usize,
    /// Orders of the generated institution (one to three items each).
    #[arg(long, default_value_t = 300_000)]
    pub orders: usize,
    /// Searches to time.
    #[arg(long, default_value_t = 1000)]
    pub queries: usize,
}

#[derive(Debug, Clone, Args)]
pub struct BenchGraphArgs {
    /// Customers of the generated institution.
    #[arg(long, default_value_t = 300_000)]
    pub customers: usize,
    /// Orders of the generated institution (one to three items each).
    #[arg(long, default_value_t = 300_000)]
    pub orders: usize,
    /// Depth-2 relation queries to time.
    #[arg(long, default_value_t = 1000)]
    pub queries: usize,
}

#[derive(Debug, Clone, Args)]
pub struct BenchFaultsArgs {
    /// Revisits (customers with a birthday in the next days) to deliver.
    #[arg(long, default_value_t = 1000)]
    pub revisits: usize,
    /// Worker processes (at least 2).
    #[arg(long, default_value_t = 3)]
    pub workers: usize,
    /// The receiver answers after this long, so that kills also land mid-request.
    #[arg(long, default_value_t = 200)]
    pub receiver_delay_ms: u64,
    /// Restart PostgreSQL this many seconds into the run.
    #[arg(long, default_value_t = 5)]
    pub restart_after_secs: u64,
    /// Give up when not settled after this long.
    #[arg(long, default_value_t = 600)]
    pub timeout_secs: u64,
}

#[derive(Debug, Clone, Args)]
pub struct BenchImportArgs {
    /// Customers of the generated institution.
    #[arg(long, default_value_t = 300_000)]
    pub customers: usize,
    /// Orders of the generated institution (one to three items each).
    #[arg(long, default_value_t = 600_000)]
    pub orders: usize,
    /// Folder for the generated files (kept); a temporary folder when not given.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct BenchQueueArgs {
    /// Jobs for the batched-enqueue and drain phases.
    #[arg(long, default_value_t = 20_000)]
    pub jobs: usize,
    /// Jobs enqueued one statement at a time.
    #[arg(long, default_value_t = 2_000)]
    pub single: usize,
    /// Jobs a worker runs at once.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Jobs a worker fetches per query.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Seconds of the latency phase at half the measured throughput.
    #[arg(long, default_value_t = 5)]
    pub latency_secs: u64,
    /// How long each job takes (it sleeps): with 0 the queue's own cost is measured, with more
    /// whether throughput grows with the concurrency as waiting jobs overlap.
    #[arg(long, default_value_t = 0)]
    pub job_ms: u64,
}
