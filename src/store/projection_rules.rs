//! How captured changes become sync jobs, the same on both engines: the changes of one page are
//! grouped by kind, a key changed several times is synced once (with the largest sequence as its
//! version), and the keys of a kind are cut into batches of at most `batch_keys`, one job per
//! batch and projection.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use revisit_jobs::{EntityKind, ProjectionName, ProjectionSync};

use crate::{
    domain::snapshot::{
        CustomerSnap, DoctorSnap, InstitutionSnap, OrderItemSnap, OrderSnap, ProductSnap,
        ProjectSnap, RevisitSnap,
    },
    store::NewJob,
};

/// One captured change: a statement's (PostgreSQL) or a row's (SQLite) keys of one kind.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub seq: i64,
    pub kind: String,
    pub keys: Vec<String>,
    pub changed_at: DateTime<Utc>,
}

/// A sync job to insert, with what its backlog row records.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedSync {
    pub job: ProjectionSync,
    /// When its oldest change was made.
    pub oldest: DateTime<Utc>,
}

impl PlannedSync {
    pub fn new_job(&self, max_attempts: i32) -> NewJob {
        NewJob::plain(&self.job, max_attempts)
    }
}

/// Keys of a sync job. Small enough that a job is quick and a failing one redoes little.
pub const BATCH_KEYS: usize = 5000;

/// The projections to dispatch to: those this process has settings for and those registered
/// in the store (names this build does not know are skipped).
pub fn with_registered(
    configured: &[ProjectionName],
    registered: Vec<String>,
) -> Vec<ProjectionName> {
    let mut out = configured.to_vec();
    for name in registered {
        match ProjectionName::parse(&name) {
            Some(p) if !out.contains(&p) => out.push(p),
            Some(_) => {}
            None => tracing::warn!(%name, "registered projection unknown to this build; skipped"),
        }
    }
    out
}

/// The person ids of the person changes among `changes`.
pub fn person_ids(changes: &[Change]) -> Vec<i64> {
    changes
        .iter()
        .filter(|c| c.kind == EntityKind::Person.as_str())
        .flat_map(|c| c.keys.iter().filter_map(|k| k.parse().ok()))
        .collect()
}

/// `changes` with the person changes replaced by one change of their customers (a person
/// reaches the projections through its customers): a person and its customer written by the
/// same import chunk are then synced once, not twice.
pub fn persons_as_customers(changes: Vec<Change>, customer_ids: Vec<i64>) -> Vec<Change> {
    let (persons, mut out): (Vec<Change>, Vec<Change>) = changes
        .into_iter()
        .partition(|c| c.kind == EntityKind::Person.as_str());
    if let (Some(seq), Some(changed_at)) = (
        persons.iter().map(|c| c.seq).max(),
        persons.iter().map(|c| c.changed_at).min(),
    ) && !customer_ids.is_empty()
    {
        out.push(Change {
            seq,
            kind: EntityKind::Customer.as_str().to_owned(),
            keys: customer_ids.iter().map(i64::to_string).collect(),
            changed_at,
        });
    }
    out
}

/// Groups `changes` into sync jobs for each of `projections`. Changes of a kind this build does
/// not know are dropped with a warning (a newer build wrote them; its own dispatcher syncs them).
pub fn plan(
    changes: &[Change],
    projections: &[ProjectionName],
    batch_keys: usize,
) -> Vec<PlannedSync> {
    let mut by_kind: BTreeMap<EntityKind, HashMap<&str, (i64, DateTime<Utc>)>> = BTreeMap::new();
    for c in changes {
        let Some(kind) = EntityKind::parse(&c.kind) else {
            tracing::warn!(kind = %c.kind, seq = c.seq, "change of an unknown kind dropped");
            continue;
        };
        let keys = by_kind.entry(kind).or_default();
        for key in &c.keys {
            let e = keys.entry(key.as_str()).or_insert((c.seq, c.changed_at));
            e.0 = e.0.max(c.seq);
            e.1 = e.1.min(c.changed_at);
        }
    }
    let mut out = Vec::new();
    for (kind, keys) in by_kind {
        let mut keys: Vec<(&str, (i64, DateTime<Utc>))> = keys.into_iter().collect();
        keys.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for part in keys.chunks(batch_keys.max(1)) {
            let version = part.iter().map(|(_, (seq, _))| *seq).max().unwrap_or(0);
            let oldest = part
                .iter()
                .map(|(_, (_, at))| *at)
                .min()
                .unwrap_or_else(Utc::now);
            for projection in projections.iter().filter(|p| p.takes(kind)) {
                out.push(PlannedSync {
                    job: ProjectionSync {
                        projection: *projection,
                        kind,
                        keys: part.iter().map(|(k, _)| (*k).to_owned()).collect(),
                        version,
                        batch: ulid::Ulid::generate().to_string().to_lowercase(),
                    },
                    oldest,
                });
            }
        }
    }
    out
}

