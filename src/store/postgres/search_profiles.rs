//! Vector search's reads of customers on PostgreSQL (see [`crate::store::search_profiles`]).

use async_trait::async_trait;

use super::PgStore;
use crate::{
    domain::snapshot::SearchProfile,
    store::{
        StoreResult,
        search_profiles::{
            BOUGHT_SQL, BoughtRow, ProfileRow, SearchProfiles, attach_bought, bought_by_code_sql,
            profile,
        },
    },
};

#[async_trait]
impl SearchProfiles for PgStore {
    async fn search_profiles(&self, customer_ids: &[i64]) -> StoreResult<Vec<SearchProfile>> {
        if customer_ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<ProfileRow<Vec<String>>> = sqlx::query_as(
            "SELECT id, code, institution_id, vip_level, tags, opted_out
             FROM customers WHERE id = ANY($1) ORDER BY id",
        )
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
        let row = sqlx::query_as::<_, ProfileRow<Vec<String>>>(
            "SELECT id, code, institution_id, vip_level, tags, opted_out
             FROM customers WHERE code = $1",
        )
        .bind(code)
        .fetch_optional(&self.pool);
        let bought_sql = bought_by_code_sql("$1");
        let bought = sqlx::query_as::<_, BoughtRow>(sqlx::AssertSqlSafe(bought_sql.as_str()))
            .bind(code)
            .fetch_all(&self.pool);
        let (row, bought) = tokio::try_join!(row, bought)?;
        Ok(row.map(|row| {
            let mut profiles = [profile(row)];
            attach_bought(&mut profiles, bought);
            let [p] = profiles;
            p
        }))
    }

    async fn customer_id_of(&self, code: &str) -> StoreResult<Option<i64>> {
        sqlx::query_scalar("SELECT id FROM customers WHERE code = $1")
            .bind(code)
            .fetch_optional(&self.pool)
            .await
    }
}
