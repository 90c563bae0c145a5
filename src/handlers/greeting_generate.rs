//! `greeting.generate`: a personal message for the revisit's occasion (birthday, check-in,
//! maintenance reminder, win-back) from the customer's history, by the LLM
//! (or the template when no API key is configured), then its sending is enqueued.
//!
//! A marketing message ends with the opt-out text (`consent.opt_out_text`), the check-in that
//! asks for a score with its question. Every message passes the compliance check
//! (`domain::compliance`, and no other customer's name) before it is saved: an LLM text that
//! fails is rewritten once with the reasons, then replaced by the template, and the revisit
//! records what happened; a text that still fails is never saved for sending.
//!
//! The LLM call happens outside any transaction; the message and the send job are committed
//! together afterwards, so a crash in between costs one more LLM call, never a lost or double send.

use revisit_jobs::{GreetingGenerate, KindInfo, MessageSend};
use tracing::{info, warn};

use super::{Handler, JobCtx, JobError};
use crate::{
    app::App,
    domain::{
        compliance::{self, Limits, Violation},
        consent,
        delivery::hold_until,
        revisit::{RevisitStatus, Writer},
    },
    llm::{LlmError, prompt, template, tidy_message},
    store::SavedGreeting,
};

impl Handler for GreetingGenerate {
    async fn run(&self, ctx: &JobCtx<'_>) -> Result<(), JobError> {
        let app = ctx.app;
        let id = self.revisit_id;
        let Some(r) = app.store.revisit(id).await? else {
            return Err(JobError::permanent(anyhow::anyhow!("回访 #{id} 不存在")));
        };
        if r.message.is_some() || r.status == RevisitStatus::Skipped {
            return Ok(());
        }
        let Some(mut context) = app
            .store
            .greeting_context(r.customer_id, r.occasion_date)
            .await?
        else {
            return Err(JobError::permanent(anyhow::anyhow!(
                "回访 #{id} 的客户（编号 {}）不存在",
                r.customer_id
            )));
        };
        let occasion = r.occasion;
        context.occasion = occasion;
        context.day_offset = r.day_offset;
        context.subject = context
            .history
            .iter()
            .find(|h| {
                Some(&h.order_number) == r.order_number.as_ref()
                    && Some(&h.item_code) == r.item_code.as_ref()
            })
            .cloned();
        // What ends the message: the opt-out text for marketing, the score question for the
        // check-in that asks one (a check-in is care); the message itself gets the rest.
        let tail = if occasion.is_marketing() {
            app.settings.consent.opt_out_text.as_str()
        } else if r.asks_score {
            crate::domain::followup::SCORE_QUESTION
        } else {
            ""
        };
        let max = app.settings.reminders.max_message_chars - consent::opt_out_chars(tail);
        let limits = Limits {
            max_chars: max,
            allow_prices: app
                .settings
                .compliance
                .allow_prices
                .contains(&context.institution_code),
        };
        // Made once: the fallback whatever the LLM does, and part of the system's own words.
        let template_text = template::message(&context, max);
        let template = || template_text.clone();
        let system = prompt::system_prompt(&context, max);
        // What the system itself says or takes from this customer's record: no leak there.
        let names = NameCheck {
            customer_id: r.customer_id,
            full_name: context.full_name.clone(),
            gender: context.gender.clone(),
            ours: format!("{system}\n{template_text}\n{tail}\n{}", context.own_words()),
        };
        let (message, generated_by, model, compliance) = if app.settings.llm_enabled() {
            let sharing = app.settings.llm.sharing_for(&context.institution_code);
            let user = prompt::user_prompt(&context, &sharing);
            let model = Some(app.llm.model().to_owned());
            match ask(app, &system, &user, max).await? {
                None => {
                    warn!(
                        revisit = id,
                        "LLM answer was not usable Chinese text; using the template"
                    );
                    (template(), Writer::Template, None, None)
                }
                Some(text) => match violations(app, &text, limits, Some(&names)).await? {
                    v if v.is_empty() => (text, Writer::Llm, model, None),
                    first => {
                        // One rewrite, told why; then the template.
                        let reasons = describe(&first);
                        let again = format!(
                            "{user}\n\n上一版未通过合规检查：{reasons}。请重写，不要出现这些内容。"
                        );
                        let second = ask(app, &system, &again, max).await?;
                        let second_violations = match second.as_deref() {
                            Some(t) => Some(violations(app, t, limits, Some(&names)).await?),
                            None => None,
                        };
                        warn!(
                            revisit = id,
                            rules = ?first.iter().map(|v| v.rule.as_str()).collect::<Vec<_>>(),
                            "LLM greeting failed the compliance check; asked for a rewrite"
                        );
                        match (second, second_violations) {
                            (Some(t), Some(v)) if v.is_empty() => (
                                {
                                    crate::metrics::compliance("rewritten");
                                    t
                                },
                                Writer::Llm,
                                model,
                                Some(format!("第一版未通过合规检查（{reasons}），已重写")),
                            ),
                            (_, v) => (
                                {
                                    crate::metrics::compliance("replaced_by_template");
                                    template()
                                },
                                Writer::Template,
                                None,
                                Some(format!(
                                    "两版大模型话术均未通过合规检查（{reasons}{}），改用模板",
                                    v.filter(|v| !v.is_empty())
                                        .map(|v| format!("；{}", describe(&v)))
                                        .unwrap_or_default()
                                )),
                            ),
                        }
                    }
                },
            }
        } else {
            (template(), Writer::Template, None, None)
        };
        // The template is checked too (names of projects and doctors come from the data), and
        // so is the whole message as sent: one that fails is never saved for sending. Only the
        // LLM's text is checked for other customers' names: the template is made of this
        // customer's own record, so no other customer's data can stop it.
        let message = consent::with_opt_out(&message, tail);
        let left = violations(
            app,
            &message,
            Limits {
                max_chars: app.settings.reminders.max_message_chars,
                ..limits
            },
            (generated_by == Writer::Llm).then_some(&names),
        )
        .await?;
        if !left.is_empty() {
            crate::metrics::compliance("refused");
            return Err(JobError::permanent(anyhow::anyhow!(
                "话术未通过合规检查，未发送：{}",
                describe(&left)
            )));
        }
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
            compliance: compliance.as_deref(),
            // Quiet hours hold a real message until the window opens; test mode sends nothing.
            send_at: match app.settings.reminders.send_window() {
                Some(window) if !r.test_mode => hold_until(
                    chrono::Utc::now(),
                    app.settings.tz_of(context.institution_timezone.as_deref()),
                    window,
                ),
                _ => None,
            },
            // Test mode sends nothing, so it never waits for a person; a WeCom broadcast waits
            // for its staff member's confirmation, which is the approval.
            needs_approval: !r.test_mode
                && channel != "wecom"
                && app
                    .settings
                    .consent
                    .needs_approval(&context.institution_code),
        };
        let attempts = app
            .settings
            .policy(&KindInfo::of::<MessageSend>())
            .max_attempts as i32;
        if app.store.save_greeting(greeting, attempts).await? {
            if greeting.send_at.is_some() {
                crate::metrics::send(channel, "deferred");
            }
            info!(
                revisit = id,
                generated_by = generated_by.as_str(),
                chars = message.chars().count(),
                awaits_approval = greeting.needs_approval,
                "greeting generated"
            );
        }
        Ok(())
    }

    async fn on_dead(&self, ctx: &JobCtx<'_>, error: &str, permanent: bool) {
        mark_failed(ctx, self.revisit_id, error, permanent).await;
    }
}

