//! WeCom customer broadcast (企业微信「客户联系」群发): a message to a customer who is an external
//! contact of a staff member, sent as a broadcast task that this staff member must confirm in
//! their WeCom client before anything reaches the customer. The confirmation doubles as the
//! staff approval of the message.
//!
//! The calls, of WeCom's server API (`https://qyapi.weixin.qq.com/cgi-bin/…`):
//! - `GET gettoken?corpid=…&corpsecret=…` gives an `access_token` (valid `expires_in` seconds,
//!   7,200); one is kept per process and fetched again when it runs out or WeCom says it is
//!   invalid (40001, 40014, 42001), and the call is then repeated once;
//! - `POST externalcontact/add_msg_template` with `chat_type: "single"`, the customer's
//!   `external_userid`, the `sender` (the staff member's userid) and the `text`: the task's
//!   `msgid`; a customer in its `fail_list` cannot be reached;
//! - `POST externalcontact/get_groupmsg_send_result` with the `msgid` and the sender's `userid`:
//!   per customer `status` 0 not sent yet (not confirmed), 1 sent (at `send_time`), 2 not a
//!   contact any more, 3 the customer already got another broadcast;
//! - `POST externalcontact/cancel_groupmsg_send` with the `msgid`: a task not confirmed by its
//!   deadline is withdrawn, so it cannot go out after the revisit was given up.
//!
//! Errors: `errcode` -1 (system busy), 45009 (frequency limit), 45033 (too many concurrent
//! calls), HTTP 5xx or 429 and a failed connection are retried; an expired token is fetched
//! again and the call repeated once; any other code is refused. WeCom does not drop a repeated
//! task, so an `add_msg_template` cut off after it went out is uncertain (a second task would
//! ask the staff member twice, and both could be confirmed).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use serde::{Deserialize, de::DeserializeOwned};
use tokio::sync::Mutex;

use super::{Outgoing, SendError};
use crate::config::WecomSettings;

/// WeCom caps a text message at 4,000 bytes; a revisit's message is far shorter.
const MAX_BYTES: usize = 4000;

#[derive(Clone)]
pub struct WecomBroadcast {
    http: reqwest::Client,
    api: String,
    corp_id: String,
    secret: crate::config::Secret,
    timeout: Duration,
    /// Institution code → the staff member who sends for customers without one of their own.
    senders: std::collections::BTreeMap<String, String>,
    token: Arc<Mutex<Option<(String, Instant)>>>,
}

/// What WeCom says of one customer of a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskStatus {
    /// The staff member has not confirmed it yet.
    Waiting,
    /// Sent, at this Unix time, by this staff member.
    Sent { at: i64, by: String },
    /// WeCom could not deliver it, and why (in Chinese, for staff).
    Failed(String),
}

/// Why a call did not give an answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// WeCom is busy or could not be reached: try again later.
    #[error("WeCom unavailable: {0}")]
    Later(String),
    /// Retrying will not help.
    #[error("WeCom refused: {0}")]
    Refused(String),
    /// The request may have reached WeCom (it timed out after it was sent).
    #[error("no answer from WeCom: {0}")]
    Uncertain(String),
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    errcode: i64,
    #[serde(default)]
    errmsg: String,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default = "two_hours")]
    expires_in: u64,
}

fn two_hours() -> u64 {
    7200
}

#[derive(Deserialize)]
struct AddAnswer {
    #[serde(default)]
    msgid: String,
    #[serde(default)]
    fail_list: Vec<String>,
}

#[derive(Deserialize)]
struct ResultAnswer {
    #[serde(default)]
    send_list: Vec<SendItem>,
}

#[derive(Deserialize)]
struct SendItem {
    #[serde(default)]
    external_userid: String,
    #[serde(default)]
    userid: String,
    status: i64,
    #[serde(default)]
    send_time: i64,
}

/// `errcode`s that mean "the access token is no good": fetch a new one.
fn token_invalid(code: i64) -> bool {
    matches!(code, 40001 | 40014 | 42001)
}

/// `errcode`s worth retrying later.
fn busy(code: i64) -> bool {
    matches!(code, -1 | 45009 | 45033)
}

