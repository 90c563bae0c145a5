//! What the projections receive: the current state of the entities a sync job names, read from
//! the primary store when the job runs. Only what analytics and search need: never a phone
//! number or a person's name. Vector search alone also reads a customer's tags and notes
//! ([`SearchProfile`]), which it embeds with the digits removed and never shows.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstitutionSnap {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DoctorSnap {
    pub id: i64,
    pub code: String,
    pub institution_id: Option<i64>,
    pub name: String,
    pub title: Option<String>,
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProjectSnap {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub category: Option<String>,
    pub standard_price_cents: Option<i64>,
    pub cycle_days: Option<i32>,
    pub status: String,
    /// For vector search only.
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProductSnap {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub category: Option<String>,
    pub brand: Option<String>,
    pub price_cents: Option<i64>,
    pub status: String,
    /// For vector search only.
    pub specification: Option<String>,
}

/// A customer of one institution, without the person's name, phone or notes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CustomerSnap {
    pub id: i64,
    pub code: String,
    pub institution_id: i64,
    pub person_id: i64,
    pub gender: Option<String>,
    pub birth_year: Option<i32>,
    pub vip_level: Option<String>,
    pub source: Option<String>,
    pub opted_out: bool,
    pub created_at: DateTime<Utc>,
    /// The code of the customer who referred this one (who may not be imported yet).
    pub referrer_code: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrderItemSnap {
    pub line_no: i32,
    pub item_type: String,
    pub item_code: String,
    pub quantity: i32,
    pub actual_price_cents: i64,
    pub doctor_code: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrderSnap {
    pub institution_id: i64,
    pub order_number: String,
    pub customer_id: i64,
    pub customer_code: String,
    pub order_date: NaiveDate,
    pub total_amount_cents: i64,
    pub payment_method: Option<String>,
    pub status: String,
    pub items: Vec<OrderItemSnap>,
}

/// A revisit and the times of its steps: scanned (created), generated, sent, or failed or
/// skipped (opted out) at `updated_at`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RevisitSnap {
    pub id: i64,
    pub customer_id: i64,
    pub institution_id: i64,
    pub occasion: String,
    pub occasion_date: NaiveDate,
    pub test_mode: bool,
    pub status: String,
    pub generated_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub generated_at: Option<DateTime<Utc>>,
    pub sent_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// A customer as vector search sees them: what they bought and how staff describe them. Staff's
/// notes (which may hold medical history) are not part of it: a customer's text may go to an
/// embeddings API outside the chain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchProfile {
    pub id: i64,
    pub code: String,
    pub institution_id: i64,
    pub vip_level: Option<String>,
    pub tags: Vec<String>,
    pub opted_out: bool,
    /// Names of the projects of completed orders, most recent first, each once.
    pub projects: Vec<String>,
    /// Names of the products of completed orders, most recent first, each once.
    pub products: Vec<String>,
    /// What they had, line by line, each (item, doctor) once, most recent first: what the
    /// structured similarity is made of.
    pub items: Vec<BoughtItem>,
}

/// A project or product a customer had in a completed order, and who treated them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BoughtItem {
    /// `project` or `product`.
    pub kind: String,
    pub code: String,
    pub name: String,
    /// The catalogue's category of the item, if it has one.
    pub category: Option<String>,
    pub doctor_code: Option<String>,
    pub doctor_name: Option<String>,
}

/// The current state of some entities of one kind. Entities that no longer exist are absent.
#[derive(Debug, Clone, PartialEq)]
pub enum Snapshots {
    Institutions(Vec<InstitutionSnap>),
    Doctors(Vec<DoctorSnap>),
    Projects(Vec<ProjectSnap>),
    Products(Vec<ProductSnap>),
    Customers(Vec<CustomerSnap>),
    Orders(Vec<OrderSnap>),
    Revisits(Vec<RevisitSnap>),
    /// Customers for vector search (see [`SearchProfile`]).
    SearchProfiles(Vec<SearchProfile>),
}

impl Snapshots {
    pub fn len(&self) -> usize {
        match self {
            Self::Institutions(v) => v.len(),
            Self::Doctors(v) => v.len(),
            Self::Projects(v) => v.len(),
            Self::Products(v) => v.len(),
            Self::Customers(v) => v.len(),
            Self::Orders(v) => v.len(),
            Self::Revisits(v) => v.len(),
            Self::SearchProfiles(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An order's key in changes and sync jobs: `<institution id>/<order number>`.
pub fn order_key(institution_id: i64, order_number: &str) -> String {
    format!("{institution_id}/{order_number}")
}

/// The parts of an order key; `None` when it is not one.
pub fn parse_order_key(key: &str) -> Option<(i64, &str)> {
    let (inst, number) = key.split_once('/')?;
    Some((inst.parse().ok()?, number))
}

/// Ids of the keys that are ids; a key that is not one cannot name a row and is skipped.
pub fn id_keys(keys: &[String]) -> Vec<i64> {
    keys.iter().filter_map(|k| k.parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_keys_round_trip_even_with_a_slash_in_the_number() {
        let key = order_key(7, "BJ/ORD-1");
        assert_eq!(parse_order_key(&key), Some((7, "BJ/ORD-1")));
        assert_eq!(parse_order_key("x/1"), None);
        assert_eq!(id_keys(&["3".into(), "x".into()]), vec![3]);
    }
}
