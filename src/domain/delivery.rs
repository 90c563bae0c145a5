//! The send claim: which run of a `message.send` may deliver a revisit's message.
//!
//! Two runs of one send can overlap: a job rescued from a worker that missed its heartbeats while
//! it was still working, a job retried by hand while the first run is slow. Before it delivers, a
//! run claims the revisit in one database transaction (row lock on PostgreSQL, the write lock on
//! SQLite): it sets `status = 'sending'`, its own `send_token` and a lease `send_lease_until`.
//! [`decide`] is the rule that transaction applies; the stores only read the row and write
//! what it says, so both engines follow one rule.
//!
//! The lease outlives the longest delivery try (the channel's timeout plus a margin). A run that
//! finds a live lease does not send. A run that finds `sending` with an expired lease knows an
//! earlier try was cut off after it claimed: the message may have arrived. It sends again only
//! through a channel that drops repeats of the same key; otherwise the revisit is flagged
//! `delivery_uncertain` and fails, for a person to check with the customer.

use chrono::{DateTime, Utc};

/// The channels a message can go through (`reminders.channel`, `notify::Channel::name`).
pub const CHANNELS: [&str; 4] = ["console", "webhook", "sms", "wecom"];

/// The error a revisit flagged `delivery_uncertain` carries.
pub const UNCERTAIN_MESSAGE: &str = "送达情况不明：上一次发送开始后被中断，消息可能已经送达；该渠道无法识别重复消息，因此没有再次发送。请先向客户确认，未收到再手动重试";

/// Why a real message still queued when real sending was switched off was not sent.
pub const SENDING_OFF: &str = "正式发送已关闭（revisit sending off），此条未发送；开启后不会补发";

/// What the claim transaction reads of a revisit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendState {
    pub status: String,
    pub has_message: bool,
    pub lease_until: Option<DateTime<Utc>>,
}

/// What the claim transaction does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimDecision {
    /// Take the claim (`sending`, new token and lease, one more send attempt) and deliver.
    /// `repeat`: an earlier try may have been delivered; the channel will drop a repeat.
    Claim { repeat: bool },
    /// Sent, skipped, or submitted as a task a person confirms (a WeCom broadcast, watched by
    /// its own job): nothing to do.
    Settled,
    /// Another run holds a live claim until this time: do not send; look again after it.
    Busy(DateTime<Utc>),
    /// An earlier try was cut off and the channel cannot drop a repeat: mark the revisit failed
    /// with `delivery_uncertain`, and send nothing.
    Uncertain,
    /// There is no message to send (generation failed or has not run).
    NoMessage,
}

/// The rule of the claim, for a revisit in `state` at `now`, through a channel that does
/// (`dedups`) or does not drop a repeat of the same key.
pub fn decide(state: &SendState, now: DateTime<Utc>, dedups: bool) -> ClaimDecision {
    let live = state.lease_until.filter(|until| *until > now);
    match state.status.as_str() {
        "sent" | "skipped" | "submitted" => ClaimDecision::Settled,
        _ if !state.has_message => ClaimDecision::NoMessage,
        _ if live.is_some() => ClaimDecision::Busy(live.expect("checked")),
        "sending" if dedups => ClaimDecision::Claim { repeat: true },
        "sending" => ClaimDecision::Uncertain,
        // `generated`, or `failed` (a send retried by hand, or a generation that succeeded after a
        // failure was recorded): no try is under way.
        _ => ClaimDecision::Claim { repeat: false },
    }
}

/// How a claimed delivery try ended, as the store records it (only while the run still holds
/// the claim: a run whose lease was taken over records nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// Delivered: `sent`.
    Sent,
    /// The receiver did not get it: back to `generated`, claim released, safe to retry.
    NotDelivered(String),
    /// It may have arrived: stays `sending` with the lease ended, so the next try decides
    /// (repeat through a de-duplicating channel, or flag it).
    Uncertain(String),
    /// The customer opted out after the message was made: `skipped`.
    Skipped(String),
    /// The channel refused it for good: `failed`.
    Rejected(String),
}

