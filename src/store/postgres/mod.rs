//! The PostgreSQL store: the chain's source of truth. Consumption history is partitioned by
//! institution; the job queue is apalis-postgres's `apalis.jobs`.

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
mod setup;
mod tasks;

use async_trait::async_trait;
use chrono::NaiveDate;
use revisit_jobs::{ImportFile, Job};
use sqlx::PgPool;

pub use setup::{
    DbError, MIGRATIONS_TABLE, connect_url, create_database_if_missing, database_name,
    drop_database, migrate,
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

#[derive(Clone)]
pub struct PgStore {
    pub pool: PgPool,
}

impl PgStore {
    /// Connects to the configured database and applies the migrations.
    pub async fn open(settings: &Settings) -> Result<Self, DbError> {
        let pool = connect_url(
            &settings.database.url,
            settings
                .database
                .pool_size
                .unwrap_or(settings.database.max_connections),
            settings.database.application_name,
        )
        .await?;
        migrate(&pool).await?;
        Ok(Self { pool })
    }
}

#[async_trait]
impl Repository for PgStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn version(&self) -> StoreResult<String> {
        let v: String = sqlx::query_scalar("SELECT version()")
            .fetch_one(&self.pool)
            .await?;
        Ok(v.split(" on ").next().unwrap_or(&v).to_owned())
    }

    async fn schema_current(&self) -> StoreResult<bool> {
        Ok(setup::schema_current(&self.pool).await?)
    }

    async fn connection_room(
        &self,
    ) -> StoreResult<Option<crate::store::connection_budget::ServerRoom>> {
        Ok(setup::connection_room(&self.pool).await.map(Some)?)
    }

    async fn refresh_statistics(&self) -> StoreResult<()> {
        // VACUUM too: index-only scans need the visibility map it sets.
        Ok(sqlx::query("VACUUM (ANALYZE)")
            .execute(&self.pool)
            .await
            .map(|_| ())?)
    }
}
