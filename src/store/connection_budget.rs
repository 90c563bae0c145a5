//! How many PostgreSQL connections one process opens at most, from what it runs.
//!
//! PostgreSQL serves `max_connections` clients in all (100 by default, 3 of them kept for a
//! superuser), and each is a process of its own on the server. A chain runs several worker
//! daemons and the API on one server, so every process opens only what its work can use:
//!
//! | process | connections at most |
//! |---|---|
//! | `revisit worker` | 1 (LISTEN) + 2 (queue statements) + 1 + ⌈jobs ÷ 5⌉ (handlers) |
//! | `revisit serve` | 4 (requests) |
//! | `revisit worker --serve` | the worker's + 4 |
//! | any other command | 2 |
//!
//! where *jobs* is the sum of the concurrency of the queues the worker serves (29 for all of
//! them with the default policies, so 10 connections in all). A handler holds a connection only
//! for its statements, a few milliseconds of a job that waits seconds for the LLM or a gateway,
//! so one connection serves about five running jobs; the one more is for the cron producers.
//! `database.max_connections` caps the handlers' share. Nothing here applies to SQLite, whose
//! connections are a file's, not a server's.

use revisit_jobs::Job;

use crate::config::Settings;

/// Connections of the queue's own statements (fetch, outcomes, heartbeats), all short: a
/// heartbeat may wait a moment behind a fetch and an outcome.
pub const QUEUE_CONNECTIONS: u32 = 2;
/// Connections of the REST API and the console: their statements are short, and a request that
/// finds all four busy waits for one.
pub const API_CONNECTIONS: u32 = 4;
/// Connections of a one-off command (`import`, `jobs list`, …): one statement at a time, and
/// one to follow progress beside it.
pub const COMMAND_CONNECTIONS: u32 = 2;
/// Running jobs one handler connection serves.
pub const JOBS_PER_CONNECTION: u32 = 5;

/// What a process runs, which decides what it may open.
#[derive(Debug, Clone, Copy)]
pub enum Role<'a> {
    /// A one-off command.
    Command,
    /// `revisit serve`.
    Api,
    /// `revisit worker`: these queues (every queue when empty), and the API too when `api`.
    Worker {
        queues: &'a [&'static str],
        api: bool,
    },
}

impl Role<'_> {
    /// The `application_name` its connections carry, so `pg_stat_activity` (and `revisit
    /// check`) tell the processes apart.
    pub fn application_name(&self) -> &'static str {
        match self {
            Self::Command => "revisit",
            Self::Api => "revisit-api",
            Self::Worker { api: false, .. } => "revisit-worker",
            Self::Worker { api: true, .. } => "revisit-worker-api",
        }
    }
}

/// One process's connections, by pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// The LISTEN connection that wakes every queue of a worker.
    pub listen: u32,
    /// The queue's own statements.
    pub queue: u32,
    /// Handlers, requests and commands: the store's pool.
    pub work: u32,
}

impl Budget {
    pub fn of(settings: &Settings, role: Role<'_>) -> Self {
        let cap = settings.database.max_connections.max(2);
        match role {
            Role::Command => Self {
                listen: 0,
                queue: 0,
                work: COMMAND_CONNECTIONS.min(cap),
            },
            Role::Api => Self {
                listen: 0,
                queue: 0,
                work: API_CONNECTIONS.min(cap),
            },
            Role::Worker { queues, api } => {
                let jobs: u32 = revisit_jobs::ALL_KINDS
                    .iter()
                    .filter(|k| served(queues, k.queue))
                    .map(|k| settings.policy(k).concurrency as u32)
                    .sum();
                let handlers = (1 + jobs.div_ceil(JOBS_PER_CONNECTION)).min(cap);
                Self {
                    listen: 1,
                    queue: QUEUE_CONNECTIONS,
                    work: handlers + if api { API_CONNECTIONS } else { 0 },
                }
            }
        }
    }

    /// The most the process opens.
    pub fn total(&self) -> u32 {
        self.listen + self.queue + self.work
    }
}

/// Whether a worker started with `queues` (all but the benchmark's when empty) serves `queue`.
pub fn served(queues: &[&str], queue: &str) -> bool {
    if queues.is_empty() {
        queue != revisit_jobs::Noop::QUEUE
    } else {
        queues.contains(&queue)
    }
}

/// What a PostgreSQL server has room for, as `revisit check` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerRoom {
    pub max_connections: u32,
    /// Kept for superusers (`superuser_reserved_connections`); others cannot use them.
    pub reserved: u32,
    /// Client connections open now, of every database and application.
    pub in_use: u32,
    /// Of those, this deployment's (`application_name` revisit…).
    pub revisit: u32,
}

impl ServerRoom {
    /// Connections an ordinary role can still open.
    pub fn free(&self) -> u32 {
        self.max_connections
            .saturating_sub(self.reserved)
            .saturating_sub(self.in_use)
    }

    /// How many more processes taking `budget` fit.
    pub fn fits(&self, budget: &Budget) -> u32 {
        self.free() / budget.total().max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings::load(None).unwrap()
    }

    #[test]
    fn eight_workers_and_the_api_fit_in_a_default_server() {
        let s = settings();
        let worker = Budget::of(
            &s,
            Role::Worker {
                queues: &[],
                api: false,
            },
        );
        let api = Budget::of(&s, Role::Api);
        assert_eq!(
            worker,
            Budget {
                listen: 1,
                queue: 2,
                work: 7
            }
        );
        assert_eq!(worker.total(), 10);
        // PostgreSQL's defaults: 100, 3 kept for a superuser; and room left for commands,
        // psql and monitoring.
        assert!(8 * worker.total() + api.total() <= 97 - 10);
    }

    #[test]
    fn a_worker_takes_what_its_queues_run() {
        let s = settings();
        let one = Budget::of(
            &s,
            Role::Worker {
                queues: &[revisit_jobs::ImportFile::QUEUE],
                api: false,
            },
        );
        assert_eq!(one.work, 2);
        let greetings = Budget::of(
            &s,
            Role::Worker {
                queues: &[revisit_jobs::GreetingGenerate::QUEUE],
                api: true,
            },
        );
        assert_eq!(greetings.work, 1 + 2 + API_CONNECTIONS);
    }

    #[test]
    fn database_max_connections_caps_the_handlers() {
        let mut s = settings();
        s.database.max_connections = 3;
        let w = Budget::of(
            &s,
            Role::Worker {
                queues: &[],
                api: false,
            },
        );
        assert_eq!(w.work, 3);
        assert_eq!(Budget::of(&s, Role::Command).work, 2);
    }

    #[test]
    fn room_counts_whole_processes() {
        let room = ServerRoom {
            max_connections: 100,
            reserved: 3,
            in_use: 60,
            revisit: 50,
        };
        let w = Budget {
            listen: 1,
            queue: 2,
            work: 7,
        };
        assert_eq!(room.free(), 37);
        assert_eq!(room.fits(&w), 3);
    }
}
