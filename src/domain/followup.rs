//! Follow-ups beside the birthday greeting, and the rules that decide when each is due.
//!
//! - **Check-in** (`checkin`, 术后回访): on set days after a treatment (a project, not a product):
//!   the project's `followup_days`, or its category's defaults below. A care message, not
//!   marketing: no opt-out text, not counted by the frequency cap.
//! - **Maintenance reminder** (`cycle`, 疗程提醒): a treatment whose project has `cycle_days`
//!   (botulinum toxin about 120, hyaluronic acid 180–365) is due again that many days after it
//!   was last done; the reminder goes `lead_days` before, unless the customer has had it since.
//! - **Win-back** (`winback`, 沉睡唤醒): a customer whose last completed visit was `days` ago.
//!
//! Each is a revisit, unique per person, occasion and date like the birthday greeting, so a
//! scan that runs twice, or late, never sends one twice. A scan looks a few days back
//! ([`CATCH_UP_DAYS`]) so that one missed day (workers down) still sends what fell due.

use chrono::{Duration, NaiveDate};

/// Days a scan looks back for follow-ups that fell due while it did not run.
pub const CATCH_UP_DAYS: i64 = 2;

/// What a revisit is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Occasion {
    Birthday,
    Checkin,
    Cycle,
    Winback,
}

crate::domain::revisit::word_traits!(Occasion);

impl Occasion {
    pub const ALL: [Occasion; 4] = [
        Occasion::Birthday,
        Occasion::Checkin,
        Occasion::Cycle,
        Occasion::Winback,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Birthday => "birthday",
            Self::Checkin => "checkin",
            Self::Cycle => "cycle",
            Self::Winback => "winback",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }

    /// For staff: 生日问候, 术后回访, 疗程提醒, 沉睡唤醒.
    pub fn label(self) -> &'static str {
        match self {
            Self::Birthday => "生日问候",
            Self::Checkin => "术后回访",
            Self::Cycle => "疗程提醒",
            Self::Winback => "沉睡唤醒",
        }
    }

    /// Marketing messages carry the opt-out text and count toward the frequency cap; a
    /// check-in after a treatment is care.
    pub fn is_marketing(self) -> bool {
        !matches!(self, Self::Checkin)
    }

    /// The occasions the frequency cap counts, as stored.
    pub fn marketing() -> Vec<&'static str> {
        Self::ALL
            .into_iter()
            .filter(|o| o.is_marketing())
            .map(Self::as_str)
            .collect()
    }
}

/// Check-in days by project category when the project names none, by what clinics do:
/// surgery is followed longest, injections and energy devices through the first week, skin
/// care once. The first row whose keywords the category contains wins.
const CATEGORY_DAYS: &[(&[&str], &[i64])] = &[
    (&["手术", "整形"], &[1, 3, 7, 14, 30, 90]),
    (
        &["注射", "填充", "光电", "激光", "射频", "光子"],
        &[1, 3, 7],
    ),
    (&["护理", "皮肤", "清洁"], &[3]),
];
/// For any other category, or none.
const OTHER_DAYS: &[i64] = &[1, 7];

pub fn default_followup_days(category: Option<&str>) -> &'static [i64] {
    let c = category.unwrap_or_default();
    CATEGORY_DAYS
        .iter()
        .find(|(keys, _)| keys.iter().any(|k| c.contains(k)))
        .map_or(OTHER_DAYS, |(_, days)| days)
}

/// Every check-in day a category's defaults use.
pub fn all_default_followup_days() -> impl Iterator<Item = i64> {
    CATEGORY_DAYS
        .iter()
        .flat_map(|(_, days)| days.iter())
        .chain(OTHER_DAYS)
        .copied()
}

