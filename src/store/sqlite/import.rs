//! Writing validated import records on SQLite: the same rules and idempotent upserts as on
//! PostgreSQL (see `store::postgres::import`), but a transaction per chunk, so that the single
//! write lock is never held for long (a long write would stall every other writer, heartbeats
//! included). The file is logged and its next job enqueued in a last short transaction; a file
//! cut off halfway is written again in full by its retry, and what was written before counts as
//! unchanged. `revision` counts a row's writes: an upsert returns 1 for an insert, more for an
//! update, and no row when the content hash is unchanged or the row is newer.

use super::*;

use std::collections::{HashMap, HashSet};

use chrono::Datelike;
use sqlx::{SqliteConnection, SqlitePool};
use tokio::sync::mpsc;

use super::{begin_write, jobs, json};
use crate::{
    domain::records::{
        Consultation, ConsumptionRecord, Customer, Doctor, Institution, Product, Project,
        RecordError, Records, content_hash,
    },
    store::{
        Chunk, Counts, FileImport, Imported, NewJob, WriteContext, WriteError,
        import_rules::{
            ChunkResult, ChunkWriter, KnownCodes, OfCustomer, Owned, admit, assign_customer_owners,
            assign_owners, doctor_institution, keep_own_rows, write_isolating_refusals,
        },
        reported_errors,
    },
};

/// Records written per transaction; how long the import writes before it lets other writers
/// in, and for how long.
const RECORDS_PER_TRANSACTION: usize = 1000;
const LOCK_TURN: std::time::Duration = std::time::Duration::from_millis(500);
const LOCK_GAP: std::time::Duration = std::time::Duration::from_millis(150);

fn outcome(revision: Option<i64>) -> Option<bool> {
    revision.map(|r| r == 1)
}

/// Writes a file's chunks, a short transaction each, then logs it and enqueues `next`.
pub async fn import_file(
    pool: &SqlitePool,
    file: &FileImport<'_>,
    chunks: &mut mpsc::Receiver<Chunk>,
    next: Option<NewJob>,
) -> Result<Imported, WriteError> {
    let mut conn = pool.acquire().await?;
    let institutions: HashMap<String, i64> =
        sqlx::query_as::<_, (String, i64)>("SELECT code, id FROM institutions")
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .collect();
    let known = if matches!(
        file.source.kind,
        revisit_jobs::ImportKind::ConsumptionRecords | revisit_jobs::ImportKind::Consultations
    ) {
        KnownCodes {
            projects: codes(&mut conn, "SELECT code FROM projects").await?,
            products: codes(&mut conn, "SELECT code FROM products").await?,
            doctors: codes(&mut conn, "SELECT code FROM doctors").await?,
        }
    } else {
        KnownCodes::default()
    };
    drop(conn);
    let mut ctx = WriteContext::new(
        institutions,
        file.source.institution.as_deref(),
        &file.source.path,
        file.source_seq,
    );
    let mut imported = Imported::default();
    let mut holding = std::time::Duration::ZERO;
    while let Some(chunk) = chunks.recv().await {
        let chunk = chunk.map_err(WriteError::File)?;
        let ctx = ctx
            .as_mut()
            .map_err(|code| WriteError::UnknownInstitution(code.clone()))?;
        // A transaction per part of the chunk, so that none holds the write lock for long; and
        // since SQLite's waiting writers (heartbeats, other jobs) poll for the lock with sleeps
        // of up to 100 ms, a loop that takes it again at once would starve them: after about
        // half a second of writing, leave a gap longer than their longest sleep.
        for part in chunk.parts(RECORDS_PER_TRANSACTION) {
            if holding >= LOCK_TURN {
                tokio::time::sleep(LOCK_GAP).await;
                holding = std::time::Duration::ZERO;
            }
            let started = std::time::Instant::now();
            let mut tx = begin_write(pool).await?;
            let mut writer = Writer {
                conn: &mut tx,
                ctx: &*ctx,
                known: &known,
            };
            let (counts, rejected) = write_isolating_refusals(&mut writer, &part).await?;
            imported.add(counts, rejected);
            tx.commit().await?;
            holding += started.elapsed();
        }
        if let Records::Institutions(v) = &chunk {
            // Later chunks of the same file may name the institutions just written.
            for (_, r) in v {
                if !ctx.institutions.contains_key(&r.code) {
                    let id: i64 = sqlx::query_scalar("SELECT id FROM institutions WHERE code = ?1")
                        .bind(&r.code)
                        .fetch_one(pool)
                        .await?;
                    ctx.institutions.insert(r.code.clone(), id);
                }
            }
        }
    }
    let errors = reported_errors(file.read_errors, &imported.errors);
    let mut tx = begin_write(pool).await?;
    sqlx::query(
        "INSERT INTO import_log (batch, path, kind, institution, file_sha256, total, inserted,
             updated, unchanged, rejected, errors)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT (batch, path) DO UPDATE SET kind = excluded.kind,
             institution = excluded.institution, file_sha256 = excluded.file_sha256,
             total = excluded.total, inserted = excluded.inserted, updated = excluded.updated,
             unchanged = excluded.unchanged, rejected = excluded.rejected,
             errors = excluded.errors, finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
    )
    .bind(file.batch)
    .bind(&file.source.path)
    .bind(file.source.kind.as_str())
    .bind(&file.source.institution)
    .bind(file.sha256)
    .bind(file.total as i64)
    .bind(imported.counts.inserted as i64)
    .bind(imported.counts.updated as i64)
    .bind(imported.counts.unchanged as i64)
    .bind((file.read_rejected + imported.errors.len()) as i64)
    .bind(json(&errors))
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM import_file_progress WHERE batch = ?1 AND path = ?2")
        .bind(file.batch)
        .bind(&file.source.path)
        .execute(&mut *tx)
        .await?;
    if let Some(job) = next {
        jobs::insert(&mut tx, &job).await?;
    }
    tx.commit().await?;
    Ok(imported)
}

