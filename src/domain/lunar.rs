//! Lunar birthdays (农历生日): a customer who keeps their birthday by the Chinese calendar is
//! greeted on the day it falls on this year, not on the solar date they were born.
//!
//! Rules, for a lunar year that lacks the birthday as written:
//! - born in a leap month (闰月) that this year does not have: the birthday is kept in the
//!   regular month of the same number (born 闰六月十五 → 六月十五);
//! - born on day 30 of a month that has 29 days this year: it is kept on day 29, the month's last
//!   day (the same rule as a 29 February birthday kept on 28 February).
//!
//! A birthday is stored as a small code, `leap * 10000 + month * 100 + day` (闰六月十五 is 10615),
//! so that the scan can pre-filter with an index as it does for solar birthdays; which codes to
//! look for is computed from the exact rule, so the pre-filter never drops a match.

use chrono::{Datelike, Duration, NaiveDate};
use lunar_lite::{
    LunarDate, SolarDate, leap_month, lunar_month_days, lunar_to_solar, solar_to_lunar,
};

/// A birthday by the Chinese calendar: month, day, and whether the month was a leap month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct LunarBirthday {
    pub month: u8,
    pub day: u8,
    pub leap: bool,
}

const MONTHS: [&str; 12] = [
    "正", "二", "三", "四", "五", "六", "七", "八", "九", "十", "冬", "腊",
];
const DIGITS: [&str; 10] = ["", "一", "二", "三", "四", "五", "六", "七", "八", "九"];

impl LunarBirthday {
    pub fn new(month: u8, day: u8, leap: bool) -> Option<Self> {
        ((1..=12).contains(&month) && (1..=30).contains(&day)).then_some(Self { month, day, leap })
    }

    /// Reads `[YYYY-][闰]MM-DD` (`06-15`, `闰06-15`, `1990-闰05-15`) or the Chinese form
    /// (`[农历][闰]六月十五`, `腊月三十`, `正月初一`). A year, when given, must have that date:
    /// 1990 had a leap fifth month, so `1990-闰06-01` is refused.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let t = t.strip_prefix("农历").unwrap_or(t).trim();
        if t.chars().any(|c| c.is_ascii_digit()) {
            return parse_numeric(t);
        }
        parse_chinese(t).ok_or_else(|| {
            format!("{text:?} 不是农历日期（请写 06-15、闰06-15、1990-06-15 或 六月十五）")
        })
    }

    pub fn code(self) -> i16 {
        i16::from(self.leap) * 10_000 + i16::from(self.month) * 100 + i16::from(self.day)
    }

    pub fn from_code(code: i16) -> Option<Self> {
        let leap = code >= 10_000;
        let rest = code % 10_000;
        Self::new((rest / 100) as u8, (rest % 100) as u8, leap)
    }

    /// `闰六月十五`, `腊月三十`, `正月初一`.
    pub fn label(self) -> String {
        let day = match self.day {
            d @ 1..=10 => format!("初{}", if d == 10 { "十" } else { DIGITS[d as usize] }),
            d @ 11..=19 => format!("十{}", DIGITS[(d - 10) as usize]),
            20 => "二十".to_owned(),
            d @ 21..=29 => format!("廿{}", DIGITS[(d - 20) as usize]),
            _ => "三十".to_owned(),
        };
        format!(
            "{}{}月{day}",
            if self.leap { "闰" } else { "" },
            MONTHS[usize::from(self.month - 1)]
        )
    }

    /// The day this birthday is kept on in lunar year `year`, by the rules above; `None`
    /// outside the converter's range.
    pub fn kept_in(self, year: i32) -> Option<NaiveDate> {
        LunarYear::of(year).map(|y| y.keeps(self))
    }

    /// The first day on or after `today` that this birthday is kept on.
    pub fn next_occurrence(self, today: NaiveDate) -> Option<NaiveDate> {
        Around::of(today).and_then(|a| a.next(self))
    }

    /// The day it is kept on when that falls within `today ..= today + days_ahead`.
    pub fn upcoming(self, today: NaiveDate, days_ahead: u32) -> Option<NaiveDate> {
        self.next_occurrence(today)
            .filter(|d| *d <= today + Duration::days(i64::from(days_ahead)))
    }
}

