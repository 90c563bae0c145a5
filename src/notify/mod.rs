//! Message channels: how a generated message reaches a customer.
//!
//! Delivery rule (one delivery per revisit): before each try the run claims the revisit for the
//! length of [`Channel::lease`] (see [`crate::domain::delivery`]); after a confirmed delivery it
//! is `sent`. A try that finds the revisit still `sending` after the lease cannot know whether
//! the previous one was delivered (the worker may have died after the receiver got it). It sends
//! again only through a channel that drops a repeat of the revisit's `send_key`
//! ([`Channel::deduplicates`]: the console, and a webhook whose operator says its receiver does);
//! otherwise the revisit fails as "delivery uncertain" for a person to check, and nothing is
//! repeated blindly.

pub mod aliyun_sms;
pub mod webhook;
pub mod wecom_broadcast;
pub mod wecom_robot;

use std::time::Duration;

pub use crate::domain::outgoing::Outgoing;
pub use aliyun_sms::AliyunSms;
pub use webhook::WebhookChannel;
pub use wecom_broadcast::WecomBroadcast;

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The receiver said no or could not be reached before it got the message: safe to retry.
    #[error("not delivered: {0}")]
    NotDelivered(String),
    /// It may or may not have arrived (timed out after sending).
    #[error("delivery uncertain: {0}")]
    Uncertain(String),
    /// Retrying will not help (the receiver rejected the message as invalid).
    #[error("rejected: {0}")]
    Rejected(String),
}

impl SendError {
    /// The same error with `name` and `phone` (and any other long digit run) masked in its text.
    pub fn masked(self, name: &str, phone: &str) -> Self {
        use crate::domain::privacy::{mask_digit_runs, mask_name, mask_phone};
        let clean = |text: String| {
            let mut text = text;
            if !phone.is_empty() {
                text = text.replace(phone, &mask_phone(phone));
            }
            if name.chars().count() >= 2 {
                text = text.replace(name, &mask_name(name));
            }
            mask_digit_runs(&text)
        };
        match self {
            Self::NotDelivered(t) => Self::NotDelivered(clean(t)),
            Self::Uncertain(t) => Self::Uncertain(clean(t)),
            Self::Rejected(t) => Self::Rejected(clean(t)),
        }
    }
}

/// How a delivery try that succeeded ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    /// The channel took the message for the customer.
    Sent,
    /// The channel made a task a staff member must confirm first (a WeCom broadcast, by its
    /// msgid): the revisit is `submitted` until the confirmation is seen.
    Submitted(String),
}

/// Where messages go.
#[derive(Clone)]
pub enum Channel {
    /// Test mode: shown on the console and recorded; nothing leaves the system.
    Console,
    Webhook(WebhookChannel),
    /// Alibaba Cloud SMS.
    Sms(AliyunSms),
    /// WeCom customer broadcast, confirmed by the staff member.
    Wecom(WecomBroadcast),
}

impl Channel {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Console => "console",
            Self::Webhook(_) => "webhook",
            Self::Sms(_) => "sms",
            Self::Wecom(_) => "wecom",
        }
    }

    /// Whether a repeat with the same `send_key` is dropped by the receiver, so that a try after
    /// an uncertain one may send again. A webhook receiver does only if its operator says so
    /// (`webhook.deduplicates`).
    pub fn deduplicates(&self) -> bool {
        match self {
            Self::Console => true,
            Self::Webhook(w) => w.deduplicates(),
            // The platform sends every request it accepts; WeCom makes a task of each.
            Self::Sms(_) | Self::Wecom(_) => false,
        }
    }

    /// How long a run's claim on a send lasts: longer than any one try can take, so that a live
    /// run is never taken over, and short enough that a run that died is.
    pub fn lease(&self) -> Duration {
        let longest_try = match self {
            Self::Console => Duration::from_secs(1),
            Self::Webhook(w) => w.timeout(),
            Self::Sms(s) => s.timeout(),
            Self::Wecom(w) => w.timeout(),
        };
        longest_try * 2 + Duration::from_secs(5)
    }

    /// Sends `msg`. An error's text never carries the recipient's name or number: a gateway's
    /// answer may echo them, and the error is stored on the revisit, logged and sent to the
    /// staff alert robot.
    pub async fn send(&self, msg: &Outgoing) -> Result<Delivered, SendError> {
        self.send_unmasked(msg)
            .await
            .map_err(|e| e.masked(&msg.name, &msg.phone))
    }

    async fn send_unmasked(&self, msg: &Outgoing) -> Result<Delivered, SendError> {
        match self {
            Self::Console => {
                // A log line, not stdout: the commands that wait for revisits print them once.
                tracing::info!(
                    revisit = msg.revisit_id,
                    to = %crate::domain::privacy::mask_name(&msg.name),
                    phone = %crate::domain::privacy::mask_phone(&msg.phone),
                    message = %msg.message,
                    "console channel: shown here, not delivered to the customer"
                );
                Ok(Delivered::Sent)
            }
            Self::Webhook(w) => w.send(msg).await.map(|()| Delivered::Sent),
            Self::Sms(s) => s.send(msg).await.map(|()| Delivered::Sent),
            Self::Wecom(w) => {
                let (Some(contact), Some(sender)) =
                    (msg.wecom_external_userid.as_deref(), w.sender_of(msg))
                else {
                    return Err(SendError::Rejected(
                        "客户没有企业微信联系人或对应员工（customers.json 的 wecom_external_userid、wecom_userid，或 wecom.senders），无法群发".into(),
                    ));
                };
                w.submit(msg, &sender, contact)
                    .await
                    .map(Delivered::Submitted)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gateway_answer_echoing_the_recipient_is_masked() {
        let e = SendError::Rejected(
            "HTTP 400: {\"to\":\"+8613800138000\",\"name\":\"吕静\",\"error\":\"blocked\"}".into(),
        )
        .masked("吕静", "13800138000");
        let text = e.to_string();
        assert!(
            !text.contains("13800138000") && !text.contains("吕静"),
            "{text}"
        );
        assert!(
            text.contains("138****8000") && text.contains("吕*"),
            "{text}"
        );
        assert!(matches!(e, SendError::Rejected(_)), "the kind is kept");
    }
}
