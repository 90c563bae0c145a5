//! Writing validated import records on PostgreSQL: chunks of a file in one transaction, with
//! idempotent upserts.
//!
//! Each row carries the hash of its validated record (for customers, with its institution); an
//! upsert whose hash is unchanged touches nothing, so importing the same file twice changes
//! nothing (not even `updated_at`). Each row also keeps the source sequence of the file that
//! wrote it, and an older file's upsert is skipped. Customers and consumption records, the
//! large files, are written a chunk per statement (`unnest` of arrays); the master data row by
//! row. References (an order's customer, project, product and doctor; a doctor's institution)
//! are checked per chunk and a record whose reference is unknown is rejected, as is one that
//! would change another institution's row (see [`crate::store::import_rules`]).
//!
//! `RETURNING (xmax = 0)` tells an insert from an update; partitioned tables cannot return
//! system columns, so consumption records compare `created_at = updated_at` instead (an update
//! sets `updated_at = now()`, and a chunk never holds the same order twice).

use super::*;

use std::collections::{HashMap, HashSet};

use sqlx::{PgConnection, PgPool};
use tokio::sync::mpsc;

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

/// Writes a file's chunks, logs it, and enqueues `next`, in one transaction.
pub async fn import_file(
    pool: &PgPool,
    file: &FileImport<'_>,
    chunks: &mut mpsc::Receiver<Chunk>,
    next: Option<NewJob>,
) -> Result<Imported, WriteError> {
    let mut tx = pool.begin().await?;
    let institutions: HashMap<String, i64> =
        sqlx::query_as::<_, (String, i64)>("SELECT code, id FROM institutions")
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
    let ctx = WriteContext::new(
        institutions,
        file.source.institution.as_deref(),
        &file.source.path,
        file.source_seq,
    );
    let known = if matches!(
        file.source.kind,
        revisit_jobs::ImportKind::ConsumptionRecords | revisit_jobs::ImportKind::Consultations
    ) {
        known_codes(&mut tx).await?
    } else {
        KnownCodes::default()
    };
    let mut imported = Imported::default();
    while let Some(chunk) = chunks.recv().await {
        let chunk = chunk.map_err(WriteError::File)?;
        let ctx = ctx
            .as_ref()
            .map_err(|code| WriteError::UnknownInstitution(code.clone()))?;
        let mut writer = Writer {
            conn: &mut tx,
            ctx,
            known: &known,
        };
        let (counts, rejected) = write_isolating_refusals(&mut writer, &chunk).await?;
        imported.add(counts, rejected);
    }
    let errors = reported_errors(file.read_errors, &imported.errors);
    sqlx::query(
        "INSERT INTO import_log (batch, path, kind, institution, file_sha256, total, inserted,
             updated, unchanged, rejected, errors)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (batch, path) DO UPDATE SET kind = EXCLUDED.kind,
             institution = EXCLUDED.institution, file_sha256 = EXCLUDED.file_sha256,
             total = EXCLUDED.total, inserted = EXCLUDED.inserted, updated = EXCLUDED.updated,
             unchanged = EXCLUDED.unchanged, rejected = EXCLUDED.rejected,
             errors = EXCLUDED.errors, finished_at = now()",
    )
    .bind(file.batch)
    .bind(&file.source.path)
    .bind(file.source.kind.as_str())
    .bind(&file.source.institution)
    .bind(file.sha256)
    .bind(file.total as i32)
    .bind(imported.counts.inserted as i32)
    .bind(imported.counts.updated as i32)
    .bind(imported.counts.unchanged as i32)
    .bind((file.read_rejected + imported.errors.len()) as i32)
    .bind(sqlx::types::Json(&errors))
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM import_file_progress WHERE batch = $1 AND path = $2")
        .bind(file.batch)
        .bind(&file.source.path)
        .execute(&mut *tx)
        .await?;
    if let Some(job) = next {
        super::jobs::insert(&mut tx, &job).await?;
    }
    tx.commit().await?;
    Ok(imported)
}

