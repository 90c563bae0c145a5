//! Vector search's reads of customers on SQLite (see [`crate::store::search_profiles`]).

use async_trait::async_trait;

use super::{SqliteStore, json};
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

/// A profile row with its tags decoded from their JSON text.
fn tags_decoded((id, code, inst, vip, tags, out): ProfileRow<String>) -> ProfileRow<Vec<String>> {
    let tags = serde_json::from_str(&tags).unwrap_or_default();
    (id, code, inst, vip, tags, out)
}

#[async_trait]
impl SearchProfiles for SqliteStore {
    async fn search_profiles(&self, customer_ids: &[i64]) -> StoreResult<Vec<SearchProfile>> {
        if customer_ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids = json(&customer_ids);
        let rows: Vec<ProfileRow<String>> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{PROFILE_SQL}id IN (SELECT value FROM json_each(?1)) ORDER BY id"
        )))
        .bind(&ids)
        .fetch_all(&self.pool)
        .await?;
        let mut profiles: Vec<SearchProfile> = rows
            .into_iter()
            .map(|row| profile(tags_decoded(row)))
            .collect();
        let bought: Vec<BoughtRow> = sqlx::query_as(sqlx::AssertSqlSafe(
            BOUGHT_SQL.replace("{ids}", "IN (SELECT value FROM json_each(?1))"),
        ))
        .bind(&ids)
        .fetch_all(&self.pool)
        .await?;
        attach_bought(&mut profiles, bought);
        Ok(profiles)
    }

    async fn search_profile_of(&self, code: &str) -> StoreResult<Option<SearchProfile>> {
        let row_sql = format!("{PROFILE_SQL}code = ?1");
        let row = sqlx::query_as::<_, ProfileRow<String>>(sqlx::AssertSqlSafe(row_sql.as_str()))
            .bind(code)
            .fetch_optional(&self.pool);
        let bought_sql = bought_by_code_sql("?1");
        let bought = sqlx::query_as::<_, BoughtRow>(sqlx::AssertSqlSafe(bought_sql.as_str()))
            .bind(code)
            .fetch_all(&self.pool);
        let (row, bought) = tokio::try_join!(row, bought)?;
        Ok(row.map(|row| profile_with_bought(tags_decoded(row), bought)))
    }

    async fn customer_id_of(&self, code: &str) -> StoreResult<Option<i64>> {
        Ok(
            sqlx::query_scalar("SELECT id FROM customers WHERE code = ?1")
                .bind(code)
                .fetch_optional(&self.pool)
                .await?,
        )
    }
}
