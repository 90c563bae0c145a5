//! `wecom.confirm`: watch a WeCom customer broadcast task until it is settled. The staff member
//! who has the customer as a contact confirms the task in WeCom (the confirmation is their
//! approval of the message); until then the revisit is `submitted`. Each look that finds the
//! task still waiting tries again after `wecom.poll_secs`; after `wecom.confirm_hours` the task
//! is withdrawn (so it cannot go out after the revisit was given up) and the revisit skipped.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use revisit_jobs::WecomConfirm;
use tracing::{info, warn};

use super::{Handler, JobCtx, JobError, greeting_generate::mark_failed};
use crate::{
    domain::revisit::RevisitStatus,
    notify::{
        Channel,
        wecom_broadcast::{CallError, TaskStatus},
    },
    store::{Recipient, broadcasts::BroadcastOutcome},
};

impl Handler for WecomConfirm {
    async fn run(&self, ctx: &JobCtx<'_>) -> Result<(), JobError> {
        let app = ctx.app;
        let id = self.revisit_id;
        let Channel::Wecom(wecom) = &app.channel else {
            return Err(JobError::permanent(anyhow::anyhow!(
                "这个 worker 的发送渠道不是 wecom（reminders.channel），无法查询企业微信任务"
            )));
        };
        let Some(r) = app.store.revisit(id).await? else {
            return Err(JobError::permanent(anyhow::anyhow!("回访 #{id} 不存在")));
        };
        if r.status != RevisitStatus::Submitted {
            // Settled by an earlier run.
            return Ok(());
        }
        let (Some(msgid), Some(submitted_at)) = (r.channel_ref.clone(), r.submitted_at) else {
            return Err(JobError::permanent(anyhow::anyhow!(
                "回访 #{id} 已提交，但没有企业微信任务编号"
            )));
        };
        let Recipient::Reachable(out) = app.store.outgoing(&r, "wecom").await? else {
            // Opted out or unsubscribed since: withdraw the task before anyone confirms it.
            return withdraw(
                ctx,
                id,
                &msgid,
                "客户已拒绝联系或退订，已撤回企业微信群发任务",
            )
            .await;
        };
        let (Some(contact), Some(sender)) =
            (out.wecom_external_userid.as_deref(), wecom.sender_of(&out))
        else {
            return Err(JobError::permanent(anyhow::anyhow!(
                "回访 #{id}：客户已不再是企业微信联系人"
            )));
        };
        let status = wecom
            .status(&msgid, &sender, contact)
            .await
            .map_err(|e| match e {
                CallError::Refused(e) => JobError::permanent(anyhow::anyhow!("{e}")),
                other => JobError::retry(other),
            })?;
        let settled = match status {
            TaskStatus::Sent { at, by } => {
                let at = Utc.timestamp_opt(at, 0).single().unwrap_or_else(Utc::now);
                let done = app
                    .store
                    .settle_broadcast(
                        id,
                        &BroadcastOutcome::Sent {
                            at,
                            by: format!("企业微信：{by}"),
                        },
                    )
                    .await?;
                info!(revisit = id, sender = %by, "WeCom broadcast confirmed by staff and sent");
                done
            }
            TaskStatus::Failed(reason) => {
                let done = app
                    .store
                    .settle_broadcast(id, &BroadcastOutcome::Failed(reason.clone()))
                    .await?;
                warn!(revisit = id, %reason, "WeCom could not deliver the broadcast");
                super::alert_send::enqueue(
                    app,
                    format!(
                        "【回访失败】回访 #{id}（{}）企业微信群发未送达：{reason}",
                        r.occasion_date
                    ),
                )
                .await;
                done
            }
            TaskStatus::Waiting => {
                let deadline = submitted_at + app.settings.wecom.confirm_within();
                if Utc::now() >= deadline {
                    return withdraw(
                        ctx,
                        id,
                        &msgid,
                        &format!(
                            "员工 {} 小时内未在企业微信确认群发，已撤回任务",
                            app.settings.wecom.confirm_hours
                        ),
                    )
                    .await;
                }
                // Looks again after the poll interval, or at the deadline if that comes first.
                let left = (deadline - Utc::now()).to_std().unwrap_or_default();
                let poll = Duration::from_secs(app.settings.wecom.poll_secs);
                return Err(JobError::Retry {
                    error: anyhow::anyhow!("等待员工在企业微信中确认发送"),
                    after: Some(poll.min(left + Duration::from_millis(100))),
                });
            }
        };
        if !settled {
            info!(revisit = id, "the broadcast was settled meanwhile");
        }
        Ok(())
    }

    async fn on_dead(&self, ctx: &JobCtx<'_>, error: &str, permanent: bool) {
        // The task may still be confirmed later: the revisit is flagged uncertain.
        mark_failed(ctx, self.revisit_id, error, permanent).await;
    }
}

/// Withdraws the task and skips the revisit with `reason`.
async fn withdraw(ctx: &JobCtx<'_>, id: i64, msgid: &str, reason: &str) -> Result<(), JobError> {
    let app = ctx.app;
    let Channel::Wecom(wecom) = &app.channel else {
        unreachable!("checked by the caller");
    };
    // Withdrawn first: a revisit skipped while its task can still be confirmed would lie.
    wecom.cancel(msgid).await.map_err(|e| match e {
        CallError::Refused(e) => JobError::permanent(anyhow::anyhow!("无法撤回企业微信任务：{e}")),
        other => JobError::retry(other),
    })?;
    app.store
        .settle_broadcast(id, &BroadcastOutcome::Withdrawn(reason.to_owned()))
        .await?;
    info!(revisit = id, %reason, "WeCom broadcast withdrawn");
    Ok(())
}
