//! What staff look up through the API and the console: institutions, an institution's
//! customers a page at a time, one customer with their history and revisits, and revisits by
//! status. Reads only, except putting a failed revisit's job back in the queue.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::{NewJob, StoreResult};
use crate::domain::{
    birthday::BirthdayWindow,
    followup::Occasion,
    revisit::{Approval, RevisitStatus, Writer},
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct InstitutionRef {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub status: String,
    /// Its own IANA time zone, when it is not the chain's.
    pub timezone: Option<String>,
}

/// A page of an institution's customers, in code order.
#[derive(Debug, Clone)]
pub struct CustomerQuery {
    pub institution_id: i64,
    /// Matches a code's start, a name's part, a whole phone number or its last four digits.
    pub search: Option<String>,
    /// The last code of the previous page.
    pub after: Option<String>,
    pub limit: i64,
}

/// A customer as the list shows them (the phone is masked before it leaves the API).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CustomerListRow {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub phone: String,
    pub gender: Option<String>,
    pub birthday: Option<NaiveDate>,
    /// [`crate::domain::lunar::LunarBirthday::code`], when the customer keeps a lunar birthday.
    pub lunar_birthday: Option<i16>,
    pub vip_level: Option<String>,
    pub opted_out: bool,
    /// The same person (phone) opted out at another institution of the chain: an opt-out
    /// protects the person everywhere, and is shown as coming from elsewhere.
    pub opted_out_elsewhere: bool,
    pub last_visit: Option<NaiveDate>,
}

/// One customer with what the institution knows of them.
#[derive(Debug, Clone)]
pub struct CustomerDetail {
    pub customer: CustomerListRow,
    pub source: Option<String>,
    pub tags: Vec<String>,
    pub notes: Option<String>,
    pub orders: Vec<OrderView>,
    pub consultations: Vec<ConsultationView>,
    pub revisits: Vec<RevisitRow>,
}

/// A consultation record (咨询记录) as staff see it, with the names of its projects and doctor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ConsultationView {
    pub code: String,
    pub consult_date: NaiveDate,
    pub channel: Option<String>,
    pub consultant: Option<String>,
    pub doctor_name: Option<String>,
    /// The names of the projects asked about, in the record's order.
    pub projects: Vec<String>,
    pub content: Option<String>,
    pub outcome: Option<String>,
}

impl From<ConsultationView> for crate::domain::greeting::ConsultationNote {
    fn from(v: ConsultationView) -> Self {
        Self {
            date: v.consult_date,
            projects: v.projects,
            content: v.content,
            outcome: v.outcome,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct OrderView {
    pub order_number: String,
    pub order_date: NaiveDate,
    pub total_amount_cents: i64,
    pub payment_method: Option<String>,
    pub status: String,
    pub items: Vec<ItemView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ItemView {
    pub item_type: String,
    pub item_code: String,
    pub item_name: String,
    pub quantity: i32,
    pub actual_price_cents: i64,
    pub doctor_code: Option<String>,
    pub doctor_name: Option<String>,
}

/// Revisits, newest first.
#[derive(Debug, Clone, Default)]
pub struct RevisitQuery {
    /// One institution's (the customer's institution); none: the chain's.
    pub institution_id: Option<i64>,
    pub status: Option<RevisitStatus>,
    pub test_mode: Option<bool>,
    /// Ids below this one (the last id of the previous page).
    pub before_id: Option<i64>,
    pub limit: i64,
}

/// A revisit as staff see it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RevisitRow {
    pub id: i64,
    pub institution: String,
    pub customer_code: String,
    pub name: String,
    pub phone: String,
    pub occasion: Occasion,
    pub occasion_date: NaiveDate,
    pub test_mode: bool,
    pub status: RevisitStatus,
    pub generated_by: Option<Writer>,
    pub message: Option<String>,
    pub channel: Option<String>,
    pub send_attempts: i32,
    pub last_error: Option<String>,
    /// The last delivery try may have reached the customer: retrying may send it twice.
    pub delivery_uncertain: bool,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    /// `pending` while it waits for staff approval; `approved`, `rejected`; none when not asked.
    pub approval: Option<Approval>,
    /// It failed in a way retrying as it is cannot fix (see the error).
    pub failure_permanent: bool,
}

/// What putting a failed revisit back in the queue did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevisitRetry {
    /// Its job is queued again (id).
    Queued(String),
    /// It has not failed (its status).
    NotFailed(RevisitStatus),
    /// Its last try may have been delivered: retried only when the caller insists.
    Uncertain,
    NotFound,
}

/// A customer's code and name.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CustomerName {
    pub code: String,
    pub name: String,
}

#[async_trait]
pub trait Directory: Send + Sync {
    async fn institutions(&self) -> StoreResult<Vec<InstitutionRef>>;
    async fn institution(&self, code: &str) -> StoreResult<Option<InstitutionRef>>;
    /// The names of these customers of institution `institution_id` (others are left out).
    async fn customer_names(
        &self,
        institution_id: i64,
        codes: &[String],
    ) -> StoreResult<Vec<CustomerName>>;
    /// The codes of the projects and products with this code or this name (staff type names).
    async fn item_codes(&self, code_or_name: &str) -> StoreResult<Vec<String>>;
    async fn customer_page(&self, query: &CustomerQuery) -> StoreResult<Vec<CustomerListRow>>;
    /// Customers of an institution whose birthday (solar, or lunar when they keep one) may be
    /// kept in `window`.
    async fn birthdays_of(
        &self,
        institution_id: i64,
        window: &BirthdayWindow,
    ) -> StoreResult<Vec<CustomerListRow>>;
    async fn customer_detail(
        &self,
        institution_id: i64,
        code: &str,
    ) -> StoreResult<Option<CustomerDetail>>;
    async fn revisit_list(&self, query: &RevisitQuery) -> StoreResult<Vec<RevisitRow>>;
    /// The institution a revisit belongs to (its customer's).
    async fn revisit_institution(&self, id: i64) -> StoreResult<Option<i64>>;
    /// Puts a failed revisit's next step back in the queue: its dead or finished job of
    /// `job.queue` (keyed by the revisit) with a full set of attempts, or `job` if it has none.
    async fn retry_revisit(
        &self,
        id: i64,
        generate: NewJob,
        send: NewJob,
        even_if_uncertain: bool,
    ) -> StoreResult<RevisitRetry>;
}
