//! API tokens on SQLite.

use async_trait::async_trait;

use super::SqliteStore;
use crate::store::{
    StoreResult,
    access::{
        Access, NewToken, Principal, PrincipalTuple, TokenRow, TokenTuple, principal, token_row,
    },
};

#[async_trait]
impl Access for SqliteStore {
    async fn create_token(&self, t: &NewToken) -> StoreResult<i64> {
        // Stepped to the end so that it is committed before the secret is handed out (see
        // `jobs::insert`).
        sqlx::query_scalar::<_, i64>(
            "INSERT INTO api_tokens (token_hash, prefix, role, institution_id, label, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5,
                     strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+' || ?6 || ' days')) RETURNING id",
        )
        .bind(&t.hash)
        .bind(&t.prefix)
        .bind(t.role.as_str())
        .bind(t.institution_id)
        .bind(&t.label)
        .bind(t.expires_in_days.map(|d| d as i32))
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| sqlx::Error::RowNotFound.into())
    }

    async fn token_principal(&self, hash: &str) -> StoreResult<Option<Principal>> {
        let row: Option<PrincipalTuple> = sqlx::query_as(
            "SELECT t.id, t.role, t.institution_id, i.code, t.last_used_at
             FROM api_tokens t LEFT JOIN institutions i ON i.id = t.institution_id
             WHERE t.token_hash = ?1 AND t.revoked_at IS NULL
               AND (t.expires_at IS NULL OR t.expires_at > strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.and_then(principal))
    }

    async fn touch_token(&self, id: i64) -> StoreResult<()> {
        Ok(sqlx::query("UPDATE api_tokens SET last_used_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map(|_| ())?)
    }

    async fn list_tokens(&self) -> StoreResult<Vec<TokenRow>> {
        let rows: Vec<TokenTuple> = sqlx::query_as(
            "SELECT t.id, t.prefix, t.role, i.code, t.label, t.created_at, t.last_used_at,
                    t.revoked_at, t.expires_at
             FROM api_tokens t LEFT JOIN institutions i ON i.id = t.institution_id
             ORDER BY t.id DESC",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(token_row).collect())
    }

    async fn revoke_token(&self, id: i64) -> StoreResult<bool> {
        Ok(sqlx::query(
            "UPDATE api_tokens SET revoked_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?1 AND revoked_at IS NULL",
        )
        .bind(id)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1)
    }
}
