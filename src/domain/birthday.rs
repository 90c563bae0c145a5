//! The birthday window: which customers to greet on a given day.
//!
//! Rule for 29 February: in a year without that day the birthday is celebrated on 28 February
//! (the last day of the customer's birth month), never on 1 March. A person who keeps a lunar
//! birthday is greeted by it instead (see [`super::lunar`] for its rules).

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use chrono_tz::Tz;

/// The calendar day it is in `tz` at `now`: the window starts on the clinic's day, not the
/// server's (at 00:30 in Shanghai it is still the previous day in UTC).
pub fn local_today(now: DateTime<Utc>, tz: Tz) -> NaiveDate {
    now.with_timezone(&tz).date_naive()
}

/// The day the birthday falls on in `year`.
pub fn occurrence_in_year(birthday: NaiveDate, year: i32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, birthday.month(), birthday.day()).unwrap_or_else(|| {
        // Only 29 February can be missing from a year.
        NaiveDate::from_ymd_opt(year, 2, 28).expect("28 February exists every year")
    })
}

/// The first celebration on or after `today`.
pub fn next_occurrence(birthday: NaiveDate, today: NaiveDate) -> NaiveDate {
    let this_year = occurrence_in_year(birthday, today.year());
    if this_year >= today {
        this_year
    } else {
        occurrence_in_year(birthday, today.year() + 1)
    }
}

/// The celebration day when it falls within `today ..= today + days_ahead`.
pub fn upcoming(birthday: NaiveDate, today: NaiveDate, days_ahead: u32) -> Option<NaiveDate> {
    let next = next_occurrence(birthday, today);
    (next <= today + Duration::days(i64::from(days_ahead))).then_some(next)
}

/// `month * 100 + day` codes of every stored birthday that may be celebrated in the window,
/// for an indexed pre-filter in SQL; [`upcoming`] decides exactly.
pub fn window_month_days(today: NaiveDate, days_ahead: u32) -> Vec<i16> {
    let mut codes = Vec::with_capacity(days_ahead as usize + 2);
    for offset in 0..=i64::from(days_ahead) {
        let day = today + Duration::days(offset);
        codes.push(md_code(day));
        let leap = NaiveDate::from_ymd_opt(day.year(), 2, 29).is_some();
        if day.month() == 2 && day.day() == 28 && !leap {
            codes.push(229);
        }
    }
    codes.sort_unstable();
    codes.dedup();
    codes
}

/// Which stored birthdays may be kept in a window: the scan's indexed pre-filter, solar
/// month-day codes for persons without a lunar birthday and lunar codes for the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BirthdayWindow {
    pub today: NaiveDate,
    pub days_ahead: u32,
    pub solar: Vec<i16>,
    pub lunar: Vec<i16>,
}

impl BirthdayWindow {
    pub fn new(today: NaiveDate, days_ahead: u32) -> Self {
        Self {
            today,
            days_ahead,
            solar: window_month_days(today, days_ahead),
            lunar: super::lunar::window_codes(today, days_ahead),
        }
    }

    /// The day a person's birthday is kept on within the window, if it is: by the lunar
    /// birthday when they keep one, else by the solar one.
    pub fn kept_on(&self, solar: Option<NaiveDate>, lunar: Option<i16>) -> Option<NaiveDate> {
        match lunar.and_then(super::lunar::LunarBirthday::from_code) {
            Some(l) => l.upcoming(self.today, self.days_ahead),
            None => upcoming(solar?, self.today, self.days_ahead),
        }
    }
}

