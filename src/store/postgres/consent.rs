//! Suppressions and staff approval on PostgreSQL (see [`crate::store::consent`]).

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use revisit_jobs::MessageSend;

use super::{PgStore, jobs};
use crate::{
    domain::consent::Source,
    store::{
        NewJob, REVISIT_VIEW_SELECT, RevisitView, StoreResult,
        consent::{Consent, Decided, Suppression},
    },
};

#[async_trait]
impl Consent for PgStore {
    async fn suppress(
        &self,
        phone: &str,
        channel: &str,
        source: Source,
        reason: Option<&str>,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO suppressions (phone, channel, source, reason) VALUES ($1, $2, $3, $4)
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
            "DELETE FROM suppressions WHERE phone = $1 AND ($2::text IS NULL OR channel = $2)",
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
             WHERE $1::text IS NULL OR phone = $1 ORDER BY created_at DESC, phone LIMIT $2",
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
               AND ($1::text IS NULL OR i.code = $1)
             ORDER BY r.id LIMIT $2"
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
        let mut tx = self.pool.begin().await?;
        let mut approved: Vec<(i64, String)> = sqlx::query_as(
            "UPDATE revisits r SET approval = 'approved', approved_by = $3, approved_at = now(),
                 updated_at = now()
             FROM customers c JOIN institutions i ON i.id = c.institution_id
             WHERE c.id = r.customer_id AND r.approval = 'pending' AND r.status = 'generated'
               AND (cardinality($1::bigint[]) = 0 OR r.id = ANY($1))
               AND ($2::text IS NULL OR i.code = $2)
             RETURNING r.id, i.code",
        )
        .bind(ids)
        .bind(institution)
        .bind(by)
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
        let mut rejected: Vec<i64> = sqlx::query_scalar(
            "UPDATE revisits r SET approval = 'rejected', approved_by = $3, approved_at = now(),
                 status = 'skipped', last_error = $4, updated_at = now()
             FROM customers c JOIN institutions i ON i.id = c.institution_id
             WHERE c.id = r.customer_id AND r.approval = 'pending' AND r.status = 'generated'
               AND (cardinality($1::bigint[]) = 0 OR r.id = ANY($1))
               AND ($2::text IS NULL OR i.code = $2)
             RETURNING r.id",
        )
        .bind(ids)
        .bind(institution)
        .bind(by)
        .bind(reason)
        .fetch_all(&self.pool)
        .await?;
        rejected.sort_unstable();
        Ok(Decided { ids: rejected })
    }
}