async fn known_codes(conn: &mut PgConnection) -> Result<KnownCodes, sqlx::Error> {
    Ok(KnownCodes {
        projects: codes(conn, "SELECT code FROM projects").await?,
        products: codes(conn, "SELECT code FROM products").await?,
        doctors: codes(conn, "SELECT code FROM doctors").await?,
    })
}

async fn codes(conn: &mut PgConnection, sql: &'static str) -> Result<HashSet<String>, sqlx::Error> {
    Ok(sqlx::query_scalar::<_, String>(sql)
        .fetch_all(conn)
        .await?
        .into_iter()
        .collect())
}

/// This engine's chunk writer, for [`write_isolating_refusals`].
struct Writer<'a> {
    conn: &'a mut PgConnection,
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
    conn: &mut PgConnection,
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
    conn: &mut PgConnection,
    ctx: &WriteContext,
    v: &[(usize, Institution)],
) -> Result<Counts, WriteError> {
    let mut c = Counts::default();
    for (_, r) in v {
        let outcome: Option<bool> = sqlx::query_scalar(
            "INSERT INTO institutions (code, name, type, address, phone, email, status, content_hash, source_seq,
                 timezone)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, type = EXCLUDED.type,
                 address = EXCLUDED.address, phone = EXCLUDED.phone, email = EXCLUDED.email,
                 status = EXCLUDED.status, content_hash = EXCLUDED.content_hash,
                 timezone = EXCLUDED.timezone, source_seq = EXCLUDED.source_seq, updated_at = now()
             WHERE institutions.content_hash IS DISTINCT FROM EXCLUDED.content_hash
               AND institutions.source_seq <= EXCLUDED.source_seq
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
        .bind(ctx.source_seq)
        .bind(&r.timezone)
        .fetch_optional(&mut *conn)
        .await?;
        c.add(outcome);
    }
    Ok(c)
}

async fn doctors(
    conn: &mut PgConnection,
    ctx: &WriteContext,
    v: &[(usize, Doctor)],
    rejected: &mut Vec<RecordError>,
) -> Result<Counts, WriteError> {
    let codes: Vec<&str> = v.iter().map(|(_, r)| r.code.as_str()).collect();
    let current: HashMap<String, i64> = sqlx::query_as::<_, (String, i64)>(
        "SELECT code, institution_id FROM doctors WHERE code = ANY($1) AND institution_id IS NOT NULL",
    )
    .bind(&codes)
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
        let outcome: Option<bool> = sqlx::query_scalar(
            "INSERT INTO doctors (code, institution_id, name, title, specialties, status, content_hash, source_seq)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (code) DO UPDATE SET institution_id = EXCLUDED.institution_id,
                 name = EXCLUDED.name, title = EXCLUDED.title, specialties = EXCLUDED.specialties,
                 status = EXCLUDED.status, content_hash = EXCLUDED.content_hash,
                 source_seq = EXCLUDED.source_seq, updated_at = now()
             WHERE doctors.content_hash IS DISTINCT FROM EXCLUDED.content_hash
               AND doctors.source_seq <= EXCLUDED.source_seq
             RETURNING (xmax = 0)",
        )
        .bind(&r.code)
        .bind(inst)
        .bind(&r.name)
        .bind(&r.title)
        .bind(&r.specialties)
        .bind(&r.status)
        .bind(content_hash(r))
        .bind(ctx.source_seq)
        .fetch_optional(&mut *conn)
        .await?;
        c.add(outcome);
    }
    Ok(c)
}

