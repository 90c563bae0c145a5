//! Consent at work, for the CLI and the API alike: replies turned into suppressions (an
//! unsubscribe) or scores (the satisfaction question), and staff approving or rejecting the
//! messages that wait for them.

use std::collections::HashMap;

use chrono::Utc;
use revisit_jobs::{KindInfo, MessageSend};
use tracing::info;

use crate::{
    app::App,
    domain::{
        consent::{self, Source},
        delivery::hold_until,
        privacy::{mask_phone, normalize_phone},
    },
    store::{StoreResult, consent::Decided},
};

/// What a reply did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyOutcome {
    /// The number receives nothing more through `channel`; `new` is false when it already did not.
    Unsubscribed { channel: String, new: bool },
    /// A score (1–5) answering the satisfaction question of a check-in sent to this number;
    /// `task` when it was low and opened a task for staff.
    Scored {
        revisit_id: i64,
        score: u8,
        task: Option<i64>,
    },
    /// Neither an unsubscribe request nor a score awaited: nothing changed.
    Ignored,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplyError {
    #[error("{0:?} is not a phone number")]
    BadPhone(String),
    #[error("{0:?} is not a channel (sms, webhook, wecom or all)")]
    BadChannel(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// The channel a reply came back over when its sender does not say: the configured one (replies
/// come back the way messages went), or every channel while only the console is configured.
pub fn default_reply_channel(app: &App) -> &'static str {
    consent::parse_channel(app.channel.name()).unwrap_or(consent::ALL_CHANNELS)
}

/// Records a reply from `phone`: an unsubscribe (回T退订, 拒收请回复R) suppresses the number for
/// `channel` (see [`default_reply_channel`]); anything else changes nothing.
pub async fn record_reply(
    app: &App,
    phone: &str,
    text: &str,
    channel: Option<&str>,
) -> Result<ReplyOutcome, ReplyError> {
    let number = normalize_phone(phone).ok_or_else(|| ReplyError::BadPhone(mask_phone(phone)))?;
    let channel = match channel {
        Some(c) => consent::parse_channel(c).ok_or_else(|| ReplyError::BadChannel(c.to_owned()))?,
        None => default_reply_channel(app),
    };
    if !consent::is_unsubscribe(text) {
        return match crate::domain::followup::parse_score(text) {
            Some(score) => score_reply(app, &number, score).await,
            None => Ok(ReplyOutcome::Ignored),
        };
    }
    let reply: String = text.trim().chars().take(100).collect();
    let new = app
        .store
        .suppress(&number, channel, Source::Reply, Some(&reply))
        .await?;
    info!(phone = %mask_phone(&number), channel, new, "unsubscribe reply recorded");
    Ok(ReplyOutcome::Unsubscribed {
        channel: channel.to_owned(),
        new,
    })
}

/// A score from `number`: recorded on the question sent to it, if one waits.
async fn score_reply(app: &App, number: &str, score: u8) -> Result<ReplyOutcome, ReplyError> {
    let f = &app.settings.followups;
    match app
        .store
        .score_by_phone(number, score, f.score_reply_days, f.low_score)
        .await?
    {
        Some(scored) => {
            scored_alert(app, &scored, score).await;
            info!(revisit = scored.revisit_id, score, task = ?scored.task_id, "score recorded from a reply");
            Ok(ReplyOutcome::Scored {
                revisit_id: scored.revisit_id,
                score,
                task: scored.task_id,
            })
        }
        None => Ok(ReplyOutcome::Ignored),
    }
}

/// Staff hear of a task a low score opened.
pub async fn scored_alert(app: &App, scored: &crate::store::tasks::Scored, score: u8) {
    if let Some(task) = scored.task_id {
        crate::handlers::alert_send::enqueue(
            app,
            format!(
                "【低分回访】回访 #{}（{} 的术后回访）得到 {score} 分，已生成待办 #{task}，请尽快联系客户（revisit tasks list）",
                scored.revisit_id, scored.occasion_date
            ),
        )
        .await;
    }
}

/// Approves waiting messages (`ids`, or all of `institution` when `ids` is empty) and enqueues
/// their sending, held for quiet hours as a freshly generated message is.
pub async fn approve(
    app: &App,
    ids: &[i64],
    institution: Option<&str>,
    by: &str,
) -> StoreResult<Decided> {
    let settings = &app.settings;
    // Each institution's quiet hours, in its own time zone.
    let mut send_at = HashMap::new();
    if let Some(window) = settings.reminders.send_window() {
        let now = Utc::now();
        for inst in app.store.institutions().await? {
            let tz = settings.tz_of(inst.timezone.as_deref());
            if let Some(at) = hold_until(now, tz, window) {
                send_at.insert(inst.code, at);
            }
        }
    }
    let attempts = settings.policy(&KindInfo::of::<MessageSend>()).max_attempts as i32;
    let done = app
        .store
        .approve(ids, institution, by, &send_at, attempts)
        .await?;
    info!(
        approved = done.ids.len(),
        by, "messages approved for sending"
    );
    Ok(done)
}

/// Rejects waiting messages: they are skipped, never sent, with the reason for staff.
pub async fn reject(
    app: &App,
    ids: &[i64],
    institution: Option<&str>,
    by: &str,
    reason: Option<&str>,
) -> StoreResult<Decided> {
    let note = match reason.map(str::trim).filter(|r| !r.is_empty()) {
        Some(r) => format!("未通过审批（{by}）：{r}"),
        None => format!("未通过审批（{by}）"),
    };
    let done = app.store.reject(ids, institution, by, &note).await?;
    info!(rejected = done.ids.len(), by, "messages rejected");
    Ok(done)
}
