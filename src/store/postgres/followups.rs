//! The follow-up scans' reads on PostgreSQL (see [`crate::store::followups`]).

use async_trait::async_trait;
use chrono::NaiveDate;
use sqlx::AssertSqlSafe;

use super::PgStore;
use crate::store::{
    StoreResult,
    followups::{Followups, LastVisit, REACHABLE, Treatment},
};

/// Project items of completed orders with their project's follow-up settings.
const TREATMENTS: &str = "SELECT DISTINCT ON (c.person_id, r.order_number, it.item_code)
        c.id AS customer_id, c.person_id, r.order_number, r.order_date, it.item_code,
        pr.category, pr.followup_days, pr.cycle_days
    FROM consumption_records r
    JOIN consumption_items it
      ON it.institution_id = r.institution_id AND it.order_number = r.order_number
    JOIN projects pr ON pr.code = it.item_code
    JOIN customers c ON c.id = r.customer_id
    JOIN institutions i ON i.id = r.institution_id";

#[async_trait]
impl Followups for PgStore {
    async fn project_followup_days(&self) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT followup_days FROM projects WHERE followup_days IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    async fn treatments_on(
        &self,
        institutions: &[String],
        dates: &[NaiveDate],
    ) -> StoreResult<Vec<Treatment>> {
        Ok(sqlx::query_as(AssertSqlSafe(format!(
            "{TREATMENTS}
             WHERE i.code = ANY($1) AND r.order_date = ANY($2) AND r.status = 'completed'
               AND it.item_type = 'project' AND {REACHABLE}
             ORDER BY c.person_id, r.order_number, it.item_code, c.id"
        )))
        .bind(institutions)
        .bind(dates)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn treatments_coming_round(
        &self,
        institutions: &[String],
        today: NaiveDate,
        lead_days: i64,
    ) -> StoreResult<Vec<Treatment>> {
        Ok(sqlx::query_as(AssertSqlSafe(format!(
            "{TREATMENTS}
             WHERE i.code = ANY($1) AND r.status = 'completed' AND it.item_type = 'project'
               AND pr.cycle_days IS NOT NULL
               AND r.order_date + GREATEST(pr.cycle_days - $3, 1)::int BETWEEN $2::date - 3 AND $2::date
               AND NOT EXISTS (
                   SELECT 1 FROM consumption_records r2
                   JOIN consumption_items i2
                     ON i2.institution_id = r2.institution_id AND i2.order_number = r2.order_number
                   WHERE r2.customer_id = r.customer_id AND r2.status = 'completed'
                     AND i2.item_code = it.item_code AND r2.order_date > r.order_date)
               AND {REACHABLE}
             ORDER BY c.person_id, r.order_number, it.item_code, c.id"
        )))
        .bind(institutions)
        .bind(today)
        .bind(lead_days as i32)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn last_visits_between(
        &self,
        institutions: &[String],
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<Vec<LastVisit>> {
        Ok(sqlx::query_as(AssertSqlSafe(format!(
            "SELECT c.id AS customer_id, c.person_id, max(r.order_date) AS last_visit
             FROM customers c
             JOIN institutions i ON i.id = c.institution_id
             JOIN consumption_records r ON r.customer_id = c.id AND r.status = 'completed'
             WHERE i.code = ANY($1) AND {REACHABLE}
             GROUP BY c.id, c.person_id
             HAVING max(r.order_date) BETWEEN $2 AND $3
             ORDER BY c.id"
        )))
        .bind(institutions)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?)
    }
}
