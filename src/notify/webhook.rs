//! The webhook channel: a JSON POST to a configured URL (an SMS gateway, WeCom relay, CRM).
//!
//! Body: the [`Outgoing`] message as JSON. Header `Idempotency-Key: <send_key>`, the same on every
//! try for one revisit. 2xx is delivered; 5xx, 429 and connection failures are not delivered
//! (retried); a timeout after the request went out is uncertain; other 4xx are rejected.

use std::time::Duration;

use super::{Outgoing, SendError};
use crate::config::WebhookSettings;

#[derive(Clone)]
pub struct WebhookChannel {
    http: reqwest::Client,
    url: String,
    timeout: Duration,
    deduplicates: bool,
}

impl WebhookChannel {
    pub fn new(settings: &WebhookSettings) -> Result<Self, reqwest::Error> {
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(settings.timeout_secs))
                .build()?,
            url: settings.url.expose().to_owned(),
            timeout: Duration::from_secs(settings.timeout_secs),
            deduplicates: settings.deduplicates,
        })
    }

    /// The longest one try may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Whether the receiver drops a repeat with the same `Idempotency-Key` (the operator says).
    pub fn deduplicates(&self) -> bool {
        self.deduplicates
    }

    pub async fn send(&self, msg: &Outgoing) -> Result<(), SendError> {
        let response = self
            .http
            .post(&self.url)
            .header("Idempotency-Key", &msg.send_key)
            .json(msg)
            .send()
            .await
            .map_err(|e| {
                if e.is_connect() {
                    SendError::NotDelivered(format!("cannot connect: {}", e.without_url()))
                } else if e.is_timeout() {
                    SendError::Uncertain("timed out waiting for the receiver".into())
                } else {
                    // Without the URL: it may carry a token, and this text is logged and stored.
                    SendError::Uncertain(e.without_url().to_string())
                }
            })?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else if status.is_server_error() || status.as_u16() == 429 {
            Err(SendError::NotDelivered(format!("HTTP {status}")))
        } else {
            let body = response.text().await.unwrap_or_default();
            Err(SendError::Rejected(format!(
                "HTTP {status}: {}",
                body.chars().take(200).collect::<String>()
            )))
        }
    }
}
