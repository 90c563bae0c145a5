//! The dashboard's facts from the primary store on PostgreSQL (see [`crate::domain::dashboard`]
//! for what they mean; ClickHouse answers the same questions in `projections::clickhouse`).

use sqlx::PgPool;

use crate::{
    domain::dashboard::{DashboardFacts, Window},
    store::StoreResult,
};

pub async fn dashboard_facts(pool: &PgPool, w: &Window) -> StoreResult<DashboardFacts> {
    Ok(DashboardFacts {
        institutions: sqlx::query_as("SELECT id, code, name FROM institutions")
            .fetch_all(pool)
            .await?,
        customers: sqlx::query_as(
            "SELECT institution_id, count(*) FROM customers GROUP BY institution_id",
        )
        .fetch_all(pool)
        .await?,
        active: sqlx::query_as(
            "SELECT institution_id, count(DISTINCT customer_id) FROM consumption_records
             WHERE status = 'completed' AND order_date > $1 AND order_date <= $2
             GROUP BY institution_id",
        )
        .bind(w.active_after)
        .bind(w.as_of)
        .fetch_all(pool)
        .await?,
        revenue: sqlx::query_as(
            "SELECT institution_id,
                    (EXTRACT(YEAR FROM order_date) * 100 + EXTRACT(MONTH FROM order_date))::int,
                    sum(total_amount_cents)::bigint, count(*)
             FROM consumption_records
             WHERE status = 'completed' AND order_date >= $1 AND order_date <= $2
             GROUP BY 1, 2",
        )
        .bind(w.months_from)
        .bind(w.as_of)
        .fetch_all(pool)
        .await?,
        items: sqlx::query_as(
            "SELECT it.institution_id, it.item_type, it.item_code, sum(it.quantity)::bigint,
                    sum(it.actual_price_cents)::bigint
             FROM consumption_items it
             JOIN consumption_records o
               ON o.institution_id = it.institution_id AND o.order_number = it.order_number
             WHERE o.status = 'completed' AND o.order_date >= $1 AND o.order_date <= $2
             GROUP BY 1, 2, 3",
        )
        .bind(w.months_from)
        .bind(w.as_of)
        .fetch_all(pool)
        .await?,
        names: sqlx::query_as(
            "SELECT 'project', code, name FROM projects
             UNION ALL SELECT 'product', code, name FROM products",
        )
        .fetch_all(pool)
        .await?,
        funnel: sqlx::query_as(
            "SELECT c.institution_id, r.status, r.generated_at IS NOT NULL, count(*)
             FROM revisits r JOIN customers c ON c.id = r.customer_id
             WHERE NOT r.test_mode AND r.occasion_date >= $1
             GROUP BY 1, 2, 3",
        )
        .bind(w.funnel_from)
        .fetch_all(pool)
        .await?,
    })
}
