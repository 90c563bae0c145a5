//! `greeting.generate`: a personal birthday message from the customer's history, by the LLM
//! (or the template when no API key is configured), then its sending is enqueued.
//!
//! The LLM call happens outside any transaction; the message and the send job are committed
//! together afterwards, so a crash in between costs one more LLM call, never a lost or double send.

use revisit_jobs::{GreetingGenerate, KindInfo, MessageSend};
use tracing::{info, warn};

use super::{Handler, JobCtx, JobError};
use crate::{
    llm::{LlmError, prompt, template, tidy_message},
    store::SavedGreeting,
};

impl Handler for GreetingGenerate {
    async fn run(&self, ctx: &JobCtx<'_>) -> Result<(), JobError> {
        let app = ctx.app;
        let id = self.revisit_id;
        let Some(r) = app.store.revisit(id).await? else {
            return Err(JobError::permanent(anyhow::anyhow!(
                "revisit {id} does not exist"
            )));
        };
        if r.message.is_some() || r.status == "skipped" {
            return Ok(());
        }
        let Some(context) = app
            .store
            .greeting_context(r.customer_id, r.occasion_date)
            .await?
        else {
            return Err(JobError::permanent(anyhow::anyhow!(
                "customer {} of revisit {id} does not exist",
                r.customer_id
            )));
        };
        let max = app.settings.reminders.max_message_chars;
        let (message, generated_by, model) = if app.settings.llm_enabled() {
            let system = prompt::system_prompt(&context, max);
            let user = prompt::user_prompt(&context);
            match app.llm.complete(&system, &user).await {
                Ok(answer) => match tidy_message(&answer, max) {
                    Some(text) => (text, "llm", Some(app.llm.model().to_owned())),
                    None => {
                        warn!(
                            revisit = id,
                            "LLM answer was not usable Chinese text; using the template"
                        );
                        (template::birthday_greeting(&context, max), "template", None)
                    }
                },
                Err(LlmError::Unavailable {
                    message,
                    retry_after,
                }) => {
                    return Err(JobError::Retry {
                        error: anyhow::anyhow!("LLM unavailable: {message}"),
                        after: retry_after,
                    });
                }
                Err(refused @ LlmError::Refused(_)) => return Err(JobError::permanent(refused)),
            }
        } else {
            (template::birthday_greeting(&context, max), "template", None)
        };
        let channel = if r.test_mode {
            "console"
        } else {
            app.channel.name()
        };
        let greeting = SavedGreeting {
            revisit_id: id,
            message: &message,
            generated_by,
            model: model.as_deref(),
            channel,
        };
        let attempts = app
            .settings
            .policy(&KindInfo::of::<MessageSend>())
            .max_attempts as i32;
        if app.store.save_greeting(greeting, attempts).await? {
            info!(
                revisit = id,
                generated_by,
                chars = message.chars().count(),
                "greeting generated"
            );
        }
        Ok(())
    }

    async fn on_dead(&self, ctx: &JobCtx<'_>, error: &str) {
        mark_failed(ctx, self.revisit_id, error).await;
    }
}

/// Records on the revisit that its job is dead, where staff and the report see it.
pub(super) async fn mark_failed(ctx: &JobCtx<'_>, id: i64, error: &str) {
    if let Err(e) = ctx.app.store.mark_revisit_failed(id, error).await {
        warn!(revisit = id, error = %e, "could not mark the revisit failed");
    }
}
