//! `message.send`: deliver a generated message once. The run first claims the revisit (see
//! [`crate::domain::delivery`]); only the run that holds the claim delivers, and it records the
//! outcome only while it still holds it. A second run of the same send finds the claim and
//! does nothing but look again after the lease.

use chrono::Utc;
use revisit_jobs::{KindInfo, MessageSend, WecomConfirm};
use tracing::{info, warn};

use super::{Handler, JobCtx, JobError, greeting_generate::mark_failed};
use crate::{
    domain::{
        consent,
        delivery::{ClaimDecision, SENDING_OFF, SendOutcome, UNCERTAIN_MESSAGE},
        privacy::mask_phone,
    },
    notify::{Channel, Delivered, SendError},
    store::{NewJob, Recipient},
};

impl Handler for MessageSend {
    async fn run(&self, ctx: &JobCtx<'_>) -> Result<(), JobError> {
        let app = ctx.app;
        let store = &app.store;
        let id = self.revisit_id;
        let Some(r) = store.revisit(id).await? else {
            return Err(JobError::permanent(anyhow::anyhow!("回访 #{id} 不存在")));
        };
        let channel = if r.test_mode {
            Channel::Console
        } else {
            app.channel.clone()
        };
        // The channel's pace, shared by every worker, is waited for before the send is claimed:
        // a claim's lease runs from the moment it is taken.
        let _pass = super::through_gate(app.gates.channel(channel.name())).await?;
        // Unique to this run: a rescued copy of the same job gets a token of its own.
        let token = format!("{}:{}:{}", ctx.job_id, ctx.attempt, ulid::Ulid::generate());
        let decision = store
            .claim_send(id, &token, channel.lease(), channel.deduplicates())
            .await?;
        match decision {
            ClaimDecision::Settled => return Ok(()),
            ClaimDecision::NoMessage => {
                return Err(JobError::permanent(anyhow::anyhow!(
                    "回访 #{id} 还没有可发送的消息"
                )));
            }
            ClaimDecision::Busy(until) => {
                let wait = (until - Utc::now()).to_std().unwrap_or_default();
                info!(
                    revisit = id,
                    wait_ms = wait.as_millis() as u64,
                    "another run is delivering this message; not sending, looking again after its lease"
                );
                return Err(JobError::Retry {
                    error: anyhow::anyhow!("回访 #{id} 正由另一次运行发送，租约到期后再看"),
                    after: Some(wait + std::time::Duration::from_secs(1)),
                });
            }
            ClaimDecision::Uncertain => {
                warn!(
                    revisit = id,
                    channel = channel.name(),
                    "delivery uncertain; flagged for a person to check, not sent again"
                );
                return Err(JobError::permanent(anyhow::anyhow!(UNCERTAIN_MESSAGE)));
            }
            ClaimDecision::Claim { repeat: true } => warn!(
                revisit = id,
                "an earlier try may have been delivered; sending again with the same idempotency key, which the receiver drops"
            ),
            ClaimDecision::Claim { repeat: false } => {}
        }
        // Switched off after this message was made: it is not sent, late or ever.
        if !r.test_mode && !store.sending_live().await? {
            finish(
                ctx,
                id,
                &token,
                channel.name(),
                SendOutcome::Skipped(SENDING_OFF.into()),
            )
            .await?;
            info!(revisit = id, "real sending is off; not sent");
            return Ok(());
        }
        // Consent is asked of the configured channel even in test mode, so that staff see
        // who would not be sent anything.
        let out = match store.outgoing(&r, app.channel.name()).await? {
            Recipient::Reachable(out) => out,
            Recipient::OptedOut => {
                finish(
                    ctx,
                    id,
                    &token,
                    channel.name(),
                    SendOutcome::Skipped("客户已拒绝联系（opted out）".into()),
                )
                .await?;
                info!(revisit = id, "customer opted out; not sent");
                return Ok(());
            }
            Recipient::Unsubscribed {
                channel: unsubscribed,
                source,
            } => {
                let channel_name = channel.name();
                let channel = unsubscribed;
                let through = if channel == consent::ALL_CHANNELS {
                    "所有渠道".to_owned()
                } else {
                    channel.clone()
                };
                finish(
                    ctx,
                    id,
                    &token,
                    channel_name,
                    SendOutcome::Skipped(format!("客户已退订（{through}，{source}）")),
                )
                .await?;
                info!(revisit = id, %channel, %source, "number unsubscribed from this channel; not sent");
                return Ok(());
            }
        };
        match channel.send(&out).await {
            Ok(Delivered::Sent) => {
                finish(ctx, id, &token, channel.name(), SendOutcome::Sent).await?;
                info!(revisit = id, channel = channel.name(), to = %mask_phone(&out.phone), test_mode = r.test_mode, "message delivered");
                Ok(())
            }
            Ok(Delivered::Submitted(reference)) => {
                // A task the staff member confirms; its own job watches it.
                let watch = NewJob::for_revisit(
                    &WecomConfirm { revisit_id: id },
                    app.settings
                        .policy(&KindInfo::of::<WecomConfirm>())
                        .max_attempts as i32,
                    id,
                );
                crate::metrics::send(channel.name(), "submitted");
                if !store.submit_send(id, &token, &reference, watch).await? {
                    claim_lost(id);
                }
                info!(revisit = id, channel = channel.name(), task = %reference, "message submitted; waiting for the staff member to confirm it");
                Ok(())
            }
            Err(SendError::NotDelivered(e)) => {
                finish(
                    ctx,
                    id,
                    &token,
                    channel.name(),
                    SendOutcome::NotDelivered(e.clone()),
                )
                .await?;
                Err(JobError::retry(anyhow::anyhow!("未送达：{e}")))
            }
            Err(SendError::Uncertain(e)) => {
                // Stays `sending` with the lease ended: the next try decides whether it may repeat.
                finish(
                    ctx,
                    id,
                    &token,
                    channel.name(),
                    SendOutcome::Uncertain(e.clone()),
                )
                .await?;
                Err(JobError::retry(anyhow::anyhow!("送达情况不明：{e}")))
            }
            Err(SendError::Rejected(e)) => {
                finish(
                    ctx,
                    id,
                    &token,
                    channel.name(),
                    SendOutcome::Rejected(e.clone()),
                )
                .await?;
                Err(JobError::permanent(anyhow::anyhow!("渠道拒收：{e}")))
            }
        }
    }

    async fn on_dead(&self, ctx: &JobCtx<'_>, error: &str, permanent: bool) {
        mark_failed(ctx, self.revisit_id, error, permanent).await;
    }
}

/// Records the outcome of this run's try. The delivery has already happened (or not): a
/// database error here is retried, and the retry's claim sees the revisit still `sending`.
async fn finish(
    ctx: &JobCtx<'_>,
    id: i64,
    token: &str,
    channel: &'static str,
    outcome: SendOutcome,
) -> Result<(), JobError> {
    crate::metrics::send(
        channel,
        match &outcome {
            SendOutcome::Sent => "sent",
            SendOutcome::NotDelivered(_) => "not_delivered",
            SendOutcome::Uncertain(_) => "uncertain",
            SendOutcome::Skipped(_) => "suppressed",
            SendOutcome::Rejected(_) => "refused",
        },
    );
    if !ctx.app.store.finish_send(id, token, &outcome).await? {
        claim_lost(id);
    }
    Ok(())
}

/// Logs that this run's outcome was not recorded: another run took the revisit over.
fn claim_lost(id: i64) {
    warn!(
        revisit = id,
        "this run's claim on the send ran out before it finished; its outcome was not recorded"
    );
}