async fn codes(
    conn: &mut SqliteConnection,
    sql: &'static str,
) -> Result<HashSet<String>, sqlx::Error> {
    Ok(sqlx::query_scalar::<_, String>(sql)
        .fetch_all(conn)
        .await?
        .into_iter()
        .collect())
}

/// This engine's chunk writer, for [`write_isolating_refusals`].
struct Writer<'a> {
    conn: &'a mut SqliteConnection,
    ctx: &'a WriteContext,
    known: &'a KnownCodes,
}

#[async_trait::async_trait]
impl ChunkWriter for Writer<'_> {
    async fn exec(&mut self, sql: &'static str) -> Result<(), sqlx::Error> {
        sqlx::raw_sql(sql)
            .execute(&mut *self.conn)
            .await
            .map(|_| ())
    }

    async fn write(&mut self, chunk: &Records) -> ChunkResult {
        write(self.conn, self.ctx, self.known, chunk).await
    }
}

/// Writes one chunk; returns what it did and the records it rejected.
async fn write(
    conn: &mut SqliteConnection,
    ctx: &WriteContext,
    known: &KnownCodes,
    records: &Records,
) -> Result<(Counts, Vec<RecordError>), WriteError> {
    let mut rejected = Vec::new();
    let counts = match records {
        Records::Institutions(v) => institutions(conn, ctx, v).await?,
        Records::Doctors(v) => doctors(conn, ctx, v, &mut rejected).await?,
        Records::Projects(v) => projects(conn, ctx, v).await?,
        Records::Products(v) => products(conn, ctx, v).await?,
        Records::Customers(v) => customers(conn, ctx, v, &mut rejected).await?,
        Records::ConsumptionRecords(v) => consumption(conn, ctx, known, v, &mut rejected).await?,
        Records::Consultations(v) => consultations(conn, ctx, known, v, &mut rejected).await?,
    };
    Ok((counts, rejected))
}

async fn institutions(
    conn: &mut SqliteConnection,
    ctx: &WriteContext,
    v: &[(usize, Institution)],
) -> Result<Counts, WriteError> {
    let mut c = Counts::default();
    for (_, r) in v {
        let revision: Option<i64> = sqlx::query_scalar(
            "INSERT INTO institutions (code, name, type, address, phone, email, status, content_hash, source_seq,
                 timezone)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (code) DO UPDATE SET name = excluded.name, type = excluded.type,
                 address = excluded.address, phone = excluded.phone, email = excluded.email,
                 status = excluded.status, content_hash = excluded.content_hash,
                 timezone = excluded.timezone, source_seq = excluded.source_seq,
                 revision = institutions.revision + 1, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
             WHERE institutions.content_hash IS NOT excluded.content_hash
               AND institutions.source_seq <= excluded.source_seq
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
        .bind(ctx.source_seq)
        .bind(&r.timezone)
        .fetch_optional(&mut *conn)
        .await?;
        c.add(outcome(revision));
    }
    Ok(c)
}

