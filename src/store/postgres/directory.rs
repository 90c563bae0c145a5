//! Staff's look-ups on PostgreSQL (see [`crate::store::directory`]).

use async_trait::async_trait;
use sqlx::AssertSqlSafe;

use super::{PgStore, jobs};
use crate::domain::birthday::BirthdayWindow;
use crate::store::{
    JobState, NewJob, StoreResult,
    directory::{
        CustomerDetail, CustomerListRow, CustomerQuery, Directory, InstitutionRef, RevisitQuery,
        RevisitRetry, RevisitRow,
    },
    directory_rules::{self, CUSTOMER_COLUMNS, ItemTuple, OrderTuple, PhoneSearch, REVISIT_SELECT},
};

/// How many consultation records a customer's page shows.
const MAX_CONSULTATIONS_SHOWN: i64 = 50;

#[async_trait]
impl Directory for PgStore {
    async fn institutions(&self) -> StoreResult<Vec<InstitutionRef>> {
        Ok(sqlx::query_as(
            "SELECT id, code, name, status, timezone FROM institutions ORDER BY code",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    async fn institution(&self, code: &str) -> StoreResult<Option<InstitutionRef>> {
        Ok(sqlx::query_as(
            "SELECT id, code, name, status, timezone FROM institutions WHERE code = $1",
        )
        .bind(code)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn customer_names(
        &self,
        institution_id: i64,
        codes: &[String],
    ) -> StoreResult<Vec<crate::store::directory::CustomerName>> {
        Ok(sqlx::query_as(
            "SELECT code, name FROM customers WHERE institution_id = $1 AND code = ANY($2)",
        )
        .bind(institution_id)
        .bind(codes)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn item_codes(&self, code_or_name: &str) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT code FROM projects WHERE code = $1 OR name = $1
             UNION SELECT code FROM products WHERE code = $1 OR name = $1
             ORDER BY 1",
        )
        .bind(code_or_name)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn customer_page(&self, q: &CustomerQuery) -> StoreResult<Vec<CustomerListRow>> {
        // The statement is put together from fixed pieces so that each shape gets a plan of its
        // own: `($2 IS NULL OR c.code > $2)` would hide the index range from a generic plan.
        let mut sql = format!(
            "SELECT {CUSTOMER_COLUMNS}
             FROM customers c JOIN persons p ON p.id = c.person_id
             WHERE c.institution_id = $1"
        );
        if q.after.is_some() {
            sql.push_str(" AND c.code > $2");
        }
        if q.search.is_some() {
            sql.push_str(
                " AND (c.code LIKE $3 || '%' ESCAPE '\\' OR c.name LIKE '%' || $3 || '%' ESCAPE '\\'
                       OR p.phone = $5 OR p.phone LIKE '%' || $6)",
            );
        }
        sql.push_str(" ORDER BY c.code LIMIT $4");
        let mut query =
            sqlx::query_as::<_, CustomerListRow>(AssertSqlSafe(sql)).bind(q.institution_id);
        // Unused parameters are still bound, as typed NULLs, to keep the numbering.
        let phone = q
            .search
            .as_deref()
            .map_or(PhoneSearch::None, PhoneSearch::of);
        let (whole, last_four) = phone.binds();
        query = query
            .bind(q.after.as_deref())
            .bind(q.search.as_deref().map(directory_rules::like_escape))
            .bind(q.limit)
            .bind(whole)
            .bind(last_four);
        Ok(query.fetch_all(&self.pool).await?)
    }

    async fn birthdays_of(
        &self,
        institution_id: i64,
        window: &BirthdayWindow,
    ) -> StoreResult<Vec<CustomerListRow>> {
        Ok(sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {CUSTOMER_COLUMNS}
             FROM customers c JOIN persons p ON p.id = c.person_id
             WHERE c.institution_id = $1
               AND ((c.birthday_md = ANY($2) AND c.lunar_birthday IS NULL)
                    OR c.lunar_birthday = ANY($3))
             ORDER BY c.code"
        )))
        .bind(institution_id)
        .bind(&window.solar)
        .bind(&window.lunar)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn customer_detail(
        &self,
        institution_id: i64,
        code: &str,
    ) -> StoreResult<Option<CustomerDetail>> {
        let row: Option<CustomerDetailRow> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {CUSTOMER_COLUMNS}, c.source, c.tags, c.notes
             FROM customers c JOIN persons p ON p.id = c.person_id
             WHERE c.institution_id = $1 AND c.code = $2"
        )))
        .bind(institution_id)
        .bind(code)
        .fetch_optional(&self.pool)
        .await?;
        let Some(CustomerDetailRow {
            customer,
            source,
            tags,
            notes,
        }) = row
        else {
            return Ok(None);
        };
        let orders: Vec<OrderTuple> = sqlx::query_as(
            "SELECT order_number, order_date, total_amount_cents, payment_method, status
             FROM consumption_records WHERE institution_id = $1 AND customer_id = $2
             ORDER BY order_date DESC, order_number DESC LIMIT 100",
        )
        .bind(institution_id)
        .bind(customer.id)
        .fetch_all(&self.pool)
        .await?;
        let numbers: Vec<&str> = orders.iter().map(|o| o.0.as_str()).collect();
        let items: Vec<ItemTuple> = sqlx::query_as(
            "SELECT it.order_number, it.item_type, it.item_code, it.item_name, it.quantity,
                    it.actual_price_cents, it.doctor_code, d.name
             FROM consumption_items it LEFT JOIN doctors d ON d.code = it.doctor_code
             WHERE it.institution_id = $1 AND it.order_number = ANY($2)
             ORDER BY it.order_number, it.line_no",
        )
        .bind(institution_id)
        .bind(&numbers)
        .fetch_all(&self.pool)
        .await?;
        let revisits: Vec<RevisitRow> = sqlx::query_as(AssertSqlSafe(format!(
            "{REVISIT_SELECT} WHERE r.customer_id = $1 ORDER BY r.id DESC LIMIT 50"
        )))
        .bind(customer.id)
        .fetch_all(&self.pool)
        .await?;
        let consultations = super::customers::consultations_of(
            &self.pool,
            institution_id,
            customer.id,
            MAX_CONSULTATIONS_SHOWN,
        )
        .await?;
        Ok(Some(CustomerDetail {
            customer,
            source,
            tags,
            notes,
            orders: directory_rules::assemble(orders, items),
            consultations,
            revisits,
        }))
    }

    async fn revisit_list(&self, q: &RevisitQuery) -> StoreResult<Vec<RevisitRow>> {
        let mut sql = format!("{REVISIT_SELECT} WHERE true");
        if q.institution_id.is_some() {
            sql.push_str(" AND c.institution_id = $1");
        }
        if q.status.is_some() {
            sql.push_str(" AND r.status = $2");
        }
        if q.test_mode.is_some() {
            sql.push_str(" AND r.test_mode = $3");
        }
        if q.before_id.is_some() {
            sql.push_str(" AND r.id < $4");
        }
        sql.push_str(" ORDER BY r.id DESC LIMIT $5");
        Ok(sqlx::query_as(AssertSqlSafe(sql))
            .bind(q.institution_id)
            .bind(q.status)
            .bind(q.test_mode)
            .bind(q.before_id)
            .bind(q.limit)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn revisit_institution(&self, id: i64) -> StoreResult<Option<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT c.institution_id FROM revisits r JOIN customers c ON c.id = r.customer_id
             WHERE r.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn retry_revisit(
        &self,
        id: i64,
        generate: NewJob,
        send: NewJob,
        even_if_uncertain: bool,
    ) -> StoreResult<RevisitRetry> {
        let mut tx = self.pool.begin().await?;
        let row: Option<(crate::domain::revisit::RevisitStatus, bool, bool)> = sqlx::query_as(
            "SELECT status, message IS NOT NULL, delivery_uncertain FROM revisits
             WHERE id = $1 FOR UPDATE",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((status, has_message, uncertain)) = row else {
            return Ok(RevisitRetry::NotFound);
        };
        let job =
            match directory_rules::retry_step(status, has_message, uncertain, even_if_uncertain) {
                Err(refused) => return Ok(refused),
                Ok(directory_rules::Step::Generate) => generate,
                Ok(directory_rules::Step::Send) => send,
            };
        let key = job.key.clone().unwrap_or_default();
        let revived: Option<String> = sqlx::query_scalar(AssertSqlSafe(format!(
            "UPDATE apalis.jobs
             SET status = 'Pending', attempts = 0, run_at = now(), lock_by = NULL, lock_at = NULL,
                 done_at = NULL
             WHERE job_type = $1 AND idempotency_key = $2 AND ({} OR {})
             RETURNING id",
            JobState::Failed.condition(),
            JobState::Done.condition()
        )))
        .bind(job.queue)
        .bind(&key)
        .fetch_optional(&mut *tx)
        .await?;
        let id = match revived {
            Some(id) => id,
            None => match jobs::insert(&mut tx, &job).await? {
                Some(id) => id,
                None => {
                    let (existing, running): (String, bool) =
                        sqlx::query_as(AssertSqlSafe(format!(
                            "SELECT id, {} FROM apalis.jobs WHERE job_type = $1 AND idempotency_key = $2",
                            JobState::Running.condition()
                        )))
                        .bind(job.queue)
                        .bind(&key)
                        .fetch_one(&mut *tx)
                        .await?;
                    if running {
                        let fresh = NewJob {
                            key: Some(directory_rules::retry_key(&key)),
                            ..job
                        };
                        jobs::insert(&mut tx, &fresh).await?.unwrap_or(existing)
                    } else {
                        // Already waiting: follow that one.
                        existing
                    }
                }
            },
        };
        tx.commit().await?;
        Ok(RevisitRetry::Queued(id))
    }
}

#[derive(sqlx::FromRow)]
struct CustomerDetailRow {
    #[sqlx(flatten)]
    customer: CustomerListRow,
    source: Option<String>,
    tags: Vec<String>,
    notes: Option<String>,
}