/// A full rebuild's page of keys of one kind, cut into sync jobs: version 0, below every
/// change, so that any change made while the rebuild runs wins over what the rebuild read.
pub fn full_batches(
    projection: ProjectionName,
    kind: EntityKind,
    keys: &[String],
) -> Vec<PlannedSync> {
    keys.chunks(BATCH_KEYS)
        .map(|part| PlannedSync {
            job: ProjectionSync {
                projection,
                kind,
                keys: part.to_vec(),
                version: 0,
                batch: ulid::Ulid::generate().to_string().to_lowercase(),
            },
            oldest: Utc::now(),
        })
        .collect()
}

/// An institution row: id, code, name, status.
pub type InstitutionTuple = (i64, String, String, String);
/// A doctor row: id, code, institution, name, title, status.
pub type DoctorTuple = (i64, String, Option<i64>, String, Option<String>, String);
/// A project row: id, code, name, category, standard price, cycle days, status, description.
pub type ProjectTuple = (
    i64,
    String,
    String,
    Option<String>,
    Option<i64>,
    Option<i32>,
    String,
    Option<String>,
);
/// A product row: id, code, name, category, brand, price, status, specification.
pub type ProductTuple = (
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<i64>,
    String,
    Option<String>,
);

pub fn institution((id, code, name, status): InstitutionTuple) -> InstitutionSnap {
    InstitutionSnap {
        id,
        code,
        name,
        status,
    }
}

pub fn doctor((id, code, institution_id, name, title, status): DoctorTuple) -> DoctorSnap {
    DoctorSnap {
        id,
        code,
        institution_id,
        name,
        title,
        status,
    }
}

pub fn project(
    (id, code, name, category, standard_price_cents, cycle_days, status, description): ProjectTuple,
) -> ProjectSnap {
    ProjectSnap {
        id,
        code,
        name,
        category,
        standard_price_cents,
        cycle_days,
        status,
        description,
    }
}

pub fn product(
    (id, code, name, category, brand, price_cents, status, specification): ProductTuple,
) -> ProductSnap {
    ProductSnap {
        id,
        code,
        name,
        category,
        brand,
        price_cents,
        status,
        specification,
    }
}

/// An order row as both engines' queries return it: institution, number, customer, date,
/// total, payment method, status, the customer's code.
pub type OrderRow = (
    i64,
    String,
    i64,
    NaiveDate,
    i64,
    Option<String>,
    String,
    String,
);
/// An order item row: institution, order number, line, type, code, quantity, price, doctor.
pub type ItemRow = (i64, String, i32, String, String, i32, i64, Option<String>);

/// Orders with their items (both in order-key order).
pub fn assemble_orders(rows: Vec<OrderRow>, items: Vec<ItemRow>) -> Vec<OrderSnap> {
    let mut by_order: HashMap<(i64, String), Vec<OrderItemSnap>> = HashMap::new();
    for (i, n, line_no, item_type, item_code, quantity, actual_price_cents, doctor_code) in items {
        by_order.entry((i, n)).or_default().push(OrderItemSnap {
            line_no,
            item_type,
            item_code,
            quantity,
            actual_price_cents,
            doctor_code,
        });
    }
    rows.into_iter()
        .map(
            |(
                institution_id,
                order_number,
                customer_id,
                order_date,
                total_amount_cents,
                payment_method,
                status,
                customer_code,
            )| {
                let items = by_order
                    .remove(&(institution_id, order_number.clone()))
                    .unwrap_or_default();
                OrderSnap {
                    institution_id,
                    order_number,
                    customer_id,
                    customer_code,
                    order_date,
                    total_amount_cents,
                    payment_method,
                    status,
                    items,
                }
            },
        )
        .collect()
}