async fn projects(
    conn: &mut PgConnection,
    ctx: &WriteContext,
    v: &[(usize, Project)],
) -> Result<Counts, WriteError> {
    let mut c = Counts::default();
    for (_, r) in v {
        let outcome: Option<bool> = sqlx::query_scalar(
            "INSERT INTO projects (code, name, category, standard_price_cents, cycle_days, description, status, content_hash, source_seq, followup_days)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, category = EXCLUDED.category,
                 standard_price_cents = EXCLUDED.standard_price_cents, cycle_days = EXCLUDED.cycle_days,
                 followup_days = EXCLUDED.followup_days,
                 description = EXCLUDED.description, status = EXCLUDED.status,
                 content_hash = EXCLUDED.content_hash, source_seq = EXCLUDED.source_seq, updated_at = now()
             WHERE projects.content_hash IS DISTINCT FROM EXCLUDED.content_hash
               AND projects.source_seq <= EXCLUDED.source_seq
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
        .bind(ctx.source_seq)
        .bind(&r.followup_days)
        .fetch_optional(&mut *conn)
        .await?;
        c.add(outcome);
    }
    Ok(c)
}

async fn products(
    conn: &mut PgConnection,
    ctx: &WriteContext,
    v: &[(usize, Product)],
) -> Result<Counts, WriteError> {
    let mut c = Counts::default();
    for (_, r) in v {
        let outcome: Option<bool> = sqlx::query_scalar(
            "INSERT INTO products (code, name, category, brand, specification, price_cents, status, content_hash, source_seq)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, category = EXCLUDED.category,
                 brand = EXCLUDED.brand, specification = EXCLUDED.specification,
                 price_cents = EXCLUDED.price_cents, status = EXCLUDED.status,
                 content_hash = EXCLUDED.content_hash, source_seq = EXCLUDED.source_seq, updated_at = now()
             WHERE products.content_hash IS DISTINCT FROM EXCLUDED.content_hash
               AND products.source_seq <= EXCLUDED.source_seq
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
        .bind(ctx.source_seq)
        .fetch_optional(&mut *conn)
        .await?;
        c.add(outcome);
    }
    Ok(c)
}

async fn customers(
    conn: &mut PgConnection,
    ctx: &WriteContext,
    v: &[(usize, Customer)],
    rejected: &mut Vec<RecordError>,
) -> Result<Counts, WriteError> {
    let owned = assign_owners(ctx, v, |r| &r.code, "customer_code", rejected);
    let codes: Vec<&str> = owned.iter().map(|o| o.record.code.as_str()).collect();
    let existing: HashMap<String, i64> = sqlx::query_as::<_, (String, i64)>(
        "SELECT code, institution_id FROM customers WHERE code = ANY($1)",
    )
    .bind(&codes)
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
    if owned.is_empty() {
        return Ok(Counts::default());
    }
    // The person (the phone) is shared by the chain's institutions and only joins their
    // customers; what an institution knows of its customer (name, gender, birthdays) is on the
    // institution's own row below, so no institution's file changes what another knows.
    let mut phone: Vec<&str> = owned
        .iter()
        .map(|o| o.record.person.phone.as_str())
        .collect();
    phone.sort_unstable();
    phone.dedup();
    sqlx::query(
        "INSERT INTO persons (phone, source_seq)
         SELECT p, $2 FROM unnest($1::text[]) AS t(p)
         ON CONFLICT (phone) DO NOTHING",
    )
    .bind(&phone)
    .bind(ctx.source_seq)
    .execute(&mut *conn)
    .await?;
    let n = owned.len();
    let (mut code, mut inst, mut phones, mut vip, mut source) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut tags, mut notes, mut opted_out, mut hash) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut wecom_contact, mut wecom_staff) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let mut referrer = Vec::with_capacity(n);
    let (mut name, mut gender, mut birthday, mut lunar) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for o in &owned {
        let r = o.record;
        code.push(r.code.as_str());
        inst.push(o.institution_id);
        phones.push(r.person.phone.as_str());
        vip.push(r.vip_level.as_deref());
        source.push(r.source.as_deref());
        tags.push(array_literal(&r.tags));
        notes.push(r.notes.as_deref());
        opted_out.push(r.opted_out);
        wecom_contact.push(r.wecom_external_userid.as_deref());
        wecom_staff.push(r.wecom_userid.as_deref());
        referrer.push(r.referrer_code.as_deref());
        name.push(r.person.name.as_str());
        gender.push(r.person.gender.as_deref());
        birthday.push(r.person.birthday);
        lunar.push(r.person.lunar_birthday.map(|l| l.code()));
        // With its institution: the same record under another institution is another row.
        hash.push(content_hash(&(&o.institution_code, r)));
    }
    let outcomes: Vec<bool> = sqlx::query_scalar(
        "INSERT INTO customers (code, institution_id, person_id, vip_level, source, tags, notes,
             opted_out, content_hash, source_seq, wecom_external_userid, wecom_userid,
             referrer_code, name, gender, birthday, lunar_birthday)
         SELECT t.code, t.inst, p.id, t.vip, t.source,
                t.tags::text[], t.notes, t.opted_out,
                t.hash, $10, t.wecom_contact, t.wecom_staff, t.referrer, t.name, t.gender,
                t.birthday, t.lunar
         FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::text[], $8::bool[], $9::text[], $11::text[], $12::text[], $13::text[],
                     $14::text[], $15::text[], $16::date[], $17::smallint[])
              AS t(code, inst, phone, vip, source, tags, notes, opted_out, hash, wecom_contact,
                   wecom_staff, referrer, name, gender, birthday, lunar)
         JOIN persons p ON p.phone = t.phone
         ON CONFLICT (code) DO UPDATE SET person_id = EXCLUDED.person_id,
             name = EXCLUDED.name, gender = EXCLUDED.gender,
             -- A missing birthday never erases a known one.
             birthday = COALESCE(EXCLUDED.birthday, customers.birthday),
             lunar_birthday = COALESCE(EXCLUDED.lunar_birthday, customers.lunar_birthday),
             vip_level = EXCLUDED.vip_level, source = EXCLUDED.source, tags = EXCLUDED.tags,
             notes = EXCLUDED.notes, opted_out = EXCLUDED.opted_out,
             wecom_external_userid = COALESCE(EXCLUDED.wecom_external_userid,
                                              customers.wecom_external_userid),
             wecom_userid = COALESCE(EXCLUDED.wecom_userid, customers.wecom_userid),
             referrer_code = COALESCE(EXCLUDED.referrer_code, customers.referrer_code),
             content_hash = EXCLUDED.content_hash, source_seq = EXCLUDED.source_seq,
             updated_at = now()
         WHERE customers.institution_id = EXCLUDED.institution_id
           AND customers.content_hash IS DISTINCT FROM EXCLUDED.content_hash
           AND customers.source_seq <= EXCLUDED.source_seq
         RETURNING (xmax = 0)",
    )
    .bind(&code)
    .bind(&inst)
    .bind(&phones)
    .bind(&vip)
    .bind(&source)
    .bind(&tags)
    .bind(&notes)
    .bind(&opted_out)
    .bind(&hash)
    .bind(ctx.source_seq)
    .bind(&wecom_contact)
    .bind(&wecom_staff)
    .bind(&referrer)
    .bind(&name)
    .bind(&gender)
    .bind(&birthday)
    .bind(&lunar)
    .fetch_all(&mut *conn)
    .await?;
    // A person now with customer rows at several institutions is marked on each row, so that
    // the birthday scan reads it from its index instead of probing per candidate.
    sqlx::query(
        "UPDATE customers c SET person_shared = true
         FROM (SELECT o.person_id FROM customers o JOIN persons p ON p.id = o.person_id
               WHERE p.phone = ANY($1) GROUP BY o.person_id HAVING count(*) > 1) s
         WHERE c.person_id = s.person_id AND NOT c.person_shared",
    )
    .bind(&phone)
    .execute(&mut *conn)
    .await?;
    Ok(counts_of(n, &outcomes))
}

