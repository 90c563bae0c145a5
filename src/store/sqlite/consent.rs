//! Suppressions and staff approval on SQLite: the same operations as
//! `store::postgres::consent`, with `json_each` for `= ANY` and subqueries for `UPDATE … FROM`.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use revisit_jobs::MessageSend;

use super::{SqliteStore, begin_write, jobs, json, ts};
use crate::{
    domain::consent::Source,
    store::{
        NewJob, REVISIT_VIEW_SELECT, RevisitView, StoreResult,
        consent::{Consent, Decided, Suppression},
    },
};

/// The waiting revisits named by `?1` (a JSON list of ids; all when empty) of institution `?2`
/// (any when NULL).
const WAITING: &str = "SELECT r.id FROM revisits r JOIN customers c ON c.id = r.customer_id
     JOIN institutions i ON i.id = c.institution_id
     WHERE r.approval = 'pending' AND r.status = 'generated'
       AND (json_array_length(?1) = 0 OR r.id IN (SELECT value FROM json_each(?1)))
       AND (?2 IS NULL OR i.code = ?2)";

#[async_trait]
impl Consent for SqliteStore {
    async fn suppress(
        &self,
        phone: &str,
        channel: &str,
        source: Source,
        reason: Option<&str>,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO suppressions (phone, channel, source, reason) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (phone, channel) DO NOTHING",
        )
        .bind(phone)
        .bind(channel)
        .bind(source.as_str())
        .bind(reason)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn unsuppress(&self, phone: &str, channel: Option<&str>) -> StoreResult<u64> {
        let done = sqlx::query(
            "DELETE FROM suppressions WHERE phone = ?1 AND (?2 IS NULL OR channel = ?2)",
        )
        .bind(phone)
        .bind(channel)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    async fn suppressions(&self, phone: Option<&str>, limit: i64) -> StoreResult<Vec<Suppression>> {
        Ok(sqlx::query_as(
            "SELECT phone, channel, source, reason, created_at FROM suppressions
             WHERE ?1 IS NULL OR phone = ?1 ORDER BY created_at DESC, phone LIMIT ?2",
        )
        .bind(phone)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn awaiting_approval(
        &self,
        institution: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<RevisitView>> {
        let rows: Vec<RevisitView> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{REVISIT_VIEW_SELECT}
             WHERE r.approval = 'pending' AND r.status = 'generated'
               AND (?1 IS NULL OR i.code = ?1)
             ORDER BY r.id LIMIT ?2"
        )))
        .bind(institution)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(RevisitView::masked).collect())
    }

    async fn approve(
        &self,
        ids: &[i64],
        institution: Option<&str>,
        by: &str,
        send_at: &HashMap<String, DateTime<Utc>>,
        send_max_attempts: i32,
    ) -> StoreResult<Decided> {
        let mut tx = begin_write(&self.pool).await?;
        let mut approved: Vec<(i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE revisits SET approval = 'approved', approved_by = ?3, approved_at = ?4,
                 updated_at = ?4
             WHERE id IN ({WAITING})
             RETURNING id, (SELECT i.code FROM customers c
                            JOIN institutions i ON i.id = c.institution_id
                            WHERE c.id = revisits.customer_id)"
        )))
        .bind(json(&ids))
        .bind(institution)
        .bind(by)
        .bind(ts(Utc::now()))
        .fetch_all(&mut *tx)
        .await?;
        approved.sort_unstable();
        for (id, institution) in &approved {
            let mut send =
                NewJob::for_revisit(&MessageSend { revisit_id: *id }, send_max_attempts, *id);
            send.run_at = send_at.get(institution).copied();
            jobs::insert(&mut tx, &send).await?;
        }
        tx.commit().await?;
        Ok(Decided {
            ids: approved.into_iter().map(|(id, _)| id).collect(),
        })
    }

    async fn reject(
        &self,
        ids: &[i64],
        institution: Option<&str>,
        by: &str,
        reason: &str,
    ) -> StoreResult<Decided> {
        let mut tx = begin_write(&self.pool).await?;
        let mut rejected: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "UPDATE revisits SET approval = 'rejected', approved_by = ?3, approved_at = ?4,
                 status = 'skipped', last_error = ?5, updated_at = ?4
             WHERE id IN ({WAITING})
             RETURNING id"
        )))
        .bind(json(&ids))
        .bind(institution)
        .bind(by)
        .bind(ts(Utc::now()))
        .bind(reason)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rejected.sort_unstable();
        Ok(Decided { ids: rejected })
    }
}