/// The codes of every lunar birthday kept within `today ..= today + days_ahead`, for the scan's
/// indexed pre-filter. Computed by the same rule as [`LunarBirthday::upcoming`], over all 720
/// possible birthdays, so that the two can never disagree.
pub fn window_codes(today: NaiveDate, days_ahead: u32) -> Vec<i16> {
    let Some(around) = Around::of(today) else {
        return Vec::new();
    };
    let last = today + Duration::days(i64::from(days_ahead));
    let mut out = Vec::new();
    for leap in [false, true] {
        for month in 1..=12 {
            for day in 1..=30 {
                let b = LunarBirthday { month, day, leap };
                if around.next(b).is_some_and(|d| d <= last) {
                    out.push(b.code());
                }
            }
        }
    }
    out
}

/// The months of one lunar year: the first solar day and the length of each, read from the
/// converter once, so that finding the day of any birthday is arithmetic.
struct LunarYear {
    regular: [(NaiveDate, u8); 12],
    /// (month, first day, length) of the leap month, if the year has one.
    leap: Option<(u8, NaiveDate, u8)>,
}

impl LunarYear {
    fn of(year: i32) -> Option<Self> {
        let month = |month: u8, is_leap_month: bool| -> Option<(NaiveDate, u8)> {
            let s = lunar_to_solar(LunarDate {
                year,
                month,
                day: 1,
                is_leap_month,
            })
            .ok()?;
            let first = NaiveDate::from_ymd_opt(s.year, u32::from(s.month), u32::from(s.day))?;
            Some((first, lunar_month_days(year, month, is_leap_month).ok()?))
        };
        let mut regular = [(NaiveDate::MIN, 0); 12];
        for (i, slot) in regular.iter_mut().enumerate() {
            *slot = month(i as u8 + 1, false)?;
        }
        let leap = match leap_month(year).ok()? {
            Some(m) => {
                let (first, days) = month(m, true)?;
                Some((m, first, days))
            }
            None => None,
        };
        Some(Self { regular, leap })
    }

    /// The day `b` is kept on in this year: in its leap month only if this year has that one,
    /// and on the month's last day if it is shorter than `b.day`.
    fn keeps(&self, b: LunarBirthday) -> NaiveDate {
        let (first, days) = match self.leap {
            Some((m, first, days)) if b.leap && m == b.month => (first, days),
            _ => self.regular[usize::from(b.month - 1)],
        };
        first + Duration::days(i64::from(b.day.min(days)) - 1)
    }
}

/// The lunar year a day falls in and the next one: a birthday's next occurrence is in one of them.
struct Around {
    today: NaiveDate,
    this: LunarYear,
    next: LunarYear,
}

impl Around {
    fn of(today: NaiveDate) -> Option<Self> {
        let year = lunar_year_of(today)?;
        Some(Self {
            today,
            this: LunarYear::of(year)?,
            next: LunarYear::of(year + 1)?,
        })
    }

    fn next(&self, b: LunarBirthday) -> Option<NaiveDate> {
        [self.this.keeps(b), self.next.keeps(b)]
            .into_iter()
            .find(|d| *d >= self.today)
    }
}

/// The lunar year that `day` falls in (a January day is often still the previous lunar year).
fn lunar_year_of(day: NaiveDate) -> Option<i32> {
    solar_to_lunar(SolarDate {
        year: day.year(),
        month: day.month() as u8,
        day: day.day() as u8,
    })
    .ok()
    .map(|l| l.year)
}

fn parse_numeric(t: &str) -> Result<LunarBirthday, String> {
    let bad = || format!("{t:?} 不是农历日期（请写 06-15、闰06-15 或 1990-06-15）");
    let parts: Vec<&str> = t.split('-').collect();
    let (year, month, day) = match parts.as_slice() {
        [m, d] => (None, *m, *d),
        [y, m, d] => (Some(y.parse::<i32>().map_err(|_| bad())?), *m, *d),
        _ => return Err(bad()),
    };
    let (leap, month) = match month.strip_prefix('闰') {
        Some(m) => (true, m),
        None => (false, month),
    };
    let b = LunarBirthday::new(
        month.parse().map_err(|_| bad())?,
        day.parse().map_err(|_| bad())?,
        leap,
    )
    .ok_or_else(bad)?;
    if let Some(year) = year {
        if !(1900..=2100).contains(&year) {
            return Err(format!("{t:?}：{year} 年不合理"));
        }
        if b.leap && leap_month(year).ok().flatten() != Some(b.month) {
            return Err(format!("{t:?}：农历 {year} 年没有闰 {} 月", b.month));
        }
        let last = lunar_month_days(year, b.month, b.leap).map_err(|_| bad())?;
        if b.day > last {
            return Err(format!(
                "{t:?}：农历 {year} 年 {} 月只有 {last} 天",
                b.month
            ));
        }
    }
    Ok(b)
}

