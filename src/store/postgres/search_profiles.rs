//! Vector search's reads of customers on PostgreSQL (see [`crate::store::search_profiles`]).

use async_trait::async_trait;

use super::PgStore;
use crate::{
    domain::snapshot::SearchProfile,
    store::{
        StoreResult,
        search_profiles::{
            BOUGHT_SQL, BoughtRow, PROFILE_SQL, ProfileRow, SearchProfiles, attach_bought,
            bought_by_code_sql, profile, profile_with_bought,
        },
    },
};

#[async_trait]
impl SearchProfiles for PgStore {
    async fn search_profiles(&self, customer_ids: &[i64]) -> StoreResult<Vec<SearchProfile>> {
        if customer_ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<ProfileRow<Vec<String>>> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{PROFILE_SQL}id = ANY($1) ORDER BY id"
        )))
        .bind(customer_ids)
        .fetch_all(&self.pool)
        .await?;
        let mut profiles: Vec<SearchProfile> = rows.into_iter().map(profile).collect();
        let bought: Vec<BoughtRow> = sqlx::query_as(sqlx::AssertSqlSafe(
            BOUGHT_SQL.replace("{ids}", "= ANY($1)"),
        ))
        .bind(customer_ids)
        .fetch_all(&self.pool)
        .await?;
        attach_bought(&mut profiles, bought);
        Ok(profiles)
    }

    async fn search_profile_of(&self, code: &str) -> StoreResult<Option<SearchProfile>> {
        let row_sql = format!("{PROFILE_SQL}code = $1");
        let row =
            sqlx::query_as::<_, ProfileRow<Vec<String>>>(sqlx::AssertSqlSafe(row_sql.as_str()))
                .bind(code)
                .fetch_optional(&self.pool);
        let bought_sql = bought_by_code_sql("$1");
        let bought = sqlx::query_as::<_, BoughtRow>(sqlx::AssertSqlSafe(bought_sql.as_str()))
            .bind(code)
            .fetch_all(&self.pool);
        let (row, bought) = tokio::try_join!(row, bought)?;
        Ok(row.map(|row| profile_with_bought(row, bought)))
    }

    async fn customer_id_of(&self, code: &str) -> StoreResult<Option<i64>> {
        Ok(
            sqlx::query_scalar("SELECT id FROM customers WHERE code = $1")
                .bind(code)
                .fetch_optional(&self.pool)
                .await?,
        )
    }
}
