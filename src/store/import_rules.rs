//! The rules of writing import records that do not depend on the engine: whose records a file
//! may write, and which references must exist. Both stores' writers apply them to each chunk,
//! after reading what they need from their database.

use std::collections::{HashMap, HashSet};

use crate::{
    domain::{
        ownership::belongs_elsewhere,
        records::{Consultation, ConsumptionRecord, RecordError, Records},
    },
    store::{Counts, Imported, StoreErrorKind, WriteContext, WriteError, refused},
};

/// What writing a chunk did: its counts and the records the store rejected.
pub type ChunkResult = Result<(Counts, Vec<RecordError>), WriteError>;

/// An engine's writer of one chunk, on a connection in a transaction.
#[async_trait::async_trait]
pub trait ChunkWriter: Send {
    /// Runs a statement without results (a savepoint).
    async fn exec(&mut self, sql: &'static str) -> Result<(), sqlx::Error>;
    async fn write(&mut self, chunk: &Records) -> ChunkResult;
}

/// Writes one chunk inside a savepoint. If the database refuses it (a data error, which no
/// retry can fix), writes its records one by one, each in a savepoint of its own, and rejects
/// the ones the database refuses, with its reason; the others land.
pub async fn write_isolating_refusals(w: &mut dyn ChunkWriter, chunk: &Records) -> ChunkResult {
    w.exec("SAVEPOINT chunk").await?;
    match w.write(chunk).await {
        Ok(done) => {
            w.exec("RELEASE SAVEPOINT chunk").await?;
            Ok(done)
        }
        Err(WriteError::Db(e)) if e.kind() == StoreErrorKind::Data => {
            w.exec("ROLLBACK TO SAVEPOINT chunk").await?;
            let mut all = Imported::default();
            for single in chunk.singles() {
                w.exec("SAVEPOINT one").await?;
                match w.write(&single).await {
                    Ok((counts, rejected)) => {
                        w.exec("RELEASE SAVEPOINT one").await?;
                        all.add(counts, rejected);
                    }
                    Err(WriteError::Db(e)) if e.kind() == StoreErrorKind::Data => {
                        w.exec("ROLLBACK TO SAVEPOINT one").await?;
                        let (index, key) = single.keys().remove(0);
                        all.add(Counts::default(), vec![refused(index, key, &e)]);
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok((all.counts, all.errors))
        }
        Err(e) => Err(e),
    }
}

/// A record of a chunk with the institution it belongs to.
pub struct Owned<'a, T> {
    pub index: usize,
    pub record: &'a T,
    pub institution_code: String,
    pub institution_id: i64,
}

/// Gives each record its institution (by folder or code prefix, see
/// [`crate::domain::ownership::owner`]); records whose institution cannot be told, or whose
/// code names another institution than the folder's, are rejected.
pub fn assign_owners<'a, T>(
    ctx: &WriteContext,
    records: &'a [(usize, T)],
    code_of: impl Fn(&T) -> &str,
    field: &str,
    rejected: &mut Vec<RecordError>,
) -> Vec<Owned<'a, T>> {
    owners(ctx, records, &code_of, &code_of, field, rejected)
}

/// [`assign_owners`] for records of a customer (orders, consultations): each belongs to its
/// customer's institution, and a rejected one is named by its own code.
pub fn assign_customer_owners<'a, T: OfCustomer>(
    ctx: &WriteContext,
    records: &'a [(usize, T)],
    rejected: &mut Vec<RecordError>,
) -> Vec<Owned<'a, T>> {
    owners(
        ctx,
        records,
        &|r: &T| r.customer_code(),
        &|r: &T| r.key(),
        "customer_code",
        rejected,
    )
}

