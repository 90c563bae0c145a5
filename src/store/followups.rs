//! What the follow-up scans read: treatments that may have a check-in or a maintenance reminder
//! due, and customers who may have lapsed (see [`crate::domain::followup`] for the rules, which
//! decide exactly; these reads pre-filter with the indexes).
//!
//! Every read leaves out institutions that are not active and persons who opted out at any
//! institution, as the birthday scan does.

use async_trait::async_trait;
use chrono::NaiveDate;

use super::StoreResult;

/// One project item of a completed order.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Treatment {
    pub customer_id: i64,
    pub person_id: i64,
    pub order_number: String,
    pub order_date: NaiveDate,
    pub item_code: String,
    pub category: Option<String>,
    pub followup_days: Option<String>,
    pub cycle_days: Option<i32>,
}

/// A customer and the date of their last completed visit.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LastVisit {
    pub customer_id: i64,
    pub person_id: i64,
    pub last_visit: NaiveDate,
}

#[async_trait]
pub trait Followups: Send + Sync {
    /// The check-in days projects set for themselves (`"1,3,7"`), each once.
    async fn project_followup_days(&self) -> StoreResult<Vec<String>>;
    /// Project items of completed orders of `institutions` made on one of `dates`.
    async fn treatments_on(
        &self,
        institutions: &[String],
        dates: &[NaiveDate],
    ) -> StoreResult<Vec<Treatment>>;
    /// Project items with a `cycle_days` whose reminder (`lead_days` before the cycle comes
    /// round) falls within `today - 3 ..= today`, and that the customer has not had again
    /// since.
    async fn treatments_coming_round(
        &self,
        institutions: &[String],
        today: NaiveDate,
        lead_days: i64,
    ) -> StoreResult<Vec<Treatment>>;
    /// Customers of `institutions` whose last completed visit was within `from ..= to`.
    async fn last_visits_between(
        &self,
        institutions: &[String],
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<Vec<LastVisit>>;
}

/// The filters every read shares: an active institution of the list, and a person who has not
/// opted out anywhere (`c` the customer, `p` the person, `i` the institution).
pub(crate) const REACHABLE: &str = "i.status = 'active'
    AND NOT EXISTS (SELECT 1 FROM customers o WHERE o.person_id = c.person_id AND o.opted_out)";
