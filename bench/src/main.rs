//! `revisit-bench`: the project's benchmarks, outside the binary clinics run. Each subcommand is
//! a module here; they drive the `revisit` library as the product does (its store, queue,
//! workers, API and projections) on the configured database. docs/benchmarks.md has the results.

mod api;
mod cli;
mod clickhouse;
mod faults;
mod graph;
mod greetings;
mod import;
mod jobs_table;
mod queue;
mod scan;
mod similar;
mod vectors;

use cli::{BenchCommand, Cli};
use revisit::config::Settings;

/// The first argument under which this binary runs as `revisit` (`revisit-bench revisit worker
/// …`): the fault drill's worker processes, which it kills and restarts.
pub const AS_REVISIT: &str = "revisit";

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = if args.get(1).is_some_and(|a| a == AS_REVISIT) {
        let cli = <revisit::cli::Cli as clap::Parser>::parse_from(&args[1..]);
        revisit::telemetry::init(&cli.command);
        runtime.block_on(revisit::commands::run(cli))
    } else {
        let cli = Cli::parse_args(args);
        init_logs();
        runtime.block_on(run(cli))
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Benchmarks print their tables on stdout; logs go to stderr at warn (`RUST_LOG` overrides).
fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("warn,sqlx=error,apalis_core=error")
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load(cli.config.as_deref())?;
    match cli.command {
        BenchCommand::Queue(args) => queue::queue(settings, args).await,
        BenchCommand::Import(args) => import::run(settings, args).await,
        BenchCommand::Faults(args) => faults::run(settings, args).await,
        BenchCommand::Api(args) => api::run(settings, args).await,
        BenchCommand::Greetings(args) => greetings::run(settings, args).await,
        BenchCommand::Clickhouse(args) => clickhouse::run(settings, args).await,
        BenchCommand::Vectors(args) => vectors::run(settings, args).await,
        BenchCommand::Graph(args) => graph::run(settings, args).await,
        BenchCommand::Similar(args) => similar::run(settings, args).await,
        BenchCommand::Scan(args) => scan::run(settings, args).await,
        BenchCommand::JobsTable(args) => jobs_table::run(settings, args).await,
    }
}