/// A PostgreSQL array literal, `{"a","b"}`: one text per row carries a row's list through
/// `unnest`, which cannot take a list of lists.
fn array_literal(items: &[String]) -> String {
    let mut out = String::from("{");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        for c in item.chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
    }
    out.push('}');
    out
}

/// Counts of a bulk upsert of `n` rows that returned `inserted?` for each row it wrote.
fn counts_of(n: usize, outcomes: &[bool]) -> Counts {
    let inserted = outcomes.iter().filter(|i| **i).count() as u32;
    let updated = outcomes.len() as u32 - inserted;
    Counts {
        inserted,
        updated,
        unchanged: n as u32 - inserted - updated,
    }
}

async fn consumption(
    conn: &mut PgConnection,
    ctx: &WriteContext,
    known: &KnownCodes,
    v: &[(usize, ConsumptionRecord)],
    rejected: &mut Vec<RecordError>,
) -> Result<Counts, WriteError> {
    // An order belongs to its customer's institution; an order number that carries another
    // institution's prefix is refused too.
    let rows = admitted(
        conn,
        ctx,
        v,
        "order_number",
        |i, r| known.check(i, r),
        rejected,
    )
    .await?;
    if rows.is_empty() {
        return Ok(Counts::default());
    }
    let n = rows.len();
    let (mut inst, mut number, mut customer, mut date) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut total, mut payment, mut status, mut hash) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for (i, c, r) in &rows {
        inst.push(*i);
        number.push(r.order_number.as_str());
        customer.push(*c);
        date.push(r.order_date);
        total.push(r.total_amount_cents);
        payment.push(r.payment_method.as_deref());
        status.push(r.status.as_str());
        hash.push(content_hash(r));
    }
    let written: Vec<(i64, String, bool)> = sqlx::query_as(
        "INSERT INTO consumption_records (institution_id, order_number, customer_id, order_date,
             total_amount_cents, payment_method, status, content_hash, source_seq)
         SELECT *, $9 FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::date[], $5::bigint[],
                               $6::text[], $7::text[], $8::text[])
         ON CONFLICT (institution_id, order_number) DO UPDATE SET customer_id = EXCLUDED.customer_id,
             order_date = EXCLUDED.order_date, total_amount_cents = EXCLUDED.total_amount_cents,
             payment_method = EXCLUDED.payment_method, status = EXCLUDED.status,
             content_hash = EXCLUDED.content_hash, source_seq = EXCLUDED.source_seq,
             updated_at = now()
         WHERE consumption_records.content_hash IS DISTINCT FROM EXCLUDED.content_hash
           AND consumption_records.source_seq <= EXCLUDED.source_seq
         RETURNING institution_id, order_number, (created_at = updated_at)",
    )
    .bind(&inst)
    .bind(&number)
    .bind(&customer)
    .bind(&date)
    .bind(&total)
    .bind(&payment)
    .bind(&status)
    .bind(&hash)
    .bind(ctx.source_seq)
    .fetch_all(&mut *conn)
    .await?;
    let written_keys: HashMap<(i64, &str), bool> = written
        .iter()
        .map(|(i, o, new)| ((*i, o.as_str()), *new))
        .collect();
    let (mut new_rows, mut updated_rows) = (Vec::new(), Vec::new());
    for row in &rows {
        match written_keys.get(&(row.0, row.2.order_number.as_str())) {
            Some(true) => new_rows.push(row),
            Some(false) => updated_rows.push(row),
            None => {}
        }
    }
    // A new order has no items yet; only an updated one has old items to remove.
    delete_items(conn, &updated_rows).await?;
    updated_rows.append(&mut new_rows);
    insert_items(conn, &updated_rows).await?;
    let outcomes: Vec<bool> = written.into_iter().map(|(_, _, new)| new).collect();
    Ok(counts_of(n, &outcomes))
}

