//! Writing validated import records: idempotent upserts on the caller's transaction.
//!
//! Each row carries the hash of its validated record; an upsert whose hash is unchanged touches
//! nothing, so importing the same file twice changes nothing (not even `updated_at`).
//! References to other rows (a doctor's institution, an order's customer) are resolved here;
//! a record whose reference is unknown is rejected like any invalid record.
//!
//! `RETURNING (xmax = 0)` tells an insert from an update; partitioned tables cannot return
//! system columns, so consumption records compare `created_at = updated_at` instead (an update
//! sets `updated_at = now()`, and a file never holds the same order twice).

use std::collections::HashMap;

use revisit_jobs::ImportSource;
use sqlx::{PgConnection, PgPool};

use crate::{
    domain::records::{
        ConsumptionRecord, Customer, Doctor, Institution, ParsedFile, Product, Project,
        RecordError, Records, content_hash,
    },
    store::{Counts, NewJob, WriteError},
};

/// Writes a parsed file, logs it, and enqueues `next`, in one transaction.
pub async fn import_file(
    pool: &PgPool,
    batch: &str,
    source: &ImportSource,
    sha256: &str,
    parsed: &mut ParsedFile,
    next: Option<NewJob>,
) -> Result<Counts, WriteError> {
    let mut tx = pool.begin().await?;
    let counts = write(&mut tx, source.institution.as_deref(), parsed).await?;
    sqlx::query(
        "INSERT INTO import_log (batch, path, kind, institution, file_sha256, total, inserted,
             updated, unchanged, rejected, errors)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(batch)
    .bind(&source.path)
    .bind(source.kind.as_str())
    .bind(&source.institution)
    .bind(sha256)
    .bind(parsed.total as i32)
    .bind(counts.inserted as i32)
    .bind(counts.updated as i32)
    .bind(counts.unchanged as i32)
    .bind(parsed.errors.len() as i32)
    .bind(sqlx::types::Json(&parsed.errors))
    .execute(&mut *tx)
    .await?;
    if let Some(job) = next {
        super::jobs::insert(&mut tx, &job).await?;
    }
    tx.commit().await?;
    Ok(counts)
}

/// Writes the valid records of `parsed`; records rejected here are moved to `parsed.errors`.
async fn write(
    conn: &mut PgConnection,
    institution: Option<&str>,
    parsed: &mut ParsedFile,
) -> Result<Counts, WriteError> {
    let mut rejected = Vec::new();
    let records = std::mem::replace(&mut parsed.records, Records::Institutions(Vec::new()));
    let counts = match &records {
        Records::Institutions(v) => institutions(conn, v).await?,
        Records::Doctors(v) => doctors(conn, v, &mut rejected).await?,
        Records::Projects(v) => projects(conn, v).await?,
        Records::Products(v) => products(conn, v).await?,
        Records::Customers(v) => {
            let inst = institution_id(conn, institution, "customers").await?;
            customers(conn, inst, v).await?
        }
        Records::ConsumptionRecords(v) => {
            let inst = institution_id(conn, institution, "consumption_records").await?;
            consumption(conn, inst, v, &mut rejected).await?
        }
    };
    parsed.records = records;
    parsed.reject(rejected);
    Ok(counts)
}

async fn institution_id(
    conn: &mut PgConnection,
    code: Option<&str>,
    what: &'static str,
) -> Result<i64, WriteError> {
    let code = code.ok_or(WriteError::NoInstitution(what))?;
    sqlx::query_scalar("SELECT id FROM institutions WHERE code = $1")
        .bind(code)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| WriteError::UnknownInstitution(code.to_owned()))
}

async fn institutions(
    conn: &mut PgConnection,
    v: &[(usize, Institution)],
) -> Result<Counts, WriteError> {
    let mut c = Counts::default();
    for (_, r) in v {
        let outcome: Option<bool> = sqlx::query_scalar(
            "INSERT INTO institutions (code, name, type, address, phone, email, status, content_hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, type = EXCLUDED.type,
                 address = EXCLUDED.address, phone = EXCLUDED.phone, email = EXCLUDED.email,
                 status = EXCLUDED.status, content_hash = EXCLUDED.content_hash, updated_at = now()
             WHERE institutions.content_hash IS DISTINCT FROM EXCLUDED.content_hash
             RETURNING (xmax = 0)",
        )
        .bind(&r.code)
        .bind(&r.name)
        .bind(&r.kind)
        .bind(&r.address)
        .bind(&r.phone)
        .bind(&r.email)
        .bind(&r.status)
        .bind(content_hash(r))
        .fetch_optional(&mut *conn)
        .await?;
        c.add(outcome);
    }
    Ok(c)
}

