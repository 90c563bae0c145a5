//! Change dispatch and entity snapshots for the projections, on PostgreSQL. The changes are
//! written by the statement triggers of the `change_capture` migration.

use super::*;

use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

use revisit_jobs::{EntityKind, ProjectionName};
use sqlx::{PgConnection, PgPool};

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

/// Change rows per dispatch page. A row holds the keys of one statement (up to an import
/// chunk, 5,000), so a page is at most ~250,000 keys.
const PAGE_ROWS: i64 = 50;
/// Keys per page of a full rebuild.
const FULL_PAGE_KEYS: i64 = 5_000;

pub async fn register(pool: &PgPool, projection: ProjectionName) -> StoreResult<()> {
    sqlx::query("INSERT INTO projections (name) VALUES ($1) ON CONFLICT (name) DO NOTHING")
        .bind(projection.as_str())
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn unregister(pool: &PgPool, projection: ProjectionName) -> StoreResult<bool> {
    Ok(sqlx::query("DELETE FROM projections WHERE name = $1")
        .bind(projection.as_str())
        .execute(pool)
        .await?
        .rows_affected()
        > 0)
}

pub async fn dispatch(
    pool: &PgPool,
    projections: &[ProjectionName],
    max_attempts: i32,
) -> StoreResult<Dispatched> {
    let mut tx = pool.begin().await?;
    let projections = with_registered(
        projections,
        sqlx::query_scalar("SELECT name FROM projections")
            .fetch_all(&mut *tx)
            .await?,
    );
    // SKIP LOCKED: two dispatchers at once take different pages.
    let rows: Vec<(i64, String, Vec<String>, DateTime<Utc>)> = sqlx::query_as(
        "DELETE FROM changes WHERE seq IN (
             SELECT seq FROM changes ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED)
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
            keys,
            changed_at,
        })
        .collect();
    let taken = changes.len() as u64;
    let persons = person_ids(&changes);
    let changes = if persons.is_empty() {
        changes
    } else {
        let customers: Vec<i64> =
            sqlx::query_scalar("SELECT id FROM customers WHERE person_id = ANY($1)")
                .bind(&persons)
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
    conn: &mut PgConnection,
    planned: &[PlannedSync],
    max_attempts: i32,
) -> StoreResult<()> {
    for p in planned {
        sqlx::query(
            "INSERT INTO projection_backlog (batch, projection, kind, keys, oldest)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&p.job.batch)
        .bind(p.job.projection.as_str())
        .bind(p.job.kind.as_str())
        .bind(p.job.keys.len() as i32)
        .bind(p.oldest)
        .execute(&mut *conn)
        .await?;
        super::jobs::insert(conn, &p.new_job(max_attempts)).await?;
    }
    Ok(())
}

pub async fn enqueue_full(
    pool: &PgPool,
    projection: ProjectionName,
    kind: EntityKind,
    after: Option<String>,
    max_attempts: i32,
) -> StoreResult<Option<SyncPage>> {
    let sql = match kind {
        EntityKind::Institution => "SELECT id FROM institutions WHERE id > $1 ORDER BY id LIMIT $2",
        EntityKind::Doctor => "SELECT id FROM doctors WHERE id > $1 ORDER BY id LIMIT $2",
        EntityKind::Project => "SELECT id FROM projects WHERE id > $1 ORDER BY id LIMIT $2",
        EntityKind::Product => "SELECT id FROM products WHERE id > $1 ORDER BY id LIMIT $2",
        EntityKind::Person => "SELECT id FROM persons WHERE id > $1 ORDER BY id LIMIT $2",
        EntityKind::Customer => "SELECT id FROM customers WHERE id > $1 ORDER BY id LIMIT $2",
        EntityKind::Revisit => "SELECT id FROM revisits WHERE id > $1 ORDER BY id LIMIT $2",
        EntityKind::Order => "",
    };
    let keys: Vec<String> = if kind == EntityKind::Order {
        let (inst, number) = after
            .as_deref()
            .and_then(parse_order_key)
            .unwrap_or((i64::MIN, ""));
        sqlx::query_as::<_, (i64, String)>(
            "SELECT institution_id, order_number FROM consumption_records
             WHERE (institution_id, order_number) > ($1, $2)
             ORDER BY institution_id, order_number LIMIT $3",
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
        // Ids as numbers, in numeric order: `SELECT id::text … ORDER BY id` sorted by the text
        // (the output column is also called `id`), so a page's last key was not its largest
        // and the next page skipped rows.
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
    let mut tx = pool.begin().await?;
    insert_planned(&mut tx, &planned, max_attempts).await?;
    tx.commit().await?;
    Ok(Some(SyncPage {
        last_key: last,
        entities: keys.len() as u64,
    }))
}

pub async fn finish_batch(pool: &PgPool, batch: &str) -> StoreResult<()> {
    sqlx::query("DELETE FROM projection_backlog WHERE batch = $1")
        .bind(batch)
        .execute(pool)
        .await?;
    Ok(())
}

/// The change log's sequence as last issued (0 before the first change), read without a lock:
/// sequences are not transactional, so a writer's uncommitted change already counts.
pub async fn change_version(pool: &PgPool) -> StoreResult<i64> {
    let v: Option<i64> = sqlx::query_scalar(
        "SELECT pg_sequence_last_value(pg_get_serial_sequence('changes', 'seq')::regclass)",
    )
    .fetch_one(pool)
    .await?;
    Ok(v.unwrap_or(0))
}

pub async fn lag(pool: &PgPool, projection: ProjectionName) -> StoreResult<ProjectionLag> {
    let (undispatched, oldest_change): (i64, Option<DateTime<Utc>>) = sqlx::query_as(
        "SELECT COALESCE(sum(cardinality(keys)), 0)::bigint, min(changed_at) FROM changes",
    )
    .fetch_one(pool)
    .await?;
    let (in_jobs, oldest_job): (i64, Option<DateTime<Utc>>) = sqlx::query_as(
        "SELECT COALESCE(sum(keys), 0)::bigint, min(oldest) FROM projection_backlog
         WHERE projection = $1",
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

pub async fn snapshots(pool: &PgPool, kind: EntityKind, keys: &[String]) -> StoreResult<Snapshots> {
    let ids = id_keys(keys);
    Ok(match kind {
        EntityKind::Institution => Snapshots::Institutions(
            sqlx::query_as::<_, InstitutionTuple>(
                "SELECT id, code, name, status FROM institutions WHERE id = ANY($1) ORDER BY id",
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
                 WHERE id = ANY($1) ORDER BY id",
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
                 FROM projects WHERE id = ANY($1) ORDER BY id",
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
                 FROM products WHERE id = ANY($1) ORDER BY id",
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
                 WHERE r.id = ANY($1) AND r.id BETWEEN $2 AND $3 ORDER BY r.id",
            )
            .bind(&ids)
            .bind(ids.iter().min().copied().unwrap_or(0))
            .bind(ids.iter().max().copied().unwrap_or(0))
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(RevisitRow::into_snap)
            .collect(),
        ),
    })
}

/// The customers query with a filter on `$1`, a list of ids, and `$2`..`$3`, their bounds.
///
/// The bounds look redundant but are what makes these reads fast: with `= ANY` alone the planner
/// misjudges a 5,000-key list and hashes all of `persons` (150 ms a batch at 300,000 persons);
/// with the range it walks the two primary keys (20 ms). Keys of a batch are sorted and mostly
/// close together, since imports and the change log write them in order.
macro_rules! customers_where {
    ($filter:literal) => {
        concat!(
            "SELECT c.id, c.code, c.institution_id, c.person_id, c.gender,
                    EXTRACT(YEAR FROM c.birthday)::int AS birth_year, c.vip_level, c.source,
                    c.opted_out, c.created_at, c.referrer_code
             FROM customers c WHERE ",
            $filter,
            " ORDER BY c.id"
        )
    };
}

/// Customers by id, or (`by_person`) the customers of these persons.
async fn customers(pool: &PgPool, ids: &[i64], by_person: bool) -> StoreResult<Vec<CustomerSnap>> {
    let sql = if by_person {
        customers_where!("c.person_id = ANY($1) AND c.person_id BETWEEN $2 AND $3")
    } else {
        customers_where!("c.id = ANY($1) AND c.id BETWEEN $2 AND $3")
    };
    Ok(sqlx::query_as::<_, CustomerRow>(sql)
        .bind(ids)
        .bind(ids.iter().min().copied().unwrap_or(0))
        .bind(ids.iter().max().copied().unwrap_or(0))
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(CustomerRow::into_snap)
        .collect())
}

/// Orders by key, an institution at a time: `institution_id = $1 AND order_number = ANY($2)`
/// with the numbers' bounds is an index range on both tables' keys (the bounds are taken in
/// the database, so they follow its collation, as the index does), so a job reads
/// its rows through the index however large the tables are. Without the bounds the planner
/// scanned the institution's whole partition of items and filtered it (270 ms against 6 ms a
/// batch at 1.2 million items); a join with `unnest` scanned and sorted all items.
async fn orders(pool: &PgPool, keys: &[String]) -> StoreResult<Vec<OrderSnap>> {
    let mut by_institution: BTreeMap<i64, Vec<&str>> = BTreeMap::new();
    for key in keys {
        if let Some((i, n)) = parse_order_key(key) {
            by_institution.entry(i).or_default().push(n);
        }
    }
    let (mut rows, mut items): (Vec<OrderRow>, Vec<ItemRow>) = (Vec::new(), Vec::new());
    for (inst, numbers) in by_institution {
        rows.extend(
            sqlx::query_as::<_, OrderRow>(
                "SELECT o.institution_id, o.order_number, o.customer_id, o.order_date,
                        o.total_amount_cents, o.payment_method, o.status, c.code
                 FROM consumption_records o JOIN customers c ON c.id = o.customer_id
                 WHERE o.institution_id = $1 AND o.order_number = ANY($2)
                   AND o.order_number BETWEEN (SELECT min(n) FROM unnest($2::text[]) n)
                                          AND (SELECT max(n) FROM unnest($2::text[]) n)
                 ORDER BY o.order_number",
            )
            .bind(inst)
            .bind(&numbers)
            .fetch_all(pool)
            .await?,
        );
        items.extend(
            sqlx::query_as::<_, ItemRow>(
                "SELECT institution_id, order_number, line_no, item_type, item_code, quantity,
                        actual_price_cents, doctor_code
                 FROM consumption_items
                 WHERE institution_id = $1 AND order_number = ANY($2)
                   AND order_number BETWEEN (SELECT min(n) FROM unnest($2::text[]) n)
                                        AND (SELECT max(n) FROM unnest($2::text[]) n)
                 ORDER BY order_number, line_no",
            )
            .bind(inst)
            .bind(&numbers)
            .fetch_all(pool)
            .await?,
        );
    }
    Ok(assemble_orders(rows, items))
}

#[async_trait::async_trait]
impl crate::store::change_capture::ChangeCapture for PgStore {
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