/// The records of a chunk of a customer's records (orders, consultations) that may be written,
/// with their institution's and their customer's ids (see [`admit`]); the others are rejected.
async fn admitted<'a, T: OfCustomer>(
    conn: &mut PgConnection,
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
    conn: &mut PgConnection,
    owned: &[Owned<'_, T>],
) -> Result<HashMap<String, (i64, i64)>, sqlx::Error> {
    let codes: Vec<&str> = owned.iter().map(|o| o.record.customer_code()).collect();
    Ok(sqlx::query_as::<_, (String, i64, i64)>(
        "SELECT code, id, institution_id FROM customers WHERE code = ANY($1)",
    )
    .bind(&codes)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|(code, id, inst)| (code, (id, inst)))
    .collect())
}

/// Consultations, a chunk per statement; like orders, each belongs to its customer's
/// institution.
async fn consultations(
    conn: &mut PgConnection,
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
    if rows.is_empty() {
        return Ok(Counts::default());
    }
    let mut cols = ConsultationColumns::default();
    for (inst, customer, r) in &rows {
        cols.inst.push(*inst);
        cols.code.push(r.code.as_str());
        cols.customer.push(*customer);
        cols.date.push(r.consult_date);
        cols.channel.push(r.channel.as_deref());
        cols.consultant.push(r.consultant.as_deref());
        cols.doctor.push(r.doctor_code.as_deref());
        // unnest cannot take an array of arrays: each row's codes go as one array literal.
        cols.projects.push(array_literal(&r.project_codes));
        cols.content.push(r.content.as_deref());
        cols.outcome.push(r.outcome.as_deref());
        cols.hash.push(content_hash(r));
    }
    let outcomes: Vec<bool> = sqlx::query_scalar(
        "INSERT INTO consultations (institution_id, code, customer_id, consult_date, channel,
             consultant, doctor_code, project_codes, content, outcome, content_hash, source_seq)
         SELECT t.inst, t.code, t.customer, t.day, t.channel, t.consultant, t.doctor,
                t.projects::text[], t.content,
                t.outcome, t.hash, $12
         FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::date[], $5::text[], $6::text[],
                     $7::text[], $8::text[], $9::text[], $10::text[], $11::text[])
              AS t(inst, code, customer, day, channel, consultant, doctor, projects, content,
                   outcome, hash)
         ON CONFLICT (institution_id, code) DO UPDATE SET customer_id = EXCLUDED.customer_id,
             consult_date = EXCLUDED.consult_date, channel = EXCLUDED.channel,
             consultant = EXCLUDED.consultant, doctor_code = EXCLUDED.doctor_code,
             project_codes = EXCLUDED.project_codes, content = EXCLUDED.content,
             outcome = EXCLUDED.outcome, content_hash = EXCLUDED.content_hash,
             source_seq = EXCLUDED.source_seq, updated_at = now()
         WHERE consultations.content_hash IS DISTINCT FROM EXCLUDED.content_hash
           AND consultations.source_seq <= EXCLUDED.source_seq
         RETURNING (xmax = 0)",
    )
    .bind(&cols.inst)
    .bind(&cols.code)
    .bind(&cols.customer)
    .bind(&cols.date)
    .bind(&cols.channel)
    .bind(&cols.consultant)
    .bind(&cols.doctor)
    .bind(&cols.projects)
    .bind(&cols.content)
    .bind(&cols.outcome)
    .bind(&cols.hash)
    .bind(ctx.source_seq)
    .fetch_all(&mut *conn)
    .await?;
    Ok(counts_of(rows.len(), &outcomes))
}

