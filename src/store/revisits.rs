//! Revisits and their delivery: the scan's candidates, creating revisits under the frequency cap,
//! the greeting's context and saving it, and the send claim (see [`crate::domain::delivery`]).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::StoreResult;
use crate::domain::revisit::{Approval, RevisitStatus, Writer};
use crate::domain::{
    birthday::BirthdayWindow,
    delivery::{ClaimDecision, SendOutcome},
    followup::FrequencyCap,
    greeting::GreetingContext,
};

/// Revisits created since a time: how many are still on their way, of how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct RevisitProgress {
    pub open: i64,
    pub all: i64,
}

#[async_trait]
pub trait Revisits: Send + Sync {
    /// The codes of `wanted` that exist, in the order given.
    async fn existing_institutions(&self, wanted: &[String]) -> StoreResult<Vec<String>>;
    /// Active, not opted-out customers whose birthday may be kept in `window` (by its solar
    /// codes for persons without a lunar birthday, by its lunar codes for the others); a person
    /// who is a customer of several institutions once, by the institution visited last.
    async fn birthday_candidates(
        &self,
        institutions: &[String],
        window: &BirthdayWindow,
    ) -> StoreResult<Vec<BirthdayCandidate>>;
    /// Creates the revisits that do not exist yet (one per person, occasion and date, whichever
    /// of their customers it names) and a greeting job for each, in one transaction; a real
    /// marketing revisit over the frequency cap is left out.
    async fn create_revisits(
        &self,
        found: &[NewRevisit],
        test_mode: bool,
        greeting_max_attempts: i32,
        cap: FrequencyCap,
    ) -> StoreResult<Created>;
    async fn revisit(&self, id: i64) -> StoreResult<Option<Revisit>>;
    /// Which of `candidates` are the full names of other persons among the customers of
    /// `customer_id`'s institution: a message must never carry another customer's name.
    async fn names_of_others(
        &self,
        customer_id: i64,
        candidates: &[String],
    ) -> StoreResult<Vec<String>>;
    async fn greeting_context(
        &self,
        customer_id: i64,
        occasion_date: NaiveDate,
    ) -> StoreResult<Option<GreetingContext>>;
    /// Saves the message (unless one was saved meanwhile) and enqueues its sending, in one
    /// transaction. Returns whether it saved.
    async fn save_greeting(
        &self,
        greeting: SavedGreeting<'_>,
        send_max_attempts: i32,
    ) -> StoreResult<bool>;
    /// Marks a revisit failed (unless sent or skipped) with the error; `permanent` when
    /// retrying as it is cannot help.
    async fn mark_revisit_failed(&self, id: i64, error: &str, permanent: bool) -> StoreResult<()>;
    /// What a channel needs, unless the person opted out (at any institution) or their number
    /// is suppressed for `channel` (or for every channel).
    async fn outgoing(&self, revisit: &Revisit, channel: &str) -> StoreResult<Recipient>;
    /// Claims the revisit's delivery for one run, in one transaction, by the rule of
    /// [`crate::domain::delivery::decide`]: on `Claim` the revisit is `sending` under `token`
    /// until `now + lease`; on `Uncertain` it is marked failed with `delivery_uncertain`.
    async fn claim_send(
        &self,
        id: i64,
        token: &str,
        lease: Duration,
        dedups: bool,
    ) -> StoreResult<ClaimDecision>;
    /// Records how a claimed try ended, only while `token` still holds the claim. Returns
    /// whether it did (false: the lease ran out and another run took the revisit over).
    async fn finish_send(&self, id: i64, token: &str, outcome: &SendOutcome) -> StoreResult<bool>;
    /// Revisits created since `since`, names and phones masked.
    async fn revisits_since(&self, since: DateTime<Utc>) -> StoreResult<Vec<RevisitView>>;
    /// (still open, all) revisits created since `since`.
    async fn revisit_progress(&self, since: DateTime<Utc>) -> StoreResult<RevisitProgress>;
}

use crate::domain::followup::Occasion;

/// A customer whose stored birthday (solar, or lunar when they keep one) may fall in the window.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BirthdayCandidate {
    pub customer_id: i64,
    pub person_id: i64,
    pub birthday: Option<NaiveDate>,
    /// [`crate::domain::lunar::LunarBirthday::code`].
    pub lunar_birthday: Option<i16>,
}

/// A revisit to create: the customer it is made for (the institution they visited last), the
/// person it is unique for, the occasion and its date, and what a follow-up is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRevisit {
    pub customer_id: i64,
    pub person_id: i64,
    pub occasion: Occasion,
    pub occasion_date: NaiveDate,
    /// The order and item (project) a check-in or reminder follows.
    pub order_number: Option<String>,
    pub item_code: Option<String>,
    /// Days after the treatment, for a check-in.
    pub day_offset: Option<i32>,
    /// The message asks for a score of 1–5 (one check-in of a treatment).
    pub asks_score: bool,
}

impl NewRevisit {
    pub fn birthday(customer_id: i64, person_id: i64, occasion_date: NaiveDate) -> Self {
        Self {
            customer_id,
            person_id,
            occasion: Occasion::Birthday,
            occasion_date,
            order_number: None,
            item_code: None,
            day_offset: None,
            asks_score: false,
        }
    }
}

