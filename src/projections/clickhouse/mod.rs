//! The analytics projection on ClickHouse, through the `clickhouse` crate over HTTP.
//!
//! Dimension tables (institutions, doctors, projects, products, customers), orders with their
//! items as the facts, and revisits with the times of their steps. Every table is a
//! `ReplacingMergeTree(version)`: a sync job writes the current state of some entities with its
//! version, and of the rows of one key the highest version wins, so a late or repeated job
//! never overwrites newer data. Queries read with `FINAL`.
//!
//! The schema keeps to what ClickHouse 18.16 (Debian's package, the one tested) and current
//! releases both accept: no `DateTime64`, `LowCardinality`, `TTL` or `IF NOT EXISTS` on columns.

pub mod analytics;
pub mod rows;

use async_trait::async_trait;
use clickhouse::Client;
use revisit_jobs::ProjectionName;

use super::Projection;
use crate::{config::ClickhouseSettings, domain::snapshot::Snapshots};

/// The tables, in creation order, with their definitions (`{db}` is the database).
const TABLES: &[(&str, &str)] = &[
    (
        "institutions",
        "CREATE TABLE IF NOT EXISTS {db}.institutions (
             id Int64, code String, name String, status String, version UInt64
         ) ENGINE = ReplacingMergeTree(version) ORDER BY id",
    ),
    (
        "doctors",
        "CREATE TABLE IF NOT EXISTS {db}.doctors (
             id Int64, code String, institution_id Nullable(Int64), name String,
             title Nullable(String), status String, version UInt64
         ) ENGINE = ReplacingMergeTree(version) ORDER BY id",
    ),
    (
        "projects",
        "CREATE TABLE IF NOT EXISTS {db}.projects (
             id Int64, code String, name String, category Nullable(String),
             standard_price_cents Nullable(Int64), cycle_days Nullable(Int32), status String,
             version UInt64
         ) ENGINE = ReplacingMergeTree(version) ORDER BY id",
    ),
    (
        "products",
        "CREATE TABLE IF NOT EXISTS {db}.products (
             id Int64, code String, name String, category Nullable(String),
             brand Nullable(String), price_cents Nullable(Int64), status String, version UInt64
         ) ENGINE = ReplacingMergeTree(version) ORDER BY id",
    ),
    (
        "customers",
        "CREATE TABLE IF NOT EXISTS {db}.customers (
             id Int64, code String, institution_id Int64, person_id Int64,
             gender Nullable(String), birth_year Nullable(Int32), vip_level Nullable(String),
             source Nullable(String), opted_out UInt8, created_at DateTime, version UInt64
         ) ENGINE = ReplacingMergeTree(version) ORDER BY id",
    ),
    (
        "orders",
        "CREATE TABLE IF NOT EXISTS {db}.orders (
             institution_id Int64, order_number String, customer_id Int64, order_date Date,
             total_amount_cents Int64, payment_method Nullable(String), status String,
             item_line_no Array(Int32), item_type Array(String), item_code Array(String),
             item_quantity Array(Int32), item_actual_price_cents Array(Int64),
             item_doctor_code Array(String), version UInt64
         ) ENGINE = ReplacingMergeTree(version) ORDER BY (institution_id, order_number)",
    ),
    (
        "revisits",
        "CREATE TABLE IF NOT EXISTS {db}.revisits (
             id Int64, customer_id Int64, institution_id Int64, occasion String,
             occasion_date Date, test_mode UInt8, status String, generated_by Nullable(String),
             created_at DateTime, generated_at Nullable(DateTime), sent_at Nullable(DateTime),
             updated_at DateTime, version UInt64
         ) ENGINE = ReplacingMergeTree(version) ORDER BY id",
    ),
];

/// The ClickHouse projection and its client.
#[derive(Clone)]
pub struct ClickhouseStore {
    client: Client,
    database: String,
}

impl ClickhouseStore {
    pub fn new(settings: &ClickhouseSettings) -> Self {
        let client = Client::default()
            .with_url(settings.url.trim_end_matches('/'))
            .with_user(&settings.user)
            .with_password(settings.password.expose())
            .with_validation(settings.validation);
        Self {
            client,
            database: settings.database.clone(),
        }
    }

    /// The client with the database selected.
    pub fn client(&self) -> Client {
        self.client.clone().with_database(&self.database)
    }

    pub fn database(&self) -> &str {
        &self.database
    }

    /// The tables that do not exist yet (empty: ready).
    pub async fn missing_tables(&self) -> anyhow::Result<Vec<&'static str>> {
        let present: Vec<String> = self
            .client
            .query("SELECT name FROM system.tables WHERE database = ?")
            .bind(self.database.as_str())
            .fetch_all()
            .await?;
        Ok(TABLES
            .iter()
            .map(|(t, _)| *t)
            .filter(|t| !present.iter().any(|p| p == t))
            .collect())
    }

    async fn insert<T>(&self, table: &str, rows: impl Iterator<Item = T>) -> anyhow::Result<()>
    where
        T: clickhouse::RowOwned + clickhouse::RowWrite,
    {
        let mut insert = self.client().insert::<T>(table).await?;
        for row in rows {
            insert.write(&row).await?;
        }
        insert.end().await?;
        Ok(())
    }
}

#[async_trait]
impl Projection for ClickhouseStore {
    fn name(&self) -> ProjectionName {
        ProjectionName::Clickhouse
    }

    async fn version(&self) -> anyhow::Result<String> {
        Ok(self
            .client
            .query("SELECT version()")
            .fetch_one::<String>()
            .await?)
    }

    async fn init(&self) -> anyhow::Result<()> {
        // The database name is checked at start-up to be a plain identifier.
        self.client
            .query(&format!("CREATE DATABASE IF NOT EXISTS {}", self.database))
            .execute()
            .await?;
        for (_, sql) in TABLES {
            self.client
                .query(&sql.replace("{db}", &self.database))
                .execute()
                .await?;
        }
        Ok(())
    }

    async fn reset(&self) -> anyhow::Result<()> {
        for (table, _) in TABLES {
            self.client
                .query(&format!("DROP TABLE IF EXISTS {}.{table}", self.database))
                .execute()
                .await?;
        }
        self.init().await
    }

    async fn apply(&self, snapshots: &Snapshots, version: i64) -> anyhow::Result<()> {
        let v = version.max(0) as u64;
        if snapshots.is_empty() {
            return Ok(());
        }
        match snapshots {
            Snapshots::Institutions(s) => {
                self.insert("institutions", s.iter().map(|x| rows::institution(x, v)))
                    .await
            }
            Snapshots::Doctors(s) => {
                self.insert("doctors", s.iter().map(|x| rows::doctor(x, v)))
                    .await
            }
            Snapshots::Projects(s) => {
                self.insert("projects", s.iter().map(|x| rows::project(x, v)))
                    .await
            }
            Snapshots::Products(s) => {
                self.insert("products", s.iter().map(|x| rows::product(x, v)))
                    .await
            }
            Snapshots::Customers(s) => {
                self.insert("customers", s.iter().map(|x| rows::customer(x, v)))
                    .await
            }
            Snapshots::Orders(s) => {
                self.insert("orders", s.iter().map(|x| rows::order(x, v)))
                    .await
            }
            Snapshots::Revisits(s) => {
                self.insert("revisits", s.iter().map(|x| rows::revisit(x, v)))
                    .await
            }
            // Vector search's input; this projection reads customers as snapshots.
            Snapshots::SearchProfiles(_) => Ok(()),
        }
    }
}