#[derive(Default)]
struct ConsultationColumns<'a> {
    inst: Vec<i64>,
    code: Vec<&'a str>,
    customer: Vec<i64>,
    date: Vec<chrono::NaiveDate>,
    channel: Vec<Option<&'a str>>,
    consultant: Vec<Option<&'a str>>,
    doctor: Vec<Option<&'a str>>,
    projects: Vec<String>,
    content: Vec<Option<&'a str>>,
    outcome: Vec<Option<&'a str>>,
    hash: Vec<String>,
}

/// Removes the items of orders about to get their new items.
async fn delete_items(
    conn: &mut PgConnection,
    rows: &[&(i64, i64, &ConsumptionRecord)],
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let inst: Vec<i64> = rows.iter().map(|(i, _, _)| *i).collect();
    let number: Vec<&str> = rows
        .iter()
        .map(|(_, _, r)| r.order_number.as_str())
        .collect();
    sqlx::query(
        "DELETE FROM consumption_items it USING unnest($1::bigint[], $2::text[]) AS t(inst, num)
         WHERE it.institution_id = t.inst AND it.order_number = t.num",
    )
    .bind(&inst)
    .bind(&number)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Writes the items of the orders just written, in one statement.
async fn insert_items(
    conn: &mut PgConnection,
    rows: &[&(i64, i64, &ConsumptionRecord)],
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut cols = ItemColumns::default();
    for (i, _, r) in rows {
        for (n, it) in r.items.iter().enumerate() {
            cols.inst.push(*i);
            cols.order.push(r.order_number.as_str());
            cols.line.push(n as i32 + 1);
            cols.ty.push(it.item_type.as_str());
            cols.code.push(it.item_code.as_str());
            cols.name.push(it.item_name.as_str());
            cols.qty.push(it.quantity);
            cols.unit.push(it.unit_price_cents);
            cols.disc.push(it.discount);
            cols.actual.push(it.actual_price_cents);
            cols.doctor.push(it.doctor_code.as_deref());
        }
    }
    sqlx::query(
        "INSERT INTO consumption_items (institution_id, order_number, line_no, item_type, item_code,
             item_name, quantity, unit_price_cents, discount, actual_price_cents, doctor_code)
         SELECT * FROM unnest($1::bigint[], $2::text[], $3::int[], $4::text[], $5::text[],
             $6::text[], $7::int[], $8::bigint[], $9::float8[], $10::bigint[], $11::text[])",
    )
    .bind(&cols.inst)
    .bind(&cols.order)
    .bind(&cols.line)
    .bind(&cols.ty)
    .bind(&cols.code)
    .bind(&cols.name)
    .bind(&cols.qty)
    .bind(&cols.unit)
    .bind(&cols.disc)
    .bind(&cols.actual)
    .bind(&cols.doctor)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[derive(Default)]
struct ItemColumns<'a> {
    inst: Vec<i64>,
    order: Vec<&'a str>,
    line: Vec<i32>,
    ty: Vec<&'a str>,
    code: Vec<&'a str>,
    name: Vec<&'a str>,
    qty: Vec<i32>,
    unit: Vec<i64>,
    disc: Vec<Option<f64>>,
    actual: Vec<i64>,
    doctor: Vec<Option<&'a str>>,
}