/// `"1,3,7,30"` as days (each 1..=365, at most 10, without repeats, in order).
pub fn parse_days(text: &str) -> Result<Vec<i64>, String> {
    let mut out = Vec::new();
    for part in text
        .split([',', '，'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let d: i64 = part.parse().map_err(|_| format!("{part:?} 不是天数"))?;
        if !(1..=365).contains(&d) {
            return Err(format!("{d} 不在 1 到 365 天之间"));
        }
        if !out.contains(&d) {
            out.push(d);
        }
    }
    if out.len() > 10 {
        return Err("回访天数最多 10 个".into());
    }
    out.sort_unstable();
    Ok(out)
}

/// The check-in days of a project: its own, else its category's.
pub fn checkin_days(followup_days: Option<&str>, category: Option<&str>) -> Vec<i64> {
    followup_days
        .and_then(|t| parse_days(t).ok())
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| default_followup_days(category).to_vec())
}

/// The check-in of a treatment on `treated` that is due on one of `today - CATCH_UP_DAYS ..=
/// today`: (its date, days after the treatment). The latest such day when several are.
pub fn checkin_due(treated: NaiveDate, days: &[i64], today: NaiveDate) -> Option<(NaiveDate, i64)> {
    days.iter()
        .map(|d| (treated + Duration::days(*d), *d))
        .filter(|(due, _)| *due <= today && *due >= today - Duration::days(CATCH_UP_DAYS))
        .max()
}

/// The maintenance reminder of a treatment last done on `last` with a cycle of `cycle_days`:
/// its date (`lead_days` before the treatment is due again), when that is within the last
/// [`CATCH_UP_DAYS`] days up to today.
pub fn cycle_reminder(
    last: NaiveDate,
    cycle_days: i64,
    lead_days: i64,
    today: NaiveDate,
) -> Option<NaiveDate> {
    let remind = last + Duration::days((cycle_days - lead_days).max(1));
    (remind <= today && remind >= today - Duration::days(CATCH_UP_DAYS)).then_some(remind)
}

/// The win-back message of a customer last seen on `last`: its date, `days` later, when that is
/// within the last [`CATCH_UP_DAYS`] days up to today.
pub fn winback_due(last: NaiveDate, days: i64, today: NaiveDate) -> Option<NaiveDate> {
    let due = last + Duration::days(days);
    (due <= today && due >= today - Duration::days(CATCH_UP_DAYS)).then_some(due)
}

/// What the check-in that asks for a score ends with, within the message's length.
pub const SCORE_QUESTION: &str = "请回复1-5为本次服务打分（5分为非常满意）。";

/// Whether the check-in on day `offset` of a project with check-in `days` is the one that asks
/// for a score: the first on or after `satisfaction_day`, or the last when all are earlier.
pub fn asks_score(days: &[i64], offset: i64, satisfaction_day: i64) -> bool {
    let chosen = days
        .iter()
        .copied()
        .find(|d| *d >= satisfaction_day)
        .or_else(|| days.iter().copied().max());
    chosen == Some(offset)
}

/// A reply that gives a score: `1` … `5` (full-width too), optionally with `分`.
pub fn parse_score(reply: &str) -> Option<u8> {
    let t: String = reply
        .trim()
        .trim_end_matches(['分', '。', '！', '!', '.'])
        .chars()
        .map(|c| match c {
            '０'..='９' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            c => c,
        })
        .collect();
    match t.as_str() {
        "1" | "2" | "3" | "4" | "5" => t.parse().ok(),
        _ => None,
    }
}

/// The earliest treatment date a scan has to read for check-ins due up to today.
pub fn checkin_horizon(today: NaiveDate) -> NaiveDate {
    today - Duration::days(365 + CATCH_UP_DAYS)
}

/// At most `max` real marketing messages to a person within `days` (`max` 0: no cap). A
/// revisit over it is not created; the next day's scan tries again while it is still due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrequencyCap {
    pub max: u32,
    pub days: u32,
}

impl FrequencyCap {
    pub const NONE: Self = Self { max: 0, days: 0 };

