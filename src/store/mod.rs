//! The primary store, by concern: PostgreSQL for a chain, SQLite for a single clinic or a
//! laptop, chosen by the database URL (`postgres://…` or `sqlite://…`). Each concern is a trait
//! in a file of its own (`jobs.rs`, `imports.rs`, `revisits.rs`, …) with its rows and results;
//! each engine implements it in its folder's file of the same concern (`postgres/`, `sqlite/`).
//! [`Repository`] is their sum: handlers, cron producers and commands see only it.
//! docs/architecture.md lists the concerns.
//!
//! Operations are at the level of the work they do ("import this file and enqueue the next one",
//! "save this greeting and enqueue its sending"), so each implementation keeps its writes and the
//! jobs they cause in one transaction of its own database.

pub mod access;
pub mod broadcasts;
pub mod change_capture;
mod codec;
pub mod connection_budget;
pub mod consent;
pub mod directory;
pub mod directory_rules;
pub mod error;
pub mod followups;
mod import_rules;
pub mod imports;
pub mod jobs;
pub mod postgres;
pub mod projection_rules;
pub mod queue_control;
pub mod rate_limits;
pub mod reports;
pub mod revisits;
pub mod search_profiles;
pub mod sending_switch;
pub mod sqlite;
pub mod tasks;
pub mod worker_queue;

use std::sync::Arc;

use async_trait::async_trait;
use revisit_jobs::Job;

pub use error::{StoreError, StoreErrorKind, StoreResult};
// The rows and results of each concern, where callers have always found them.
pub use change_capture::{Dispatched, ProjectionLag, SyncPage};
pub use imports::*;
pub use jobs::*;
pub use reports::{DailyReport, HealthRecord, InstitutionDay};
pub use revisits::*;

use crate::config::{Backend, Settings};

/// Everything the application asks of its primary store: the concerns, and what is about the
/// database itself (its engine, version, schema and connections).
#[async_trait]
pub trait Repository:
    jobs::Jobs
    + imports::Imports
    + revisits::Revisits
    + reports::Reports
    + change_capture::ChangeCapture
    + directory::Directory
    + access::Access
    + broadcasts::Broadcasts
    + consent::Consent
    + followups::Followups
    + queue_control::QueueControl
    + rate_limits::RateLimits
    + search_profiles::SearchProfiles
    + sending_switch::SendingSwitch
    + tasks::Tasks
    + Send
    + Sync
{
    fn backend(&self) -> Backend;
    /// Server or library version, for `revisit check`.
    async fn version(&self) -> StoreResult<String>;
    /// Whether every migration this build carries is applied (`/health/ready`).
    async fn schema_current(&self) -> StoreResult<bool>;
    /// The server's connections: its limit and what is open now (`None`: SQLite, no server).
    async fn connection_room(&self) -> StoreResult<Option<connection_budget::ServerRoom>> {
        Ok(None)
    }
    /// Brings the planner's statistics (and on PostgreSQL the visibility map) up to date, as
    /// autovacuum would some time after a large load: the benchmarks run it after their import.
    async fn refresh_statistics(&self) -> StoreResult<()>;
}

/// The concrete pool, for apalis's storages (the workers fetch jobs through them).
#[derive(Clone)]
pub enum DbPool {
    Postgres(sqlx::PgPool),
    Sqlite(sqlx::SqlitePool),
}

/// An opened database: the repository and its pool.
pub struct Database {
    pub repo: Arc<dyn Repository>,
    pub pool: DbPool,
}

/// Connects to the configured database and applies the migrations.
pub async fn open(settings: &Settings) -> anyhow::Result<Database> {
    Ok(match settings.backend() {
        Backend::Postgres => {
            let s = postgres::PgStore::open(settings).await?;
            Database {
                pool: DbPool::Postgres(s.pool.clone()),
                repo: Arc::new(s),
            }
        }
        Backend::Sqlite => {
            let s = sqlite::SqliteStore::open(settings).await?;
            Database {
                pool: DbPool::Sqlite(s.pool.clone()),
                repo: Arc::new(s),
            }
        }
    })
}

/// Why [`open`] failed, once and in Chinese, with what to do: the layers between the driver
/// and here each repeat their cause, which a reader needs only once.
pub fn open_error_in_words(e: &anyhow::Error, url: &str) -> String {
    let name = database_name(url);
    let sqlx = e.chain().find_map(|c| c.downcast_ref::<sqlx::Error>());
    let why = match sqlx {
        Some(sqlx::Error::Database(db)) if db.code().as_deref() == Some("3D000") => {
            format!("数据库 {name} 不存在：请先运行 revisit init（会创建它）")
        }
        Some(sqlx::Error::Database(db)) if db.code().as_deref() == Some("28P01") => {
            "用户名或密码不对：请检查 DATABASE_URL".to_owned()
        }
        Some(sqlx::Error::Database(db)) if db.code().as_deref() == Some("53300") => {
            "数据库服务器的连接数已满：见 README 的数据库连接预算，或运行 revisit check".to_owned()
        }
        Some(sqlx::Error::PoolTimedOut) | Some(sqlx::Error::Io(_)) => {
            "连接不上数据库服务器：它在运行吗？地址和端口对吗？".to_owned()
        }
        Some(sqlx::Error::Database(db)) => format!("数据库拒绝了连接：{}", db.message()),
        _ => e
            .chain()
            .last()
            .map(ToString::to_string)
            .unwrap_or_default(),
    };
    format!("无法打开数据库 {}：{why}", crate::config::redact_url(url))
}

/// Inserts a job of kind `J` with the configured policy.
pub async fn enqueue<J: Job>(
    repo: &dyn Repository,
    settings: &Settings,
    args: &J,
    key: Option<String>,
) -> StoreResult<Option<String>> {
    repo.enqueue(NewJob::of(settings, args, key)).await
}

/// Creates the database when it does not exist. Returns whether it did.
pub async fn create_if_missing(url: &str) -> anyhow::Result<bool> {
    match Backend::of_url(url) {
        Some(Backend::Postgres) => Ok(postgres::create_database_if_missing(url).await?),
        Some(Backend::Sqlite) => sqlite::create_if_missing(url),
        None => anyhow::bail!("不支持的数据库地址：应为 postgres://… 或 sqlite://…"),
    }
}

/// Drops the database and everything in it.
pub async fn drop_database(url: &str) -> anyhow::Result<()> {
    match Backend::of_url(url) {
        Some(Backend::Postgres) => Ok(postgres::drop_database(url).await?),
        Some(Backend::Sqlite) => sqlite::remove(url),
        None => anyhow::bail!("不支持的数据库地址：应为 postgres://… 或 sqlite://…"),
    }
}

/// The database's name (or file), for messages.
pub fn database_name(url: &str) -> String {
    match Backend::of_url(url) {
        Some(Backend::Postgres) => postgres::database_name(url).unwrap_or_default(),
        Some(Backend::Sqlite) => sqlite::file_path(url).display().to_string(),
        None => url.to_owned(),
    }
}