async fn doctors(
    conn: &mut SqliteConnection,
    ctx: &WriteContext,
    v: &[(usize, Doctor)],
    rejected: &mut Vec<RecordError>,
) -> Result<Counts, WriteError> {
    let codes: Vec<&str> = v.iter().map(|(_, r)| r.code.as_str()).collect();
    let current: HashMap<String, i64> = sqlx::query_as::<_, (String, i64)>(
        "SELECT code, institution_id FROM doctors WHERE code IN (SELECT value FROM json_each(?1)) AND institution_id IS NOT NULL",
    )
    .bind(json(&codes))
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .collect();
    let mut c = Counts::default();
    for (index, r) in v {
        let inst = match doctor_institution(ctx, *index, r, current.get(&r.code).copied()) {
            Ok(inst) => inst,
            Err(e) => {
                rejected.push(e);
                continue;
            }
        };
        let revision: Option<i64> = sqlx::query_scalar(
            "INSERT INTO doctors (code, institution_id, name, title, specialties, status, content_hash, source_seq)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (code) DO UPDATE SET institution_id = excluded.institution_id,
                 name = excluded.name, title = excluded.title, specialties = excluded.specialties,
                 status = excluded.status, content_hash = excluded.content_hash,
                 source_seq = excluded.source_seq,
                 revision = doctors.revision + 1, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
             WHERE doctors.content_hash IS NOT excluded.content_hash
               AND doctors.source_seq <= excluded.source_seq
             RETURNING revision",
        )
        .bind(&r.code)
        .bind(inst)
        .bind(&r.name)
        .bind(&r.title)
        .bind(json(&r.specialties))
        .bind(&r.status)
        .bind(content_hash(r))
        .bind(ctx.source_seq)
        .fetch_optional(&mut *conn)
        .await?;
        c.add(outcome(revision));
    }
    Ok(c)
}

