//! The import file formats of the seed document, and their validation.
//!
//! A file is read as a JSON array; each element is checked on its own, so one bad record is
//! reported (record index, its code when it has one, the field, the problem) and the valid
//! records of the same file still land. Validated records are plain typed values with money in
//! integer cents, phones normalised and dates parsed.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};

use super::privacy::{mask_digit_runs, normalize_phone};
use revisit_jobs::ImportKind;

/// What is wrong with one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordError {
    /// 0-based index of the record in the file's array.
    pub record: usize,
    /// The record's own code (customer code, order number...) when it could be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Path of the field at fault, e.g. `person.birthday` or `items[1].unit_price`.
    pub field: String,
    pub message: String,
}

impl RecordError {
    /// A record that names a row the store does not have (an unknown institution or customer).
    pub fn unknown_reference(record: usize, key: &str, field: &str, message: String) -> Self {
        Self {
            record,
            key: Some(key.to_owned()),
            field: field.to_owned(),
            message,
        }
    }
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "record #{}", self.record)?;
        if let Some(key) = &self.key {
            write!(f, " ({key})")?;
        }
        write!(f, ", field `{}`: {}", self.field, self.message)
    }
}

/// A file that could not be read as a JSON array at all. Nothing of it is imported.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct FileError {
    pub path: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Institution {
    pub code: String,
    pub name: String,
    pub kind: Option<String>,
    pub address: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Doctor {
    pub code: String,
    pub institution_code: Option<String>,
    pub name: String,
    pub title: Option<String>,
    pub specialties: Vec<String>,
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Project {
    pub code: String,
    pub name: String,
    pub category: Option<String>,
    pub standard_price_cents: Option<i64>,
    pub cycle_days: Option<i32>,
    pub description: Option<String>,
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Product {
    pub code: String,
    pub name: String,
    pub category: Option<String>,
    pub brand: Option<String>,
    pub specification: Option<String>,
    pub price_cents: Option<i64>,
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Person {
    pub name: String,
    pub gender: Option<String>,
    pub birthday: Option<NaiveDate>,
    /// Normalised: digits only.
    pub phone: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Customer {
    pub code: String,
    pub person: Person,
    pub vip_level: Option<String>,
    pub source: Option<String>,
    pub tags: Vec<String>,
    pub notes: Option<String>,
    pub opted_out: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConsumptionItem {
    pub item_type: String,
    pub item_code: String,
    pub item_name: String,
    pub quantity: i32,
    pub unit_price_cents: i64,
    pub discount: Option<f64>,
    pub actual_price_cents: i64,
    pub doctor_code: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConsumptionRecord {
    pub order_number: String,
    pub customer_code: String,
    pub order_date: NaiveDate,
    pub items: Vec<ConsumptionItem>,
    pub total_amount_cents: i64,
    pub payment_method: Option<String>,
    pub status: String,
}

/// The valid records of one file, of whichever kind it holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Records {
    Institutions(Vec<(usize, Institution)>),
    Doctors(Vec<(usize, Doctor)>),
    Projects(Vec<(usize, Project)>),
    Products(Vec<(usize, Product)>),
    Customers(Vec<(usize, Customer)>),
    ConsumptionRecords(Vec<(usize, ConsumptionRecord)>),
}

impl Records {
    pub fn len(&self) -> usize {
        match self {
            Self::Institutions(v) => v.len(),
            Self::Doctors(v) => v.len(),
            Self::Projects(v) => v.len(),
            Self::Products(v) => v.len(),
            Self::Customers(v) => v.len(),
            Self::ConsumptionRecords(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A parsed file: its valid records, the rejected ones, and how many there were in all.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedFile {
    pub records: Records,
    pub errors: Vec<RecordError>,
    pub total: usize,
}

/// Parses and validates one file's bytes as `kind`.
pub fn parse_file(kind: ImportKind, path: &str, bytes: &[u8]) -> Result<ParsedFile, FileError> {
    let items: Vec<serde_json::Value> = serde_json::from_slice(bytes).map_err(|e| FileError {
        path: path.to_owned(),
        message: format!("not a JSON array of records: {e}"),
    })?;
    let total = items.len();
    let mut errors = Vec::new();
    let records = match kind {
        ImportKind::Institutions => Records::Institutions(collect(items, &mut errors, institution)),
        ImportKind::Doctors => Records::Doctors(collect(items, &mut errors, doctor)),
        ImportKind::Projects => Records::Projects(collect(items, &mut errors, project)),
        ImportKind::Products => Records::Products(collect(items, &mut errors, product)),
        ImportKind::Customers => Records::Customers(collect(items, &mut errors, customer)),
        ImportKind::ConsumptionRecords => {
            Records::ConsumptionRecords(collect(items, &mut errors, consumption))
        }
    };
    let mut seen = std::collections::HashMap::new();
    let duplicates = record_keys(&records)
        .into_iter()
        .filter_map(|(index, key)| {
            seen.insert(key.clone(), index)
                .map(|first| (index, key, first))
        })
        .collect::<Vec<_>>();
    let mut parsed = ParsedFile {
        records,
        errors,
        total,
    };
    let rejected = duplicates
        .into_iter()
        .map(|(index, key, first)| RecordError {
            record: index,
            key: Some(key),
            field: key_field(kind).to_owned(),
            message: format!(
                "duplicate of record #{first} in the same file; the first one is kept"
            ),
        })
        .collect();
    parsed.reject(rejected);
    Ok(parsed)
}

impl ParsedFile {
    /// Moves records a later stage found invalid (unknown references) from the valid ones to
    /// the errors, keeping the errors in file order.
    pub fn reject(&mut self, rejected: Vec<RecordError>) {
        for e in rejected {
            self.remove(e.record);
            self.errors.push(e);
        }
        self.errors.sort_by_key(|e| e.record);
    }

    /// Drops the record at file index `index`, e.g. when a later stage finds it invalid.
    pub fn remove(&mut self, index: usize) {
        match &mut self.records {
            Records::Institutions(v) => v.retain(|(i, _)| *i != index),
            Records::Doctors(v) => v.retain(|(i, _)| *i != index),
            Records::Projects(v) => v.retain(|(i, _)| *i != index),
            Records::Products(v) => v.retain(|(i, _)| *i != index),
            Records::Customers(v) => v.retain(|(i, _)| *i != index),
            Records::ConsumptionRecords(v) => v.retain(|(i, _)| *i != index),
        }
    }
}

fn key_field(kind: ImportKind) -> &'static str {
    match kind {
        ImportKind::Institutions => "institution_code",
        ImportKind::Doctors => "doctor_code",
        ImportKind::Projects => "project_code",
        ImportKind::Products => "product_code",
        ImportKind::Customers => "customer_code",
        ImportKind::ConsumptionRecords => "order_number",
    }
}

fn record_keys(records: &Records) -> Vec<(usize, String)> {
    match records {
        Records::Institutions(v) => v.iter().map(|(i, r)| (*i, r.code.clone())).collect(),
        Records::Doctors(v) => v.iter().map(|(i, r)| (*i, r.code.clone())).collect(),
        Records::Projects(v) => v.iter().map(|(i, r)| (*i, r.code.clone())).collect(),
        Records::Products(v) => v.iter().map(|(i, r)| (*i, r.code.clone())).collect(),
        Records::Customers(v) => v.iter().map(|(i, r)| (*i, r.code.clone())).collect(),
        Records::ConsumptionRecords(v) => v
            .iter()
            .map(|(i, r)| (*i, r.order_number.clone()))
            .collect(),
    }
}

/// A stable fingerprint of a validated record: re-importing an unchanged record is a no-op.
pub fn content_hash<T: Serialize>(record: &T) -> String {
    sha256_hex(&serde_json::to_vec(record).expect("records serialise"))
}

/// SHA-256 of `bytes`, as lowercase hex (a file's or a record's fingerprint).
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Problem found while validating one record: field and message.
type FieldError = (String, String);

fn collect<R: DeserializeOwned, T>(
    items: Vec<serde_json::Value>,
    errors: &mut Vec<RecordError>,
    check: fn(R) -> Result<T, FieldError>,
) -> Vec<(usize, T)> {
    let mut out = Vec::with_capacity(items.len());
    for (index, value) in items.into_iter().enumerate() {
        let key = record_key_of(&value);
        let raw = match serde_path_to_error::deserialize::<_, R>(value) {
            Ok(raw) => raw,
            Err(e) => {
                let field = e.path().to_string();
                errors.push(RecordError {
                    record: index,
                    key,
                    field: if field == "." {
                        "(record)".to_owned()
                    } else {
                        field
                    },
                    // serde echoes the bad value, which may be a phone number.
                    message: mask_digit_runs(&e.into_inner().to_string()),
                });
                continue;
            }
        };
        match check(raw) {
            Ok(record) => out.push((index, record)),
            Err((field, message)) => errors.push(RecordError {
                record: index,
                key,
                field,
                message,
            }),
        }
    }
    out
}

fn record_key_of(value: &serde_json::Value) -> Option<String> {
    [
        "customer_code",
        "order_number",
        "institution_code",
        "doctor_code",
        "project_code",
        "product_code",
    ]
    .iter()
    .find_map(|k| value.get(*k).and_then(|v| v.as_str()).map(str::to_owned))
}

fn err<T>(field: &str, message: impl Into<String>) -> Result<T, FieldError> {
    Err((field.to_owned(), message.into()))
}

fn required(field: &str, value: Option<String>) -> Result<String, FieldError> {
    match value.map(|v| v.trim().to_owned()) {
        Some(v) if !v.is_empty() => Ok(v),
        Some(_) => err(field, "must not be empty"),
        None => err(field, "is required"),
    }
}

fn optional(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

fn date(field: &str, value: &str) -> Result<NaiveDate, FieldError> {
    NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d").map_err(|_| {
        (
            field.to_owned(),
            format!("{value:?} is not a date (YYYY-MM-DD)"),
        )
    })
}

fn cents(field: &str, yuan: f64) -> Result<i64, FieldError> {
    if !yuan.is_finite() || yuan < 0.0 {
        return err(field, format!("{yuan} is not a non-negative amount"));
    }
    if yuan > 1e11 {
        return err(field, format!("{yuan} is implausibly large"));
    }
    Ok((yuan * 100.0).round() as i64)
}

fn status(value: Option<String>, default: &str) -> String {
    optional(value).unwrap_or_else(|| default.to_owned())
}

#[derive(Deserialize)]
struct RawInstitution {
    institution_code: Option<String>,
    name: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    address: Option<String>,
    phone: Option<String>,
    email: Option<String>,
    status: Option<String>,
}

fn institution(r: RawInstitution) -> Result<Institution, FieldError> {
    Ok(Institution {
        code: required("institution_code", r.institution_code)?,
        name: required("name", r.name)?,
        kind: optional(r.kind),
        address: optional(r.address),
        phone: optional(r.phone),
        email: optional(r.email),
        status: status(r.status, "active"),
    })
}

#[derive(Deserialize)]
struct RawDoctor {
    doctor_code: Option<String>,
    institution_code: Option<String>,
    name: Option<String>,
    title: Option<String>,
    #[serde(default)]
    specialties: Vec<String>,
    status: Option<String>,
}

fn doctor(r: RawDoctor) -> Result<Doctor, FieldError> {
    Ok(Doctor {
        code: required("doctor_code", r.doctor_code)?,
        institution_code: optional(r.institution_code),
        name: required("name", r.name)?,
        title: optional(r.title),
        specialties: r.specialties,
        status: status(r.status, "active"),
    })
}

#[derive(Deserialize)]
struct RawProject {
    project_code: Option<String>,
    name: Option<String>,
    category: Option<String>,
    standard_price: Option<f64>,
    cycle_days: Option<i32>,
    description: Option<String>,
    status: Option<String>,
}

fn project(r: RawProject) -> Result<Project, FieldError> {
    if let Some(days) = r.cycle_days
        && !(1..=3650).contains(&days)
    {
        return err("cycle_days", format!("{days} is not 1..=3650 days"));
    }
    Ok(Project {
        code: required("project_code", r.project_code)?,
        name: required("name", r.name)?,
        category: optional(r.category),
        standard_price_cents: r
            .standard_price
            .map(|p| cents("standard_price", p))
            .transpose()?,
        cycle_days: r.cycle_days,
        description: optional(r.description),
        status: status(r.status, "active"),
    })
}

#[derive(Deserialize)]
struct RawProduct {
    product_code: Option<String>,
    name: Option<String>,
    category: Option<String>,
    brand: Option<String>,
    specification: Option<String>,
    price: Option<f64>,
    status: Option<String>,
}

fn product(r: RawProduct) -> Result<Product, FieldError> {
    Ok(Product {
        code: required("product_code", r.product_code)?,
        name: required("name", r.name)?,
        category: optional(r.category),
        brand: optional(r.brand),
        specification: optional(r.specification),
        price_cents: r.price.map(|p| cents("price", p)).transpose()?,
        status: status(r.status, "active"),
    })
}

#[derive(Deserialize)]
struct RawPerson {
    name: Option<String>,
    gender: Option<String>,
    birthday: Option<String>,
    phone: Option<String>,
}

#[derive(Deserialize)]
struct RawCustomer {
    customer_code: Option<String>,
    person: Option<RawPerson>,
    vip_level: Option<String>,
    source: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    notes: Option<String>,
    #[serde(default)]
    opted_out: bool,
}

fn customer(r: RawCustomer) -> Result<Customer, FieldError> {
    let code = required("customer_code", r.customer_code)?;
    let Some(p) = r.person else {
        return err("person", "is required");
    };
    let name = required("person.name", p.name)?;
    let phone_raw = required("person.phone", p.phone)?;
    let phone = normalize_phone(&phone_raw).ok_or_else(|| {
        (
            "person.phone".to_owned(),
            "is not a phone number".to_owned(),
        )
    })?;
    let birthday = match optional(p.birthday) {
        Some(text) => {
            let day = date("person.birthday", &text)?;
            if day.year() < 1900 || day > chrono::Utc::now().date_naive() {
                return err(
                    "person.birthday",
                    format!("{text} is not a plausible birthday"),
                );
            }
            Some(day)
        }
        None => None,
    };
    if let Some(g) = &p.gender
        && !matches!(g.trim(), "男" | "女" | "其他" | "")
    {
        return err("person.gender", format!("{g:?} is not 男, 女 or 其他"));
    }
    Ok(Customer {
        code,
        person: Person {
            name,
            gender: optional(p.gender),
            birthday,
            phone,
        },
        vip_level: optional(r.vip_level),
        source: optional(r.source),
        tags: r
            .tags
            .into_iter()
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .collect(),
        notes: optional(r.notes),
        opted_out: r.opted_out,
    })
}

#[derive(Deserialize)]
struct RawItem {
    item_type: Option<String>,
    item_code: Option<String>,
    item_name: Option<String>,
    quantity: Option<i32>,
    unit_price: Option<f64>,
    discount: Option<f64>,
    actual_price: Option<f64>,
    doctor_code: Option<String>,
}

#[derive(Deserialize)]
struct RawConsumption {
    order_number: Option<String>,
    customer_code: Option<String>,
    order_date: Option<String>,
    #[serde(default)]
    items: Vec<RawItem>,
    total_amount: Option<f64>,
    payment_method: Option<String>,
    status: Option<String>,
    /// Record-level doctor, used for items that do not name their own.
    doctor_code: Option<String>,
}

fn consumption(r: RawConsumption) -> Result<ConsumptionRecord, FieldError> {
    let order_number = required("order_number", r.order_number)?;
    let customer_code = required("customer_code", r.customer_code)?;
    let order_date = date("order_date", &required("order_date", r.order_date)?)?;
    if r.items.is_empty() {
        return err("items", "a consumption record needs at least one item");
    }
    let record_doctor = optional(r.doctor_code);
    let mut items = Vec::with_capacity(r.items.len());
    for (i, it) in r.items.into_iter().enumerate() {
        let f = |name: &str| format!("items[{i}].{name}");
        let item_type = required(&f("item_type"), it.item_type)?;
        if item_type != "project" && item_type != "product" {
            return err(
                &f("item_type"),
                format!("{item_type:?} is not project or product"),
            );
        }
        let quantity = it
            .quantity
            .ok_or_else(|| (f("quantity"), "is required".to_owned()))?;
        if quantity <= 0 {
            return err(
                &f("quantity"),
                format!("{quantity} is not a positive quantity"),
            );
        }
        if let Some(d) = it.discount
            && !(0.0..=1.0).contains(&d)
        {
            return err(&f("discount"), format!("{d} is not a rate between 0 and 1"));
        }
        let unit = it
            .unit_price
            .ok_or_else(|| (f("unit_price"), "is required".to_owned()))?;
        let actual = it
            .actual_price
            .ok_or_else(|| (f("actual_price"), "is required".to_owned()))?;
        items.push(ConsumptionItem {
            item_type,
            item_code: required(&f("item_code"), it.item_code)?,
            item_name: required(&f("item_name"), it.item_name)?,
            quantity,
            unit_price_cents: cents(&f("unit_price"), unit)?,
            discount: it.discount,
            actual_price_cents: cents(&f("actual_price"), actual)?,
            doctor_code: optional(it.doctor_code).or_else(|| record_doctor.clone()),
        });
    }
    let total = r
        .total_amount
        .ok_or_else(|| ("total_amount".to_owned(), "is required".to_owned()))?;
    Ok(ConsumptionRecord {
        order_number,
        customer_code,
        order_date,
        items,
        total_amount_cents: cents("total_amount", total)?,
        payment_method: optional(r.payment_method),
        status: status(r.status, "completed"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(kind: ImportKind, json: &str) -> ParsedFile {
        parse_file(kind, "t.json", json.as_bytes()).unwrap()
    }

    #[test]
    fn seed_customer_example_parses() {
        let p = parse(
            ImportKind::Customers,
            r#"[{"customer_code":"BJ-HA-001-C0001","person":{"name":"张三","gender":"女",
            "birthday":"1990-05-15","phone":"13800138000"},"vip_level":"金卡","source":"朋友推荐",
            "tags":["敏感肌","抗衰老"],"notes":"皮肤敏感，注意产品选择"}]"#,
        );
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        let Records::Customers(c) = p.records else {
            panic!()
        };
        assert_eq!(c[0].1.person.birthday, NaiveDate::from_ymd_opt(1990, 5, 15));
        assert_eq!(c[0].1.tags, vec!["敏感肌", "抗衰老"]);
    }

    #[test]
    fn seed_consumption_example_parses_to_cents() {
        let p = parse(
            ImportKind::ConsumptionRecords,
            r#"[{"order_number":"BJ-HA-001-ORD-20260115-0001","customer_code":"BJ-HA-001-C0001",
            "order_date":"2026-01-15","items":[{"item_type":"project","item_code":"PRJ-001",
            "item_name":"水光针","quantity":1,"unit_price":2800.00,"discount":0.9,"actual_price":2520.00}],
            "total_amount":2520.00,"payment_method":"微信支付","status":"completed"}]"#,
        );
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        let Records::ConsumptionRecords(r) = p.records else {
            panic!()
        };
        assert_eq!(r[0].1.total_amount_cents, 252_000);
        assert_eq!(r[0].1.items[0].unit_price_cents, 280_000);
    }

    #[test]
    fn bad_records_are_named_and_good_ones_kept() {
        let p = parse(
            ImportKind::Customers,
            r#"[
              {"customer_code":"C1","person":{"name":"甲","birthday":"1990-13-01","phone":"13800000001"}},
              {"customer_code":"C2","person":{"name":"乙","birthday":"1991-02-03","phone":"13800000002"}},
              {"customer_code":"C3","person":{"birthday":"1991-02-03","phone":"13800000003"}},
              {"customer_code":"C4","person":{"name":"丁","phone":12}},
              {"customer_code":"C2","person":{"name":"乙","phone":"13800000002"}}
            ]"#,
        );
        assert_eq!(p.total, 5);
        assert_eq!(p.records.len(), 1);
        let fields: Vec<_> = p
            .errors
            .iter()
            .map(|e| (e.record, e.key.as_deref().unwrap(), e.field.as_str()))
            .collect();
        assert_eq!(
            fields,
            vec![
                (0, "C1", "person.birthday"),
                (2, "C3", "person.name"),
                (3, "C4", "person.phone"),
                (4, "C2", "customer_code"),
            ]
        );
        assert!(
            p.errors[0]
                .to_string()
                .contains("record #0 (C1), field `person.birthday`")
        );
    }

    #[test]
    fn item_errors_name_the_item() {
        let p = parse(
            ImportKind::ConsumptionRecords,
            r#"[{"order_number":"O1","customer_code":"C1","order_date":"2026-01-15","total_amount":1,
            "items":[{"item_type":"project","item_code":"P","item_name":"n","quantity":1,"unit_price":1,"actual_price":1},
                     {"item_type":"service","item_code":"P","item_name":"n","quantity":1,"unit_price":1,"actual_price":1}]}]"#,
        );
        assert_eq!(p.errors[0].field, "items[1].item_type");
    }

    #[test]
    fn not_an_array_is_a_file_error() {
        let e = parse_file(
            ImportKind::Institutions,
            "x/institutions.json",
            b"{\"a\":1}",
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("x/institutions.json: not a JSON array")
        );
    }

    #[test]
    fn content_hash_is_stable_and_sensitive() {
        let p = parse(
            ImportKind::Institutions,
            r#"[{"institution_code":"A","name":"甲"},{"institution_code":"B","name":"甲"}]"#,
        );
        let Records::Institutions(v) = p.records else {
            panic!()
        };
        assert_eq!(content_hash(&v[0].1), content_hash(&v[0].1.clone()));
        assert_ne!(content_hash(&v[0].1), content_hash(&v[1].1));
    }
}