impl SendOutcome {
    /// (status, error) the revisit takes.
    pub fn status(&self) -> (&'static str, Option<&str>) {
        match self {
            Self::Sent => ("sent", None),
            Self::NotDelivered(e) => ("generated", Some(e)),
            Self::Uncertain(e) => ("sending", Some(e)),
            Self::Skipped(e) => ("skipped", Some(e)),
            Self::Rejected(e) => ("failed", Some(e)),
        }
    }
}

/// `HH:MM-HH:MM` as (start, end), the start before the end.
pub fn parse_window(s: &str) -> Option<(chrono::NaiveTime, chrono::NaiveTime)> {
    let (a, b) = s.split_once('-')?;
    let t = |x: &str| chrono::NaiveTime::parse_from_str(x.trim(), "%H:%M").ok();
    let (start, end) = (t(a)?, t(b)?);
    (start < end).then_some((start, end))
}

/// When a message made at `now` may be sent: `None` inside the window (at once), otherwise the
/// window's next opening, in the time zone `tz`.
pub fn hold_until(
    now: DateTime<Utc>,
    tz: chrono_tz::Tz,
    (start, end): (chrono::NaiveTime, chrono::NaiveTime),
) -> Option<DateTime<Utc>> {
    use chrono::TimeZone;
    let local = now.with_timezone(&tz);
    let time = local.time();
    if time >= start && time < end {
        return None;
    }
    let day = if time < start {
        local.date_naive()
    } else {
        local.date_naive().succ_opt()?
    };
    // A start that falls in a DST gap does not exist; take the earliest valid reading.
    tz.from_local_datetime(&day.and_time(start))
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_made_in_quiet_hours_waits_for_the_window() {
        let w = parse_window("08:00-21:00").unwrap();
        let tz = chrono_tz::Asia::Shanghai;
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        // 10:00 in Shanghai: at once.
        assert_eq!(hold_until(at("2026-11-26T02:00:00Z"), tz, w), None);
        // 22:30 in Shanghai: 08:00 the next morning.
        assert_eq!(
            hold_until(at("2026-11-26T14:30:00Z"), tz, w),
            Some(at("2026-11-27T00:00:00Z"))
        );
        // 06:00 in Shanghai: 08:00 the same morning.
        assert_eq!(
            hold_until(at("2026-11-25T22:00:00Z"), tz, w),
            Some(at("2026-11-26T00:00:00Z"))
        );
        assert_eq!(parse_window("21:00-08:00"), None);
        assert_eq!(parse_window("8-21"), None);
    }
    use chrono::Duration;

    fn state(status: &str, lease: Option<i64>) -> SendState {
        SendState {
            status: status.into(),
            has_message: true,
            lease_until: lease.map(|s| now() + Duration::seconds(s)),
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    #[test]
    fn a_generated_message_is_claimed() {
        assert_eq!(
            decide(&state("generated", None), now(), false),
            ClaimDecision::Claim { repeat: false }
        );
    }

    #[test]
    fn a_live_lease_is_never_taken_whatever_the_channel() {
        for status in ["sending", "generated", "failed"] {
            for dedups in [true, false] {
                assert!(matches!(
                    decide(&state(status, Some(5)), now(), dedups),
                    ClaimDecision::Busy(_)
                ));
            }
        }
    }

    #[test]
    fn an_interrupted_send_repeats_only_through_a_deduplicating_channel() {
        assert_eq!(
            decide(&state("sending", Some(-1)), now(), true),
            ClaimDecision::Claim { repeat: true }
        );
        assert_eq!(
            decide(&state("sending", Some(-1)), now(), false),
            ClaimDecision::Uncertain
        );
        assert_eq!(
            decide(&state("sending", None), now(), false),
            ClaimDecision::Uncertain
        );
    }

    #[test]
    fn settled_and_empty_revisits_are_not_sent() {
        assert_eq!(
            decide(&state("sent", None), now(), true),
            ClaimDecision::Settled
        );
        assert_eq!(
            decide(&state("skipped", Some(5)), now(), true),
            ClaimDecision::Settled
        );
        let mut s = state("failed", None);
        s.has_message = false;
        assert_eq!(decide(&s, now(), true), ClaimDecision::NoMessage);
    }

    #[test]
    fn a_failed_send_retried_by_hand_is_claimed_once_its_lease_ended() {
        assert_eq!(
            decide(&state("failed", Some(-1)), now(), false),
            ClaimDecision::Claim { repeat: false }
        );
    }
}
