//! The dashboard's figures, from the facts any source gives (the primary store, or ClickHouse).
//!
//! A source answers a few grouped queries per institution ([`DashboardFacts`]); everything
//! else (the chain's totals, zero-filled months, the top ten, one institution's view) is done
//! here, once, so both sources give the same figures on the same data.
//!
//! The rules: revenue and activity count orders whose status is `completed`; "active" means a
//! completed order in the 90 days up to the day asked for; revenue by month covers the twelve
//! months up to it, and so do the top projects and products (by revenue, then code); the
//! revisit funnel counts real (not test-mode) revisits whose occasion is at most 30 days before
//! that day, or after it.

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, Duration, NaiveDate};
use serde::Serialize;

/// The days a dashboard looks at, from the day asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub as_of: NaiveDate,
    /// The first day of the month eleven months before `as_of`'s.
    pub months_from: NaiveDate,
    /// Orders after this day (and up to `as_of`) make a customer active.
    pub active_after: NaiveDate,
    /// Revisits for occasions on or after this day are in the funnel.
    pub funnel_from: NaiveDate,
}

impl Window {
    pub fn new(as_of: NaiveDate) -> Self {
        let months_back = as_of.year() * 12 + as_of.month0() as i32 - 11;
        let months_from = NaiveDate::from_ymd_opt(
            months_back.div_euclid(12),
            months_back.rem_euclid(12) as u32 + 1,
            1,
        )
        .expect("a first of the month");
        Self {
            as_of,
            months_from,
            active_after: as_of - Duration::days(90),
            funnel_from: as_of - Duration::days(30),
        }
    }

    /// The twelve months, oldest first, as `yyyymm`.
    pub fn months(&self) -> Vec<i32> {
        (0..12)
            .map(|i| {
                let m = self.months_from.year() * 12 + self.months_from.month0() as i32 + i;
                m.div_euclid(12) * 100 + m.rem_euclid(12) + 1
            })
            .collect()
    }
}

/// What a source answers, grouped by institution id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DashboardFacts {
    /// (id, code, name)
    pub institutions: Vec<(i64, String, String)>,
    /// (institution, customers)
    pub customers: Vec<(i64, i64)>,
    /// (institution, customers with a completed order in the 90 days)
    pub active: Vec<(i64, i64)>,
    /// (institution, yyyymm, revenue in fen, completed orders)
    pub revenue: Vec<(i64, i32, i64, i64)>,
    /// (institution, item type, item code, quantity, revenue in fen) over the twelve months
    pub items: Vec<(i64, String, String, i64, i64)>,
    /// (item type, code, name) of projects and products
    pub names: Vec<(String, String, String)>,
    /// (institution, status, generated, revisits)
    pub funnel: Vec<(i64, String, bool, i64)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct MonthRevenue {
    /// `2026-01`
    pub month: String,
    pub revenue_cents: i64,
    pub orders: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TopItem {
    pub code: String,
    pub name: String,
    pub quantity: i64,
    pub revenue_cents: i64,
}

/// Scanned → generated → sent, and how many failed or were skipped (opted out).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Funnel {
    pub scanned: i64,
    pub generated: i64,
    pub sent: i64,
    pub failed: i64,
    pub opted_out: i64,
}

/// One institution's line in the chain's view.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct InstitutionFigures {
    pub code: String,
    pub name: String,
    pub customers: i64,
    pub active_customers: i64,
    pub revenue_cents: i64,
    pub funnel: Funnel,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Dashboard {
    /// The institution's code, or `None` for the whole chain.
    pub institution: Option<String>,
    pub as_of: NaiveDate,
    pub customers: i64,
    pub active_customers: i64,
    /// Twelve months, oldest first; months without orders are zero.
    pub revenue_by_month: Vec<MonthRevenue>,
    pub top_projects: Vec<TopItem>,
    pub top_products: Vec<TopItem>,
    pub funnel: Funnel,
    /// Every institution's figures (the chain's view only).
    pub institutions: Vec<InstitutionFigures>,
}