fn owners<'a, T>(
    ctx: &WriteContext,
    records: &'a [(usize, T)],
    code_of: &dyn Fn(&T) -> &str,
    key_of: &dyn Fn(&T) -> &str,
    field: &str,
    rejected: &mut Vec<RecordError>,
) -> Vec<Owned<'a, T>> {
    let mut out = Vec::with_capacity(records.len());
    for (index, record) in records {
        match ctx.owner(code_of(record)) {
            Ok((institution_code, institution_id)) => out.push(Owned {
                index: *index,
                record,
                institution_code,
                institution_id,
            }),
            Err(message) => rejected.push(RecordError::unknown_reference(
                *index,
                key_of(record),
                field,
                message,
            )),
        }
    }
    out
}

/// Keeps the records whose row, if it exists (`existing`: code → institution id), belongs to
/// the same institution; the others are rejected: a file never moves another institution's row.
pub fn keep_own_rows<'a, T>(
    ctx: &WriteContext,
    owned: Vec<Owned<'a, T>>,
    existing: &HashMap<String, i64>,
    what: &str,
    code_of: impl Fn(&T) -> &str,
    field: &str,
    rejected: &mut Vec<RecordError>,
) -> Vec<Owned<'a, T>> {
    owned
        .into_iter()
        .filter(|o| {
            let code = code_of(o.record);
            match existing.get(code) {
                Some(id) if *id != o.institution_id => {
                    rejected.push(RecordError::unknown_reference(
                        o.index,
                        code,
                        field,
                        belongs_elsewhere(what, code, ctx.code_of(*id), &o.institution_code),
                    ));
                    false
                }
                _ => true,
            }
        })
        .collect()
}

/// The codes an order's items may name.
#[derive(Debug, Default)]
pub struct KnownCodes {
    pub projects: HashSet<String>,
    pub products: HashSet<String>,
    pub doctors: HashSet<String>,
}

impl KnownCodes {
    /// `Err` names the first item whose project, product or doctor is unknown.
    pub fn check(&self, index: usize, r: &ConsumptionRecord) -> Result<(), RecordError> {
        for (i, item) in r.items.iter().enumerate() {
            let (known, what) = if item.item_type == "project" {
                (&self.projects, "project")
            } else {
                (&self.products, "product")
            };
            if !known.contains(&item.item_code) {
                return Err(RecordError::unknown_reference(
                    index,
                    &r.order_number,
                    &format!("items[{i}].item_code"),
                    format!(
                        "未知的{} {}：请先导入 {what}s.json",
                        if what == "project" {
                            "项目"
                        } else {
                            "产品"
                        },
                        item.item_code
                    ),
                ));
            }
            if let Some(doctor) = &item.doctor_code
                && !self.doctors.contains(doctor)
            {
                return Err(RecordError::unknown_reference(
                    index,
                    &r.order_number,
                    &format!("items[{i}].doctor_code"),
                    format!("未知的医生 {doctor}：请先导入 doctors.json"),
                ));
            }
        }
        Ok(())
    }

    /// `Err` names the first project or the doctor of a consultation that is unknown.
    pub fn check_consultation(&self, index: usize, r: &Consultation) -> Result<(), RecordError> {
        for (i, code) in r.project_codes.iter().enumerate() {
            if !self.projects.contains(code) {
                return Err(RecordError::unknown_reference(
                    index,
                    &r.code,
                    &format!("project_codes[{i}]"),
                    format!("未知的项目 {code}：请先导入 projects.json"),
                ));
            }
        }
        match &r.doctor_code {
            Some(doctor) if !self.doctors.contains(doctor) => Err(RecordError::unknown_reference(
                index,
                &r.code,
                "doctor_code",
                format!("未知的医生 {doctor}：请先导入 doctors.json"),
            )),
            _ => Ok(()),
        }
    }
}

/// A record of a customer's (an order, a consultation): its own code and its customer's.
pub trait OfCustomer {
    fn key(&self) -> &str;
    fn customer_code(&self) -> &str;
}

impl OfCustomer for ConsumptionRecord {
    fn key(&self) -> &str {
        &self.order_number
    }
    fn customer_code(&self) -> &str {
        &self.customer_code
    }
}

impl OfCustomer for Consultation {
    fn key(&self) -> &str {
        &self.code
    }
    fn customer_code(&self) -> &str {
        &self.customer_code
    }
}

