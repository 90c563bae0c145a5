//! `revisit demo`: the whole birthday revisit on sample data, through the real queue and workers.

use std::{path::Path, time::Duration};

use chrono::Utc;
use revisit_jobs::ReminderScan;

use super::{reminders, wait};
use crate::{app::App, config::Settings, queue::worker::InProcessPool, store};

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
