//! The import file formats of the seed document, and their validation.
//!
//! A file is read as a JSON array; each element is checked on its own, so one bad record is
//! reported (record index, its code when it has one, the field, the problem) and the valid
//! records of the same file still land. Validated records are plain typed values with money in
//! integer cents, phones normalised and dates parsed.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};

use super::{
    json_stream::{RawValue, strip_position},
    privacy::{mask_digit_runs, normalize_phone},
};
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
    /// A problem of the record as a whole (too large to read), not of one field.
    pub fn whole(index: usize, message: String) -> Self {
        Self {
            record: index,
            key: None,
            field: "(record)".to_owned(),
            message,
        }
    }

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

/// The `field` of an error that refused a whole file.
pub const FILE_FIELD: &str = "(file)";

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A file refused whole is the file's error, not a record's.
        if self.field == FILE_FIELD {
            return f.write_str(&self.message);
        }
        // Counted from 1, as staff count (`record` is the index).
        write!(f, "第 {} 条记录", self.record + 1)?;
        if let Some(key) = &self.key {
            write!(f, "（{key}）")?;
        }
        write!(f, "，字段 `{}`：{}", self.field, self.message)
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
    /// An IANA time zone (`Asia/Shanghai`) for an institution away from the chain's; its quiet
    /// hours follow it. Left out of the fingerprint when absent, so that older rows stay
    /// unchanged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
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
    /// Days after a treatment on which check-ins go out, as stored (`"1,3,7,30"`); `None`:
    /// the category's defaults (see [`super::followup::default_followup_days`]).
    pub followup_days: Option<String>,
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
    /// Kept by the Chinese calendar: when set, the birthday greeting follows it, not `birthday`.
    pub lunar_birthday: Option<super::lunar::LunarBirthday>,
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
    /// The customer's id among the chain's WeCom external contacts, and the staff member (their
    /// WeCom userid) who has them as a contact: what a WeCom broadcast goes through. Left out of
    /// the fingerprint when absent, so that older rows stay unchanged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wecom_external_userid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wecom_userid: Option<String>,
    /// The code of the customer (at any institution of the chain) who referred this one: the
    /// relation graph's `referred_by` edge. Left out of the fingerprint when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referrer_code: Option<String>,
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

/// A consultation record (咨询记录): a customer's visit, call or chat about treatments, which
/// may or may not have led to an order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Consultation {
    pub code: String,
    pub customer_code: String,
    pub consult_date: NaiveDate,
    /// 到店, 电话, 线上... as the chain writes it.
    pub channel: Option<String>,
    /// The staff member who consulted (a name as the chain writes it).
    pub consultant: Option<String>,
    pub doctor_code: Option<String>,
    /// The projects the customer asked about.
    pub project_codes: Vec<String>,
    /// What was said; may hold health details, so it is handled like customer notes.
    pub content: Option<String>,
    /// 已成交, 未成交, 跟进中... as the chain writes it.
    pub outcome: Option<String>,
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
    Consultations(Vec<(usize, Consultation)>),
}

impl Records {
    /// No records yet, of `kind`.
    pub fn empty(kind: ImportKind) -> Self {
        match kind {
            ImportKind::Institutions => Self::Institutions(Vec::new()),
            ImportKind::Doctors => Self::Doctors(Vec::new()),
            ImportKind::Projects => Self::Projects(Vec::new()),
            ImportKind::Products => Self::Products(Vec::new()),
            ImportKind::Customers => Self::Customers(Vec::new()),
            ImportKind::ConsumptionRecords => Self::ConsumptionRecords(Vec::new()),
            ImportKind::Consultations => Self::Consultations(Vec::new()),
        }
    }

    /// Adds a record of this kind (one of another kind is a bug: it panics).
    pub fn push(&mut self, index: usize, record: Record) {
        match (self, record) {
            (Self::Institutions(v), Record::Institution(r)) => v.push((index, r)),
            (Self::Doctors(v), Record::Doctor(r)) => v.push((index, r)),
            (Self::Projects(v), Record::Project(r)) => v.push((index, r)),
            (Self::Products(v), Record::Product(r)) => v.push((index, r)),
            (Self::Customers(v), Record::Customer(r)) => v.push((index, r)),
            (Self::ConsumptionRecords(v), Record::ConsumptionRecord(r)) => v.push((index, r)),
            (Self::Consultations(v), Record::Consultation(r)) => v.push((index, r)),
            _ => panic!("a record of another kind than the file's"),
        }
    }

    /// Each record on its own, to find the one a database refuses.
    pub fn singles(&self) -> Vec<Records> {
        self.parts(1)
    }

    /// The records in parts of at most `n`, in order.
    pub fn parts(&self, n: usize) -> Vec<Records> {
        fn split<T: Clone>(
            v: &[(usize, T)],
            n: usize,
            wrap: fn(Vec<(usize, T)>) -> Records,
        ) -> Vec<Records> {
            v.chunks(n.max(1)).map(|c| wrap(c.to_vec())).collect()
        }
        match self {
            Self::Institutions(v) => split(v, n, Self::Institutions),
            Self::Doctors(v) => split(v, n, Self::Doctors),
            Self::Projects(v) => split(v, n, Self::Projects),
            Self::Products(v) => split(v, n, Self::Products),
            Self::Customers(v) => split(v, n, Self::Customers),
            Self::ConsumptionRecords(v) => split(v, n, Self::ConsumptionRecords),
            Self::Consultations(v) => split(v, n, Self::Consultations),
        }
    }

