//! `revisit dashboard [--institution CODE] [--json] [--date YYYY-MM-DD]`: the figures the API's
//! `/api/v1/analytics/dashboard` will serve, on the console.

use chrono::{NaiveDate, Utc};

use crate::{
    analytics,
    app::App,
    domain::dashboard::{Dashboard, yuan},
};

pub async fn dashboard(
    app: &App,
    institution: Option<String>,
    date: Option<NaiveDate>,
    json: bool,
) -> anyhow::Result<()> {
    let as_of = date.unwrap_or_else(|| Utc::now().with_timezone(&app.settings.tz()).date_naive());
    let started = std::time::Instant::now();
    let (d, source) =
        analytics::dashboard(app.dashboard_sources(), institution.as_deref(), as_of).await?;
    let took = started.elapsed();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "source": source,
                "dashboard": d,
            }))?
        );
        return Ok(());
    }
    print!("{}", render(&d));
    println!(
        "（数据来源：{}，用时 {} ms）",
        source.label(),
        took.as_millis()
    );
    Ok(())
}

/// The dashboard as clinic staff read it on a console.
pub fn render(d: &Dashboard) -> String {
    let mut s = String::new();
    let scope = d.institution.as_deref().unwrap_or("全连锁");
    s.push_str(&format!(
        "【经营看板】{scope}，截至 {}\n",
        d.as_of.format("%Y年%m月%d日")
    ));
    s.push_str(&format!(
        "· 客户 {} 位，近 90 天有消费 {} 位\n",
        d.customers, d.active_customers
    ));
    s.push_str("· 近 12 个月营收：\n");
    for m in &d.revenue_by_month {
        s.push_str(&format!(
            "    {}  {:>16}  {} 单\n",
            m.month,
            yuan(m.revenue_cents),
            m.orders
        ));
    }
    for (title, items) in [("热门项目", &d.top_projects), ("热门产品", &d.top_products)] {
        s.push_str(&format!("· {title}（近 12 个月，按营收）：\n"));
        if items.is_empty() {
            s.push_str("    （无）\n");
        }
        for (i, t) in items.iter().enumerate() {
            s.push_str(&format!(
                "    {:>2}. {}（{}） {} 次，{}\n",
                i + 1,
                t.name,
                t.code,
                t.quantity,
                yuan(t.revenue_cents)
            ));
        }
    }
    let f = &d.funnel;
    s.push_str(&format!(
        "· 回访漏斗（回访日在近 30 天内或之后，不含测试模式）：扫描 {} → 生成 {} → 已发送 {}；失败 {}，拒收跳过 {}\n",
        f.scanned, f.generated, f.sent, f.failed, f.opted_out
    ));
    if !d.institutions.is_empty() {
        s.push_str("· 各机构：\n");
        for i in &d.institutions {
            s.push_str(&format!(
                "    {}（{}）：客户 {}，活跃 {}，近 12 个月营收 {}，回访已发送 {}\n",
                i.name,
                i.code,
                i.customers,
                i.active_customers,
                yuan(i.revenue_cents),
                i.funnel.sent
            ));
        }
    }
    s
}