/// Asks the LLM; `None` when the answer is not usable Chinese text. An LLM that is down makes
/// the job retry later; one that refuses the request fails it.
async fn ask(app: &App, system: &str, user: &str, max: usize) -> Result<Option<String>, JobError> {
    let pass = super::through_gate(app.gates.llm.as_ref()).await?;
    let answer = app.llm.complete(system, user).await;
    if let Some(pass) = pass {
        pass.release().await;
    }
    match answer {
        Ok(answer) => Ok(tidy_message(&answer, max)),
        Err(LlmError::Unavailable {
            message,
            retry_after,
        }) => Err(JobError::Retry {
            error: anyhow::anyhow!("大模型暂时不可用：{message}"),
            after: retry_after,
        }),
        Err(refused @ LlmError::Refused(_)) => Err(JobError::permanent(refused)),
    }
}

/// What an LLM's text is checked against for other customers' names.
struct NameCheck {
    /// The greeting's customer: the names looked up are of their institution's other customers.
    customer_id: i64,
    /// Everything the system wrote or took from this customer's own record.
    ours: String,
    /// Whom the message must address: their family name, and the title of their gender.
    full_name: String,
    gender: Option<String>,
}

/// Everything wrong with a message: the compliance rules and, with `names`, the full name of
/// another customer of the same institution (`compliance::name_candidates` says which runs of
/// the text could be one) and an address that is not the customer's (`names::salutation_problems`).
async fn violations(
    app: &App,
    text: &str,
    limits: Limits,
    names: Option<&NameCheck>,
) -> Result<Vec<Violation>, JobError> {
    let mut found = compliance::check(text, limits);
    if let Some(n) = names {
        let candidates = compliance::name_candidates(text, &n.ours);
        for name in app
            .store
            .names_of_others(n.customer_id, &candidates)
            .await?
        {
            found.push(compliance::other_customer_name(&name));
        }
        for (written, why) in
            crate::domain::names::salutation_problems(text, &n.full_name, n.gender.as_deref())
        {
            found.push(compliance::wrong_salutation(written, why));
        }
    }
    Ok(found)
}

/// The violations, one after another, for staff and for the LLM's second try.
fn describe(v: &[Violation]) -> String {
    v.iter()
        .map(Violation::describe)
        .collect::<Vec<_>>()
        .join("；")
}

/// Records on the revisit that its job is dead, where staff and the report see it.
/// Staff are alerted to a real one (a test-mode failure reaches nobody).
pub(super) async fn mark_failed(ctx: &JobCtx<'_>, id: i64, error: &str, permanent: bool) {
    let store = &ctx.app.store;
    if let Err(e) = store.mark_revisit_failed(id, error, permanent).await {
        warn!(revisit = id, error = %e, "could not mark the revisit failed");
    }
    if let Ok(Some(r)) = store.revisit(id).await
        && !r.test_mode
    {
        let occasion = r.occasion.label();
        let reason: String = error.chars().take(300).collect();
        super::alert_send::enqueue(
            ctx.app,
            format!(
                "【回访失败】回访 #{id}（{occasion}，{}）未能送达：{reason}\n请在控制台「生日回访」页查看并处理，或运行 revisit jobs list --status failed",
                r.occasion_date
            ),
        )
        .await;
    }
}
