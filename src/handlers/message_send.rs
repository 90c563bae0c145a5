//! `message.send`: deliver a generated message, at most once as far as the channel allows
//! (the rule is in [`crate::notify`]).

use revisit_jobs::MessageSend;
use tracing::{info, warn};

use super::{Handler, JobCtx, JobError, greeting_generate::mark_failed};
use crate::{
    domain::privacy::mask_phone,
    notify::{Channel, SendError},
};

impl Handler for MessageSend {
    async fn run(&self, ctx: &JobCtx<'_>) -> Result<(), JobError> {
        let app = ctx.app;
        let store = &app.store;
        let id = self.revisit_id;
        let Some(r) = store.revisit(id).await? else {
            return Err(JobError::permanent(anyhow::anyhow!(
                "revisit {id} does not exist"
            )));
        };
        let channel = if r.test_mode {
            Channel::Console
        } else {
            app.channel.clone()
        };
        match r.status.as_str() {
            "sent" | "skipped" => return Ok(()),
            "pending" => {
                return Err(JobError::permanent(anyhow::anyhow!(
                    "revisit {id} has no message yet"
                )));
            }
            "sending" if !channel.deduplicates() => {
                return Err(JobError::permanent(anyhow::anyhow!(
                    "delivery uncertain: an earlier try of revisit {id} may have been delivered, and channel {} cannot drop a repeat; check with the customer before retrying",
                    channel.name()
                )));
            }
            "sending" => warn!(
                revisit = id,
                "an earlier try may have been delivered; sending again with the same idempotency key"
            ),
            _ => {}
        }
        let Some(out) = store.outgoing(&r).await? else {
            store
                .set_revisit_status(id, "skipped", Some("customer opted out of messages"))
                .await?;
            info!(revisit = id, "customer opted out; not sent");
            return Ok(());
        };
        store.begin_send(id).await?;
        match channel.send(&out).await {
            Ok(()) => {
                store.set_revisit_status(id, "sent", None).await?;
                info!(revisit = id, channel = channel.name(), to = %mask_phone(&out.phone), test_mode = r.test_mode, "message delivered");
                Ok(())
            }
            Err(SendError::NotDelivered(e)) => {
                store.set_revisit_status(id, "generated", Some(&e)).await?;
                Err(JobError::retry(anyhow::anyhow!("not delivered: {e}")))
            }
            Err(SendError::Uncertain(e)) => {
                // Stays `sending`: the next try knows a delivery may have happened.
                store.note_revisit_error(id, &e).await?;
                Err(JobError::retry(anyhow::anyhow!("delivery uncertain: {e}")))
            }
            Err(SendError::Rejected(e)) => Err(JobError::permanent(anyhow::anyhow!(
                "rejected by the channel: {e}"
            ))),
        }
    }

    async fn on_dead(&self, ctx: &JobCtx<'_>, error: &str) {
        mark_failed(ctx, self.revisit_id, error).await;
    }
}