/// The records of a chunk that may be written, each with its institution id and its
/// customer's id: its code fits its institution (`field` names the code), its customer is known
/// there (`customers`: code → (id, institution id)), and `check` passes; the others are
/// rejected.
pub fn admit<'a, T: OfCustomer>(
    ctx: &WriteContext,
    owned: Vec<Owned<'a, T>>,
    customers: &HashMap<String, (i64, i64)>,
    field: &str,
    check: impl Fn(usize, &T) -> Result<(), RecordError>,
    rejected: &mut Vec<RecordError>,
) -> Vec<(i64, i64, &'a T)> {
    let mut rows = Vec::with_capacity(owned.len());
    for o in owned {
        let r = o.record;
        if let Err(e) = own_code_fits(ctx, o.index, r, field, &o.institution_code) {
            rejected.push(e);
            continue;
        }
        let customer_id = match customers.get(r.customer_code()) {
            Some((id, inst)) if *inst == o.institution_id => *id,
            other => {
                rejected.push(unknown_customer(
                    ctx,
                    o.index,
                    r,
                    &o.institution_code,
                    other.map(|(_, inst)| *inst),
                ));
                continue;
            }
        };
        if let Err(e) = check(o.index, r) {
            rejected.push(e);
            continue;
        }
        rows.push((o.institution_id, customer_id, r));
    }
    rows
}

/// The error for a record whose customer is not known at its institution.
fn unknown_customer(
    ctx: &WriteContext,
    index: usize,
    r: &impl OfCustomer,
    institution_code: &str,
    customer_institution: Option<i64>,
) -> RecordError {
    let message = match customer_institution {
        Some(other) => belongs_elsewhere(
            "客户",
            r.customer_code(),
            ctx.code_of(other),
            institution_code,
        ),
        None => format!(
            "机构 {institution_code} 没有客户 {}：请先导入该客户",
            r.customer_code()
        ),
    };
    RecordError::unknown_reference(index, r.key(), "customer_code", message)
}

/// The institution a doctor row names: the folder's when the file sits in one (a doctor who
/// names another institution there, or who is another institution's already (`current`), is
/// refused), else the record's own `institution_code` (the chain's common file may move a
/// doctor who changed clinics).
pub fn doctor_institution(
    ctx: &WriteContext,
    index: usize,
    r: &crate::domain::records::Doctor,
    current: Option<i64>,
) -> Result<Option<i64>, RecordError> {
    let refuse = |message: String| {
        RecordError::unknown_reference(index, &r.code, "institution_code", message)
    };
    if let (Some((folder, id)), Some(owner)) = (&ctx.folder, current)
        && owner != *id
    {
        return Err(refuse(belongs_elsewhere(
            "医生",
            &r.code,
            ctx.code_of(owner),
            folder,
        )));
    }
    match (&ctx.folder, &r.institution_code) {
        (Some((_, id)), None) => Ok(Some(*id)),
        (Some((folder, id)), Some(code)) if code == folder => Ok(Some(*id)),
        (Some((folder, _)), Some(code)) => Err(refuse(format!(
            "医生 {} 写的机构是 {code}，但文件在 {folder} 的文件夹里：一家机构的文件不能修改其他机构的数据",
            r.code
        ))),
        (None, Some(code)) => ctx
            .institutions
            .get(code)
            .map(|id| Some(*id))
            .ok_or_else(|| refuse(format!("未知的机构 {code}"))),
        (None, None) => Ok(None),
    }
}

/// A record code (an order number, a consultation code) that carries an institution's prefix
/// must carry its customer's; `field` names the code's field.
fn own_code_fits(
    ctx: &WriteContext,
    index: usize,
    r: &impl OfCustomer,
    field: &str,
    institution_code: &str,
) -> Result<(), RecordError> {
    crate::domain::ownership::owner(
        r.key(),
        Some(institution_code),
        ctx.institutions.keys().map(String::as_str),
    )
    .map(|_| ())
    .map_err(|message| RecordError::unknown_reference(index, r.key(), field, message))
}