/// How many projects and products the top lists show.
pub const TOP: usize = 10;

/// The dashboard of one institution (by code) or of the chain (`None`). `Err` names an unknown
/// institution.
pub fn build(
    facts: &DashboardFacts,
    window: &Window,
    institution: Option<&str>,
) -> Result<Dashboard, String> {
    let scope: Option<i64> = match institution {
        None => None,
        Some(code) => Some(
            facts
                .institutions
                .iter()
                .find(|(_, c, _)| c == code)
                .map(|(id, _, _)| *id)
                .ok_or_else(|| format!("unknown institution {code}"))?,
        ),
    };
    let within = |inst: i64| scope.is_none_or(|s| s == inst);
    let sum = |rows: &[(i64, i64)]| {
        rows.iter()
            .filter(|(i, _)| within(*i))
            .map(|(_, n)| n)
            .sum()
    };
    let mut months: BTreeMap<i32, (i64, i64)> =
        window.months().into_iter().map(|m| (m, (0, 0))).collect();
    for (inst, month, cents, orders) in &facts.revenue {
        if within(*inst)
            && let Some(m) = months.get_mut(month)
        {
            m.0 += cents;
            m.1 += orders;
        }
    }
    let names: HashMap<(&str, &str), &str> = facts
        .names
        .iter()
        .map(|(t, c, n)| ((t.as_str(), c.as_str()), n.as_str()))
        .collect();
    let top = |item_type: &str| {
        let mut by_code: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
        for (inst, t, code, qty, cents) in &facts.items {
            if within(*inst) && t == item_type {
                let e = by_code.entry(code.as_str()).or_default();
                e.0 += qty;
                e.1 += cents;
            }
        }
        let mut items: Vec<TopItem> = by_code
            .into_iter()
            .map(|(code, (quantity, revenue_cents))| TopItem {
                code: code.to_owned(),
                name: names
                    .get(&(item_type, code))
                    .map_or_else(|| code.to_owned(), |n| (*n).to_owned()),
                quantity,
                revenue_cents,
            })
            .collect();
        items.sort_by(|a, b| {
            b.revenue_cents
                .cmp(&a.revenue_cents)
                .then(a.code.cmp(&b.code))
        });
        items.truncate(TOP);
        items
    };
    let funnel_of = |scope: &dyn Fn(i64) -> bool| {
        let mut f = Funnel::default();
        for (inst, status, generated, n) in &facts.funnel {
            if !scope(*inst) {
                continue;
            }
            f.scanned += n;
            if *generated {
                f.generated += n;
            }
            match status.as_str() {
                "sent" => f.sent += n,
                "failed" => f.failed += n,
                "skipped" => f.opted_out += n,
                _ => {}
            }
        }
        f
    };
    let institutions = if scope.is_none() {
        let mut list: Vec<InstitutionFigures> = facts
            .institutions
            .iter()
            .map(|(id, code, name)| {
                let of = |rows: &[(i64, i64)]| {
                    rows.iter().filter(|(i, _)| i == id).map(|(_, n)| n).sum()
                };
                InstitutionFigures {
                    code: code.clone(),
                    name: name.clone(),
                    customers: of(&facts.customers),
                    active_customers: of(&facts.active),
                    revenue_cents: facts
                        .revenue
                        .iter()
                        .filter(|(i, m, _, _)| i == id && months_contains(window, *m))
                        .map(|(_, _, c, _)| c)
                        .sum(),
                    funnel: funnel_of(&|i| i == *id),
                }
            })
            .collect();
        list.sort_by(|a, b| a.code.cmp(&b.code));
        list
    } else {
        Vec::new()
    };
    Ok(Dashboard {
        institution: institution.map(str::to_owned),
        as_of: window.as_of,
        customers: sum(&facts.customers),
        active_customers: sum(&facts.active),
        revenue_by_month: months
            .into_iter()
            .map(|(m, (revenue_cents, orders))| MonthRevenue {
                month: format!("{}-{:02}", m / 100, m % 100),
                revenue_cents,
                orders,
            })
            .collect(),
        top_projects: top("project"),
        top_products: top("product"),
        funnel: funnel_of(&within),
        institutions,
    })
}

