//! Connecting to PostgreSQL, creating and dropping the database, migrations.

use std::str::FromStr;

use sqlx::{
    ConnectOptions, Connection, PgConnection, PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};

/// The project's migrations, recorded in their own table so they never collide with
/// apalis's, which live in `apalis._sqlx_migrations` (apalis issues #81, #177, #439).
pub const MIGRATIONS_TABLE: &str = "public.revisit_migrations";

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("job store migrations failed: {0}")]
    JobStore(#[from] apalis_postgres::Error),
    #[error("{0}")]
    Other(String),
}

fn options(url: &str) -> Result<PgConnectOptions, DbError> {
    Ok(PgConnectOptions::from_str(url)?
        // A generic plan for the queue's fetch/ack statements scans a worker's finished rows;
        // custom plans keep completion fast as done rows pile up.
        .options([("plan_cache_mode", "force_custom_plan")])
        .log_statements(tracing::log::LevelFilter::Debug))
}

pub async fn connect_url(
    url: &str,
    max_connections: u32,
    application_name: Option<&str>,
) -> Result<PgPool, DbError> {
    let mut options = options(url)?;
    if let Some(name) = application_name {
        options = options.application_name(name);
    }
    Ok(PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(std::time::Duration::from_secs(10))
        .connect_with(options)
        .await?)
}

/// The project's own migrations, compiled in, recorded in [`MIGRATIONS_TABLE`].
fn migrator() -> sqlx::migrate::Migrator {
    let mut migrator = sqlx::migrate!("./migrations/postgres");
    migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
    migrator
}

/// Applies apalis's job-store migrations and the project's own. Safe to run at every start.
pub async fn migrate(pool: &PgPool) -> Result<(), DbError> {
    apalis_postgres::PostgresStorage::setup(pool).await?;
    migrator().run(pool).await?;
    Ok(())
}

/// The server's `max_connections`, the part kept for superusers, and the client connections
/// open now (all, and this deployment's by `application_name`).
pub async fn connection_room(
    pool: &PgPool,
) -> Result<crate::store::connection_budget::ServerRoom, sqlx::Error> {
    let (max, reserved, in_use, revisit): (i32, i32, i64, i64) = sqlx::query_as(
        "SELECT current_setting('max_connections')::int,
                current_setting('superuser_reserved_connections')::int,
                count(*),
                count(*) FILTER (WHERE application_name LIKE 'revisit%')
           FROM pg_stat_activity
          WHERE backend_type = 'client backend'",
    )
    .fetch_one(pool)
    .await?;
    Ok(crate::store::connection_budget::ServerRoom {
        max_connections: max.max(0) as u32,
        reserved: reserved.max(0) as u32,
        in_use: in_use as u32,
        revisit: revisit as u32,
    })
}

/// Whether every migration this build carries is applied (a readiness check).
pub async fn schema_current(pool: &PgPool) -> Result<bool, sqlx::Error> {
    let applied: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT version FROM {MIGRATIONS_TABLE} WHERE success"
    )))
    .fetch_all(pool)
    .await?;
    Ok(migrator().iter().all(|m| applied.contains(&m.version)))
}

/// Splits a database URL into the server (with the maintenance database) and the database name.
fn server_and_name(url: &str) -> Result<(PgConnectOptions, String), DbError> {
    let opts = options(url)?;
    let name = opts
        .get_database()
        .map(str::to_owned)
        .ok_or_else(|| DbError::Other(format!("database URL names no database: {url}")))?;
    Ok((opts.database("postgres"), name))
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Creates the database named by `url` when it does not exist. Returns whether it created it.
pub async fn create_database_if_missing(url: &str) -> Result<bool, DbError> {
    let (server, name) = server_and_name(url)?;
    let mut conn = PgConnection::connect_with(&server).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut conn)
            .await?;
    if !exists {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE DATABASE {}",
            quote_ident(&name)
        )))
        .execute(&mut conn)
        .await?;
    }
    conn.close().await?;
    Ok(!exists)
}

/// Drops the database named by `url`, disconnecting its sessions. Irreversible.
pub async fn drop_database(url: &str) -> Result<(), DbError> {
    let (server, name) = server_and_name(url)?;
    let mut conn = PgConnection::connect_with(&server).await?;
    // The name is quoted as an identifier; it comes from our own config, not from a request.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
        quote_ident(&name)
    )))
    .execute(&mut conn)
    .await?;
    conn.close().await?;
    Ok(())
}

/// The database name in a URL, for messages.
pub fn database_name(url: &str) -> Option<String> {
    server_and_name(url).ok().map(|(_, n)| n)
}
