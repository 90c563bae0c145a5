//! Change dispatch and entity snapshots for the projections, on SQLite. The changes are written
//! by the row triggers of the `change_capture` migration, one key a row.

use super::*;

use chrono::{DateTime, Utc};
use revisit_jobs::{EntityKind, ProjectionName};
use sqlx::{SqliteConnection, SqlitePool};

use super::{begin_write, json};
use crate::{
    domain::snapshot::*,
    store::{
        Dispatched, ProjectionLag, StoreResult,
        projection_rules::{
            BATCH_KEYS, Change, CustomerRow, DoctorTuple, InstitutionTuple, ItemRow, OrderRow,
            PlannedSync, ProductTuple, ProjectTuple, RevisitRow, assemble_orders, doctor,
            full_batches, institution, person_ids, persons_as_customers, plan, product, project,
            with_registered,
        },
    },
};

/// Change rows (one key each) per dispatch page.
const PAGE_ROWS: i64 = 20_000;
/// Keys per page of a full rebuild.
const FULL_PAGE_KEYS: i64 = 5_000;

pub async fn register(pool: &SqlitePool, projection: ProjectionName) -> StoreResult<()> {
    sqlx::query("INSERT INTO projections (name) VALUES (?1) ON CONFLICT (name) DO NOTHING")
        .bind(projection.as_str())
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn unregister(pool: &SqlitePool, projection: ProjectionName) -> StoreResult<bool> {
    Ok(sqlx::query("DELETE FROM projections WHERE name = ?1")
        .bind(projection.as_str())
        .execute(pool)
        .await?
        .rows_affected()
        > 0)
}

pub async fn dispatch(
    pool: &SqlitePool,
    projections: &[ProjectionName],
    max_attempts: i32,
) -> StoreResult<Dispatched> {
    let mut tx = begin_write(pool).await?;
    let projections = with_registered(
        projections,
        sqlx::query_scalar("SELECT name FROM projections")
            .fetch_all(&mut *tx)
            .await?,
    );
    let rows: Vec<(i64, String, String, DateTime<Utc>)> = sqlx::query_as(
        "DELETE FROM changes WHERE seq IN (SELECT seq FROM changes ORDER BY seq LIMIT ?1)
         RETURNING seq, kind, keys, changed_at",
    )
    .bind(PAGE_ROWS)
    .fetch_all(&mut *tx)
    .await?;
    let changes: Vec<Change> = rows
        .into_iter()
        .map(|(seq, kind, keys, changed_at)| Change {
            seq,
            kind,
            keys: serde_json::from_str(&keys).unwrap_or_default(),
            changed_at,
        })
        .collect();
    let taken = changes.len() as u64;
    let persons = person_ids(&changes);
    let changes = if persons.is_empty() {
        changes
    } else {
        let customers: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM customers WHERE person_id IN (SELECT value FROM json_each(?1))",
        )
        .bind(json(&persons))
        .fetch_all(&mut *tx)
        .await?;
        persons_as_customers(changes, customers)
    };
    let planned = plan(&changes, &projections, BATCH_KEYS);
    insert_planned(&mut tx, &planned, max_attempts).await?;
    tx.commit().await?;
    Ok(Dispatched {
        changes: taken,
        jobs: planned.len() as u64,
    })
}

async fn insert_planned(
    conn: &mut SqliteConnection,
    planned: &[PlannedSync],
    max_attempts: i32,
) -> StoreResult<()> {
    for p in planned {
        sqlx::query(
            "INSERT INTO projection_backlog (batch, projection, kind, keys, oldest)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .bind(&p.job.batch)
        .bind(p.job.projection.as_str())
        .bind(p.job.kind.as_str())
        .bind(p.job.keys.len() as i64)
        .bind(super::ts(p.oldest))
        .execute(&mut *conn)
        .await?;
        super::jobs::insert(conn, &p.new_job(max_attempts)).await?;
    }
    Ok(())
}

pub async fn enqueue_full(
    pool: &SqlitePool,
    projection: ProjectionName,
    kind: EntityKind,
    after: Option<String>,
    max_attempts: i32,
) -> StoreResult<Option<SyncPage>> {
    let sql = match kind {
        EntityKind::Institution => "SELECT id FROM institutions WHERE id > ?1 ORDER BY id LIMIT ?2",
        EntityKind::Doctor => "SELECT id FROM doctors WHERE id > ?1 ORDER BY id LIMIT ?2",
        EntityKind::Project => "SELECT id FROM projects WHERE id > ?1 ORDER BY id LIMIT ?2",
        EntityKind::Product => "SELECT id FROM products WHERE id > ?1 ORDER BY id LIMIT ?2",
        EntityKind::Person => "SELECT id FROM persons WHERE id > ?1 ORDER BY id LIMIT ?2",
        EntityKind::Customer => "SELECT id FROM customers WHERE id > ?1 ORDER BY id LIMIT ?2",
        EntityKind::Revisit => "SELECT id FROM revisits WHERE id > ?1 ORDER BY id LIMIT ?2",
        EntityKind::Order => "",
    };
    let keys: Vec<String> = if kind == EntityKind::Order {
        let (inst, number) = after
            .as_deref()
            .and_then(parse_order_key)
            .unwrap_or((i64::MIN, ""));
        sqlx::query_as::<_, (i64, String)>(
            "SELECT institution_id, order_number FROM consumption_records
             WHERE institution_id > ?1 OR (institution_id = ?1 AND order_number > ?2)
             ORDER BY institution_id, order_number LIMIT ?3",
        )
        .bind(inst)
        .bind(number)
        .bind(FULL_PAGE_KEYS)
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(|(i, n)| order_key(i, &n))
        .collect()
    } else {
        let after: i64 = after.and_then(|a| a.parse().ok()).unwrap_or(i64::MIN);
        sqlx::query_scalar::<_, i64>(sql)
            .bind(after)
            .bind(FULL_PAGE_KEYS)
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|id| id.to_string())
            .collect()
    };
    let Some(last) = keys.last().cloned() else {
        return Ok(None);
    };
    let planned = full_batches(projection, kind, &keys);
    let mut tx = begin_write(pool).await?;
    insert_planned(&mut tx, &planned, max_attempts).await?;
    tx.commit().await?;
    Ok(Some(SyncPage {
        last_key: last,
        entities: keys.len() as u64,
    }))
}

