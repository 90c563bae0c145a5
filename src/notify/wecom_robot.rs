//! The WeCom group robot (企业微信群机器人): staff alerts posted to a group chat, not messages to
//! customers. `POST <webhook URL>` with `{"msgtype": "text", "text": {"content": …}}`; the
//! answer's `errcode` 0 is posted. A robot takes at most 20 messages a minute: a token bucket
//! keeps this process under that, and `errcode` 45009 (frequency limit, from other senders to
//! the same robot) is retried after a minute.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde::Deserialize;

use crate::domain::rate::TokenBucket;

/// At most this many messages a minute per robot (WeCom's limit).
pub const PER_MINUTE: u32 = 20;
/// WeCom caps a text message at 2,048 bytes.
const MAX_BYTES: usize = 2048;

#[derive(Clone)]
pub struct WecomRobot {
    http: reqwest::Client,
    url: String,
    bucket: Arc<Mutex<TokenBucket>>,
}

#[derive(Debug, thiserror::Error)]
pub enum RobotError {
    /// Not posted; try again after this long.
    #[error("not posted, try again in {after:?}: {reason}")]
    Later { after: Duration, reason: String },
    /// Retrying will not help (a bad key, a malformed message).
    #[error("refused: {0}")]
    Refused(String),
}

#[derive(Deserialize)]
struct Answer {
    errcode: i64,
    #[serde(default)]
    errmsg: String,
}

impl WecomRobot {
    pub fn new(url: &str) -> Result<Self, reqwest::Error> {
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
            url: url.to_owned(),
            bucket: Arc::new(Mutex::new(TokenBucket::new(
                PER_MINUTE,
                Duration::from_secs(60),
                Instant::now(),
            ))),
        })
    }

    pub async fn post(&self, text: &str) -> Result<(), RobotError> {
        if let Err(after) = self
            .bucket
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take(Instant::now())
        {
            return Err(RobotError::Later {
                after,
                reason: format!("over {PER_MINUTE} messages a minute"),
            });
        }
        let body = serde_json::json!({"msgtype": "text", "text": {"content": cut(text)}});
        let later = |reason: String| RobotError::Later {
            after: Duration::from_secs(60),
            reason,
        };
        let response = self
            .http
            .post(&self.url)
            .json(&body)
            .send()
            .await
            // Without the URL: its key is a secret.
            .map_err(|e| later(e.without_url().to_string()))?;
        let status = response.status();
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(later(format!("HTTP {status}")));
        }
        match response.json::<Answer>().await {
            Ok(a) if a.errcode == 0 => Ok(()),
            // 45009: api freq out of limit; -1: system busy.
            Ok(a) if a.errcode == 45009 || a.errcode == -1 => {
                Err(later(format!("errcode {}: {}", a.errcode, a.errmsg)))
            }
            Ok(a) => Err(RobotError::Refused(format!(
                "errcode {}: {}",
                a.errcode, a.errmsg
            ))),
            Err(e) => Err(RobotError::Refused(format!("HTTP {status}: {e}"))),
        }
    }
}

/// The text within WeCom's 2,048 bytes, cut at a character boundary.
fn cut(text: &str) -> String {
    if text.len() <= MAX_BYTES {
        return text.to_owned();
    }
    let mut end = MAX_BYTES - "…".len();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_texts_are_cut_within_the_limit() {
        let long = "回访".repeat(2000);
        let c = cut(&long);
        assert!(c.len() <= MAX_BYTES && c.ends_with('…'));
        assert_eq!(cut("短"), "短");
    }
}
