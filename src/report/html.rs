//! The daily report as one self-contained HTML page: the day's figures, the dashboard as of that
//! day, and its charts inline as SVG. Nothing is fetched when it is opened (no scripts, fonts
//! or styles from elsewhere), so it can be mailed or opened offline.

use crate::{
    analytics::Source,
    domain::dashboard::{Dashboard, yuan},
    store::DailyReport,
};

use super::charts;

/// Text for HTML: `<`, `>`, `&` and quotes escaped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:-apple-system,'PingFang SC','Microsoft YaHei',sans-serif;\
margin:24px auto;max-width:780px;color:#222}h1{font-size:22px}h2{font-size:17px;margin-top:28px;\
border-bottom:1px solid #ddd;padding-bottom:4px}table{border-collapse:collapse;width:100%}\
td,th{border:1px solid #ddd;padding:6px 8px;text-align:left;font-size:14px}th{background:#f5f7fa}\
td.n{text-align:right}.cards{display:flex;gap:12px;flex-wrap:wrap}.card{border:1px solid #ddd;\
border-radius:6px;padding:10px 14px;min-width:140px}.card b{display:block;font-size:20px}\
.warn{color:#b45309}.muted{color:#777;font-size:13px}svg{max-width:100%;height:auto}";

/// The page for `report` (the day) and `dashboard` (as of that day).
pub fn render(report: &DailyReport, dashboard: &Dashboard, source: Source) -> String {
    let day = report.date.format("%Y年%m月%d日").to_string();
    let mut h = String::new();
    h.push_str("<!DOCTYPE html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">");
    h.push_str(&format!(
        "<title>回访日报 {day}</title><style>{STYLE}</style></head><body>"
    ));
    h.push_str(&format!("<h1>回访日报 · {day}</h1>"));

    h.push_str(
        "<h2>当日回访</h2><table><tr><th>机构</th><th>新建回访</th><th>已发送</th>\
                <th>测试展示</th><th>失败</th><th>拒收跳过</th><th>待员工审批或确认</th></tr>",
    );
    for i in &report.institutions {
        h.push_str(&format!(
            "<tr><td>{}（{}）</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td>\
             <td class=n>{}</td><td class=n>{}</td><td class=n>{}</td></tr>",
            escape(&i.name),
            escape(&i.code),
            i.created,
            i.sent,
            i.test_shown,
            i.failed,
            i.skipped,
            i.awaiting_staff
        ));
    }
    h.push_str("</table>");
    h.push_str(&format!(
        "<p>数据导入：{} 个文件，新增 {} 条，更新 {} 条，拒绝 {} 条；新客户 {} 位。</p>",
        report.import_files,
        report.import_inserted,
        report.import_updated,
        report.import_rejected,
        report.new_customers
    ));
    if report.dead_jobs > 0 {
        h.push_str(&format!(
            "<p class=warn>⚠️ 失败任务 {} 个，请用 <code>revisit jobs list --status failed</code> 查看并重试。</p>",
            report.dead_jobs
        ));
    } else {
        h.push_str("<p>任务运行正常，无失败任务。</p>");
    }

    let d = dashboard;
    let year_revenue: i64 = d.revenue_by_month.iter().map(|m| m.revenue_cents).sum();
    h.push_str("<h2>经营概况（全连锁）</h2><div class=cards>");
    for (label, value) in [
        ("客户", d.customers.to_string()),
        ("近 90 天有消费", d.active_customers.to_string()),
        ("近 12 个月营收", yuan(year_revenue)),
        ("回访已发送", d.funnel.sent.to_string()),
    ] {
        h.push_str(&format!(
            "<div class=card>{label}<b>{}</b></div>",
            escape(&value)
        ));
    }
    h.push_str("</div>");
    for chart in [
        charts::revenue_by_month(&d.revenue_by_month),
        charts::funnel(&d.funnel),
        charts::top_items("热门项目（近 12 个月，按营收）", &d.top_projects),
        charts::top_items("热门产品（近 12 个月，按营收）", &d.top_products),
    ] {
        match chart {
            Ok(svg) => h.push_str(&format!("<div>{svg}</div>")),
            Err(e) => h.push_str(&format!("<p class=warn>图表生成失败：{}</p>", escape(&e))),
        }
    }
    if !d.institutions.is_empty() {
        h.push_str(
            "<h2>各机构</h2><table><tr><th>机构</th><th>客户</th><th>近 90 天有消费</th>\
                    <th>近 12 个月营收</th><th>回访已发送</th></tr>",
        );
        for i in &d.institutions {
            h.push_str(&format!(
                "<tr><td>{}（{}）</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td></tr>",
                escape(&i.name),
                escape(&i.code),
                i.customers,
                i.active_customers,
                yuan(i.revenue_cents),
                i.funnel.sent
            ));
        }
        h.push_str("</table>");
    }
    h.push_str(&format!(
        "<p class=muted>数据来源：{}。营收只计已完成（completed）的订单；回访漏斗统计回访日在 {} 之后的正式回访（不含测试模式）。</p>",
        source.label(),
        d.as_of - chrono::Duration::days(30)
    ));
    h.push_str("</body></html>\n");
    h
}
