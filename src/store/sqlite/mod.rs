//! The SQLite store: the embedded default, one file and no server. The job queue is
//! apalis-sqlite's `Jobs` table in the same file.
//!
//! Concurrency: WAL (readers never wait for the writer), a busy timeout (a writer waits its turn
//! instead of failing with "database is locked"), and `BEGIN IMMEDIATE` for every transaction
//! that writes, so two transactions never both read and then both try to upgrade to writing
//! (the one deadlock a busy timeout cannot resolve). Switching a file to WAL takes a lock the
//! busy timeout cannot wait for, so it happens once, when the file is not in WAL yet, and not on
//! every connection; likewise migrations (and apalis's `setup()`, which switches to WAL too) run
//! only when one is missing, so opening a store that is in use only reads.
//! Durability: `synchronous = NORMAL`, which in WAL mode loses no committed transaction on a
//! process crash (a power cut may lose the last few). apalis's `setup()` sets
//! `synchronous = OFF`; it runs on a connection of its own that is closed right after, so no
//! connection that serves work has it.

mod access;
mod analytics;
mod broadcasts;
mod consent;
mod customers;
mod directory;
mod followups;
mod import;
pub mod jobs;
mod projections;
mod queue;
mod queue_control;
mod rate_limits;
mod reports;
mod revisits;
mod search_profiles;
mod sending_switch;
mod tasks;

use std::{path::PathBuf, str::FromStr, time::Duration};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use revisit_jobs::{ImportFile, Job};
use sqlx::{
    Sqlite, SqlitePool, Transaction,
    sqlite::{SqliteConnectOptions, SqlitePoolOptions, SqliteSynchronous},
};

use super::*;
use crate::{
    config::{Backend, Settings},
    domain::greeting::GreetingContext,
    domain::{
        birthday::BirthdayWindow,
        dashboard::{DashboardFacts, Window},
    },
};

/// The project's migrations table; apalis-sqlite keeps its own in `_sqlx_migrations`.
pub const MIGRATIONS_TABLE: &str = "revisit_migrations";

/// A timestamp as this store writes it: UTC text that sorts in time order.
pub fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// A list as the JSON text SQLite keeps it in (and `json_each` reads).
fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("serialisable")
}

/// A transaction that holds the write lock from its first statement.
pub async fn begin_write(pool: &SqlitePool) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
    pool.begin_with("BEGIN IMMEDIATE").await
}

/// The file a `sqlite://` URL names.
pub fn file_path(url: &str) -> PathBuf {
    SqliteConnectOptions::from_str(url)
        .map(|o| o.get_filename().to_path_buf())
        .unwrap_or_else(|_| PathBuf::from(url))
}

fn options(url: &str) -> Result<SqliteConnectOptions, sqlx::Error> {
    Ok(SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(30))
        .foreign_keys(true))
}

/// Creates the file (and its folder) when missing. Returns whether it did.
pub fn create_if_missing(url: &str) -> anyhow::Result<bool> {
    let path = file_path(url);
    if path.exists() {
        return Ok(false);
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    Ok(true)
}

/// Deletes the database file and its WAL files.
pub fn remove(url: &str) -> anyhow::Result<()> {
    let path = file_path(url);
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.clone().into_os_string();
        p.push(suffix);
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[derive(Clone)]
pub struct SqliteStore {
    pub pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies missing migrations. Another
    /// process may be using the file: a start that still meets a busy database (two daemons
    /// starting on a new file) waits and tries again.
    pub async fn open(settings: &Settings) -> anyhow::Result<Self> {
        let mut wait = Duration::from_millis(100);
        for _ in 0..10 {
            match Self::try_open(settings).await {
                Err(e) if is_busy(&e) => {
                    tracing::debug!(error = %e, "database busy while opening; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(2));
                }
                other => return other,
            }
        }
        Self::try_open(settings).await
    }

    async fn try_open(settings: &Settings) -> anyhow::Result<Self> {
        let url = &settings.database.url;
        create_if_missing(url)?;
        let pool = SqlitePoolOptions::new()
            .max_connections(settings.database.max_connections)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options(url)?)
            .await?;
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&pool)
            .await?;
        if !mode.eq_ignore_ascii_case("wal") {
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await?;
        }
        let apalis = apalis_sqlite::SqliteStorage::<()>::migrations();
        if !all_applied(&pool, "_sqlx_migrations", &apalis).await? {
            let setup = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options(url)?)
                .await?;
            apalis_sqlite::SqliteStorage::<()>::setup(&setup).await?;
            setup.close().await;
        }
        let ours = migrator();
        if !all_applied(&pool, MIGRATIONS_TABLE, &ours).await? {
            ours.run(&pool).await?;
        }
        Ok(Self { pool })
    }
}

/// The project's own migrations, compiled in, recorded in [`MIGRATIONS_TABLE`].
fn migrator() -> sqlx::migrate::Migrator {
    let mut migrator = sqlx::migrate!("./migrations/sqlite");
    migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
    migrator
}

/// Whether every migration of `migrator` is recorded in `table`.
async fn all_applied(
    pool: &SqlitePool,
    table: &str,
    migrator: &sqlx::migrate::Migrator,
) -> Result<bool, sqlx::Error> {
    let exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
    )
    .bind(table)
    .fetch_one(pool)
    .await?;
    if !exists {
        return Ok(false);
    }
    let sql = format!(
        "SELECT version FROM \"{}\" WHERE success",
        table.replace('"', "")
    );
    let applied: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_all(pool)
        .await?;
    Ok(migrator.iter().all(|m| applied.contains(&m.version)))
}

/// SQLITE_BUSY ("database is locked"), anywhere in an error's chain.
fn is_busy(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<sqlx::Error>()
            .and_then(|e| e.as_database_error())
            .and_then(|d| d.code())
            .is_some_and(|code| code == "5" || code == "517")
    }) || format!("{e:#}").contains("database is locked")
}

#[async_trait]
impl Repository for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn version(&self) -> StoreResult<String> {
        let v: String = sqlx::query_scalar("SELECT sqlite_version()")
            .fetch_one(&self.pool)
            .await?;
        Ok(format!("SQLite {v}"))
    }

    async fn schema_current(&self) -> StoreResult<bool> {
        Ok(all_applied(&self.pool, MIGRATIONS_TABLE, &migrator()).await?)
    }

    async fn refresh_statistics(&self) -> StoreResult<()> {
        Ok(sqlx::query("ANALYZE")
            .execute(&self.pool)
            .await
            .map(|_| ())?)
    }
}