#[async_trait::async_trait]
impl crate::store::imports::Imports for PgStore {
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
            "SELECT EXISTS (SELECT 1 FROM import_log WHERE path = $1 AND file_sha256 = $2)",
        )
        .bind(path)
        .bind(sha256)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn import_progress(&self, batch: &str) -> StoreResult<i64> {
        Ok(
            sqlx::query_scalar("SELECT count(*) FROM import_log WHERE batch = $1")
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
            "INSERT INTO import_file_progress (batch, path, done, total) VALUES ($1, $2, $3, $4)
             ON CONFLICT (batch, path) DO UPDATE SET done = EXCLUDED.done, total = EXCLUDED.total,
                 updated_at = now()",
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
            "SELECT p.path, p.done, p.total FROM import_file_progress p WHERE p.batch = $1
               AND NOT EXISTS (SELECT 1 FROM import_log l WHERE l.batch = p.batch AND l.path = p.path)
             ORDER BY p.updated_at DESC LIMIT 1",
        )
        .bind(batch)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn dead_import_error(&self, batch: &str) -> StoreResult<Option<String>> {
        let sql = format!(
            "SELECT COALESCE(last_result ->> 'Err', 'failed') FROM apalis.jobs
             WHERE job_type = $1 AND convert_from(job, 'UTF8')::jsonb ->> 'batch' = $2 AND {}
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
        type Row = (
            String,
            i32,
            i32,
            i32,
            i32,
            i32,
            sqlx::types::Json<Vec<crate::domain::records::RecordError>>,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT path, total, inserted, updated, unchanged, rejected, errors FROM import_log
             WHERE batch = $1 ORDER BY id",
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
                    errors: errors.0,
                },
            )
            .collect())
    }
}
