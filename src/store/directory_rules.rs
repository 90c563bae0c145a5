//! The parts of staff's look-ups that are the same on both engines: escaping a search for
//! `LIKE`, putting orders and their items together, and which step of a failed revisit a retry
//! puts back in the queue.

use std::collections::HashMap;

use chrono::NaiveDate;

use super::directory::{ItemView, OrderView, RevisitRetry};
use crate::domain::revisit::RevisitStatus;

/// (order number, date, total, payment method, status).
pub type OrderTuple = (String, NaiveDate, i64, Option<String>, String);

/// (order number, type, code, name, quantity, actual price, doctor code, doctor name).
pub type ItemTuple = (
    String,
    String,
    String,
    String,
    i32,
    i64,
    Option<String>,
    Option<String>,
);

/// The list's columns (the same SQL on both engines); `last_visit` is one index probe per row of the page. It names the
/// customer only: with the institution too, PostgreSQL combined the customer index with the
/// whole institution's primary key (30 ms a row at 600,000 orders instead of 0.01 ms).
pub const CUSTOMER_COLUMNS: &str =
    "c.id, c.code, c.name, p.phone, c.gender, c.birthday, c.lunar_birthday, c.vip_level,
    c.opted_out,
    EXISTS (SELECT 1 FROM customers o
            WHERE o.person_id = c.person_id AND o.id <> c.id AND o.opted_out) AS opted_out_elsewhere,
    (SELECT r.order_date FROM consumption_records r WHERE r.customer_id = c.id
     ORDER BY r.order_date DESC LIMIT 1) AS last_visit";

pub const REVISIT_SELECT: &str =
    "SELECT r.id, i.code AS institution, c.code AS customer_code, c.name,
        p.phone, r.occasion, r.occasion_date, r.test_mode, r.status, r.generated_by, r.message,
        r.channel, r.send_attempts, r.last_error, r.delivery_uncertain, r.created_at, r.sent_at,
        r.approval, r.failure_permanent
    FROM revisits r
    JOIN customers c ON c.id = r.customer_id
    JOIN persons p ON p.id = c.person_id
    JOIN institutions i ON i.id = c.institution_id";

/// How a staff search may match a phone number. Only the whole number or exactly its last four
/// digits: a search that matched any end of the number would undo the list's masking
/// (`185****8274`), one more leading digit a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhoneSearch {
    /// The whole number, normalised (`+86 138-0013-8000` is `13800138000`).
    Whole(String),
    /// Exactly four digits: the number's last four.
    LastFour(String),
    /// Anything else matches no phone (only codes and names).
    None,
}

impl PhoneSearch {
    pub fn of(term: &str) -> Self {
        let term = term.trim();
        if term.len() == 4 && term.chars().all(|c| c.is_ascii_digit()) {
            return Self::LastFour(term.to_owned());
        }
        match crate::domain::privacy::normalize_phone(term) {
            // A mainland mobile number has 11 digits; shorter runs are partial numbers.
            Some(whole) if whole.len() >= 11 => Self::Whole(whole),
            _ => Self::None,
        }
    }

    /// The values for the search's two phone parameters: the whole number, the last four.
    pub fn binds(&self) -> (Option<&str>, Option<&str>) {
        match self {
            Self::Whole(w) => (Some(w.as_str()), None),
            Self::LastFour(l) => (None, Some(l.as_str())),
            Self::None => (None, None),
        }
    }
}

/// `s` with `LIKE`'s wildcards and the escape character escaped (for `ESCAPE '\'`).
pub fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Orders, in the order given, each with its items.
pub fn assemble(orders: Vec<OrderTuple>, items: Vec<ItemTuple>) -> Vec<OrderView> {
    let mut by_order: HashMap<String, Vec<ItemView>> = HashMap::new();
    for (number, item_type, item_code, item_name, quantity, price, doctor_code, doctor_name) in
        items
    {
        by_order.entry(number).or_default().push(ItemView {
            item_type,
            item_code,
            item_name,
            quantity,
            actual_price_cents: price,
            doctor_code,
            doctor_name,
        });
    }
    orders
        .into_iter()
        .map(
            |(order_number, order_date, total, payment_method, status)| OrderView {
                items: by_order.remove(&order_number).unwrap_or_default(),
                order_number,
                order_date,
                total_amount_cents: total,
                payment_method,
                status,
            },
        )
        .collect()
}

