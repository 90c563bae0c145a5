//! One module per command: what the CLI does with its arguments.

mod consent;
mod dashboard;
mod demo;
mod graph;
mod import;
mod init;
mod jobs;
mod lint;
mod reminders;
mod sending;
mod serve;
mod sync;
mod tokens;
mod vectors;
pub mod wait;

use std::sync::Arc;

use crate::{
    app::App,
    cli::{Cli, Command},
    config::Settings,
    queue::worker::{PoolOptions, run_pool, shutdown_signal},
    store::{
        self,
        connection_budget::{Budget, Role},
    },
};

pub use demo::demo;

/// Exit code of a command that ran but did not do all it was asked: `import --wait` with files
/// refused or records rejected, `run-reminders --wait` with revisits that failed. Scripts tell
/// it from 1 (the command itself failed) and 2 (bad arguments).
pub const EXIT_INCOMPLETE: u8 = 3;

/// Asks at a terminal for `answer` to be typed after `question`. Without a terminal (a script,
/// CI) there is no one to confirm: `without_terminal` is said, and the answer is no.
fn typed_at_terminal(question: &str, answer: &str, without_terminal: &str) -> anyhow::Result<bool> {
    use std::io::{BufRead, IsTerminal, Write};
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        eprintln!("{without_terminal}");
        return Ok(false);
    }
    print!("{question}");
    std::io::stdout().flush()?;
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    Ok(line.trim() == answer)
}

/// The command ran, and this part of what it was asked did not happen (exit code
/// [`EXIT_INCOMPLETE`]); the message says what, in Chinese.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Incomplete(pub String);

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load(cli.config.as_deref())?;
    match cli.command {
        Command::Init {
            force,
            yes,
            skip_clickhouse,
            skip_graph,
        } => init::init(&settings, force, yes, skip_clickhouse, skip_graph).await,
        Command::Check => init::check(&settings).await,
        Command::Import { path, wait } => {
            import::import(&connect(settings).await?, &path, wait).await
        }
        Command::RunReminders {
            kind,
            institution,
            test_mode,
            today,
            wait,
        } => {
            let occasion =
                crate::domain::followup::Occasion::parse(&kind).expect("clap checks the kind");
            reminders::run_reminders(
                &connect(settings).await?,
                occasion,
                revisit_jobs::ScanScope {
                    institution,
                    test_mode,
                    today,
                },
                wait,
            )
            .await
        }
        Command::Serve { addr } => {
            let app = connect_as(settings, Role::Api).await?;
            let addr = serve::addr(&app, addr.as_deref())?;
            serve::serve(app, addr).await
        }
        Command::Lint { text, institution } => lint::lint(&settings, &text, institution.as_deref()),
        Command::Sending(cmd) => sending::sending(&*connect(settings).await?, cmd).await,
        Command::Tokens(cmd) => tokens::tokens(&*connect(settings).await?, cmd).await,
        Command::Consent(cmd) => consent::consent(&*connect(settings).await?, cmd).await,
        Command::Approvals(cmd) => consent::approvals(&*connect(settings).await?, cmd).await,
        Command::Graph(cmd) => graph::graph(&connect(settings).await?, cmd).await,
        Command::Tasks(cmd) => consent::tasks(&*connect(settings).await?, cmd).await,
        Command::Worker {
            queues,
            no_cron,
            serve: api_addr,
            metrics,
        } => {
            let queues = queues
                .iter()
                .map(|q| {
                    revisit_jobs::KindInfo::find(q)
                        .map(|k| k.queue)
                        .ok_or_else(|| {
                            anyhow::anyhow!(
                                "没有名为 {q} 的队列；可用的队列见 `revisit jobs kinds`"
                            )
                        })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let role = Role::Worker {
                queues: &queues,
                api: api_addr.is_some(),
            };
            let app = connect_as(settings, role).await?;
            let options = PoolOptions {
                queues,
                cron: !no_cron,
            };
            match api_addr {
                Some(a) => {
                    let addr = serve::addr(&app, Some(&a))?;
                    serve::worker_and_api(app, options, addr).await
                }
                None => {
                    let probes = metrics
                        .filter(|a| !a.is_empty())
                        .unwrap_or_else(|| app.settings.worker.metrics_addr.clone());
                    if probes.is_empty() {
                        run_pool(app, options, shutdown_signal()).await
                    } else {
                        let addr = serve::addr(&app, Some(&probes))?;
                        serve::worker_and_probes(app, options, addr).await
                    }
                }
            }
        }
        Command::Sync {
            store,
            full,
            wait,
            stop,
        } => sync::sync(&connect(settings).await?, &store, full, wait, stop).await,
        Command::Jobs(cmd) => jobs::jobs(&connect(settings).await?, cmd).await,
        Command::Similar {
            customer_code,
            limit,
            json,
        } => {
            vectors::similar(
                &connect(settings).await?,
                &customer_code,
                limit.into(),
                json,
            )
            .await
        }
        Command::Search {
            collection,
            text,
            limit,
            json,
        } => {
            vectors::search(
                &connect(settings).await?,
                &collection,
                &text,
                limit.into(),
                json,
            )
            .await
        }
        Command::Dashboard {
            institution,
            date,
            json,
        } => dashboard::dashboard(&*connect(settings).await?, institution, date, json).await,
        Command::Report { date } => reminders::report(&connect(settings).await?, date).await,
        Command::Demo { data } => demo(settings, &data).await,
    }
}

/// Connects to the configured database as a one-off command, applies migrations, and builds
/// the shared state.
pub async fn connect(settings: Settings) -> anyhow::Result<Arc<App>> {
    connect_as(settings, Role::Command).await
}

/// Connects as a process that runs `role`, opening on PostgreSQL only the connections the role
/// can use ([`Budget`]).
pub async fn connect_as(mut settings: Settings, role: Role<'_>) -> anyhow::Result<Arc<App>> {
    if settings.backend() == crate::config::Backend::Postgres {
        settings.database.pool_size = Some(Budget::of(&settings, role).work);
        settings.database.application_name = Some(role.application_name());
    }
    let db = store::open(&settings)
        .await
        .map_err(|e| anyhow::anyhow!(store::open_error_in_words(&e, &settings.database.url)))?;
    App::new(db, settings)
}