    /// Whether a new revisit of `occasion` is counted and checked.
    pub fn applies(self, occasion: Occasion, test_mode: bool) -> bool {
        self.max > 0 && !test_mode && occasion.is_marketing()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn check_ins_fall_on_their_days_and_catch_up_two_days() {
        let treated = d(2026, 3, 1);
        let days = [1, 3, 7, 30];
        assert_eq!(
            checkin_due(treated, &days, d(2026, 3, 2)),
            Some((d(2026, 3, 2), 1))
        );
        assert_eq!(
            checkin_due(treated, &days, d(2026, 3, 4)),
            Some((d(2026, 3, 4), 3))
        );
        // Missed on the 4th: the 5th and 6th still send the day-3 check-in.
        assert_eq!(
            checkin_due(treated, &days, d(2026, 3, 6)),
            Some((d(2026, 3, 4), 3))
        );
        assert_eq!(checkin_due(treated, &days, d(2026, 3, 7)), None);
        assert_eq!(
            checkin_due(treated, &days, d(2026, 3, 31)),
            Some((d(2026, 3, 31), 30))
        );
        assert_eq!(
            checkin_due(treated, &days, d(2026, 3, 1)),
            None,
            "not on the day itself"
        );
    }

    #[test]
    fn project_days_override_the_category() {
        assert_eq!(checkin_days(Some("2, 5"), Some("注射")), vec![2, 5]);
        assert_eq!(checkin_days(None, Some("注射类")), vec![1, 3, 7]);
        assert_eq!(
            checkin_days(None, Some("整形手术")),
            vec![1, 3, 7, 14, 30, 90]
        );
        assert_eq!(checkin_days(None, None), vec![1, 7]);
        assert_eq!(checkin_days(Some("bad"), Some("皮肤护理")), vec![3]);
        assert!(parse_days("0").is_err());
        assert!(parse_days("1,x").is_err());
        assert_eq!(parse_days("7,1，3,3"), Ok(vec![1, 3, 7]));
    }

    #[test]
    fn a_cycle_reminder_goes_before_the_treatment_is_due_again() {
        // Botulinum toxin on 1 March, a 120-day cycle, reminded 7 days ahead: 22 June.
        let last = d(2026, 3, 1);
        assert_eq!(
            cycle_reminder(last, 120, 7, d(2026, 6, 22)),
            Some(d(2026, 6, 22))
        );
        assert_eq!(
            cycle_reminder(last, 120, 7, d(2026, 6, 24)),
            Some(d(2026, 6, 22))
        );
        assert_eq!(cycle_reminder(last, 120, 7, d(2026, 6, 25)), None);
        assert_eq!(cycle_reminder(last, 120, 7, d(2026, 6, 21)), None);
    }

    #[test]
    fn win_back_after_the_quiet_days() {
        let last = d(2026, 1, 1);
        assert_eq!(winback_due(last, 180, d(2026, 6, 30)), Some(d(2026, 6, 30)));
        assert_eq!(winback_due(last, 180, d(2026, 6, 29)), None);
        assert_eq!(
            winback_due(last, 180, d(2026, 7, 3)),
            None,
            "long lapsed: not all at once"
        );
    }

    #[test]
    fn one_check_in_asks_for_a_score() {
        assert!(asks_score(&[1, 3, 7, 30], 7, 7));
        assert!(!asks_score(&[1, 3, 7, 30], 30, 7));
        assert!(
            asks_score(&[1, 3, 14], 14, 7),
            "the first on or after day 7"
        );
        assert!(asks_score(&[1, 3], 3, 7), "the last when all are earlier");
        assert!(!asks_score(&[1, 3], 1, 7));
        assert_eq!(parse_score("5"), Some(5));
        assert_eq!(parse_score(" ２分 "), Some(2));
        assert_eq!(parse_score("1。"), Some(1));
        for no in ["6", "0", "TD", "12", "", "五"] {
            assert_eq!(parse_score(no), None, "{no}");
        }
    }

    #[test]
    fn only_check_ins_are_care() {
        assert!(!Occasion::Checkin.is_marketing());
        assert_eq!(Occasion::marketing(), vec!["birthday", "cycle", "winback"]);
        for o in Occasion::ALL {
            assert_eq!(Occasion::parse(o.as_str()), Some(o));
        }
    }
}