async fn doctors(
    conn: &mut PgConnection,
    v: &[(usize, Doctor)],
    rejected: &mut Vec<RecordError>,
) -> Result<Counts, WriteError> {
    let institutions: HashMap<String, i64> =
        sqlx::query_as::<_, (String, i64)>("SELECT code, id FROM institutions")
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .collect();
    let mut c = Counts::default();
    for (index, r) in v {
        let inst = match &r.institution_code {
            Some(code) => match institutions.get(code) {
                Some(id) => Some(*id),
                None => {
                    rejected.push(RecordError::unknown_reference(
                        *index,
                        &r.code,
                        "institution_code",
                        format!("unknown institution {code}"),
                    ));
                    continue;
                }
            },
            None => None,
        };
        let outcome: Option<bool> = sqlx::query_scalar(
            "INSERT INTO doctors (code, institution_id, name, title, specialties, status, content_hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (code) DO UPDATE SET institution_id = EXCLUDED.institution_id,
                 name = EXCLUDED.name, title = EXCLUDED.title, specialties = EXCLUDED.specialties,
                 status = EXCLUDED.status, content_hash = EXCLUDED.content_hash, updated_at = now()
             WHERE doctors.content_hash IS DISTINCT FROM EXCLUDED.content_hash
             RETURNING (xmax = 0)",
        )
        .bind(&r.code)
        .bind(inst)
        .bind(&r.name)
        .bind(&r.title)
        .bind(&r.specialties)
        .bind(&r.status)
        .bind(content_hash(r))
        .fetch_optional(&mut *conn)
        .await?;
        c.add(outcome);
    }
    Ok(c)
}

async fn projects(conn: &mut PgConnection, v: &[(usize, Project)]) -> Result<Counts, WriteError> {
    let mut c = Counts::default();
    for (_, r) in v {
        let outcome: Option<bool> = sqlx::query_scalar(
            "INSERT INTO projects (code, name, category, standard_price_cents, cycle_days, description, status, content_hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, category = EXCLUDED.category,
                 standard_price_cents = EXCLUDED.standard_price_cents, cycle_days = EXCLUDED.cycle_days,
                 description = EXCLUDED.description, status = EXCLUDED.status,
                 content_hash = EXCLUDED.content_hash, updated_at = now()
             WHERE projects.content_hash IS DISTINCT FROM EXCLUDED.content_hash
             RETURNING (xmax = 0)",
        )
        .bind(&r.code)
        .bind(&r.name)
        .bind(&r.category)
        .bind(r.standard_price_cents)
        .bind(r.cycle_days)
        .bind(&r.description)
        .bind(&r.status)
        .bind(content_hash(r))
        .fetch_optional(&mut *conn)
        .await?;
        c.add(outcome);
    }
    Ok(c)
}

async fn products(conn: &mut PgConnection, v: &[(usize, Product)]) -> Result<Counts, WriteError> {
    let mut c = Counts::default();
    for (_, r) in v {
        let outcome: Option<bool> = sqlx::query_scalar(
            "INSERT INTO products (code, name, category, brand, specification, price_cents, status, content_hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, category = EXCLUDED.category,
                 brand = EXCLUDED.brand, specification = EXCLUDED.specification,
                 price_cents = EXCLUDED.price_cents, status = EXCLUDED.status,
                 content_hash = EXCLUDED.content_hash, updated_at = now()
             WHERE products.content_hash IS DISTINCT FROM EXCLUDED.content_hash
             RETURNING (xmax = 0)",
        )
        .bind(&r.code)
        .bind(&r.name)
        .bind(&r.category)
        .bind(&r.brand)
        .bind(&r.specification)
        .bind(r.price_cents)
        .bind(&r.status)
        .bind(content_hash(r))
        .fetch_optional(&mut *conn)
        .await?;
        c.add(outcome);
    }
    Ok(c)
}

async fn customers(
    conn: &mut PgConnection,
    institution_id: i64,
    v: &[(usize, Customer)],
) -> Result<Counts, WriteError> {
    let mut c = Counts::default();
    for (_, r) in v {
        let p = &r.person;
        // The person is shared by the chain's institutions: the latest import of any of them
        // is what we know of that person. A missing birthday never erases a known one.
        let person_id: i64 = sqlx::query_scalar(
            "WITH up AS (
                 INSERT INTO persons (phone, name, gender, birthday) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (phone) DO UPDATE SET name = EXCLUDED.name, gender = EXCLUDED.gender,
                     birthday = COALESCE(EXCLUDED.birthday, persons.birthday), updated_at = now()
                 WHERE (persons.name, persons.gender, persons.birthday)
                       IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.gender, COALESCE(EXCLUDED.birthday, persons.birthday))
                 RETURNING id)
             SELECT id FROM up UNION ALL SELECT id FROM persons WHERE phone = $1 LIMIT 1",
        )
        .bind(&p.phone)
        .bind(&p.name)
        .bind(&p.gender)
        .bind(p.birthday)
        .fetch_one(&mut *conn)
        .await?;
        let outcome: Option<bool> = sqlx::query_scalar(
            "INSERT INTO customers (code, institution_id, person_id, vip_level, source, tags, notes, opted_out, content_hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (code) DO UPDATE SET institution_id = EXCLUDED.institution_id,
                 person_id = EXCLUDED.person_id, vip_level = EXCLUDED.vip_level,
                 source = EXCLUDED.source, tags = EXCLUDED.tags, notes = EXCLUDED.notes,
                 opted_out = EXCLUDED.opted_out, content_hash = EXCLUDED.content_hash,
                 updated_at = now()
             WHERE customers.content_hash IS DISTINCT FROM EXCLUDED.content_hash
             RETURNING (xmax = 0)",
        )
        .bind(&r.code)
        .bind(institution_id)
        .bind(person_id)
        .bind(&r.vip_level)
        .bind(&r.source)
        .bind(&r.tags)
        .bind(&r.notes)
        .bind(r.opted_out)
        .bind(content_hash(r))
        .fetch_optional(&mut *conn)
        .await?;
        c.add(outcome);
    }
    Ok(c)
}