pub async fn finish_batch(pool: &SqlitePool, batch: &str) -> StoreResult<()> {
    sqlx::query("DELETE FROM projection_backlog WHERE batch = ?1")
        .bind(batch)
        .execute(pool)
        .await?;
    Ok(())
}

/// The change log's largest sequence ever issued (`AUTOINCREMENT` keeps it in
/// `sqlite_sequence`, even after the changes are dispatched and deleted).
pub async fn change_version(pool: &SqlitePool) -> StoreResult<i64> {
    let v: Option<i64> =
        sqlx::query_scalar("SELECT seq FROM sqlite_sequence WHERE name = 'changes'")
            .fetch_optional(pool)
            .await?;
    Ok(v.unwrap_or(0))
}

pub async fn lag(pool: &SqlitePool, projection: ProjectionName) -> StoreResult<ProjectionLag> {
    let (undispatched, oldest_change): (i64, Option<DateTime<Utc>>) = sqlx::query_as(
        "SELECT COALESCE(sum(json_array_length(keys)), 0), min(changed_at) FROM changes",
    )
    .fetch_one(pool)
    .await?;
    let (in_jobs, oldest_job): (i64, Option<DateTime<Utc>>) = sqlx::query_as(
        "SELECT COALESCE(sum(keys), 0), min(oldest) FROM projection_backlog WHERE projection = ?1",
    )
    .bind(projection.as_str())
    .fetch_one(pool)
    .await?;
    Ok(ProjectionLag {
        undispatched,
        in_jobs,
        oldest: oldest_change.into_iter().chain(oldest_job).min(),
    })
}

pub async fn snapshots(
    pool: &SqlitePool,
    kind: EntityKind,
    keys: &[String],
) -> StoreResult<Snapshots> {
    let ids = json(&id_keys(keys));
    Ok(match kind {
        EntityKind::Institution => Snapshots::Institutions(
            sqlx::query_as::<_, InstitutionTuple>(
                "SELECT id, code, name, status FROM institutions
                 WHERE id IN (SELECT value FROM json_each(?1)) ORDER BY id",
            )
            .bind(&ids)
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(institution)
            .collect(),
        ),
        EntityKind::Doctor => Snapshots::Doctors(
            sqlx::query_as::<_, DoctorTuple>(
                "SELECT id, code, institution_id, name, title, status FROM doctors
                 WHERE id IN (SELECT value FROM json_each(?1)) ORDER BY id",
            )
            .bind(&ids)
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(doctor)
            .collect(),
        ),
        EntityKind::Project => Snapshots::Projects(
            sqlx::query_as::<_, ProjectTuple>(
                "SELECT id, code, name, category, standard_price_cents, cycle_days, status, description
                 FROM projects WHERE id IN (SELECT value FROM json_each(?1)) ORDER BY id",
            )
            .bind(&ids)
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(project)
            .collect(),
        ),
        EntityKind::Product => Snapshots::Products(
            sqlx::query_as::<_, ProductTuple>(
                "SELECT id, code, name, category, brand, price_cents, status, specification
                 FROM products WHERE id IN (SELECT value FROM json_each(?1)) ORDER BY id",
            )
            .bind(&ids)
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(product)
            .collect(),
        ),
        EntityKind::Customer => Snapshots::Customers(customers(pool, &ids, false).await?),
        EntityKind::Person => Snapshots::Customers(customers(pool, &ids, true).await?),
        EntityKind::Order => Snapshots::Orders(orders(pool, keys).await?),
        EntityKind::Revisit => Snapshots::Revisits(
            sqlx::query_as::<_, RevisitRow>(
                "SELECT r.id, r.customer_id, c.institution_id, r.occasion, r.occasion_date,
                        r.test_mode, r.status, r.generated_by, r.created_at, r.generated_at,
                        r.sent_at, r.updated_at
                 FROM revisits r JOIN customers c ON c.id = r.customer_id
                 WHERE r.id IN (SELECT value FROM json_each(?1)) ORDER BY r.id",
            )
            .bind(&ids)
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(RevisitRow::into_snap)
            .collect(),
        ),
    })
}

