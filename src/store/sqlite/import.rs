//! Writing validated import records on SQLite: the same idempotent upserts as on PostgreSQL.
//! `revision` counts a row's writes: an upsert returns 1 for an insert, more for an update, and
//! no row when the content hash is unchanged (then nothing is written at all).

use std::collections::HashMap;

use chrono::Datelike;
use revisit_jobs::ImportSource;
use sqlx::{SqliteConnection, SqlitePool};

use super::{begin_write, jobs};
use crate::{
    domain::records::{
        ConsumptionRecord, Customer, Doctor, Institution, ParsedFile, Product, Project,
        RecordError, Records, content_hash,
    },
    store::{Counts, NewJob, WriteError},
};

fn outcome(revision: Option<i64>) -> Option<bool> {
    revision.map(|r| r == 1)
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("serialisable")
}

/// Writes a parsed file, logs it, and enqueues `next`, in one transaction.
pub async fn import_file(
    pool: &SqlitePool,
    batch: &str,
    source: &ImportSource,
    sha256: &str,
    parsed: &mut ParsedFile,
    next: Option<NewJob>,
) -> Result<Counts, WriteError> {
    let mut tx = begin_write(pool).await?;
    let counts = write(&mut tx, source.institution.as_deref(), parsed).await?;
    sqlx::query(
        "INSERT INTO import_log (batch, path, kind, institution, file_sha256, total, inserted,
             updated, unchanged, rejected, errors)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )
    .bind(batch)
    .bind(&source.path)
    .bind(source.kind.as_str())
    .bind(&source.institution)
    .bind(sha256)
    .bind(parsed.total as i64)
    .bind(counts.inserted as i64)
    .bind(counts.updated as i64)
    .bind(counts.unchanged as i64)
    .bind(parsed.errors.len() as i64)
    .bind(json(&parsed.errors))
    .execute(&mut *tx)
    .await?;
    if let Some(job) = next {
        jobs::insert(&mut tx, &job).await?;
    }
    tx.commit().await?;
    Ok(counts)
}

async fn write(
    conn: &mut SqliteConnection,
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
    conn: &mut SqliteConnection,
    code: Option<&str>,
    what: &'static str,
) -> Result<i64, WriteError> {
    let code = code.ok_or(WriteError::NoInstitution(what))?;
    sqlx::query_scalar("SELECT id FROM institutions WHERE code = ?1")
        .bind(code)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| WriteError::UnknownInstitution(code.to_owned()))
}

async fn institutions(
    conn: &mut SqliteConnection,
    v: &[(usize, Institution)],
) -> Result<Counts, WriteError> {
    let mut c = Counts::default();
    for (_, r) in v {
        let revision: Option<i64> = sqlx::query_scalar(
            "INSERT INTO institutions (code, name, type, address, phone, email, status, content_hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (code) DO UPDATE SET name = excluded.name, type = excluded.type,
                 address = excluded.address, phone = excluded.phone, email = excluded.email,
                 status = excluded.status, content_hash = excluded.content_hash,
                 revision = institutions.revision + 1, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
             WHERE institutions.content_hash IS NOT excluded.content_hash
             RETURNING revision",
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
        c.add(outcome(revision));
    }
    Ok(c)
}

async fn doctors(
    conn: &mut SqliteConnection,
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
        let revision: Option<i64> = sqlx::query_scalar(
            "INSERT INTO doctors (code, institution_id, name, title, specialties, status, content_hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (code) DO UPDATE SET institution_id = excluded.institution_id,
                 name = excluded.name, title = excluded.title, specialties = excluded.specialties,
                 status = excluded.status, content_hash = excluded.content_hash,
                 revision = doctors.revision + 1, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
             WHERE doctors.content_hash IS NOT excluded.content_hash
             RETURNING revision",
        )
        .bind(&r.code)
        .bind(inst)
        .bind(&r.name)
        .bind(&r.title)
        .bind(json(&r.specialties))
        .bind(&r.status)
        .bind(content_hash(r))
        .fetch_optional(&mut *conn)
        .await?;
        c.add(outcome(revision));
    }
    Ok(c)
}

