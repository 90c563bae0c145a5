//! The daily report's charts, drawn with `plotters` as SVG (text stays text, so no font files
//! are needed and the browser renders the Chinese labels with the reader's own fonts).

use plotters::prelude::*;

use crate::domain::dashboard::{Funnel, MonthRevenue, TopItem};

const WIDTH: u32 = 720;
const HEIGHT: u32 = 300;
const BAR: RGBColor = RGBColor(0x3b, 0x82, 0xc4);
const FONT: &str = "sans-serif";

/// A bar chart of `bars` (label, value); `unit` names the value axis.
fn bar_chart(title: &str, unit: &str, bars: &[(String, f64)]) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        // At least 5, so that a chart of small counts has whole-number steps.
        let max = (bars.iter().map(|(_, v)| *v).fold(0.0, f64::max) * 1.1).max(5.0);
        let n = bars.len().max(1);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 18))
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(70)
            // A segmented range a..b has a segment for each of a..=b.
            .build_cartesian_2d((0..n - 1).into_segmented(), 0.0..max)
            .map_err(|e| e.to_string())?;
        let labels: Vec<String> = bars.iter().map(|(l, _)| l.clone()).collect();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(TRANSPARENT)
            .y_labels(6)
            .y_desc(unit)
            .x_labels(n)
            .x_label_formatter(&|x| match x {
                SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .y_label_formatter(&|v| format_axis(*v))
            .label_style((FONT, 12))
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, (_, v))| {
                let mut bar = Rectangle::new(
                    [
                        (SegmentValue::Exact(i), 0.0),
                        (SegmentValue::Exact(i + 1), *v),
                    ],
                    BAR.filled(),
                );
                bar.set_margin(0, 0, 6, 6);
                bar
            }))
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// An axis value without noise: 12000 → "1.2万".
fn format_axis(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.1}万", v / 10_000.0)
    } else if v.fract().abs() > 1e-9 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

/// Revenue of the twelve months, in yuan.
pub fn revenue_by_month(months: &[MonthRevenue]) -> Result<String, String> {
    let bars: Vec<(String, f64)> = months
        .iter()
        .map(|m| (m.month[2..].to_owned(), m.revenue_cents as f64 / 100.0))
        .collect();
    bar_chart("近 12 个月营收", "元", &bars)
}

/// Scanned → generated → sent, failed, opted out.
pub fn funnel(f: &Funnel) -> Result<String, String> {
    let bars = vec![
        ("扫描".to_owned(), f.scanned as f64),
        ("生成".to_owned(), f.generated as f64),
        ("已发送".to_owned(), f.sent as f64),
        ("失败".to_owned(), f.failed as f64),
        ("拒收跳过".to_owned(), f.opted_out as f64),
    ];
    bar_chart("回访漏斗", "条", &bars)
}

/// The top projects (or products) by revenue, in yuan.
pub fn top_items(title: &str, items: &[TopItem]) -> Result<String, String> {
    let bars: Vec<(String, f64)> = items
        .iter()
        .map(|t| (t.name.clone(), t.revenue_cents as f64 / 100.0))
        .collect();
    bar_chart(title, "元", &bars)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_is_svg_with_its_labels_escaped() {
        let svg = top_items(
            "热门项目",
            &[TopItem {
                code: "P1".into(),
                name: "<水光针>".into(),
                quantity: 1,
                revenue_cents: 250_000,
            }],
        )
        .unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
        assert!(svg.contains("热门项目"));
        assert!(svg.contains("&lt;水光针&gt;"));
        assert!(!svg.contains("<水光针>"));
        assert!(svg.contains("<rect"), "bars are drawn");
    }
}
