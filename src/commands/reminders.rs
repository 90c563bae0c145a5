//! `revisit run-reminders [--kind …]` and `revisit report`.

use std::{sync::Arc, time::Duration};

use chrono::{NaiveDate, Utc};
use revisit_jobs::{ReminderScan, ScanScope};

use super::wait;
use crate::{
    app::App,
    domain::{
        followup::Occasion,
        revisit::{RevisitStatus, Writer},
    },
    store::{RevisitView, enqueue},
};

/// Enqueues a birthday scan; returns its job id.
pub async fn enqueue_scan(app: &App, scan: &ReminderScan) -> anyhow::Result<String> {
    enqueue(&*app.store, &app.settings, scan, None)
        .await?
        .ok_or_else(|| anyhow::anyhow!("扫描任务未能入队"))
}

pub async fn run_reminders(
    app: &Arc<App>,
    occasion: Occasion,
    scope: ScanScope,
    wait_for_it: bool,
) -> anyhow::Result<()> {
    if !scope.test_mode && !app.store.sending_live().await? {
        anyhow::bail!(
            "正式发送尚未开启，不会向客户发送：先运行 revisit sending on（会先说明将发送什么），或加 --test-mode 只生成不发送"
        );
    }
    let since = Utc::now();
    let test_mode = scope.test_mode;
    let scope_copy = scope.clone();
    let settings = &app.settings;
    let (job, queue) = crate::queue::scans::scan_job(settings, occasion, scope);
    let id = app
        .store
        .enqueue(job)
        .await?
        .ok_or_else(|| anyhow::anyhow!("扫描任务未能入队"))?;
    println!(
        "📋 {}已加入队列（任务 {id}{}）",
        occasion.label(),
        if test_mode {
            "，测试模式：只生成和显示，不发送"
        } else {
            ""
        }
    );
    if wait_for_it {
        wait::warn_if_no_worker(app, queue).await?;
        wait::job(app, &id, Duration::from_secs(600)).await?;
        wait::revisits_settled(app, since, Duration::from_secs(1800)).await?;
        let rows = app.store.revisits_since(since).await?;
        print_revisits(&rows);
        if rows.is_empty() {
            println!("   {}", nothing_new(app, occasion, &scope_copy).await?);
        }
        let failed = rows
            .iter()
            .filter(|r| r.status == RevisitStatus::Failed)
            .count();
        if failed > 0 {
            return Err(super::Incomplete(format!(
                "{failed} 条回访失败，可在控制台「生日回访」页查看并重试，或运行 revisit jobs list --status failed"
            ))
            .into());
        }
    }
    Ok(())
}

/// Customers of `institutions` whose birthday (solar or lunar) falls in the window that
/// starts `today`, revisited already or not.
pub async fn birthdays_due(
    app: &App,
    institutions: &[String],
    today: NaiveDate,
) -> anyhow::Result<usize> {
    let window =
        crate::domain::birthday::BirthdayWindow::new(today, app.settings.reminders.days_ahead);
    Ok(app
        .store
        .birthday_candidates(institutions, &window)
        .await?
        .iter()
        .filter(|c| window.kept_on(c.birthday, c.lunar_birthday).is_some())
        .count())
}

/// Why a scan made no revisit: nobody was due, or everyone due was revisited already.
async fn nothing_new(app: &App, occasion: Occasion, scope: &ScanScope) -> anyhow::Result<String> {
    if occasion != Occasion::Birthday {
        return Ok(format!(
            "今天没有新到期的{}：没有客户到期，或到期的客户已经回访过",
            occasion.label()
        ));
    }
    let settings = &app.settings;
    let today = scope
        .today
        .unwrap_or_else(|| crate::domain::birthday::local_today(Utc::now(), settings.tz()));
    let institutions = match &scope.institution {
        Some(code) => vec![code.clone()],
        None => settings.app.institutions.clone(),
    };
    let due = birthdays_due(app, &institutions, today).await?;
    Ok(if due == 0 {
        format!(
            "{today} 起 {} 天内没有客户过生日",
            settings.reminders.days_ahead
        )
    } else {
        format!(
            "{today} 起 {} 天内过生日的 {due} 位客户都已回访过（或已达到联系频次上限）",
            settings.reminders.days_ahead
        )
    })
}

pub fn print_revisits(rows: &[RevisitView]) {
    if rows.is_empty() {
        println!("   本次没有新的回访");
        return;
    }
    for r in rows {
        let how = match r.generated_by {
            Some(Writer::Llm) => "LLM",
            Some(Writer::Template) => "模板",
            None => "-",
        };
        println!(
            "   {} {} {} {} {} {} [{}·{}] {}",
            r.institution,
            r.customer_code,
            r.name,
            r.phone,
            r.occasion.label(),
            r.occasion_date.format("%m-%d"),
            if r.test_mode && r.status == RevisitStatus::Sent {
                "测试·未发送"
            } else {
                r.status.label()
            },
            how,
            r.message
                .as_deref()
                .or(r.last_error.as_deref())
                .unwrap_or("")
        );
    }
}

pub async fn report(app: &Arc<App>, date: Option<NaiveDate>) -> anyhow::Result<()> {
    let tz = app.settings.tz();
    let date = date
        .unwrap_or_else(|| Utc::now().with_timezone(&tz).date_naive() - chrono::Duration::days(1));
    let (text, path) = crate::handlers::report_daily::build(app, date).await?;
    print!("{text}");
    println!("📄 图表版日报：{}", path.display());
    Ok(())
}