    /// (file index, code) of every record.
    pub fn keys(&self) -> Vec<(usize, String)> {
        record_keys(self)
    }

    pub fn len(&self) -> usize {
        match self {
            Self::Institutions(v) => v.len(),
            Self::Doctors(v) => v.len(),
            Self::Projects(v) => v.len(),
            Self::Products(v) => v.len(),
            Self::Customers(v) => v.len(),
            Self::ConsumptionRecords(v) => v.len(),
            Self::Consultations(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One validated record, of whichever kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Institution(Institution),
    Doctor(Doctor),
    Project(Project),
    Product(Product),
    Customer(Customer),
    ConsumptionRecord(ConsumptionRecord),
    Consultation(Consultation),
}

impl Record {
    /// The record's own code: what must be unique within a file.
    pub fn key(&self) -> &str {
        match self {
            Self::Institution(r) => &r.code,
            Self::Doctor(r) => &r.code,
            Self::Project(r) => &r.code,
            Self::Product(r) => &r.code,
            Self::Customer(r) => &r.code,
            Self::ConsumptionRecord(r) => &r.order_number,
            Self::Consultation(r) => &r.code,
        }
    }
}

/// Validates one element of a file of `kind` (its raw JSON text): the typed record, or what
/// is wrong with it.
pub fn validate(
    kind: ImportKind,
    index: usize,
    raw: &RawValue,
) -> Result<Record, Vec<RecordError>> {
    let value = raw.get();
    // Only a rejected record needs its code read on its own, for the report.
    let fail = |problems: Vec<FieldError>| {
        let key = serde_json::from_str(value)
            .ok()
            .as_ref()
            .and_then(|v| record_key_of(kind, v));
        problems
            .into_iter()
            .map(|(field, message)| RecordError {
                record: index,
                key: key.clone(),
                field,
                message,
            })
            .collect::<Vec<_>>()
    };
    match kind {
        ImportKind::Institutions => typed(value, institution)
            .map(Record::Institution)
            .map_err(fail),
        ImportKind::Doctors => typed(value, doctor).map(Record::Doctor).map_err(fail),
        ImportKind::Projects => typed(value, project).map(Record::Project).map_err(fail),
        ImportKind::Products => typed(value, product).map(Record::Product).map_err(fail),
        ImportKind::Customers => typed(value, customer).map(Record::Customer).map_err(fail),
        ImportKind::ConsumptionRecords => typed(value, consumption)
            .map(Record::ConsumptionRecord)
            .map_err(fail),
        ImportKind::Consultations => typed(value, consultation)
            .map(Record::Consultation)
            .map_err(fail),
    }
}

/// The error of a record whose code repeats an earlier record of the same file.
pub fn duplicate_error(kind: ImportKind, index: usize, key: &str, first: usize) -> RecordError {
    RecordError {
        record: index,
        key: Some(key.to_owned()),
        field: key_field(kind).to_owned(),
        message: format!("与同一文件的第 {} 条记录重复，保留第一条", first + 1),
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
        ImportKind::Consultations => "consultation_code",
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
        Records::Consultations(v) => v.iter().map(|(i, r)| (*i, r.code.clone())).collect(),
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

/// Every problem of one record, each field once (its first problem).
#[derive(Default)]
struct Problems(Vec<FieldError>);

impl Problems {
    fn push(&mut self, field: &str, message: impl Into<String>) {
        if !self.0.iter().any(|(f, _)| f == field) {
            self.0.push((field.to_owned(), message.into()));
        }
    }

    /// The value, or its type's default with the problem noted: checking goes on, so that
    /// staff see all of a record's problems at once; a record with any is never written.
    fn ok<T: Default>(&mut self, r: Result<T, FieldError>) -> T {
        r.unwrap_or_else(|(field, message)| {
            self.push(&field, message);
            T::default()
        })
    }

    fn finish<T>(self, value: T) -> Result<T, Vec<FieldError>> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self.0)
        }
    }
}

/// Most problems reported of one record.
const MAX_PROBLEMS: usize = 20;

/// The typed form of one element, checked by `check`. A field of the wrong JSON type is
/// noted, taken out and the element read again, so that its other fields are checked too.
fn typed<R: DeserializeOwned, T>(
    value: &str,
    check: fn(R, &mut Problems) -> T,
) -> Result<T, Vec<FieldError>> {
    let mut problems = Problems::default();
    let mut json: Option<serde_json::Value> = None;
    let mut text = std::borrow::Cow::Borrowed(value);
    for _ in 0..MAX_PROBLEMS {
        let mut de = serde_json::Deserializer::from_str(&text);
        let e = match serde_path_to_error::deserialize::<_, R>(&mut de) {
            Ok(raw) => {
                let checked = check(raw, &mut problems);
                return problems.finish(checked);
            }
            Err(e) => e,
        };
        let field = e.path().to_string();
        let whole = field == ".";
        let again = problems.0.iter().any(|(f, _)| *f == field);
        problems.push(
            if whole { "(record)" } else { &field },
            // serde echoes the bad value, which may be a phone number; the position within
            // the record is noise beside the field's name.
            mask_digit_runs(&type_error_in_words(&strip_position(
                &e.inner().to_string(),
            ))),
        );
        let v = json.get_or_insert_with(|| serde_json::from_str(value).unwrap_or_default());
        if whole || again || !take_out(v, e.path()) {
            break;
        }
        text = std::borrow::Cow::Owned(v.to_string());
    }
    Err(problems.0)
}

/// Takes the field at `path` out of `value` (an array element becomes null); false when
/// there is nothing there to take.
fn take_out(value: &mut serde_json::Value, path: &serde_path_to_error::Path) -> bool {
    use serde_path_to_error::Segment;
    let segments: Vec<&Segment> = path.iter().collect();
    let Some((last, parents)) = segments.split_last() else {
        return false;
    };
    let mut at = value;
    for s in parents {
        let next = match s {
            Segment::Map { key } => at.get_mut(key.as_str()),
            Segment::Seq { index } => at.get_mut(*index),
            _ => None,
        };
        match next {
            Some(n) => at = n,
            None => return false,
        }
    }
    match last {
        Segment::Map { key } => at
            .as_object_mut()
            .is_some_and(|o| o.remove(key.as_str()).is_some()),
        Segment::Seq { index } => match at.get_mut(*index) {
            Some(slot) if !slot.is_null() => {
                *slot = serde_json::Value::Null;
                true
            }
            _ => false,
        },
        _ => false,
    }
}

/// serde's "invalid type: integer `5`, expected a string", "missing field `x`" and "unknown
/// field `x`, expected one of …" in Chinese; other texts unchanged.
pub fn type_error_in_words(text: &str) -> String {
    fn kind(t: &str) -> String {
        let t = t.trim();
        let (word, rest) = match t.split_once(' ') {
            Some((w, r)) => (w, r),
            None => (t, ""),
        };
        let name = match word {
            "integer" => "整数",
            "floating" => "小数",
            "string" => "文本",
            "boolean" => "true/false",
            "map" | "struct" => "对象 { }",
            "sequence" => "数组 [ ]",
            "null" | "unit" => "null",
            "a" | "an" => return kind(rest),
            "f64" | "f32" => "数字",
            "u8" | "u16" | "u32" | "u64" | "i32" | "i64" | "usize" => "整数",
            _ => return t.to_owned(),
        };
        let value = rest.trim_start_matches("point").trim();
        if value.is_empty() || word == "map" || word == "sequence" || word == "struct" {
            name.to_owned()
        } else {
            format!("{name} {value}")
        }
    }
    if let Some(rest) = text.strip_prefix("invalid type: ")
        && let Some((got, want)) = rest.split_once(", expected ")
    {
        return format!("类型不对：应为{}，实为{}", kind(want), kind(got));
    }
    if let Some(rest) = text.strip_prefix("missing field ") {
        return format!("缺少字段 {}", rest.trim());
    }
    if let Some(rest) = text.strip_prefix("unknown field ") {
        return match rest.split_once(", expected ") {
            Some((field, known)) => format!(
                "没有字段 {field}（可用：{}）",
                known.trim_start_matches("one of ").trim()
            ),
            None => format!("没有字段 {}", rest.trim()),
        };
    }
    if let Some(rest) = text.strip_prefix("unknown variant ") {
        return match rest.split_once(", expected ") {
            Some((value, known)) => format!(
                "不认识的取值 {value}（可用：{}）",
                known.trim_start_matches("one of ").trim()
            ),
            None => format!("不认识的取值 {}", rest.trim()),
        };
    }
    text.to_owned()
}

/// The code of a record that failed validation: its own key field's, else the first code it
/// carries.
fn record_key_of(kind: ImportKind, value: &serde_json::Value) -> Option<String> {
    [
        key_field(kind),
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

/// Longest code (customer code, order number...), short text (a name) and long text (notes).
const MAX_CODE_CHARS: usize = 64;
const MAX_TEXT_CHARS: usize = 200;
const MAX_LONG_TEXT_CHARS: usize = 2000;
/// Most list entries (tags, specialties) and items of one order.
const MAX_LIST: usize = 50;
const MAX_ITEMS: usize = 200;
/// Largest amount of one order or item, in yuan (¥10,000,000): more is a typo or a unit mix-up.
const MAX_YUAN: f64 = 10_000_000.0;

/// Checks free text: no control characters (PostgreSQL cannot store NUL; none belongs in a
/// name or a code), at most `max` characters. `multiline` allows line breaks and tabs.
fn clean(field: &str, v: String, max: usize, multiline: bool) -> Result<String, FieldError> {
    if let Some(c) = v
        .chars()
        .find(|c| c.is_control() && !(multiline && matches!(c, '\n' | '\r' | '\t')))
    {
        return err(
            field,
            format!("含有控制字符 U+{:04X}，文本字段里不能有它", c as u32),
        );
    }
    let n = v.chars().count();
    if n > max {
        return err(field, format!("有 {n} 个字，最多 {max} 个"));
    }
    Ok(v)
}

fn required(field: &str, value: Option<String>) -> Result<String, FieldError> {
    match value.map(|v| v.trim().to_owned()) {
        Some(v) if !v.is_empty() => clean(field, v, MAX_TEXT_CHARS, false),
        Some(_) => err(field, "不能为空"),
        None => err(field, "必填"),
    }
}

/// A code: required, short, and without spaces inside.
fn code(field: &str, value: Option<String>) -> Result<String, FieldError> {
    let v = required(field, value)?;
    if v.chars().any(char::is_whitespace) {
        return err(field, format!("{v:?} 中间有空格，编码不能含空格"));
    }
    clean(field, v, MAX_CODE_CHARS, false)
}

/// An institution's code: a code of ASCII letters, digits, `-` and `_` only, since it names
/// folders (uploads, the import layout) and stands in URLs; `..` or `/` could reach outside them.
fn institution_code(field: &str, value: Option<String>) -> Result<String, FieldError> {
    let v = code(field, value)?;
    if !v
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return err(
            field,
            format!("机构代码 {v:?} 只能由字母、数字、- 和 _ 组成（它会用作文件夹名）"),
        );
    }
    Ok(v)
}

/// A code that may be left out (or empty).
fn optional_code(field: &str, value: Option<String>) -> Result<Option<String>, FieldError> {
    match value.map(|v| v.trim().to_owned()) {
        Some(v) if !v.is_empty() => code(field, Some(v)).map(Some),
        _ => Ok(None),
    }
}

fn optional(field: &str, value: Option<String>) -> Result<Option<String>, FieldError> {
    value
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .map(|v| clean(field, v, MAX_TEXT_CHARS, false))
        .transpose()
}

/// Free text of several lines (an address, notes, a description).
fn long_text(field: &str, value: Option<String>) -> Result<Option<String>, FieldError> {
    value
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .map(|v| clean(field, v, MAX_LONG_TEXT_CHARS, true))
        .transpose()
}

/// A list of short texts (tags, specialties): trimmed, empty ones dropped.
fn list(field: &str, values: Vec<String>) -> Result<Vec<String>, FieldError> {
    if values.len() > MAX_LIST {
        return err(field, format!("有 {} 项，最多 {MAX_LIST} 项", values.len()));
    }
    values
        .into_iter()
        .enumerate()
        .filter_map(|(i, v)| optional(&format!("{field}[{i}]"), Some(v)).transpose())
        .collect()
}

fn date(field: &str, value: &str) -> Result<NaiveDate, FieldError> {
    NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d").map_err(|_| {
        (
            field.to_owned(),
            format!("{value:?} 不是日期（应为 YYYY-MM-DD）"),
        )
    })
}

/// Yuan as integer fen: not negative, not absurd, and not finer than one fen.
fn cents(field: &str, yuan: f64) -> Result<i64, FieldError> {
    if !yuan.is_finite() || yuan < 0.0 {
        return err(field, format!("{yuan} 不是非负金额"));
    }
    if yuan > MAX_YUAN {
        return err(
            field,
            format!("{yuan} 元大得不合理（超过 1000 万元），请检查单位"),
        );
    }
    let fen = yuan * 100.0;
    if (fen - fen.round()).abs() > 1e-6 {
        return err(field, format!("{yuan} 的小数位超过了分（0.01）"));
    }
    Ok(fen.round() as i64)
}

fn yuan(fen: i64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

fn status(field: &str, value: Option<String>, default: &str) -> Result<String, FieldError> {
    Ok(optional(field, value)?.unwrap_or_else(|| default.to_owned()))
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
    timezone: Option<String>,
}

fn institution(r: RawInstitution, p: &mut Problems) -> Institution {
    let timezone = p.ok(optional("timezone", r.timezone));
    if let Some(tz) = &timezone
        && tz.parse::<chrono_tz::Tz>().is_err()
    {
        p.push(
            "timezone",
            format!("{tz:?} 不是 IANA 时区名（如 Asia/Shanghai）"),
        );
    }
    Institution {
        code: p.ok(institution_code("institution_code", r.institution_code)),
        name: p.ok(required("name", r.name)),
        kind: p.ok(optional("type", r.kind)),
        address: p.ok(long_text("address", r.address)),
        phone: p.ok(optional("phone", r.phone)),
        email: p.ok(optional("email", r.email)),
        status: p.ok(status("status", r.status, "active")),
        timezone,
    }
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

fn doctor(r: RawDoctor, p: &mut Problems) -> Doctor {
    Doctor {
        code: p.ok(code("doctor_code", r.doctor_code)),
        institution_code: p.ok(optional("institution_code", r.institution_code)),
        name: p.ok(required("name", r.name)),
        title: p.ok(optional("title", r.title)),
        specialties: p.ok(list("specialties", r.specialties)),
        status: p.ok(status("status", r.status, "active")),
    }
}

#[derive(Deserialize)]
struct RawProject {
    project_code: Option<String>,
    name: Option<String>,
    category: Option<String>,
    standard_price: Option<f64>,
    cycle_days: Option<i32>,
    followup_days: Option<Vec<i64>>,
    description: Option<String>,
    status: Option<String>,
}

fn project(r: RawProject, p: &mut Problems) -> Project {
    let followup_days = r.followup_days.and_then(|days| {
        let text = days
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let days = p.ok(super::followup::parse_days(&text)
            .map(Some)
            .map_err(|e| ("followup_days".to_owned(), e)))?;
        Some(
            days.iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(","),
        )
    });
    if let Some(days) = r.cycle_days
        && !(1..=3650).contains(&days)
    {
        p.push("cycle_days", format!("{days} 不在 1 到 3650 天之间"));
    }
    Project {
        code: p.ok(code("project_code", r.project_code)),
        name: p.ok(required("name", r.name)),
        category: p.ok(optional("category", r.category)),
        standard_price_cents: p.ok(r
            .standard_price
            .map(|v| cents("standard_price", v))
            .transpose()),
        cycle_days: r.cycle_days,
        followup_days,
        description: p.ok(long_text("description", r.description)),
        status: p.ok(status("status", r.status, "active")),
    }
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

fn product(r: RawProduct, p: &mut Problems) -> Product {
    Product {
        code: p.ok(code("product_code", r.product_code)),
        name: p.ok(required("name", r.name)),
        category: p.ok(optional("category", r.category)),
        brand: p.ok(optional("brand", r.brand)),
        specification: p.ok(optional("specification", r.specification)),
        price_cents: p.ok(r.price.map(|v| cents("price", v)).transpose()),
        status: p.ok(status("status", r.status, "active")),
    }
}

#[derive(Default, Deserialize)]
struct RawPerson {
    name: Option<String>,
    gender: Option<String>,
    birthday: Option<String>,
    lunar_birthday: Option<String>,
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
    wecom_external_userid: Option<String>,
    wecom_userid: Option<String>,
    referrer_code: Option<String>,
}

fn customer(r: RawCustomer, p: &mut Problems) -> Customer {
    let code = p.ok(code("customer_code", r.customer_code));
    let missing = r.person.is_none();
    let person = r.person.unwrap_or_else(|| {
        p.push("person", "必填");
        RawPerson::default()
    });
    let referrer_code = p.ok(optional_code("referrer_code", r.referrer_code));
    if !code.is_empty() && referrer_code.as_deref() == Some(code.as_str()) {
        p.push("referrer_code", "不能是客户自己的编号");
    }
    let name = if missing {
        String::new()
    } else {
        p.ok(required("person.name", person.name))
    };
    if name.chars().count() > 50 {
        p.push("person.name", "超过 50 个字，不像是姓名");
    }
    let phone = if missing {
        String::new()
    } else {
        let raw = p.ok(required("person.phone", person.phone));
        if raw.is_empty() {
            String::new()
        } else {
            p.ok(normalize_phone(&raw)
                .ok_or_else(|| ("person.phone".to_owned(), "不是手机号".to_owned())))
        }
    };
    let birthday = p
        .ok(optional("person.birthday", person.birthday))
        .and_then(|text| {
            let day = p.ok(date("person.birthday", &text).map(Some))?;
            if day.year() < 1900 || day > chrono::Utc::now().date_naive() {
                p.push(
                    "person.birthday",
                    format!("{text} 不是可能的生日（早于 1900 年或在今天之后）"),
                );
                return None;
            }
            Some(day)
        });
    let lunar_birthday = p
        .ok(optional("person.lunar_birthday", person.lunar_birthday))
        .and_then(|text| {
            p.ok(super::lunar::LunarBirthday::parse(&text)
                .map(Some)
                .map_err(|e| ("person.lunar_birthday".to_owned(), e)))
        });
    if let Some(g) = &person.gender
        && !matches!(g.trim(), "男" | "女" | "其他" | "")
    {
        p.push("person.gender", format!("{g:?} 应为 男、女 或 其他"));
    }
    Customer {
        code,
        person: Person {
            name,
            gender: p.ok(optional("person.gender", person.gender)),
            birthday,
            lunar_birthday,
            phone,
        },
        vip_level: p.ok(optional("vip_level", r.vip_level)),
        source: p.ok(optional("source", r.source)),
        tags: p.ok(list("tags", r.tags)),
        notes: p.ok(long_text("notes", r.notes)),
        opted_out: r.opted_out,
        wecom_external_userid: p.ok(optional_code(
            "wecom_external_userid",
            r.wecom_external_userid,
        )),
        wecom_userid: p.ok(optional_code("wecom_userid", r.wecom_userid)),
        referrer_code,
    }
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

fn consumption(r: RawConsumption, p: &mut Problems) -> ConsumptionRecord {
    let order_number = p.ok(code("order_number", r.order_number));
    let customer_code = p.ok(code("customer_code", r.customer_code));
    let order_date = p.ok(business_date("order_date", r.order_date));
    if r.items.is_empty() {
        p.push("items", "消费记录至少要有一条明细");
    }
    if r.items.len() > MAX_ITEMS {
        p.push(
            "items",
            format!("有 {} 条明细，最多 {MAX_ITEMS} 条", r.items.len()),
        );
    }
    let record_doctor = p.ok(optional("doctor_code", r.doctor_code));
    let problems_before_items = p.0.len();
    let mut items = Vec::with_capacity(r.items.len().min(MAX_ITEMS));
    for (i, it) in r.items.into_iter().enumerate().take(MAX_ITEMS) {
        let f = |name: &str| format!("items[{i}].{name}");
        let item_type = p.ok(required(&f("item_type"), it.item_type));
        if !item_type.is_empty() && item_type != "project" && item_type != "product" {
            p.push(
                &f("item_type"),
                format!("{item_type:?} 应为 project（项目）或 product（产品）"),
            );
        }
        let quantity = p.ok(it
            .quantity
            .ok_or_else(|| (f("quantity"), "必填".to_owned())));
        if it.quantity.is_some() && quantity <= 0 {
            p.push(&f("quantity"), format!("{quantity} 不是正数数量"));
        }
        if let Some(d) = it.discount
            && !(0.0..=1.0).contains(&d)
        {
            p.push(&f("discount"), format!("{d} 不是 0 到 1 之间的折扣率"));
        }
        let unit = p.ok(it
            .unit_price
            .ok_or_else(|| (f("unit_price"), "必填".to_owned())));
        let actual = p.ok(it
            .actual_price
            .ok_or_else(|| (f("actual_price"), "必填".to_owned())));
        items.push(ConsumptionItem {
            item_type,
            item_code: p.ok(code(&f("item_code"), it.item_code)),
            item_name: p.ok(required(&f("item_name"), it.item_name)),
            quantity,
            unit_price_cents: p.ok(cents(&f("unit_price"), unit)),
            discount: it.discount,
            actual_price_cents: p.ok(cents(&f("actual_price"), actual)),
            doctor_code: p
                .ok(optional(&f("doctor_code"), it.doctor_code))
                .or_else(|| record_doctor.clone()),
        });
    }
    let total_amount_cents = p
        .ok(r
            .total_amount
            .ok_or_else(|| ("total_amount".to_owned(), "必填".to_owned()))
            .and_then(|t| cents("total_amount", t))
            .map(Some))
        .unwrap_or_default();
    let sum: i64 = items.iter().map(|i| i.actual_price_cents).sum();
    // The sum means something only when every item's amount could be read.
    let items_read = p.0.len() == problems_before_items;
    if items_read && r.total_amount.is_some() && sum != total_amount_cents {
        p.push(
            "total_amount",
            format!(
                "{} 不等于各明细实付金额 actual_price 之和 {}",
                yuan(total_amount_cents),
                yuan(sum)
            ),
        );
    }
    ConsumptionRecord {
        order_number,
        customer_code,
        order_date,
        items,
        total_amount_cents,
        payment_method: p.ok(optional("payment_method", r.payment_method)),
        status: p.ok(status("status", r.status, "completed")),
    }
}

#[derive(Deserialize)]
struct RawConsultation {
    consultation_code: Option<String>,
    customer_code: Option<String>,
    consult_date: Option<String>,
    channel: Option<String>,
    consultant: Option<String>,
    doctor_code: Option<String>,
    #[serde(default)]
    project_codes: Vec<String>,
    content: Option<String>,
    outcome: Option<String>,
}

fn consultation(r: RawConsultation, p: &mut Problems) -> Consultation {
    let own_code = p.ok(code("consultation_code", r.consultation_code));
    let customer_code = p.ok(code("customer_code", r.customer_code));
    let consult_date = p.ok(business_date("consult_date", r.consult_date));
    let project_codes = p.ok(list("project_codes", r.project_codes));
    for (i, code) in project_codes.iter().enumerate() {
        if code.chars().any(char::is_whitespace) {
            p.push(
                &format!("project_codes[{i}]"),
                format!("{code:?} 中间有空格，编码不能含空格"),
            );
        }
    }
    Consultation {
        code: own_code,
        customer_code,
        consult_date,
        channel: p.ok(optional("channel", r.channel)),
        consultant: p.ok(optional("consultant", r.consultant)),
        doctor_code: p.ok(optional("doctor_code", r.doctor_code)),
        project_codes,
        content: p.ok(long_text("content", r.content)),
        outcome: p.ok(optional("outcome", r.outcome)),
    }
}

/// A day something happened at a clinic (required): a date, not in the future (a day of slack
/// for exports made in another time zone), not before 2000.
fn business_date(field: &str, value: Option<String>) -> Result<NaiveDate, FieldError> {
    let day = date(field, &required(field, value)?)?;
    let latest = chrono::Utc::now().date_naive() + chrono::Days::new(1);
    if day > latest {
        return err(field, format!("{day} 在将来"));
    }
    if day.year() < 2000 {
        return err(field, format!("{day} 早得不合理（2000 年以前）"));
    }
    Ok(day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_of_a_record_is_reported_once() {
        let json = r#"[{"customer_code":"C 1","person":{"name":"","phone":"12","birthday":"1990-13-01","gender":5},"tags":"vip"}]"#;
        let p = parse(ImportKind::Customers, json);
        let got: Vec<&str> = p.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            got,
            [
                "person.gender",
                "tags",
                "customer_code",
                "person.name",
                "person.phone",
                "person.birthday"
            ],
            "{:?}",
            p.errors
        );
        assert!(p.errors.iter().all(|e| e.record == 0));
        assert!(p.records.is_empty());
    }

    #[test]
    fn a_wrong_type_is_said_in_chinese() {
        assert_eq!(
            type_error_in_words("invalid type: integer `5`, expected a string"),
            "类型不对：应为文本，实为整数 `5`"
        );
        assert_eq!(
            type_error_in_words("invalid type: string \"abc\", expected f64"),
            "类型不对：应为数字，实为文本 \"abc\""
        );
        assert_eq!(
            type_error_in_words("invalid type: map, expected a sequence"),
            "类型不对：应为数组 [ ]，实为对象 { }"
        );
        assert_eq!(type_error_in_words("something else"), "something else");
    }

    /// A parsed file: its valid records, the rejected ones, and how many there were in all.
    #[derive(Debug, Clone, PartialEq)]
    struct ParsedFile {
        records: Records,
        errors: Vec<RecordError>,
        total: usize,
    }

    /// Parses and validates a whole file held in memory (small files and tests; imports stream).
    fn parse_file(kind: ImportKind, path: &str, bytes: &[u8]) -> Result<ParsedFile, FileError> {
        let mut records = Records::empty(kind);
        let mut errors = Vec::new();
        let mut seen = std::collections::HashMap::new();
        let summary = crate::domain::json_stream::for_each_record(bytes, |index, value| {
            match validate(kind, index, value) {
                Ok(record) => match seen.get(record.key()) {
                    Some(first) => errors.push(duplicate_error(kind, index, record.key(), *first)),
                    None => {
                        seen.insert(record.key().to_owned(), index);
                        records.push(index, record);
                    }
                },
                Err(e) => errors.extend(e),
            }
        })
        .map_err(|e| FileError {
            path: path.to_owned(),
            message: e.0,
        })?;
        Ok(ParsedFile {
            records,
            errors,
            total: summary.records,
        })
    }

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
                .contains("第 1 条记录（C1），字段 `person.birthday`")
        );
    }

    #[test]
    fn consultations_parse_and_bad_ones_are_named_by_their_code() {
        let p = parse(
            ImportKind::Consultations,
            r#"[
              {"consultation_code":"ZX1","customer_code":"C1","consult_date":"2026-03-02",
               "channel":"到店","consultant":"王顾问","doctor_code":"DOC-1",
               "project_codes":["PRJ-001"," PRJ-003 ",""],"content":"想改善法令纹","outcome":"未成交"},
              {"consultation_code":"ZX2","customer_code":"C1","consult_date":"2026/03/02"},
              {"consultation_code":"ZX3","consult_date":"2026-03-02"},
              {"consultation_code":"ZX4","customer_code":"C1","consult_date":"2099-01-01"},
              {"consultation_code":"ZX5","customer_code":"C1","consult_date":"2026-03-02","project_codes":["PRJ 1"]},
              {"consultation_code":"ZX1","customer_code":"C2","consult_date":"2026-03-02"}
            ]"#,
        );
        assert_eq!(p.total, 6);
        let Records::Consultations(v) = &p.records else {
            panic!("{:?}", p.records)
        };
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].1.project_codes, vec!["PRJ-001", "PRJ-003"]);
        assert_eq!(v[0].1.content.as_deref(), Some("想改善法令纹"));
        let fields: Vec<_> = p
            .errors
            .iter()
            .map(|e| (e.record, e.key.as_deref().unwrap(), e.field.as_str()))
            .collect();
        assert_eq!(
            fields,
            vec![
                (1, "ZX2", "consult_date"),
                (2, "ZX3", "customer_code"),
                (3, "ZX4", "consult_date"),
                (4, "ZX5", "project_codes[0]"),
                (5, "ZX1", "consultation_code"),
            ]
        );
    }

