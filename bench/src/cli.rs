//! The `revisit-bench` command line: one subcommand a benchmark. Developers read it, so its
//! help is English; staff and IT never see it (it is not in the `revisit` binary).

use std::{ffi::OsString, path::PathBuf};

use clap::{Args, Parser, Subcommand};

/// Revisit's benchmarks, on the database and engines configured as for `revisit` (DATABASE_URL,
/// REVISIT_CONFIG, REVISIT__…). Results and how to read them: docs/benchmarks.md.
#[derive(Debug, Parser)]
#[command(name = "revisit-bench")]
pub struct Cli {
    /// A TOML file over the built-in defaults (also REVISIT_CONFIG), as for `revisit`.
    #[arg(long, global = true, env = "REVISIT_CONFIG")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: BenchCommand,
}

impl Cli {
    /// Reads the command line. A leading `bench` is dropped: the peer benchmark
    /// (`../shared/bench/peers/run.sh`) runs `"$REVISIT_BIN" bench queue …`, and
    /// `REVISIT_BIN=target/release/revisit-bench` serves it as it is.
    pub fn parse_args(args: impl IntoIterator<Item = OsString>) -> Self {
        let mut args: Vec<OsString> = args.into_iter().collect();
        if args.get(1).is_some_and(|a| a == "bench") {
            args.remove(1);
        }
        Self::parse_from(args)
    }
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
    /// How meaningful `similar` is: one institution of planted cohorts (each group shares three
    /// projects, a product and a doctor; tags, VIP levels and care notes are random noise),
    /// synced into vector search; prints precision@5, the share of each customer's five most
    /// similar that come from their own group.
    Similar(BenchSimilarArgs),
}

#[derive(Debug, Args)]
pub struct BenchSimilarArgs {
    /// Groups of customers.
    #[arg(long, default_value_t = 40)]
    pub cohorts: usize,
    /// Customers in each group.
    #[arg(long, default_value_t = 10)]
    pub per_cohort: usize,
    /// Other treatments a customer may also have had, outside the group's (noise).
    #[arg(long, default_value_t = 3)]
    pub noise_items: usize,
    /// Each of a group's treatments by any doctor, rather than the group's own: the groups share
    /// treatments and a product only.
    #[arg(long)]
    pub any_doctor: bool,
    /// The random generator's seed: the same seed, the same data.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
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