impl WecomBroadcast {
    pub fn new(s: &WecomSettings) -> Result<Self, reqwest::Error> {
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(s.timeout_secs))
                .build()?,
            api: s.api_base.trim_end_matches('/').to_owned(),
            corp_id: s.corp_id.clone(),
            secret: s.corp_secret.clone(),
            timeout: Duration::from_secs(s.timeout_secs),
            senders: s.senders.clone(),
            token: Arc::new(Mutex::new(None)),
        })
    }

    /// Who sends to this customer: the staff member who has them as a contact, else their
    /// institution's sender.
    pub fn sender_of(&self, msg: &Outgoing) -> Option<String> {
        msg.wecom_userid
            .clone()
            .or_else(|| self.senders.get(&msg.institution_code).cloned())
    }

    /// The longest one try may take (fetching a token, then the call, then once more).
    pub fn timeout(&self) -> Duration {
        self.timeout * 3
    }

    /// Creates the broadcast task of `msg` from `sender` to the customer: its msgid.
    pub async fn submit(
        &self,
        msg: &Outgoing,
        sender: &str,
        external_userid: &str,
    ) -> Result<String, SendError> {
        let body = serde_json::json!({
            "chat_type": "single",
            "external_userid": [external_userid],
            "sender": sender,
            "allow_select": false,
            "text": {"content": cut(&msg.message)},
        });
        let answer: AddAnswer = self
            .call("externalcontact/add_msg_template", &body)
            .await
            .map_err(|e| match e {
                CallError::Later(e) => SendError::NotDelivered(e),
                CallError::Refused(e) => SendError::Rejected(e),
                CallError::Uncertain(e) => SendError::Uncertain(e),
            })?;
        if answer.fail_list.iter().any(|id| id == external_userid) {
            return Err(SendError::Rejected(format!(
                "企业微信无法向该客户群发（不是员工 {sender} 的客户联系人，或已删除）"
            )));
        }
        if answer.msgid.is_empty() {
            return Err(SendError::Uncertain(
                "add_msg_template answered without a msgid".into(),
            ));
        }
        Ok(answer.msgid)
    }

    /// What became of task `msgid` for this customer of `sender`.
    pub async fn status(
        &self,
        msgid: &str,
        sender: &str,
        external_userid: &str,
    ) -> Result<TaskStatus, CallError> {
        let body = serde_json::json!({"msgid": msgid, "userid": sender, "limit": 1000});
        let answer: ResultAnswer = self
            .call("externalcontact/get_groupmsg_send_result", &body)
            .await
            .map_err(|e| match e {
                // Asking again is harmless.
                CallError::Uncertain(e) => CallError::Later(e),
                other => other,
            })?;
        let Some(item) = answer
            .send_list
            .iter()
            .find(|i| i.external_userid == external_userid)
        else {
            // Listed once the staff member has acted on the task.
            return Ok(TaskStatus::Waiting);
        };
        let by = if item.userid.is_empty() {
            sender.to_owned()
        } else {
            item.userid.clone()
        };
        Ok(match item.status {
            0 => TaskStatus::Waiting,
            1 => TaskStatus::Sent {
                at: item.send_time,
                by,
            },
            2 => TaskStatus::Failed("客户已不是该员工的企业微信联系人，未送达".into()),
            3 => TaskStatus::Failed("客户今天已收到其他群发消息，企业微信未再发送".into()),
            other => TaskStatus::Failed(format!("企业微信返回未知的发送状态 {other}")),
        })
    }

    /// Withdraws a task that was not confirmed.
    pub async fn cancel(&self, msgid: &str) -> Result<(), CallError> {
        let body = serde_json::json!({"msgid": msgid});
        self.call::<serde_json::Value>("externalcontact/cancel_groupmsg_send", &body)
            .await
            .map(|_| ())
    }

    /// POSTs `body` to `path` with a valid token: once more with a new token when WeCom says
    /// the token is no good.
    async fn call<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<T, CallError> {
        let mut retried = false;
        loop {
            let token = self.token().await?;
            let response = self
                .http
                .post(format!("{}/{path}", self.api))
                .query(&[("access_token", token.as_str())])
                .json(body)
                .send()
                .await
                .map_err(|e| {
                    // Without the URL: it carries the token.
                    let e = e.without_url();
                    if e.is_connect() || e.is_builder() {
                        CallError::Later(e.to_string())
                    } else {
                        CallError::Uncertain(e.to_string())
                    }
                })?;
            let (envelope, text) = read(response, path, CallError::Uncertain).await?;
            match envelope.errcode {
                0 => {
                    return serde_json::from_str(&text)
                        .map_err(|e| CallError::Refused(format!("unexpected answer: {e}")));
                }
                code if token_invalid(code) && !retried => {
                    // Another call may have fetched a new one meanwhile; else it is fetched.
                    self.forget(&token).await;
                    retried = true;
                }
                code if busy(code) => {
                    return Err(CallError::Later(format!(
                        "errcode {code}: {}",
                        envelope.errmsg
                    )));
                }
                code => {
                    return Err(CallError::Refused(format!(
                        "errcode {code}: {}",
                        envelope.errmsg
                    )));
                }
            }
        }
    }

    /// The kept token, or a new one when there is none or it runs out within a minute.
    async fn token(&self) -> Result<String, CallError> {
        let mut kept = self.token.lock().await;
        if let Some((token, until)) = kept.as_ref()
            && *until > Instant::now() + Duration::from_secs(60)
        {
            return Ok(token.clone());
        }
        let response = self
            .http
            .get(format!("{}/gettoken", self.api))
            .query(&[
                ("corpid", self.corp_id.as_str()),
                ("corpsecret", self.secret.expose()),
            ])
            .send()
            .await
            // Without the URL: it carries the secret.
            .map_err(|e| CallError::Later(e.without_url().to_string()))?;
        // Asking for a token again is harmless: an answer cut off is only "later".
        let (envelope, text) = read(response, "gettoken", CallError::Later).await?;
        if busy(envelope.errcode) {
            return Err(CallError::Later(format!(
                "gettoken: errcode {}: {}",
                envelope.errcode, envelope.errmsg
            )));
        }
        if envelope.errcode != 0 {
            // 40013 invalid corpid, 40001 invalid secret...: configuration, not luck.
            return Err(CallError::Refused(format!(
                "gettoken: errcode {}: {} (check wecom.corp_id and wecom.corp_secret)",
                envelope.errcode, envelope.errmsg
            )));
        }
        let answer: TokenAnswer = serde_json::from_str(&text)
            .map_err(|e| CallError::Refused(format!("gettoken: {e}")))?;
        let until = Instant::now() + Duration::from_secs(answer.expires_in);
        *kept = Some((answer.access_token.clone(), until));
        Ok(answer.access_token)
    }

    /// Drops `token` if it is still the kept one.
    async fn forget(&self, token: &str) {
        let mut kept = self.token.lock().await;
        if kept.as_ref().is_some_and(|(t, _)| t == token) {
            *kept = None;
        }
    }
}

/// WeCom's answer to the call `what`: its envelope and its whole text. HTTP 5xx or 429 is
/// "later"; an answer cut off is `cut_off`'s (uncertain for a call that changes something); an
/// answer that is not WeCom's is refused.
async fn read(
    response: reqwest::Response,
    what: &str,
    cut_off: fn(String) -> CallError,
) -> Result<(Envelope, String), CallError> {
    let status = response.status();
    if status.is_server_error() || status.as_u16() == 429 {
        return Err(CallError::Later(format!("{what}: HTTP {status}")));
    }
    let text = response
        .text()
        .await
        .map_err(|e| cut_off(e.without_url().to_string()))?;
    let envelope = serde_json::from_str(&text).map_err(|e| {
        CallError::Refused(format!("{what}: HTTP {status}: not WeCom's answer: {e}"))
    })?;
    Ok((envelope, text))
}

/// The text within WeCom's limit, cut at a character boundary.
fn cut(text: &str) -> String {
    if text.len() <= MAX_BYTES {
        return text.to_owned();
    }
    let mut end = MAX_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}
