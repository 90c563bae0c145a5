//! Submitted messages on PostgreSQL (see [`crate::store::broadcasts`]).

use async_trait::async_trait;

use super::{PgStore, jobs};
use crate::store::{
    NewJob, StoreResult,
    broadcasts::{BroadcastOutcome, Broadcasts},
};

#[async_trait]
impl Broadcasts for PgStore {
    async fn submit_send(
        &self,
        id: i64,
        token: &str,
        reference: &str,
        watch: NewJob,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE revisits SET status = 'submitted', channel_ref = $3, submitted_at = now(),
                 send_token = NULL, send_lease_until = NULL, last_error = NULL, updated_at = now()
             WHERE id = $1 AND send_token = $2",
        )
        .bind(id)
        .bind(token)
        .bind(reference)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        jobs::insert(&mut tx, &watch).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn settle_broadcast(&self, id: i64, outcome: &BroadcastOutcome) -> StoreResult<bool> {
        let (status, error, by) = outcome.status();
        let at = match outcome {
            BroadcastOutcome::Sent { at, .. } => Some(*at),
            _ => None,
        };
        let done = sqlx::query(
            "UPDATE revisits SET status = $2, last_error = COALESCE($3, last_error),
                 sent_at = COALESCE($4, sent_at),
                 approval = CASE WHEN $5::text IS NULL THEN approval ELSE 'approved' END,
                 approved_by = COALESCE($5, approved_by),
                 approved_at = CASE WHEN $5::text IS NULL THEN approved_at ELSE $4 END,
                 updated_at = now()
             WHERE id = $1 AND status = 'submitted'",
        )
        .bind(id)
        .bind(status)
        .bind(error)
        .bind(at)
        .bind(by)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
