//! The rows of the ClickHouse tables, in their column order (with schema validation off, the
//! client sends `RowBinary`, which is positional), built from the primary store's snapshots.
//!
//! Every row carries `version`: the tables are `ReplacingMergeTree(version)`, so of the rows
//! written for one key, the one with the highest version is what queries (with `FINAL`) see.

use chrono::{DateTime, NaiveDate, Utc};
use clickhouse::Row;
use serde::{Deserialize, Serialize};

use crate::domain::snapshot::*;

#[derive(Debug, Row, Serialize, Deserialize)]
pub struct InstitutionRow {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub status: String,
    pub version: u64,
}

#[derive(Debug, Row, Serialize, Deserialize)]
pub struct DoctorRow {
    pub id: i64,
    pub code: String,
    pub institution_id: Option<i64>,
    pub name: String,
    pub title: Option<String>,
    pub status: String,
    pub version: u64,
}

#[derive(Debug, Row, Serialize, Deserialize)]
pub struct ProjectRow {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub category: Option<String>,
    pub standard_price_cents: Option<i64>,
    pub cycle_days: Option<i32>,
    pub status: String,
    pub version: u64,
}

#[derive(Debug, Row, Serialize, Deserialize)]
pub struct ProductRow {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub category: Option<String>,
    pub brand: Option<String>,
    pub price_cents: Option<i64>,
    pub status: String,
    pub version: u64,
}

#[derive(Debug, Row, Serialize, Deserialize)]
pub struct CustomerRow {
    pub id: i64,
    pub code: String,
    pub institution_id: i64,
    pub person_id: i64,
    pub gender: Option<String>,
    pub birth_year: Option<i32>,
    pub vip_level: Option<String>,
    pub source: Option<String>,
    pub opted_out: u8,
    #[serde(with = "clickhouse::serde::chrono::datetime")]
    pub created_at: DateTime<Utc>,
    pub version: u64,
}

/// An order and its items, the items as parallel arrays (`ARRAY JOIN` makes them rows): an
/// order changes as a whole, so its items are replaced with it.
#[derive(Debug, Row, Serialize, Deserialize)]
pub struct OrderRow {
    pub institution_id: i64,
    pub order_number: String,
    pub customer_id: i64,
    #[serde(with = "clickhouse::serde::chrono::date")]
    pub order_date: NaiveDate,
    pub total_amount_cents: i64,
    pub payment_method: Option<String>,
    pub status: String,
    pub item_line_no: Vec<i32>,
    pub item_type: Vec<String>,
    pub item_code: Vec<String>,
    pub item_quantity: Vec<i32>,
    pub item_actual_price_cents: Vec<i64>,
    /// Empty when the item names no doctor.
    pub item_doctor_code: Vec<String>,
    pub version: u64,
}

#[derive(Debug, Row, Serialize, Deserialize)]
pub struct RevisitRow {
    pub id: i64,
    pub customer_id: i64,
    pub institution_id: i64,
    pub occasion: String,
    #[serde(with = "clickhouse::serde::chrono::date")]
    pub occasion_date: NaiveDate,
    pub test_mode: u8,
    pub status: String,
    pub generated_by: Option<String>,
    #[serde(with = "clickhouse::serde::chrono::datetime")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "clickhouse::serde::chrono::datetime::option")]
    pub generated_at: Option<DateTime<Utc>>,
    #[serde(with = "clickhouse::serde::chrono::datetime::option")]
    pub sent_at: Option<DateTime<Utc>>,
    #[serde(with = "clickhouse::serde::chrono::datetime")]
    pub updated_at: DateTime<Utc>,
    pub version: u64,
}

pub fn institution(s: &InstitutionSnap, version: u64) -> InstitutionRow {
    InstitutionRow {
        id: s.id,
        code: s.code.clone(),
        name: s.name.clone(),
        status: s.status.clone(),
        version,
    }
}

pub fn doctor(s: &DoctorSnap, version: u64) -> DoctorRow {
    DoctorRow {
        id: s.id,
        code: s.code.clone(),
        institution_id: s.institution_id,
        name: s.name.clone(),
        title: s.title.clone(),
        status: s.status.clone(),
        version,
    }
}

pub fn project(s: &ProjectSnap, version: u64) -> ProjectRow {
    ProjectRow {
        id: s.id,
        code: s.code.clone(),
        name: s.name.clone(),
        category: s.category.clone(),
        standard_price_cents: s.standard_price_cents,
        cycle_days: s.cycle_days,
        status: s.status.clone(),
        version,
    }
}

pub fn product(s: &ProductSnap, version: u64) -> ProductRow {
    ProductRow {
        id: s.id,
        code: s.code.clone(),
        name: s.name.clone(),
        category: s.category.clone(),
        brand: s.brand.clone(),
        price_cents: s.price_cents,
        status: s.status.clone(),
        version,
    }
}

pub fn customer(s: &CustomerSnap, version: u64) -> CustomerRow {
    CustomerRow {
        id: s.id,
        code: s.code.clone(),
        institution_id: s.institution_id,
        person_id: s.person_id,
        gender: s.gender.clone(),
        birth_year: s.birth_year,
        vip_level: s.vip_level.clone(),
        source: s.source.clone(),
        opted_out: u8::from(s.opted_out),
        created_at: s.created_at,
        version,
    }
}

pub fn order(s: &OrderSnap, version: u64) -> OrderRow {
    OrderRow {
        institution_id: s.institution_id,
        order_number: s.order_number.clone(),
        customer_id: s.customer_id,
        order_date: s.order_date,
        total_amount_cents: s.total_amount_cents,
        payment_method: s.payment_method.clone(),
        status: s.status.clone(),
        item_line_no: s.items.iter().map(|i| i.line_no).collect(),
        item_type: s.items.iter().map(|i| i.item_type.clone()).collect(),
        item_code: s.items.iter().map(|i| i.item_code.clone()).collect(),
        item_quantity: s.items.iter().map(|i| i.quantity).collect(),
        item_actual_price_cents: s.items.iter().map(|i| i.actual_price_cents).collect(),
        item_doctor_code: s
            .items
            .iter()
            .map(|i| i.doctor_code.clone().unwrap_or_default())
            .collect(),
        version,
    }
}

pub fn revisit(s: &RevisitSnap, version: u64) -> RevisitRow {
    RevisitRow {
        id: s.id,
        customer_id: s.customer_id,
        institution_id: s.institution_id,
        occasion: s.occasion.clone(),
        occasion_date: s.occasion_date,
        test_mode: u8::from(s.test_mode),
        status: s.status.clone(),
        generated_by: s.generated_by.clone(),
        created_at: s.created_at,
        generated_at: s.generated_at,
        sent_at: s.sent_at,
        updated_at: s.updated_at,
        version,
    }
}