/// The step of a revisit that a retry queues again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Generate,
    Send,
}

/// Which step a retry of a revisit in `status` queues again, or why it does not: only failed
/// revisits are retried; one with a message is sent again, one without is generated again; one
/// whose last delivery try may have arrived is sent again only when the caller insists.
pub fn retry_step(
    status: RevisitStatus,
    has_message: bool,
    uncertain: bool,
    even_if_uncertain: bool,
) -> Result<Step, RevisitRetry> {
    if status != RevisitStatus::Failed {
        return Err(RevisitRetry::NotFailed(status));
    }
    if !has_message {
        return Ok(Step::Generate);
    }
    if uncertain && !even_if_uncertain {
        return Err(RevisitRetry::Uncertain);
    }
    Ok(Step::Send)
}

/// The key of a retry's job when the revisit's job is still running: its attempt is ending in
/// the failure being retried (the revisit is failed already), so it cannot be revived, and a
/// retry that followed it would run nothing. A job of its own runs after it; the send claim
/// keeps the two from delivering twice.
pub fn retry_key(key: &str) -> String {
    format!("{key}-retry-{}", ulid::Ulid::generate())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_are_taken_literally() {
        assert_eq!(like_escape("50%_off\\"), "50\\%\\_off\\\\");
        assert_eq!(like_escape("张丽"), "张丽");
    }

    #[test]
    fn a_retry_queues_the_step_that_failed() {
        assert_eq!(
            retry_step(RevisitStatus::Failed, false, false, false),
            Ok(Step::Generate)
        );
        assert_eq!(
            retry_step(RevisitStatus::Failed, true, false, false),
            Ok(Step::Send)
        );
        assert_eq!(
            retry_step(RevisitStatus::Sent, true, false, false),
            Err(RevisitRetry::NotFailed(RevisitStatus::Sent))
        );
        assert_eq!(
            retry_step(RevisitStatus::Failed, true, true, false),
            Err(RevisitRetry::Uncertain),
            "maybe delivered: not without insisting"
        );
        assert_eq!(
            retry_step(RevisitStatus::Failed, true, true, true),
            Ok(Step::Send)
        );
    }

    #[test]
    fn orders_keep_their_order_and_get_their_items() {
        let d = NaiveDate::from_ymd_opt(2026, 1, 2).unwrap();
        let orders = vec![
            ("B".into(), d, 200, None, "completed".into()),
            ("A".into(), d, 100, None, "refunded".into()),
        ];
        let item = |n: &str, code: &str| {
            (
                n.to_owned(),
                "project".to_owned(),
                code.to_owned(),
                "水光针".to_owned(),
                1,
                100,
                None,
                None,
            )
        };
        let out = assemble(
            orders,
            vec![item("A", "P1"), item("B", "P2"), item("B", "P3")],
        );
        assert_eq!(out[0].order_number, "B");
        assert_eq!(out[0].items.len(), 2);
        assert_eq!(out[1].items[0].item_code, "P1");
    }
}

#[cfg(test)]
mod phone_search_tests {
    use super::PhoneSearch;

    #[test]
    fn only_a_whole_number_or_its_last_four_digits_match_a_phone() {
        assert_eq!(
            PhoneSearch::of("+86 185-0000-8274"),
            PhoneSearch::Whole("18500008274".into())
        );
        assert_eq!(
            PhoneSearch::of("8274"),
            PhoneSearch::LastFour("8274".into())
        );
        // Any longer or shorter end of the number matches nothing: the masked list's
        // `185****8274` cannot be completed one digit at a time.
        for partial in [
            "08274",
            "008274",
            "0008274",
            "274",
            "50008274",
            "1850000827",
        ] {
            assert_eq!(PhoneSearch::of(partial), PhoneSearch::None, "{partial}");
        }
        assert_eq!(PhoneSearch::of("吕静"), PhoneSearch::None);
    }
}