async fn projects(
    conn: &mut SqliteConnection,
    ctx: &WriteContext,
    v: &[(usize, Project)],
) -> Result<Counts, WriteError> {
    let mut c = Counts::default();
    for (_, r) in v {
        let revision: Option<i64> = sqlx::query_scalar(
            "INSERT INTO projects (code, name, category, standard_price_cents, cycle_days, description, status, content_hash, source_seq, followup_days)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (code) DO UPDATE SET name = excluded.name, category = excluded.category,
                 standard_price_cents = excluded.standard_price_cents, cycle_days = excluded.cycle_days,
                 followup_days = excluded.followup_days,
                 description = excluded.description, status = excluded.status,
                 content_hash = excluded.content_hash, source_seq = excluded.source_seq,
                 revision = projects.revision + 1, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
             WHERE projects.content_hash IS NOT excluded.content_hash
               AND projects.source_seq <= excluded.source_seq
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
        .bind(ctx.source_seq)
        .bind(&r.followup_days)
        .fetch_optional(&mut *conn)
        .await?;
        c.add(outcome(revision));
    }
    Ok(c)
}

async fn products(
    conn: &mut SqliteConnection,
    ctx: &WriteContext,
    v: &[(usize, Product)],
) -> Result<Counts, WriteError> {
    let mut c = Counts::default();
    for (_, r) in v {
        let revision: Option<i64> = sqlx::query_scalar(
            "INSERT INTO products (code, name, category, brand, specification, price_cents, status, content_hash, source_seq)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (code) DO UPDATE SET name = excluded.name, category = excluded.category,
                 brand = excluded.brand, specification = excluded.specification,
                 price_cents = excluded.price_cents, status = excluded.status,
                 content_hash = excluded.content_hash, source_seq = excluded.source_seq,
                 revision = products.revision + 1, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
             WHERE products.content_hash IS NOT excluded.content_hash
               AND products.source_seq <= excluded.source_seq
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
        .bind(ctx.source_seq)
        .fetch_optional(&mut *conn)
        .await?;
        c.add(outcome(revision));
    }
    Ok(c)
}

async fn customers(
    conn: &mut SqliteConnection,
    ctx: &WriteContext,
    v: &[(usize, Customer)],
    rejected: &mut Vec<RecordError>,
) -> Result<Counts, WriteError> {
    let owned = assign_owners(ctx, v, |r| &r.code, "customer_code", rejected);
    let codes: Vec<&str> = owned.iter().map(|o| o.record.code.as_str()).collect();
    let existing: HashMap<String, i64> = sqlx::query_as::<_, (String, i64)>(
        "SELECT code, institution_id FROM customers WHERE code IN (SELECT value FROM json_each(?1))",
    )
    .bind(json(&codes))
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .collect();
    let owned = keep_own_rows(
        ctx,
        owned,
        &existing,
        "客户",
        |r| &r.code,
        "customer_code",
        rejected,
    );
    let mut c = Counts::default();
    let phones: Vec<&str> = owned
        .iter()
        .map(|o| o.record.person.phone.as_str())
        .collect();
    for o in owned {
        let r = o.record;
        let p = &r.person;
        let md = p.birthday.map(|b| (b.month() * 100 + b.day()) as i64);
        // The person (the phone) is shared by the chain's institutions and only joins their
        // customers; what an institution knows of its customer (name, gender, birthdays) is on
        // the institution's own row below, so no institution's file changes what another knows.
        let inserted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO persons (phone, source_seq) VALUES (?1, ?2)
             ON CONFLICT (phone) DO NOTHING RETURNING id",
        )
        .bind(&p.phone)
        .bind(ctx.source_seq)
        .fetch_optional(&mut *conn)
        .await?;
        let person_id: i64 = match inserted {
            Some(id) => id,
            None => {
                sqlx::query_scalar("SELECT id FROM persons WHERE phone = ?1")
                    .bind(&p.phone)
                    .fetch_one(&mut *conn)
                    .await?
            }
        };
        // The institution is never changed by an upsert: a file cannot move a customer.
        let revision: Option<i64> = sqlx::query_scalar(
            "INSERT INTO customers (code, institution_id, person_id, vip_level, source, tags, notes,
                 opted_out, content_hash, source_seq, wecom_external_userid, wecom_userid,
                 referrer_code, name, gender, birthday, birthday_md, lunar_birthday)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)
             ON CONFLICT (code) DO UPDATE SET
                 person_id = excluded.person_id, vip_level = excluded.vip_level,
                 name = excluded.name, gender = excluded.gender,
                 -- A missing birthday never erases a known one.
                 birthday = COALESCE(excluded.birthday, customers.birthday),
                 birthday_md = COALESCE(excluded.birthday_md, customers.birthday_md),
                 lunar_birthday = COALESCE(excluded.lunar_birthday, customers.lunar_birthday),
                 source = excluded.source, tags = excluded.tags, notes = excluded.notes,
                 opted_out = excluded.opted_out, content_hash = excluded.content_hash,
                 wecom_external_userid = COALESCE(excluded.wecom_external_userid,
                                                  customers.wecom_external_userid),
                 wecom_userid = COALESCE(excluded.wecom_userid, customers.wecom_userid),
                 referrer_code = COALESCE(excluded.referrer_code, customers.referrer_code),
                 source_seq = excluded.source_seq,
                 revision = customers.revision + 1, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
             WHERE customers.institution_id = excluded.institution_id
               AND customers.content_hash IS NOT excluded.content_hash
               AND customers.source_seq <= excluded.source_seq
             RETURNING revision",
        )
        .bind(&r.code)
        .bind(o.institution_id)
        .bind(person_id)
        .bind(&r.vip_level)
        .bind(&r.source)
        .bind(json(&r.tags))
        .bind(&r.notes)
        .bind(r.opted_out)
        // With its institution: the same record under another institution is another row.
        .bind(content_hash(&(&o.institution_code, r)))
        .bind(ctx.source_seq)
        .bind(&r.wecom_external_userid)
        .bind(&r.wecom_userid)
        .bind(&r.referrer_code)
        .bind(&p.name)
        .bind(&p.gender)
        .bind(p.birthday)
        .bind(md)
        .bind(p.lunar_birthday.map(|l| l.code()))
        .fetch_optional(&mut *conn)
        .await?;
        c.add(outcome(revision));
    }
    // A person now with customer rows at several institutions is marked on each row, so that
    // the birthday scan reads it from its index instead of probing per candidate.
    sqlx::query(
        "UPDATE customers SET person_shared = 1
         WHERE NOT person_shared AND person_id IN (
             SELECT o.person_id FROM customers o JOIN persons p ON p.id = o.person_id
             WHERE p.phone IN (SELECT value FROM json_each(?1))
             GROUP BY o.person_id HAVING count(*) > 1)",
    )
    .bind(json(&phones))
    .execute(&mut *conn)
    .await?;
    Ok(c)
}