/// The customers query with a filter on `?1`, a JSON list of ids.
macro_rules! customers_where {
    ($filter:literal) => {
        concat!(
            "SELECT c.id, c.code, c.institution_id, c.person_id, c.gender,
                    CAST(strftime('%Y', c.birthday) AS INTEGER) AS birth_year, c.vip_level,
                    c.source, c.opted_out, c.created_at, c.referrer_code
             FROM customers c WHERE ",
            $filter,
            " IN (SELECT value FROM json_each(?1)) ORDER BY c.id"
        )
    };
}

/// Customers by id, or (`by_person`) the customers of these persons.
async fn customers(
    pool: &SqlitePool,
    ids: &str,
    by_person: bool,
) -> StoreResult<Vec<CustomerSnap>> {
    let sql = if by_person {
        customers_where!("c.person_id")
    } else {
        customers_where!("c.id")
    };
    Ok(sqlx::query_as::<_, CustomerRow>(sql)
        .bind(ids)
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(CustomerRow::into_snap)
        .collect())
}

async fn orders(pool: &SqlitePool, keys: &[String]) -> StoreResult<Vec<OrderSnap>> {
    let pairs: Vec<(i64, &str)> = keys.iter().filter_map(|k| parse_order_key(k)).collect();
    let pairs = json(&pairs);
    let rows: Vec<OrderRow> = sqlx::query_as(
        "SELECT o.institution_id, o.order_number, o.customer_id, o.order_date,
                o.total_amount_cents, o.payment_method, o.status, c.code
         FROM consumption_records o
         JOIN json_each(?1) k
           ON o.institution_id = json_extract(k.value, '$[0]')
          AND o.order_number = json_extract(k.value, '$[1]')
         JOIN customers c ON c.id = o.customer_id
         ORDER BY o.institution_id, o.order_number",
    )
    .bind(&pairs)
    .fetch_all(pool)
    .await?;
    let items: Vec<ItemRow> = sqlx::query_as(
        "SELECT it.institution_id, it.order_number, it.line_no, it.item_type, it.item_code,
                it.quantity, it.actual_price_cents, it.doctor_code
         FROM consumption_items it
         JOIN json_each(?1) k
           ON it.institution_id = json_extract(k.value, '$[0]')
          AND it.order_number = json_extract(k.value, '$[1]')
         ORDER BY it.institution_id, it.order_number, it.line_no",
    )
    .bind(&pairs)
    .fetch_all(pool)
    .await?;
    Ok(assemble_orders(rows, items))
}

#[async_trait::async_trait]
impl crate::store::change_capture::ChangeCapture for SqliteStore {
    async fn register_projection(&self, projection: ProjectionName) -> StoreResult<()> {
        projections::register(&self.pool, projection).await
    }

    async fn unregister_projection(&self, projection: ProjectionName) -> StoreResult<bool> {
        projections::unregister(&self.pool, projection).await
    }

    async fn dispatch_changes(
        &self,
        projections: &[ProjectionName],
        max_attempts: i32,
    ) -> StoreResult<Dispatched> {
        projections::dispatch(&self.pool, projections, max_attempts).await
    }

    async fn enqueue_full_sync(
        &self,
        projection: ProjectionName,
        kind: EntityKind,
        after: Option<String>,
        max_attempts: i32,
    ) -> StoreResult<Option<SyncPage>> {
        projections::enqueue_full(&self.pool, projection, kind, after, max_attempts).await
    }

    async fn finish_projection_batch(&self, batch: &str) -> StoreResult<()> {
        projections::finish_batch(&self.pool, batch).await
    }

    async fn projection_lag(&self, projection: ProjectionName) -> StoreResult<ProjectionLag> {
        projections::lag(&self.pool, projection).await
    }

    async fn change_version(&self) -> StoreResult<i64> {
        projections::change_version(&self.pool).await
    }

    async fn snapshots(&self, kind: EntityKind, keys: &[String]) -> StoreResult<Snapshots> {
        projections::snapshots(&self.pool, kind, keys).await
    }
}