/// A customer snapshot as both engines' queries return it.
#[derive(sqlx::FromRow)]
pub struct CustomerRow {
    id: i64,
    code: String,
    institution_id: i64,
    person_id: i64,
    gender: Option<String>,
    birth_year: Option<i32>,
    vip_level: Option<String>,
    source: Option<String>,
    opted_out: bool,
    created_at: DateTime<Utc>,
    referrer_code: Option<String>,
}

impl CustomerRow {
    pub fn into_snap(self) -> CustomerSnap {
        CustomerSnap {
            id: self.id,
            code: self.code,
            institution_id: self.institution_id,
            person_id: self.person_id,
            gender: self.gender,
            birth_year: self.birth_year,
            vip_level: self.vip_level,
            source: self.source,
            opted_out: self.opted_out,
            created_at: self.created_at,
            referrer_code: self.referrer_code,
        }
    }
}

/// A revisit snapshot as both engines' queries return it.
#[derive(sqlx::FromRow)]
pub struct RevisitRow {
    id: i64,
    customer_id: i64,
    institution_id: i64,
    occasion: String,
    occasion_date: NaiveDate,
    test_mode: bool,
    status: String,
    generated_by: Option<String>,
    created_at: DateTime<Utc>,
    generated_at: Option<DateTime<Utc>>,
    sent_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
}

impl RevisitRow {
    pub fn into_snap(self) -> RevisitSnap {
        RevisitSnap {
            id: self.id,
            customer_id: self.customer_id,
            institution_id: self.institution_id,
            occasion: self.occasion,
            occasion_date: self.occasion_date,
            test_mode: self.test_mode,
            status: self.status,
            generated_by: self.generated_by,
            created_at: self.created_at,
            generated_at: self.generated_at,
            sent_at: self.sent_at,
            updated_at: self.updated_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(seq: i64, kind: &str, keys: &[&str], secs: i64) -> Change {
        Change {
            seq,
            kind: kind.into(),
            keys: keys.iter().map(|k| (*k).to_owned()).collect(),
            changed_at: DateTime::from_timestamp(secs, 0).unwrap(),
        }
    }

    #[test]
    fn a_key_changed_twice_is_synced_once_with_the_later_version() {
        let changes = [
            change(1, "customer", &["1", "2"], 100),
            change(2, "order", &["1/A"], 101),
            change(3, "customer", &["2", "3"], 102),
            change(4, "comet", &["9"], 103),
        ];
        let planned = plan(&changes, &[ProjectionName::Clickhouse], 2);
        let jobs: Vec<(EntityKind, Vec<&str>, i64)> = planned
            .iter()
            .map(|p| {
                (
                    p.job.kind,
                    p.job.keys.iter().map(String::as_str).collect(),
                    p.job.version,
                )
            })
            .collect();
        assert_eq!(
            jobs,
            vec![
                (EntityKind::Customer, vec!["1", "2"], 3),
                (EntityKind::Customer, vec!["3"], 3),
                (EntityKind::Order, vec!["1/A"], 2),
            ]
        );
        assert_eq!(planned[0].oldest.timestamp(), 100);
        assert_ne!(planned[0].job.batch, planned[1].job.batch);
    }

    #[test]
    fn a_person_s_change_becomes_its_customers_change_synced_once() {
        let changes = vec![
            change(1, "person", &["7"], 100),
            change(2, "customer", &["70"], 100),
            change(3, "person", &["8"], 99),
        ];
        assert_eq!(person_ids(&changes), vec![7, 8]);
        let merged = persons_as_customers(changes, vec![70, 80]);
        let planned = plan(&merged, &[ProjectionName::Clickhouse], 10);
        assert_eq!(planned.len(), 1);
        assert_eq!(planned[0].job.kind, EntityKind::Customer);
        assert_eq!(planned[0].job.keys, vec!["70", "80"]);
        assert_eq!(planned[0].job.version, 3);
        assert_eq!(planned[0].oldest.timestamp(), 99);
    }

    #[test]
    fn no_projection_no_jobs() {
        assert!(plan(&[change(1, "customer", &["1"], 1)], &[], 10).is_empty());
    }
}