fn months_contains(window: &Window, yyyymm: i32) -> bool {
    window.months().contains(&yyyymm)
}

/// Fen as yuan with two decimals and thousands separators: `¥1,234.50`.
pub fn yuan(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let c = cents.unsigned_abs();
    let whole = (c / 100).to_string();
    let mut grouped = String::new();
    for (i, ch) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    format!("{sign}¥{grouped}.{:02}", c % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn the_window_spans_twelve_months_across_a_year_end() {
        let w = Window::new(day(2026, 2, 10));
        assert_eq!(w.months_from, day(2025, 3, 1));
        assert_eq!(w.months().first(), Some(&202503));
        assert_eq!(w.months().last(), Some(&202602));
        assert_eq!(w.active_after, day(2025, 11, 12));
    }

    fn facts() -> DashboardFacts {
        DashboardFacts {
            institutions: vec![
                (1, "BJ".into(), "北京".into()),
                (2, "SH".into(), "上海".into()),
            ],
            customers: vec![(1, 10), (2, 5)],
            active: vec![(1, 4), (2, 1)],
            revenue: vec![
                (1, 202601, 10_000, 1),
                (2, 202601, 5000, 2),
                (1, 202401, 999, 1),
            ],
            items: vec![
                (1, "project".into(), "P1".into(), 1, 8000),
                (2, "project".into(), "P1".into(), 2, 2000),
                (2, "project".into(), "P2".into(), 1, 9000),
                (1, "product".into(), "D1".into(), 3, 3000),
            ],
            names: vec![("project".into(), "P1".into(), "水光针".into())],
            funnel: vec![
                (1, "sent".into(), true, 3),
                (1, "failed".into(), false, 1),
                (2, "skipped".into(), false, 2),
                (2, "generated".into(), true, 1),
            ],
        }
    }

    #[test]
    fn the_chain_sums_its_institutions_and_one_institution_sees_its_own() {
        let w = Window::new(day(2026, 1, 20));
        let chain = build(&facts(), &w, None).unwrap();
        assert_eq!((chain.customers, chain.active_customers), (15, 5));
        let jan = chain.revenue_by_month.last().unwrap();
        assert_eq!(
            (jan.month.as_str(), jan.revenue_cents, jan.orders),
            ("2026-01", 15_000, 3)
        );
        assert_eq!(chain.revenue_by_month.len(), 12, "zero-filled");
        assert_eq!(
            chain
                .top_projects
                .iter()
                .map(|t| (t.name.as_str(), t.revenue_cents))
                .collect::<Vec<_>>(),
            vec![("水光针", 10_000), ("P2", 9000)]
        );
        assert_eq!(
            chain.funnel,
            Funnel {
                scanned: 7,
                generated: 4,
                sent: 3,
                failed: 1,
                opted_out: 2
            }
        );
        assert_eq!(chain.institutions.len(), 2);
        assert_eq!(
            chain.institutions[0].revenue_cents, 10_000,
            "outside the window: not counted"
        );
        let sh = build(&facts(), &w, Some("SH")).unwrap();
        assert_eq!((sh.customers, sh.funnel.scanned), (5, 3));
        assert_eq!(sh.top_projects[0].code, "P2");
        assert!(sh.institutions.is_empty());
        assert!(build(&facts(), &w, Some("XX")).is_err());
    }

    #[test]
    fn yuan_groups_thousands() {
        assert_eq!(yuan(123_456_789), "¥1,234,567.89");
        assert_eq!(yuan(5), "¥0.05");
    }
}