    #[test]
    fn a_referrer_is_kept_and_a_customer_referring_themselves_is_named() {
        let p = parse(
            ImportKind::Customers,
            r#"[
              {"customer_code":"C1","referrer_code":" C9 ","person":{"name":"甲","phone":"13800000001"}},
              {"customer_code":"C2","referrer_code":"C2","person":{"name":"乙","phone":"13800000002"}},
              {"customer_code":"C3","referrer_code":"","person":{"name":"丙","phone":"13800000003"}}
            ]"#,
        );
        let Records::Customers(c) = &p.records else {
            panic!()
        };
        let kept: Vec<_> = c.iter().map(|(_, c)| c.referrer_code.as_deref()).collect();
        assert_eq!(kept, vec![Some("C9"), None]);
        assert_eq!(p.errors.len(), 1);
        assert_eq!(
            (p.errors[0].record, p.errors[0].field.as_str()),
            (1, "referrer_code")
        );
    }

    #[test]
    fn lunar_birthdays_parse_and_bad_ones_are_named() {
        let p = parse(
            ImportKind::Customers,
            r#"[
              {"customer_code":"C1","person":{"name":"甲","phone":"13800000001","lunar_birthday":"闰06-15"}},
              {"customer_code":"C2","person":{"name":"乙","phone":"13800000002","lunar_birthday":"农历腊月三十"}},
              {"customer_code":"C3","person":{"name":"丙","phone":"13800000003","lunar_birthday":"1990-闰06-01"}}
            ]"#,
        );
        let Records::Customers(c) = &p.records else {
            panic!()
        };
        let kept: Vec<_> = c
            .iter()
            .map(|(_, c)| c.person.lunar_birthday.unwrap().code())
            .collect();
        assert_eq!(kept, vec![10615, 1230]);
        assert_eq!(p.errors.len(), 1);
        assert_eq!(p.errors[0].field, "person.lunar_birthday");
        assert!(
            p.errors[0].to_string().contains("没有闰 6 月"),
            "{}",
            p.errors[0]
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
    fn hostile_records_are_rejected_by_field_and_the_rest_kept() {
        let long = "长".repeat(2001);
        let json = format!(
            r#"[
          {{"order_number":"O0","customer_code":"C1","order_date":"2026-01-15","total_amount":100,
            "items":[{{"item_type":"project","item_code":"P","item_name":"n","quantity":1,"unit_price":100,"actual_price":100}}]}},
          {{"order_number":"O1","customer_code":"C1","order_date":"2026-01-15","total_amount":100,
            "items":[{{"item_type":"project","item_code":"P","item_name":"n","quantity":1,"unit_price":90,"actual_price":90}}]}},
          {{"order_number":"O2","customer_code":"C1","order_date":"2099-01-15","total_amount":1,
            "items":[{{"item_type":"project","item_code":"P","item_name":"n","quantity":1,"unit_price":1,"actual_price":1}}]}},
          {{"order_number":"O3","customer_code":"C1","order_date":"2026-01-15","total_amount":1.001,
            "items":[{{"item_type":"project","item_code":"P","item_name":"n","quantity":1,"unit_price":1.001,"actual_price":1.001}}]}},
          {{"order_number":"O4","customer_code":"C1","order_date":"2026-01-15","total_amount":1e9,
            "items":[{{"item_type":"project","item_code":"P","item_name":"n","quantity":1,"unit_price":1e9,"actual_price":1e9}}]}},
          {{"order_number":"O5","customer_code":"C\u0000","order_date":"2026-01-15","total_amount":1,
            "items":[{{"item_type":"project","item_code":"P","item_name":"n","quantity":1,"unit_price":1,"actual_price":1}}]}},
          {{"order_number":"O6","customer_code":"C1","order_date":"2026-01-15","total_amount":"100",
            "items":[{{"item_type":"project","item_code":"P","item_name":"n","quantity":1,"unit_price":1,"actual_price":1}}]}},
          {{"order_number":"O7","customer_code":"C1","order_date":"2026-01-15","total_amount":1,"payment_method":"{long}",
            "items":[{{"item_type":"project","item_code":"P","item_name":"n","quantity":1,"unit_price":1,"actual_price":1}}]}}
        ]"#
        );
        let p = parse(ImportKind::ConsumptionRecords, &json);
        assert_eq!(p.records.len(), 1, "{:?}", p.errors);
        let deep = format!(
            r#"[{{"project_code":"P1","name":"甲","description":{}1{}}},{{"project_code":"P2","name":"乙"}}]"#,
            "[".repeat(300),
            "]".repeat(300)
        );
        let d = parse(ImportKind::Projects, &deep);
        assert_eq!(
            (d.records.len(), d.errors[0].record),
            (1, 0),
            "{:?}",
            d.errors
        );
        let got: Vec<(usize, &str)> = p
            .errors
            .iter()
            .map(|e| (e.record, e.field.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, "total_amount"),
                (2, "order_date"),
                // Every problem of a record, not only its first.
                (3, "items[0].unit_price"),
                (3, "items[0].actual_price"),
                (3, "total_amount"),
                (4, "items[0].unit_price"),
                (4, "items[0].actual_price"),
                (4, "total_amount"),
                (5, "customer_code"),
                (6, "total_amount"),
                (7, "payment_method"),
            ]
        );
        assert!(p.errors[0].message.contains("100.00") && p.errors[0].message.contains("90.00"));
        assert!(
            p.errors[2].message.contains("小数位"),
            "{}",
            p.errors[2].message
        );
        assert!(
            p.errors[8].message.contains("U+0000"),
            "{}",
            p.errors[8].message
        );
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
                .starts_with("x/institutions.json: 文件应是一个记录数组")
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

    #[test]
    fn an_institution_code_cannot_name_a_path() {
        let p = parse(
            ImportKind::Institutions,
            r#"[{"institution_code":"../etc","name":"甲"},{"institution_code":"BJ/HA","name":"乙"},
                {"institution_code":"BJ-HA_001","name":"丙"}]"#,
        );
        assert_eq!(p.errors.len(), 2, "{:?}", p.errors);
        for (e, index) in p.errors.iter().zip([0, 1]) {
            assert_eq!((e.record, e.field.as_str()), (index, "institution_code"));
            assert!(e.message.contains("只能由字母、数字"), "{}", e.message);
        }
        assert_eq!(p.records.len(), 1);
    }
}