async fn consumption(
    conn: &mut SqliteConnection,
    ctx: &WriteContext,
    known: &KnownCodes,
    v: &[(usize, ConsumptionRecord)],
    rejected: &mut Vec<RecordError>,
) -> Result<Counts, WriteError> {
    let rows = admitted(
        conn,
        ctx,
        v,
        "order_number",
        |i, r| known.check(i, r),
        rejected,
    )
    .await?;
    let mut c = Counts::default();
    for (institution_id, customer_id, r) in rows {
        let revision: Option<i64> = sqlx::query_scalar(
            "INSERT INTO consumption_records (institution_id, order_number, customer_id, order_date,
                 total_amount_cents, payment_method, status, content_hash, source_seq)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (institution_id, order_number) DO UPDATE SET customer_id = excluded.customer_id,
                 order_date = excluded.order_date, total_amount_cents = excluded.total_amount_cents,
                 payment_method = excluded.payment_method, status = excluded.status,
                 content_hash = excluded.content_hash, source_seq = excluded.source_seq,
                 revision = consumption_records.revision + 1,
                 updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
             WHERE consumption_records.content_hash IS NOT excluded.content_hash
               AND consumption_records.source_seq <= excluded.source_seq
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
        .bind(ctx.source_seq)
        .fetch_optional(&mut *conn)
        .await?;
        if revision.is_some() {
            replace_items(conn, institution_id, r).await?;
        }
        c.add(outcome(revision));
    }
    Ok(c)
}

/// The records of a chunk of a customer's records (orders, consultations) that may be written,
/// with their institution's and their customer's ids (see [`admit`]); the others are rejected.
async fn admitted<'a, T: OfCustomer>(
    conn: &mut SqliteConnection,
    ctx: &WriteContext,
    v: &'a [(usize, T)],
    field: &str,
    check: impl Fn(usize, &T) -> Result<(), RecordError>,
    rejected: &mut Vec<RecordError>,
) -> Result<Vec<(i64, i64, &'a T)>, sqlx::Error> {
    let owned = assign_customer_owners(ctx, v, rejected);
    let customers = customers_of(conn, &owned).await?;
    Ok(admit(ctx, owned, &customers, field, check, rejected))
}

/// The customers `owned` records name: code → (id, institution id).
async fn customers_of<T: OfCustomer>(
    conn: &mut SqliteConnection,
    owned: &[Owned<'_, T>],
) -> Result<HashMap<String, (i64, i64)>, sqlx::Error> {
    let codes: Vec<&str> = owned.iter().map(|o| o.record.customer_code()).collect();
    Ok(sqlx::query_as::<_, (String, i64, i64)>(
        "SELECT code, id, institution_id FROM customers WHERE code IN (SELECT value FROM json_each(?1))",
    )
    .bind(json(&codes))
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|(code, id, inst)| (code, (id, inst)))
    .collect())
}

