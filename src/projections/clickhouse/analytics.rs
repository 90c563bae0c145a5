//! The dashboard's facts from ClickHouse: the same questions the primary store answers in
//! `store::*::analytics`, over the projection's tables (read with `FINAL`, so each key's
//! highest version), asked at once.

use crate::domain::dashboard::{DashboardFacts, Window};

use super::ClickhouseStore;

impl ClickhouseStore {
    pub async fn dashboard_facts(&self, w: &Window) -> anyhow::Result<DashboardFacts> {
        let c = self.client();
        let (as_of, active_after, months_from, funnel_from) = (
            w.as_of.to_string(),
            w.active_after.to_string(),
            w.months_from.to_string(),
            w.funnel_from.to_string(),
        );
        let institutions = c
            .query("SELECT id, code, name FROM institutions FINAL")
            .fetch_all::<(i64, String, String)>();
        let customers = c
            .query("SELECT institution_id, count() FROM customers FINAL GROUP BY institution_id")
            .fetch_all::<(i64, u64)>();
        let active = c
            .query(
                "SELECT institution_id, uniqExact(customer_id) FROM orders FINAL
                 WHERE status = 'completed' AND order_date > toDate(?) AND order_date <= toDate(?)
                 GROUP BY institution_id",
            )
            .bind(active_after.as_str())
            .bind(as_of.as_str())
            .fetch_all::<(i64, u64)>();
        let revenue = c
            .query(
                "SELECT institution_id, toYYYYMM(order_date) AS m, sum(total_amount_cents), count()
                 FROM orders FINAL
                 WHERE status = 'completed' AND order_date >= toDate(?) AND order_date <= toDate(?)
                 GROUP BY institution_id, m",
            )
            .bind(months_from.as_str())
            .bind(as_of.as_str())
            .fetch_all::<(i64, u32, i64, u64)>();
        let items = c
            .query(
                // ARRAY JOIN straight on the FINAL read: the same rows, about half the time of
                // a subquery on 18.16.
                "SELECT institution_id, t, code, sum(q), sum(p) FROM orders FINAL
                 ARRAY JOIN item_type AS t, item_code AS code, item_quantity AS q,
                            item_actual_price_cents AS p
                 WHERE status = 'completed'
                   AND order_date >= toDate(?) AND order_date <= toDate(?)
                 GROUP BY institution_id, t, code",
            )
            .bind(months_from.as_str())
            .bind(as_of.as_str())
            .fetch_all::<(i64, String, String, i64, i64)>();
        let names = c
            .query(
                "SELECT 'project' AS t, code, name FROM projects FINAL
                 UNION ALL SELECT 'product' AS t, code, name FROM products FINAL",
            )
            .fetch_all::<(String, String, String)>();
        let funnel = c
            .query(
                "SELECT institution_id, status, isNotNull(generated_at) AS g, count()
                 FROM revisits FINAL
                 WHERE test_mode = 0 AND occasion_date >= toDate(?)
                 GROUP BY institution_id, status, g",
            )
            .bind(funnel_from.as_str())
            .fetch_all::<(i64, String, u8, u64)>();
        let (institutions, customers, active, revenue, items, names, funnel) = tokio::try_join!(
            institutions,
            customers,
            active,
            revenue,
            items,
            names,
            funnel
        )?;
        let n = |v: u64| v as i64;
        Ok(DashboardFacts {
            institutions,
            customers: customers.into_iter().map(|(i, c)| (i, n(c))).collect(),
            active: active.into_iter().map(|(i, c)| (i, n(c))).collect(),
            revenue: revenue
                .into_iter()
                .map(|(i, m, cents, orders)| (i, m as i32, cents, n(orders)))
                .collect(),
            items,
            names,
            funnel: funnel
                .into_iter()
                .map(|(i, s, g, c)| (i, s, g != 0, n(c)))
                .collect(),
        })
    }
}
