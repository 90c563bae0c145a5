//! `revisit demo`: the whole birthday revisit on sample data, through the real queue and workers.

use std::{path::Path, sync::Arc, time::Duration};

use chrono::Utc;
use revisit_jobs::{ProjectionName, ReminderScan, ScanScope};

use super::{graph, reminders, vectors, wait};
use crate::{
    app::App, cli::GraphCommand, config::Settings, domain::followup::Occasion,
    queue::worker::InProcessPool, store,
};

/// The sample customer the demo shows search and the graph for: referred by C0001, and the
/// referrer of C0005.
const SHOWN: &str = "BJ-HA-001-C0002";

pub async fn demo(settings: Settings, data: &Path) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    println!(
        "🚀 {} 演示：导入示例数据 → 生日回访（测试模式）",
        settings.app.name
    );
    if store::create_if_missing(&settings.database.url).await? {
        println!(
            "   已创建{}数据库 {}",
            settings.backend().name(),
            store::database_name(&settings.database.url)
        );
    }
    let app = App::new(store::open(&settings).await?, settings)?;

    let pool = InProcessPool::start(app.clone(), Vec::new());
    let result = async {
        println!("📥 导入 {}", data.display());
        let (batch, files) = crate::import::enqueue_plan(&app, data).await?;
        wait::import_batch(&app, &batch, files, Duration::from_secs(300)).await?;
        // Rejected sample records are shown above; the demo goes on with the rest.
        if let Err(e) = wait::print_import_summary(&app, &batch).await
            && e.downcast_ref::<super::Incomplete>().is_none()
        {
            return Err(e);
        }

        let since = Utc::now();
        println!(
            "🎂 查找未来 {} 天内生日的客户，生成回访话术（{}）",
            app.settings.reminders.days_ahead,
            if app.settings.llm_enabled() {
                "LLM"
            } else {
                "未配置 LLM_API_KEY，使用模板"
            }
        );
        let scan = ReminderScan {
            institution: None,
            test_mode: true,
            today: None,
        };
        let id = reminders::enqueue_scan(&app, &scan).await?;
        wait::job(&app, &id, Duration::from_secs(120)).await?;
        wait::revisits_settled(&app, since, Duration::from_secs(600)).await?;
        let rows = app.store.revisits_since(since).await?;
        reminders::print_revisits(&rows);
        show_search_and_graph(&app).await?;
        show_low_score_follow_up(&app).await?;
        anyhow::Ok(rows.len())
    }
    .await;
    pool.stop().await?;
    let greeted = result?;
    println!(
        "✅ 演示完成：{greeted} 条回访，用时 {:.1}s（测试模式，未向客户发送任何消息）",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Fills vector search and the relation graph from what was imported, then shows what they
/// answer for one sample customer: customers like them, and their relations (the referral).
async fn show_search_and_graph(app: &Arc<App>) -> anyhow::Result<()> {
    for name in [ProjectionName::Vectors, ProjectionName::Graph] {
        if app.projections.get(name).is_some() {
            println!(
                "🔎 {}（revisit sync {} --full --wait）",
                if name == ProjectionName::Vectors {
                    "填充相似客户检索"
                } else {
                    "填充关系图谱"
                },
                name.as_str()
            );
            super::sync::sync(app, name.as_str(), true, true, false).await?;
        }
    }
    if app.projections.vectors.is_some() {
        println!("👥 与 {SHOWN} 相似的客户（revisit similar {SHOWN}）：");
        vectors::similar(app, SHOWN, 3, false).await?;
    }
    if app.projections.graph.is_some() {
        println!("🕸  {SHOWN} 的关系，含推荐人和被推荐人（revisit graph relations {SHOWN}）：");
        graph::graph(
            app,
            GraphCommand::Relations {
                customer_code: SHOWN.to_owned(),
                depth: 1,
                json: false,
            },
        )
        .await?;
    }
    Ok(())
}

/// The check-in a week after a sample treatment (test mode), and what a low score on it does:
/// the customer's reply of 1 is recorded as a real reply would be, and opens a follow-up task
/// for the institution's staff (console tab 低分跟进, `revisit tasks list`).
async fn show_low_score_follow_up(app: &Arc<App>) -> anyhow::Result<()> {
    let settings = &app.settings;
    let Some(inst) = app.store.institution("BJ-HA-001").await? else {
        return Ok(());
    };
    let Some(customer) = app
        .store
        .customer_detail(inst.id, "BJ-HA-001-C0001")
        .await?
    else {
        return Ok(());
    };
    let Some(order) = customer.orders.iter().max_by_key(|o| o.order_date) else {
        return Ok(());
    };
    let day = order.order_date + chrono::Days::new(u64::from(settings.followups.satisfaction_day));
    println!(
        "🩺 术后回访：{} 的治疗后第 {} 天（{day}，测试模式）",
        order.order_date, settings.followups.satisfaction_day
    );
    let since = Utc::now();
    let (job, _) = crate::queue::scans::scan_job(
        settings,
        Occasion::Checkin,
        ScanScope {
            institution: Some(inst.code.clone()),
            test_mode: true,
            today: Some(day),
        },
    );
    let id = app
        .store
        .enqueue(job)
        .await?
        .ok_or_else(|| anyhow::anyhow!("术后回访扫描未能入队"))?;
    wait::job(app, &id, Duration::from_secs(120)).await?;
    wait::revisits_settled(app, since, Duration::from_secs(600)).await?;
    let rows = app.store.revisits_since(since).await?;
    reminders::print_revisits(&rows);
    for r in rows.iter().filter(|r| r.occasion == Occasion::Checkin) {
        if let Some(scored) = app
            .store
            .score_revisit(r.id, 1, settings.followups.low_score)
            .await?
        {
            println!(
                "⭐ 模拟 {} {} 回复“1”（1 分）：{}",
                r.customer_code,
                r.name,
                if scored.task_id.is_some() {
                    "已为该机构员工生成一条低分跟进待办（控制台「低分跟进」，或 revisit tasks list）"
                } else {
                    "该客户已有未处理的低分跟进待办"
                }
            );
            break;
        }
    }
    Ok(())
}