async fn consultations(
    conn: &mut SqliteConnection,
    ctx: &WriteContext,
    known: &KnownCodes,
    v: &[(usize, Consultation)],
    rejected: &mut Vec<RecordError>,
) -> Result<Counts, WriteError> {
    let rows = admitted(
        conn,
        ctx,
        v,
        "consultation_code",
        |i, r| known.check_consultation(i, r),
        rejected,
    )
    .await?;
    let mut c = Counts::default();
    for (institution_id, customer_id, r) in rows {
        let revision: Option<i64> = sqlx::query_scalar(
            "INSERT INTO consultations (institution_id, code, customer_id, consult_date, channel,
                 consultant, doctor_code, project_codes, content, outcome, content_hash, source_seq)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
             ON CONFLICT (institution_id, code) DO UPDATE SET customer_id = excluded.customer_id,
                 consult_date = excluded.consult_date, channel = excluded.channel,
                 consultant = excluded.consultant, doctor_code = excluded.doctor_code,
                 project_codes = excluded.project_codes, content = excluded.content,
                 outcome = excluded.outcome, content_hash = excluded.content_hash,
                 source_seq = excluded.source_seq, revision = consultations.revision + 1,
                 updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
             WHERE consultations.content_hash IS NOT excluded.content_hash
               AND consultations.source_seq <= excluded.source_seq
             RETURNING revision",
        )
        .bind(institution_id)
        .bind(&r.code)
        .bind(customer_id)
        .bind(r.consult_date)
        .bind(&r.channel)
        .bind(&r.consultant)
        .bind(&r.doctor_code)
        .bind(json(&r.project_codes))
        .bind(&r.content)
        .bind(&r.outcome)
        .bind(content_hash(r))
        .bind(ctx.source_seq)
        .fetch_optional(&mut *conn)
        .await?;
        c.add(outcome(revision));
    }
    Ok(c)
}

async fn replace_items(
    conn: &mut SqliteConnection,
    institution_id: i64,
    r: &ConsumptionRecord,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM consumption_items WHERE institution_id = ?1 AND order_number = ?2")
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
    Ok(())
}

#[async_trait::async_trait]
impl crate::store::imports::Imports for SqliteStore {
    async fn import_file(
        &self,
        file: &FileImport<'_>,
        chunks: &mut tokio::sync::mpsc::Receiver<Chunk>,
        next: Option<NewJob>,
    ) -> Result<Imported, WriteError> {
        import::import_file(&self.pool, file, chunks, next).await
    }

    async fn file_imported(&self, path: &str, sha256: &str) -> StoreResult<bool> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM import_log WHERE path = ?1 AND file_sha256 = ?2)",
        )
        .bind(path)
        .bind(sha256)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn import_progress(&self, batch: &str) -> StoreResult<i64> {
        Ok(
            sqlx::query_scalar("SELECT count(*) FROM import_log WHERE batch = ?1")
                .bind(batch)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn note_file_progress(
        &self,
        batch: &str,
        path: &str,
        done: i64,
        total: i64,
    ) -> StoreResult<()> {
        Ok(sqlx::query(
            "INSERT INTO import_file_progress (batch, path, done, total) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (batch, path) DO UPDATE SET done = EXCLUDED.done, total = EXCLUDED.total,
                 updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
        )
        .bind(batch)
        .bind(path)
        .bind(done)
        .bind(total)
        .execute(&self.pool)
        .await
        .map(|_| ())?)
    }

    async fn file_progress(&self, batch: &str) -> StoreResult<Option<FileProgress>> {
        Ok(sqlx::query_as(
            "SELECT p.path, p.done, p.total FROM import_file_progress p WHERE p.batch = ?1
               AND NOT EXISTS (SELECT 1 FROM import_log l WHERE l.batch = p.batch AND l.path = p.path)
             ORDER BY p.updated_at DESC LIMIT 1",
        )
        .bind(batch)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn dead_import_error(&self, batch: &str) -> StoreResult<Option<String>> {
        let sql = format!(
            "SELECT COALESCE(json_extract(last_result, '$.Err'), 'failed') FROM Jobs
             WHERE job_type = ?1 AND json_extract(CAST(job AS TEXT), '$.batch') = ?2 AND {}
             LIMIT 1",
            JobState::Failed.condition()
        );
        Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(ImportFile::QUEUE)
            .bind(batch)
            .fetch_optional(&self.pool)
            .await
            .map(|e: Option<String>| e.map(readable_job_error))?)
    }

    async fn import_log(&self, batch: &str) -> StoreResult<Vec<ImportLogRow>> {
        type Row = (String, i32, i32, i32, i32, i32, String);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT path, total, inserted, updated, unchanged, rejected, errors FROM import_log
             WHERE batch = ?1 ORDER BY id",
        )
        .bind(batch)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(path, total, inserted, updated, unchanged, rejected, errors)| ImportLogRow {
                    path,
                    total,
                    inserted,
                    updated,
                    unchanged,
                    rejected,
                    errors: serde_json::from_str(&errors).unwrap_or_default(),
                },
            )
            .collect())
    }
}
