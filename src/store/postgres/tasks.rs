//! Scores and staff tasks on PostgreSQL (see [`crate::store::tasks`]).

use async_trait::async_trait;
use chrono::NaiveDate;
use sqlx::{AssertSqlSafe, PgConnection, PgPool};

use super::PgStore;
use crate::store::{
    StoreResult,
    tasks::{Scored, TASK_SELECT, TaskRow, Tasks, low_score_note},
};

/// Writes the score on the revisit found, and opens a task when it is low.
async fn record(
    conn: &mut PgConnection,
    found: Option<(i64, i64, i64, NaiveDate)>,
    score: u8,
    low: u8,
) -> StoreResult<Option<Scored>> {
    let Some((revisit_id, customer_id, institution_id, occasion_date)) = found else {
        return Ok(None);
    };
    sqlx::query(
        "UPDATE revisits SET score = $2, scored_at = now(), updated_at = now() WHERE id = $1",
    )
    .bind(revisit_id)
    .bind(i16::from(score))
    .execute(&mut *conn)
    .await?;
    let task_id = if score <= low {
        sqlx::query_scalar(
            "INSERT INTO staff_tasks (institution_id, customer_id, revisit_id, kind, note)
             VALUES ($1, $2, $3, 'low_score', $4)
             ON CONFLICT (revisit_id, kind) DO NOTHING RETURNING id",
        )
        .bind(institution_id)
        .bind(customer_id)
        .bind(revisit_id)
        .bind(low_score_note(score, occasion_date))
        .fetch_optional(&mut *conn)
        .await?
    } else {
        None
    };
    Ok(Some(Scored {
        revisit_id,
        institution_id,
        occasion_date,
        task_id,
    }))
}

async fn list(
    pool: &PgPool,
    institution_id: Option<i64>,
    open_only: bool,
    limit: i64,
) -> StoreResult<Vec<TaskRow>> {
    let rows: Vec<TaskRow> = sqlx::query_as(AssertSqlSafe(format!(
        "{TASK_SELECT}
         WHERE ($1::bigint IS NULL OR t.institution_id = $1) AND (NOT $2 OR t.status = 'open')
         ORDER BY t.id DESC LIMIT $3"
    )))
    .bind(institution_id)
    .bind(open_only)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(TaskRow::masked).collect())
}

#[async_trait]
impl Tasks for PgStore {
    async fn score_by_phone(
        &self,
        phone: &str,
        score: u8,
        within_days: u32,
        low: u8,
    ) -> StoreResult<Option<Scored>> {
        let mut tx = self.pool.begin().await?;
        let found = sqlx::query_as(
            "SELECT r.id, c.id, c.institution_id, r.occasion_date
             FROM revisits r JOIN persons p ON p.id = r.person_id
             JOIN customers c ON c.id = r.customer_id
             WHERE p.phone = $1 AND r.asks_score AND r.score IS NULL AND NOT r.test_mode
               AND r.status = 'sent' AND r.sent_at >= now() - $2 * interval '1 day'
             ORDER BY r.sent_at DESC LIMIT 1
             FOR UPDATE OF r",
        )
        .bind(phone)
        .bind(f64::from(within_days))
        .fetch_optional(&mut *tx)
        .await?;
        let scored = record(&mut tx, found, score, low).await?;
        tx.commit().await?;
        Ok(scored)
    }

    async fn score_revisit(&self, id: i64, score: u8, low: u8) -> StoreResult<Option<Scored>> {
        let mut tx = self.pool.begin().await?;
        let found = sqlx::query_as(
            "SELECT r.id, c.id, c.institution_id, r.occasion_date
             FROM revisits r JOIN customers c ON c.id = r.customer_id
             WHERE r.id = $1 AND r.asks_score FOR UPDATE OF r",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let scored = record(&mut tx, found, score, low).await?;
        tx.commit().await?;
        Ok(scored)
    }

    async fn tasks(
        &self,
        institution_id: Option<i64>,
        open_only: bool,
        limit: i64,
    ) -> StoreResult<Vec<TaskRow>> {
        list(&self.pool, institution_id, open_only, limit).await
    }

    async fn task(&self, id: i64) -> StoreResult<Option<TaskRow>> {
        let row: Option<TaskRow> =
            sqlx::query_as(AssertSqlSafe(format!("{TASK_SELECT} WHERE t.id = $1")))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(TaskRow::masked))
    }

    async fn finish_task(&self, id: i64, by: &str, note: Option<&str>) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE staff_tasks SET status = 'done', done_at = now(), done_by = $2, done_note = $3
             WHERE id = $1 AND status = 'open'",
        )
        .bind(id)
        .bind(by)
        .bind(note)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