fn parse_chinese(t: &str) -> Option<LunarBirthday> {
    let (leap, t) = match t.strip_prefix('闰') {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    let (month, day) = t.split_once('月')?;
    let month = match month {
        "正" | "一" => 1,
        "冬" | "十一" => 11,
        "腊" | "十二" => 12,
        m => chinese_number(m)?,
    };
    let day = match day.strip_prefix('初') {
        Some(d) => chinese_number(d).filter(|d| *d <= 10)?,
        None => match day.strip_prefix('廿') {
            Some("") => 20,
            Some(d) => 20 + chinese_number(d).filter(|d| *d < 10)?,
            None => chinese_number(day).filter(|d| *d > 10)?,
        },
    };
    LunarBirthday::new(month, day, leap)
}

/// 一 … 三十, as written in dates.
fn chinese_number(t: &str) -> Option<u8> {
    let digit = |s: &str| {
        DIGITS
            .iter()
            .position(|d| !d.is_empty() && *d == s)
            .map(|i| i as u8)
    };
    let chars: Vec<String> = t.chars().map(String::from).collect();
    match chars
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [d] if *d == "十" => Some(10),
        [d] => digit(d),
        ["十", d] => Some(10 + digit(d)?),
        [d, "十"] => Some(digit(d)? * 10),
        [d, "十", e] => Some(digit(d)? * 10 + digit(e)?),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn lb(month: u8, day: u8, leap: bool) -> LunarBirthday {
        LunarBirthday::new(month, day, leap).unwrap()
    }

    #[test]
    fn known_festivals_fall_on_their_days() {
        // 春节 2026 is 17 February, 端午 19 June, 中秋 25 September; 春节 2027 is 6 February.
        assert_eq!(lb(1, 1, false).kept_in(2026), Some(d(2026, 2, 17)));
        assert_eq!(lb(5, 5, false).kept_in(2026), Some(d(2026, 6, 19)));
        assert_eq!(lb(8, 15, false).kept_in(2026), Some(d(2026, 9, 25)));
        assert_eq!(lb(1, 1, false).kept_in(2027), Some(d(2027, 2, 6)));
        // 中秋 2025 was 6 October.
        assert_eq!(lb(8, 15, false).kept_in(2025), Some(d(2025, 10, 6)));
    }

    #[test]
    fn day_30_is_kept_on_day_29_when_the_month_is_short() {
        // The twelfth month of lunar year 2025 has 29 days: 除夕 2026 is 腊月廿九, 16 February.
        assert_eq!(lunar_month_days(2025, 12, false).unwrap(), 29);
        assert_eq!(lb(12, 30, false).kept_in(2025), Some(d(2026, 2, 16)));
        assert_eq!(lb(12, 29, false).kept_in(2025), Some(d(2026, 2, 16)));
        // In a year whose twelfth month has 30 days, day 30 is its own day.
        let year = (2000..2100)
            .find(|y| lunar_month_days(*y, 12, false).unwrap() == 30)
            .unwrap();
        let thirty = lb(12, 30, false).kept_in(year).unwrap();
        assert_eq!(
            thirty,
            lb(12, 29, false).kept_in(year).unwrap() + Duration::days(1)
        );
    }

    #[test]
    fn a_leap_month_birthday_is_kept_in_the_regular_month_when_the_year_has_none() {
        // Lunar 2025 had a leap sixth month (闰六月初一 was 25 July 2025); 2026 has no leap month.
        assert_eq!(leap_month(2025).unwrap(), Some(6));
        assert_eq!(leap_month(2026).unwrap(), None);
        let born = lb(6, 1, true);
        assert_eq!(born.kept_in(2025), Some(d(2025, 7, 25)));
        // The regular sixth month of 2025 began a month earlier (25 June 2025).
        assert_eq!(lb(6, 1, false).kept_in(2025), Some(d(2025, 6, 25)));
        // 2026: kept in the regular sixth month, on 六月初一.
        assert_eq!(born.kept_in(2026), lb(6, 1, false).kept_in(2026));
    }

    #[test]
    fn upcoming_crosses_the_lunar_new_year() {
        // On 10 February 2026 (lunar 2025's last month), 正月初一 (17 February) is a week away.
        assert_eq!(
            lb(1, 1, false).upcoming(d(2026, 2, 10), 7),
            Some(d(2026, 2, 17))
        );
        assert_eq!(lb(1, 1, false).upcoming(d(2026, 2, 10), 6), None);
        // Just after it, the next is in 2027.
        assert_eq!(
            lb(1, 1, false).next_occurrence(d(2026, 2, 18)),
            Some(d(2027, 2, 6))
        );
    }

    #[test]
    fn window_codes_match_the_exact_rule() {
        let today = d(2026, 2, 10);
        let codes = window_codes(today, 7);
        assert!(codes.contains(&lb(1, 1, false).code()));
        assert!(
            codes.contains(&lb(12, 30, false).code()),
            "腊月三十 → 廿九 (16 Feb)"
        );
        assert!(
            !codes.contains(&lb(1, 2, false).code()),
            "18 Feb is past the window"
        );
        for code in codes {
            let b = LunarBirthday::from_code(code).unwrap();
            assert!(b.upcoming(today, 7).is_some());
        }
        // Every day of a year, some birthday is kept; none twice in a 7-day window.
        let mut day = d(2026, 1, 1);
        while day < d(2027, 1, 1) {
            assert!(!window_codes(day, 0).is_empty(), "{day}");
            day += Duration::days(1);
        }
    }

    #[test]
    fn codes_round_trip() {
        for b in [lb(6, 15, true), lb(12, 30, false), lb(1, 1, false)] {
            assert_eq!(LunarBirthday::from_code(b.code()), Some(b));
        }
        assert_eq!(lb(6, 15, true).code(), 10615);
    }

    #[test]
    fn parses_numbers_and_chinese() {
        assert_eq!(LunarBirthday::parse("06-15"), Ok(lb(6, 15, false)));
        assert_eq!(LunarBirthday::parse("闰06-15"), Ok(lb(6, 15, true)));
        assert_eq!(LunarBirthday::parse("1990-闰05-15"), Ok(lb(5, 15, true)));
        assert_eq!(LunarBirthday::parse("农历六月十五"), Ok(lb(6, 15, false)));
        assert_eq!(LunarBirthday::parse("闰六月初一"), Ok(lb(6, 1, true)));
        assert_eq!(LunarBirthday::parse("腊月三十"), Ok(lb(12, 30, false)));
        assert_eq!(LunarBirthday::parse("正月初十"), Ok(lb(1, 10, false)));
        assert_eq!(LunarBirthday::parse("冬月廿三"), Ok(lb(11, 23, false)));
        assert_eq!(LunarBirthday::parse("十二月二十"), Ok(lb(12, 20, false)));
        for bad in [
            "13-01",
            "06-31",
            "六月三十一",
            "1990-闰06-01",
            "hello",
            "",
            "2025-12-30",
        ] {
            assert!(LunarBirthday::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn labels_read_as_dates() {
        assert_eq!(lb(6, 15, true).label(), "闰六月十五");
        assert_eq!(lb(1, 1, false).label(), "正月初一");
        assert_eq!(lb(12, 30, false).label(), "腊月三十");
        assert_eq!(lb(11, 20, false).label(), "冬月二十");
        assert_eq!(lb(3, 10, false).label(), "三月初十");
        assert_eq!(lb(3, 21, false).label(), "三月廿一");
        for code in window_codes(NaiveDate::from_ymd_opt(2026, 6, 1).unwrap(), 40) {
            let b = LunarBirthday::from_code(code).unwrap();
            assert_eq!(LunarBirthday::parse(&b.label()), Ok(b));
        }
    }
}
