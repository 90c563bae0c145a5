//! Logging, set up once. Daemons log at info; one-shot commands at warn so that their own
//! output stays readable. `RUST_LOG` overrides both. Logs never carry unmasked phones or names:
//! handlers log ids and masked values only (see [`crate::domain::privacy`]).

use tracing_subscriber::EnvFilter;

use crate::cli::Command;

pub fn init(command: &Command) {
    let default = match command {
        Command::Worker { .. } => {
            "info,sqlx=warn,apalis=warn,apalis_core=warn,apalis_postgres=warn"
        }
        _ => "warn,sqlx=error,apalis_core=error",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
