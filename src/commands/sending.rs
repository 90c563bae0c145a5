//! `revisit sending status|on|off`: the switch between test mode and real sending. A fresh
//! database sends nothing to customers until an operator who has read what will be sent
//! switches it on; `off` stops it again at once, for every worker.

use chrono::Utc;
use revisit_jobs::CRON_SCHEDULES;

use crate::{
    app::App, cli::SendingCommand, domain::birthday::local_today, queue::scans::occasion_of,
};

/// The word an operator types to switch real sending on at a terminal.
const CONFIRM_WORD: &str = "开启";

pub async fn sending(app: &App, cmd: SendingCommand) -> anyhow::Result<()> {
    match cmd {
        SendingCommand::Status => {
            let state = app.store.sending_state().await?;
            println!(
                "{}",
                if state.live {
                    "正式发送：已开启，到期的回访会发给客户"
                } else {
                    "正式发送：未开启。测试模式：只生成和显示话术，不发给客户"
                }
            );
            let at = format!(
                "{} {}",
                app.settings.local_time(state.changed_at),
                app.settings.app.timezone
            );
            match state.changed_by.as_str() {
                "migration" if state.live => {
                    println!("  最近设置：升级时沿用（此前已有正式发送）（{at}）")
                }
                "migration" => println!("  最近设置：系统初始状态（{at}）"),
                by => println!("  最近设置：{}，{at}", who(by)),
            }
            print_what_is_sent(app).await
        }
        SendingCommand::On { yes, by } => {
            if app.store.sending_live().await? {
                println!("正式发送已经是开启状态；关闭：revisit sending off");
                return Ok(());
            }
            println!("开启正式发送后：");
            print_what_is_sent(app).await?;
            println!(
                "随时停止：revisit sending off（所有 worker 立即生效，已生成但未发出的消息不再发送）"
            );
            if !yes && !confirmed()? {
                anyhow::bail!("未确认，正式发送仍为关闭；确认无误后运行 revisit sending on --yes");
            }
            app.store.set_sending(true, &format!("cli:{by}")).await?;
            println!("✅ 正式发送已开启");
            Ok(())
        }
        SendingCommand::Off { by } => {
            let before = app.store.set_sending(false, &format!("cli:{by}")).await?;
            if before.live {
                println!("✅ 正式发送已关闭：之后的扫描都以测试模式运行，排队中的正式消息不再发送");
            } else {
                println!("正式发送本来就是关闭状态");
            }
            Ok(())
        }
    }
}

/// What real sending sends: the channel, the schedules, and today's birthday greetings.
async fn print_what_is_sent(app: &App) -> anyhow::Result<()> {
    let settings = &app.settings;
    let channel = &settings.reminders.channel;
    println!(
        "  渠道：{channel}{}",
        if channel == "console" {
            "（只记录并在控制台显示，不会送达客户；发短信请设置 reminders.channel）"
        } else {
            ""
        }
    );
    println!("  机构：{}", settings.app.institutions.join("、"));
    if !settings.consent.approval_institutions.is_empty() {
        println!(
            "  需人工审批后才发送的机构：{}",
            settings.consent.approval_institutions.join("、")
        );
    }
    if settings.reminders.send_window.trim().is_empty() {
        println!("  发送时段：不限");
    } else {
        println!("  发送时段：{}", settings.reminders.send_window);
    }
    for schedule in CRON_SCHEDULES
        .iter()
        .filter(|s| occasion_of(s.queue).is_some())
    {
        println!(
            "  每天 {}（{}）：{}",
            clock(schedule.expression),
            settings.app.timezone,
            schedule.description
        );
    }
    let today = local_today(Utc::now(), settings.tz());
    let due = super::reminders::birthdays_due(app, &settings.app.institutions, today).await?;
    println!(
        "  今天起 {} 天内过生日的客户：{due} 位（已回访过的不会重复发送）",
        settings.reminders.days_ahead
    );
    Ok(())
}

/// `0 30 10 * * *` → `10:30`.
fn clock(expression: &str) -> String {
    let fields: Vec<&str> = expression.split_whitespace().collect();
    match (
        fields.get(2).and_then(|h| h.parse::<u32>().ok()),
        fields.get(1).and_then(|m| m.parse::<u32>().ok()),
    ) {
        (Some(h), Some(m)) => format!("{h:02}:{m:02}"),
        _ => expression.to_owned(),
    }
}

/// Who switched it, as staff call them: the name given with `--by`.
fn who(changed_by: &str) -> &str {
    changed_by.strip_prefix("cli:").unwrap_or(changed_by)
}

/// Asks at a terminal; without one (a script, CI) nobody confirmed.
fn confirmed() -> anyhow::Result<bool> {
    super::typed_at_terminal(
        &format!("确认开启正式发送？请输入“{CONFIRM_WORD}”："),
        CONFIRM_WORD,
        "非交互环境需要加 --yes 确认",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_read_as_clock_times() {
        assert_eq!(clock("0 30 10 * * *"), "10:30");
        assert_eq!(clock("0 0 9 * * *"), "09:00");
        assert_eq!(clock("0 0,30 * * * *"), "0 0,30 * * * *");
    }
}