async fn consumption(
    conn: &mut PgConnection,
    institution_id: i64,
    v: &[(usize, ConsumptionRecord)],
    rejected: &mut Vec<RecordError>,
) -> Result<Counts, WriteError> {
    let codes: Vec<&str> = v.iter().map(|(_, r)| r.customer_code.as_str()).collect();
    let customers: HashMap<String, i64> = sqlx::query_as::<_, (String, i64)>(
        "SELECT code, id FROM customers WHERE institution_id = $1 AND code = ANY($2)",
    )
    .bind(institution_id)
    .bind(&codes)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .collect();
    let mut c = Counts::default();
    for (index, r) in v {
        let Some(customer_id) = customers.get(&r.customer_code) else {
            rejected.push(RecordError::unknown_reference(
                *index,
                &r.order_number,
                "customer_code",
                format!(
                    "unknown customer {} of this institution; import the customer first",
                    r.customer_code
                ),
            ));
            continue;
        };
        let outcome: Option<bool> = sqlx::query_scalar(
            "INSERT INTO consumption_records (institution_id, order_number, customer_id, order_date,
                 total_amount_cents, payment_method, status, content_hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (institution_id, order_number) DO UPDATE SET customer_id = EXCLUDED.customer_id,
                 order_date = EXCLUDED.order_date, total_amount_cents = EXCLUDED.total_amount_cents,
                 payment_method = EXCLUDED.payment_method, status = EXCLUDED.status,
                 content_hash = EXCLUDED.content_hash, updated_at = now()
             WHERE consumption_records.content_hash IS DISTINCT FROM EXCLUDED.content_hash
             RETURNING (created_at = updated_at)",
        )
        .bind(institution_id)
        .bind(&r.order_number)
        .bind(customer_id)
        .bind(r.order_date)
        .bind(r.total_amount_cents)
        .bind(&r.payment_method)
        .bind(&r.status)
        .bind(content_hash(r))
        .fetch_optional(&mut *conn)
        .await?;
        if outcome.is_some() {
            replace_items(conn, institution_id, r).await?;
        }
        c.add(outcome);
    }
    Ok(c)
}

async fn replace_items(
    conn: &mut PgConnection,
    institution_id: i64,
    r: &ConsumptionRecord,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM consumption_items WHERE institution_id = $1 AND order_number = $2")
        .bind(institution_id)
        .bind(&r.order_number)
        .execute(&mut *conn)
        .await?;
    let n = r.items.len();
    let mut line = Vec::with_capacity(n);
    let (mut ty, mut code, mut name) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut qty, mut unit, mut disc, mut actual, mut doctor) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for (i, it) in r.items.iter().enumerate() {
        line.push(i as i32 + 1);
        ty.push(it.item_type.as_str());
        code.push(it.item_code.as_str());
        name.push(it.item_name.as_str());
        qty.push(it.quantity);
        unit.push(it.unit_price_cents);
        disc.push(it.discount);
        actual.push(it.actual_price_cents);
        doctor.push(it.doctor_code.as_deref());
    }
    sqlx::query(
        "INSERT INTO consumption_items (institution_id, order_number, line_no, item_type, item_code,
             item_name, quantity, unit_price_cents, discount, actual_price_cents, doctor_code)
         SELECT $1, $2, * FROM unnest($3::int[], $4::text[], $5::text[], $6::text[], $7::int[],
             $8::bigint[], $9::float8[], $10::bigint[], $11::text[])",
    )
    .bind(institution_id)
    .bind(&r.order_number)
    .bind(&line)
    .bind(&ty)
    .bind(&code)
    .bind(&name)
    .bind(&qty)
    .bind(&unit)
    .bind(&disc)
    .bind(&actual)
    .bind(&doctor)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
