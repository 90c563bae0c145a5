//! `revisit consent optout|restore|list|reply`, `revisit approvals list|approve|reject` and
//! `revisit tasks list|done`.

use crate::{
    app::App,
    cli::{ApprovalsCommand, ConsentCommand, TasksCommand},
    consent::{self, ReplyOutcome},
    domain::{
        consent::{ALL_CHANNELS, Source, parse_channel},
        privacy::{mask_phone, normalize_phone},
    },
};

fn channel_label(channel: &str) -> &str {
    if channel == ALL_CHANNELS {
        "所有渠道"
    } else {
        channel
    }
}

fn number(phone: &str) -> anyhow::Result<String> {
    normalize_phone(phone).ok_or_else(|| anyhow::anyhow!("{} 不是手机号", mask_phone(phone)))
}

fn channel(name: &str) -> anyhow::Result<&'static str> {
    parse_channel(name)
        .ok_or_else(|| anyhow::anyhow!("没有渠道 {name:?}：可用 sms、webhook、wecom 或 all"))
}

pub async fn consent(app: &App, cmd: ConsentCommand) -> anyhow::Result<()> {
    match cmd {
        ConsentCommand::Optout {
            phone,
            channel: name,
            reason,
        } => {
            let (phone, channel) = (number(&phone)?, channel(&name)?);
            let new = app
                .store
                .suppress(&phone, channel, Source::Staff, reason.as_deref())
                .await?;
            println!(
                "{} {} 不再经{}接收任何消息",
                if new {
                    "✅ 已记录："
                } else {
                    "➖ 早已记录："
                },
                mask_phone(&phone),
                channel_label(channel)
            );
        }
        ConsentCommand::Restore { phone, channel: c } => {
            let phone = number(&phone)?;
            let c = c.as_deref().map(channel).transpose()?;
            let n = app.store.unsuppress(&phone, c).await?;
            println!("✅ 已恢复 {}：撤销 {n} 条退订记录", mask_phone(&phone));
        }
        ConsentCommand::List { phone, limit } => {
            let phone = phone.as_deref().map(number).transpose()?;
            let rows = app.store.suppressions(phone.as_deref(), limit).await?;
            if rows.is_empty() {
                println!("没有退订记录");
            } else {
                println!("（{}）", app.settings.zone_note());
            }
            for s in rows {
                println!(
                    "{}  {:<8} {}  {}{}",
                    mask_phone(&s.phone),
                    channel_label(&s.channel),
                    if s.source == "reply" {
                        "客户回复"
                    } else {
                        "员工记录"
                    },
                    app.settings.local_time(s.created_at),
                    s.reason.map(|r| format!("  「{r}」")).unwrap_or_default()
                );
            }
        }
        ConsentCommand::Reply {
            phone,
            text,
            channel,
        } => match consent::record_reply(app, &phone, &text, channel.as_deref()).await? {
            ReplyOutcome::Unsubscribed { channel, new } => println!(
                "✅ 退订：{} 不再经{}接收消息{}",
                mask_phone(&phone),
                channel_label(&channel),
                if new { "" } else { "（早已退订）" }
            ),
            ReplyOutcome::Scored {
                revisit_id,
                score,
                task,
            } => println!(
                "✅ 评分：回访 #{revisit_id} 得到 {score} 分{}",
                task.map(|t| format!("，已生成待办 #{t}"))
                    .unwrap_or_default()
            ),
            ReplyOutcome::Ignored => println!("➖ 这条回复既不是退订，也不是待答的评分，未做改动"),
        },
    }
    Ok(())
}

pub async fn approvals(app: &App, cmd: ApprovalsCommand) -> anyhow::Result<()> {
    match cmd {
        ApprovalsCommand::List { institution, limit } => {
            let rows = app
                .store
                .awaiting_approval(institution.as_deref(), limit)
                .await?;
            if rows.is_empty() {
                println!("没有待审批的消息");
            }
            for r in rows {
                println!(
                    "#{:<6} {} {} {} {}  {}",
                    r.id,
                    r.institution,
                    r.customer_code,
                    r.name,
                    r.occasion_date,
                    r.message.unwrap_or_default()
                );
            }
        }
        ApprovalsCommand::Approve {
            ids,
            institution,
            by,
        } => {
            refuse_everything(&ids, &institution)?;
            let done = consent::approve(app, &ids, institution.as_deref(), &by).await?;
            println!("✅ 已批准 {} 条，已放入发送队列", done.ids.len());
            not_waiting(&ids, &done.ids)?;
        }
        ApprovalsCommand::Reject {
            ids,
            institution,
            reason,
            by,
        } => {
            refuse_everything(&ids, &institution)?;
            let done =
                consent::reject(app, &ids, institution.as_deref(), &by, reason.as_deref()).await?;
            println!("✅ 已驳回 {} 条，不会发送", done.ids.len());
            not_waiting(&ids, &done.ids)?;
        }
    }
    Ok(())
}

/// Deciding for the whole chain at once is never what a slip of the keyboard should do.
fn refuse_everything(ids: &[i64], institution: &Option<String>) -> anyhow::Result<()> {
    if ids.is_empty() && institution.is_none() {
        anyhow::bail!("请给出回访编号，或用 --institution 机构代码 处理一家机构的全部");
    }
    Ok(())
}

/// Named revisits that were not decided make the command incomplete (exit code 3).
fn not_waiting(asked: &[i64], decided: &[i64]) -> anyhow::Result<()> {
    let left: Vec<String> = asked
        .iter()
        .filter(|id| !decided.contains(id))
        .map(|id| format!("#{id}"))
        .collect();
    if left.is_empty() {
        return Ok(());
    }
    Err(super::Incomplete(format!(
        "{} 条不在待审批中（不存在、已处理或不需要审批）：{}",
        left.len(),
        left.join(" ")
    ))
    .into())
}

pub async fn tasks(app: &App, cmd: TasksCommand) -> anyhow::Result<()> {
    match cmd {
        TasksCommand::List {
            institution,
            all,
            limit,
        } => {
            let institution_id = match institution {
                Some(code) => Some(
                    app.store
                        .institution(&code)
                        .await?
                        .ok_or_else(|| anyhow::anyhow!("没有机构 {code:?}"))?
                        .id,
                ),
                None => None,
            };
            let rows = app.store.tasks(institution_id, !all, limit).await?;
            if rows.is_empty() {
                println!("没有待办");
            }
            for t in rows {
                println!(
                    "#{:<5} {} {} {} [{}] {}{}",
                    t.id,
                    t.institution,
                    t.customer_code,
                    t.name,
                    if t.status == "open" {
                        "待处理"
                    } else {
                        "已处理"
                    },
                    t.note,
                    t.done_note
                        .map(|n| format!("（处理：{n}）"))
                        .unwrap_or_default()
                );
            }
        }
        TasksCommand::Done { id, note, by } => {
            if app.store.finish_task(id, &by, note.as_deref()).await? {
                println!("✅ 待办 #{id} 已处理");
            } else {
                anyhow::bail!("待办 #{id} 不是待处理状态（已处理，或不存在）");
            }
        }
    }
    Ok(())
}