async fn projects(
    conn: &mut SqliteConnection,
    v: &[(usize, Project)],
) -> Result<Counts, WriteError> {
    let mut c = Counts::default();
    for (_, r) in v {
        let revision: Option<i64> = sqlx::query_scalar(
            "INSERT INTO projects (code, name, category, standard_price_cents, cycle_days, description, status, content_hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (code) DO UPDATE SET name = excluded.name, category = excluded.category,
                 standard_price_cents = excluded.standard_price_cents, cycle_days = excluded.cycle_days,
                 description = excluded.description, status = excluded.status,
                 content_hash = excluded.content_hash, revision = projects.revision + 1, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
             WHERE projects.content_hash IS NOT excluded.content_hash
             RETURNING revision",
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
        c.add(outcome(revision));
    }
    Ok(c)
}

async fn products(
    conn: &mut SqliteConnection,
    v: &[(usize, Product)],
) -> Result<Counts, WriteError> {
    let mut c = Counts::default();
    for (_, r) in v {
        let revision: Option<i64> = sqlx::query_scalar(
            "INSERT INTO products (code, name, category, brand, specification, price_cents, status, content_hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (code) DO UPDATE SET name = excluded.name, category = excluded.category,
                 brand = excluded.brand, specification = excluded.specification,
                 price_cents = excluded.price_cents, status = excluded.status,
                 content_hash = excluded.content_hash, revision = products.revision + 1, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
             WHERE products.content_hash IS NOT excluded.content_hash
             RETURNING revision",
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
        c.add(outcome(revision));
    }
    Ok(c)
}

async fn customers(
    conn: &mut SqliteConnection,
    institution_id: i64,
    v: &[(usize, Customer)],
) -> Result<Counts, WriteError> {
    let mut c = Counts::default();
    for (_, r) in v {
        let p = &r.person;
        let md = p.birthday.map(|b| (b.month() * 100 + b.day()) as i64);
        // The person is shared by the chain's institutions; a missing birthday never erases one.
        let changed: Option<i64> = sqlx::query_scalar(
            "INSERT INTO persons (phone, name, gender, birthday, birthday_md) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (phone) DO UPDATE SET name = excluded.name, gender = excluded.gender,
                 birthday = COALESCE(excluded.birthday, persons.birthday),
                 birthday_md = COALESCE(excluded.birthday_md, persons.birthday_md), updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
             WHERE persons.name IS NOT excluded.name OR persons.gender IS NOT excluded.gender
                OR persons.birthday IS NOT COALESCE(excluded.birthday, persons.birthday)
             RETURNING id",
        )
        .bind(&p.phone)
        .bind(&p.name)
        .bind(&p.gender)
        .bind(p.birthday)
        .bind(md)
        .fetch_optional(&mut *conn)
        .await?;
        let person_id: i64 = match changed {
            Some(id) => id,
            None => {
                sqlx::query_scalar("SELECT id FROM persons WHERE phone = ?1")
                    .bind(&p.phone)
                    .fetch_one(&mut *conn)
                    .await?
            }
        };
        let revision: Option<i64> = sqlx::query_scalar(
            "INSERT INTO customers (code, institution_id, person_id, vip_level, source, tags, notes, opted_out, content_hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (code) DO UPDATE SET institution_id = excluded.institution_id,
                 person_id = excluded.person_id, vip_level = excluded.vip_level,
                 source = excluded.source, tags = excluded.tags, notes = excluded.notes,
                 opted_out = excluded.opted_out, content_hash = excluded.content_hash,
                 revision = customers.revision + 1, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
             WHERE customers.content_hash IS NOT excluded.content_hash
             RETURNING revision",
        )
        .bind(&r.code)
        .bind(institution_id)
        .bind(person_id)
        .bind(&r.vip_level)
        .bind(&r.source)
        .bind(json(&r.tags))
        .bind(&r.notes)
        .bind(r.opted_out)
        .bind(content_hash(r))
        .fetch_optional(&mut *conn)
        .await?;
        c.add(outcome(revision));
    }
    Ok(c)
}

async fn consumption(
    conn: &mut SqliteConnection,
    institution_id: i64,
    v: &[(usize, ConsumptionRecord)],
    rejected: &mut Vec<RecordError>,
) -> Result<Counts, WriteError> {
    let codes: Vec<&str> = v.iter().map(|(_, r)| r.customer_code.as_str()).collect();
    let customers: HashMap<String, i64> = sqlx::query_as::<_, (String, i64)>(
        "SELECT code, id FROM customers WHERE institution_id = ?1 AND code IN (SELECT value FROM json_each(?2))",
    )
    .bind(institution_id)
    .bind(json(&codes))
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
        let revision: Option<i64> = sqlx::query_scalar(
            "INSERT INTO consumption_records (institution_id, order_number, customer_id, order_date,
                 total_amount_cents, payment_method, status, content_hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (institution_id, order_number) DO UPDATE SET customer_id = excluded.customer_id,
                 order_date = excluded.order_date, total_amount_cents = excluded.total_amount_cents,
                 payment_method = excluded.payment_method, status = excluded.status,
                 content_hash = excluded.content_hash, revision = consumption_records.revision + 1,
                 updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
             WHERE consumption_records.content_hash IS NOT excluded.content_hash
             RETURNING revision",
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
        if revision.is_some() {
            sqlx::query(
                "DELETE FROM consumption_items WHERE institution_id = ?1 AND order_number = ?2",
            )
            .bind(institution_id)
            .bind(&r.order_number)
            .execute(&mut *conn)
            .await?;
            for (i, it) in r.items.iter().enumerate() {
                sqlx::query(
                    "INSERT INTO consumption_items (institution_id, order_number, line_no, item_type, item_code,
                         item_name, quantity, unit_price_cents, discount, actual_price_cents, doctor_code)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                )
                .bind(institution_id)
                .bind(&r.order_number)
                .bind(i as i64 + 1)
                .bind(&it.item_type)
                .bind(&it.item_code)
                .bind(&it.item_name)
                .bind(it.quantity)
                .bind(it.unit_price_cents)
                .bind(it.discount)
                .bind(it.actual_price_cents)
                .bind(&it.doctor_code)
                .execute(&mut *conn)
                .await?;
            }
        }
        c.add(outcome(revision));
    }
    Ok(c)
}
