//! The follow-up scans' reads on SQLite: the same as `store::postgres::followups`, with
//! `json_each` for `= ANY`, a window function for `DISTINCT ON` and `date()` for date sums.

use async_trait::async_trait;
use chrono::NaiveDate;
use sqlx::AssertSqlSafe;

use super::{SqliteStore, json};
use crate::store::{
    StoreResult,
    followups::{Followups, LastVisit, REACHABLE, Treatment},
};

/// Project items of completed orders with their project's follow-up settings, once per person,
/// order and item (the first customer of a person, by id), filtered by `{where}`.
fn treatments(filter: &str) -> String {
    format!(
        "SELECT customer_id, person_id, order_number, order_date, item_code, category,
                followup_days, cycle_days
         FROM (
             SELECT c.id AS customer_id, c.person_id, r.order_number, r.order_date, it.item_code,
                    pr.category, pr.followup_days, pr.cycle_days,
                    row_number() OVER (PARTITION BY c.person_id, r.order_number, it.item_code
                                       ORDER BY c.id) AS pick
             FROM consumption_records r
             JOIN consumption_items it
               ON it.institution_id = r.institution_id AND it.order_number = r.order_number
             JOIN projects pr ON pr.code = it.item_code
             JOIN customers c ON c.id = r.customer_id
             JOIN institutions i ON i.id = r.institution_id
             WHERE r.status = 'completed' AND it.item_type = 'project'
               AND i.code IN (SELECT value FROM json_each(?1)) AND {REACHABLE} AND {filter})
         WHERE pick = 1
         ORDER BY person_id, order_number, item_code"
    )
}

#[async_trait]
impl Followups for SqliteStore {
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
        Ok(sqlx::query_as(AssertSqlSafe(treatments(
            "r.order_date IN (SELECT value FROM json_each(?2))",
        )))
        .bind(json(&institutions))
        .bind(json(&dates))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn treatments_coming_round(
        &self,
        institutions: &[String],
        today: NaiveDate,
        lead_days: i64,
    ) -> StoreResult<Vec<Treatment>> {
        Ok(sqlx::query_as(AssertSqlSafe(treatments(
            "pr.cycle_days IS NOT NULL
             AND date(r.order_date, '+' || max(pr.cycle_days - ?3, 1) || ' days')
                 BETWEEN date(?2, '-3 days') AND ?2
             AND NOT EXISTS (
                 SELECT 1 FROM consumption_records r2
                 JOIN consumption_items i2
                   ON i2.institution_id = r2.institution_id AND i2.order_number = r2.order_number
                 WHERE r2.customer_id = r.customer_id AND r2.status = 'completed'
                   AND i2.item_code = it.item_code AND r2.order_date > r.order_date)",
        )))
        .bind(json(&institutions))
        .bind(today)
        .bind(lead_days)
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
             WHERE i.code IN (SELECT value FROM json_each(?1)) AND {REACHABLE}
             GROUP BY c.id, c.person_id
             HAVING max(r.order_date) BETWEEN ?2 AND ?3
             ORDER BY c.id"
        )))
        .bind(json(&institutions))
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?)
    }
}