fn md_code(day: NaiveDate) -> i16 {
    (day.month() * 100 + day.day()) as i16
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn crosses_the_new_year() {
        let today = d(2026, 12, 28);
        assert_eq!(upcoming(d(1990, 1, 3), today, 7), Some(d(2027, 1, 3)));
        assert_eq!(upcoming(d(1990, 1, 4), today, 7), Some(d(2027, 1, 4)));
        assert_eq!(upcoming(d(1990, 1, 5), today, 7), None);
        assert_eq!(upcoming(d(1990, 12, 27), today, 7), None);
        assert_eq!(upcoming(d(1990, 12, 28), today, 7), Some(d(2026, 12, 28)));
        let codes = window_month_days(today, 7);
        assert!(codes.contains(&1228) && codes.contains(&104) && !codes.contains(&105));
    }

    #[test]
    fn leap_day_birthday_is_kept_on_28_february_in_common_years() {
        let leapling = d(1992, 2, 29);
        assert_eq!(upcoming(leapling, d(2027, 2, 25), 7), Some(d(2027, 2, 28)));
        assert_eq!(upcoming(leapling, d(2028, 2, 25), 7), Some(d(2028, 2, 29)));
        // On 1 March of a common year it has passed: next is the next year's.
        assert_eq!(next_occurrence(leapling, d(2027, 3, 1)), d(2028, 2, 29));
        assert!(window_month_days(d(2027, 2, 25), 7).contains(&229));
        assert!(!window_month_days(d(2027, 3, 1), 7).contains(&229));
    }

    #[test]
    fn the_day_is_the_clinics_day_near_midnight() {
        use chrono::TimeZone;
        let shanghai: Tz = "Asia/Shanghai".parse().unwrap();
        // 16:30 UTC on 27 Dec is 00:30 on 28 Dec in Shanghai.
        let now = Utc.with_ymd_and_hms(2026, 12, 27, 16, 30, 0).unwrap();
        let today = local_today(now, shanghai);
        assert_eq!(today, d(2026, 12, 28));
        assert_eq!(now.date_naive(), d(2026, 12, 27));
        // So a 4 January birthday is in the window there, though not yet by UTC's day.
        assert_eq!(upcoming(d(1990, 1, 4), today, 7), Some(d(2027, 1, 4)));
        assert_eq!(upcoming(d(1990, 1, 4), now.date_naive(), 7), None);
        // 15:59 UTC is 23:59 the same day in Shanghai.
        let before = Utc.with_ymd_and_hms(2026, 12, 27, 15, 59, 0).unwrap();
        assert_eq!(local_today(before, shanghai), d(2026, 12, 27));
    }

    #[test]
    fn a_lunar_birthday_replaces_the_solar_one() {
        // Born 1990-05-15 (solar), keeps 八月十五: greeted at 中秋 2026 (25 September) only.
        let w = BirthdayWindow::new(d(2026, 9, 20), 7);
        let lunar = crate::domain::lunar::LunarBirthday::new(8, 15, false).map(|l| l.code());
        assert_eq!(w.kept_on(Some(d(1990, 5, 15)), lunar), Some(d(2026, 9, 25)));
        assert!(w.lunar.contains(&lunar.unwrap()));
        let may = BirthdayWindow::new(d(2026, 5, 12), 7);
        assert_eq!(may.kept_on(Some(d(1990, 5, 15)), lunar), None);
        assert_eq!(
            may.kept_on(Some(d(1990, 5, 15)), None),
            Some(d(2026, 5, 15))
        );
        assert_eq!(may.kept_on(None, None), None);
    }

    #[test]
    fn zero_days_ahead_means_today_only() {
        assert_eq!(
            upcoming(d(1990, 5, 15), d(2026, 5, 15), 0),
            Some(d(2026, 5, 15))
        );
        assert_eq!(upcoming(d(1990, 5, 16), d(2026, 5, 15), 0), None);
    }

    proptest! {
        #[test]
        fn prefilter_never_drops_a_match(
            by in 1950i32..2010, bday in 0u32..366, ty in 2020i32..2040, tday in 0u32..366, ahead in 0u32..40
        ) {
            let birthday = d(by, 1, 1) + Duration::days(i64::from(bday));
            let today = d(ty, 1, 1) + Duration::days(i64::from(tday));
            if let Some(when) = upcoming(birthday, today, ahead) {
                prop_assert!(window_month_days(today, ahead).contains(&md_code(birthday)));
                prop_assert!(when >= today);
                prop_assert!(when <= today + Duration::days(i64::from(ahead)));
                prop_assert!((when.month(), when.day()) == (birthday.month(), birthday.day())
                    || (birthday.month(), birthday.day(), when.day()) == (2, 29, 28));
            }
        }

        #[test]
        fn next_occurrence_is_within_a_year(by in 1950i32..2010, bday in 0u32..366, ty in 2020i32..2040, tday in 0u32..366) {
            let birthday = d(by, 1, 1) + Duration::days(i64::from(bday));
            let today = d(ty, 1, 1) + Duration::days(i64::from(tday));
            let next = next_occurrence(birthday, today);
            prop_assert!(next >= today && next < today + Duration::days(367));
        }
    }
}