/// What creating revisits did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Created {
    pub created: u32,
    /// Left for a later day by the frequency cap.
    pub capped: u32,
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct Revisit {
    pub id: i64,
    pub customer_id: i64,
    pub occasion: Occasion,
    pub occasion_date: NaiveDate,
    pub test_mode: bool,
    pub status: RevisitStatus,
    pub message: Option<String>,
    pub generated_by: Option<Writer>,
    pub model: Option<String>,
    pub channel: Option<String>,
    pub send_key: String,
    pub send_attempts: i32,
    pub last_error: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub person_id: i64,
    /// An earlier delivery try was cut off and may have arrived; a person should check.
    pub delivery_uncertain: bool,
    /// `pending` while a real message waits for staff approval; `approved`, `rejected`; NULL
    /// when none was asked for.
    pub approval: Option<Approval>,
    /// What a follow-up is about (see [`NewRevisit`]).
    pub order_number: Option<String>,
    pub item_code: Option<String>,
    pub day_offset: Option<i32>,
    pub asks_score: bool,
    pub score: Option<i16>,
    /// The channel's reference of a submitted message (a WeCom broadcast task's msgid).
    pub channel_ref: Option<String>,
    pub submitted_at: Option<DateTime<Utc>>,
}

/// Whom a message may go to.
#[derive(Debug, Clone)]
pub enum Recipient {
    Reachable(crate::domain::outgoing::Outgoing),
    /// The person asked not to be contacted at all (`opted_out` at any institution), or the
    /// customer is gone.
    OptedOut,
    /// The number is suppressed for this channel (the suppression's channel: it or `*`).
    Unsubscribed {
        channel: String,
        source: String,
    },
}

/// (institution code, customer code, name, phone, opted out anywhere, the suppression's channel
/// and source if any) of a revisit's customer, as both engines read it.
/// What the recipient query reads: the customer, whether they opted out anywhere, the
/// suppression of their number for the channel (its channel and source), their WeCom contact.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct RecipientRow {
    pub institution: String,
    pub customer: String,
    pub name: String,
    pub phone: String,
    pub opted_out: bool,
    pub suppressed: Option<String>,
    pub source: Option<String>,
    pub wecom_external_userid: Option<String>,
    pub wecom_userid: Option<String>,
}

/// The recipient query's columns and joins, with `$1`/`?1` the customer and `$2`/`?2` the
/// channel written by each engine.
pub(crate) const RECIPIENT_SELECT: &str = "SELECT i.code AS institution, c.code AS customer,
        c.name, p.phone,
        EXISTS (SELECT 1 FROM customers o WHERE o.person_id = p.id AND o.opted_out) AS opted_out,
        s.channel AS suppressed, s.source, c.wecom_external_userid, c.wecom_userid
    FROM customers c JOIN persons p ON p.id = c.person_id
    JOIN institutions i ON i.id = c.institution_id";

impl Recipient {
    pub(crate) fn of(r: &Revisit, row: Option<RecipientRow>) -> Self {
        match row {
            None => Self::OptedOut,
            Some(row) if row.opted_out => Self::OptedOut,
            Some(RecipientRow {
                suppressed: Some(channel),
                source,
                ..
            }) => Self::Unsubscribed {
                channel,
                source: source.unwrap_or_default(),
            },
            Some(row) => Self::Reachable(crate::domain::outgoing::Outgoing {
                revisit_id: r.id,
                send_key: r.send_key.clone(),
                institution_code: row.institution,
                customer_code: row.customer,
                name: row.name,
                phone: row.phone,
                occasion: r.occasion.as_str().to_owned(),
                occasion_date: r.occasion_date,
                message: r.message.clone().unwrap_or_default(),
                wecom_external_userid: row.wecom_external_userid,
                wecom_userid: row.wecom_userid,
            }),
        }
    }
}

/// A generated greeting to save.
#[derive(Debug, Clone, Copy)]
pub struct SavedGreeting<'a> {
    pub revisit_id: i64,
    pub message: &'a str,
    pub generated_by: Writer,
    pub model: Option<&'a str>,
    pub channel: &'a str,
    /// What the compliance check did (a rewrite, the template instead), if anything.
    pub compliance: Option<&'a str>,
    /// Not before this time (quiet hours); at once when `None`.
    pub send_at: Option<DateTime<Utc>>,
    /// The institution wants a person to approve the message first: it is saved waiting, and
    /// its sending is enqueued by the approval.
    pub needs_approval: bool,
}

/// The columns of a [`RevisitView`] and their joins; each query adds its `WHERE` (the same SQL on
/// both engines).
pub(crate) const REVISIT_VIEW_SELECT: &str = "SELECT r.id, i.code AS institution,
        c.code AS customer_code, c.name, p.phone, r.occasion, r.occasion_date, r.test_mode,
        r.status, r.generated_by, r.message, r.last_error
    FROM revisits r JOIN customers c ON c.id = r.customer_id
    JOIN persons p ON p.id = c.person_id JOIN institutions i ON i.id = c.institution_id";

/// A revisit with the customer's masked identity, for the CLI and the demo.
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct RevisitView {
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
    pub last_error: Option<String>,
}

impl RevisitView {
    pub fn masked(mut self) -> Self {
        self.name = crate::domain::privacy::mask_name(&self.name);
        self.phone = crate::domain::privacy::mask_phone(&self.phone);
        self
    }
}
