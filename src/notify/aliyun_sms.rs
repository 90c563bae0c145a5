//! Alibaba Cloud SMS (阿里云短信服务): `SendSms` of API version 2017-05-25, an RPC-style call
//! signed with Alibaba Cloud's V3 method (`ACS3-HMAC-SHA256`; the older HMAC-SHA1 method is
//! discontinued).
//!
//! The message goes out as a variable of an approved template (`sms.template_code`, under the
//! approved signature `sms.sign_name`); the revisit's `send_key` goes as `OutId`, so a person can
//! find the message in the platform's delivery records. The platform does not drop repeats, so
//! a try cut off after the request went out is "uncertain" and never repeated blindly.
//!
//! Outcomes: `Code = OK` is accepted (the handset's delivery report comes later and is not
//! tracked here); flow control, throttling, a platform error, an empty balance, HTTP 5xx or 429
//! and a failed connection are not delivered (retried with backoff); a bad number, signature,
//! template, parameter, blocked content or credentials are rejected (not retried); a timeout
//! after sending is uncertain.

use std::time::Duration;

use chrono::Utc;
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{Outgoing, SendError};
use crate::config::SmsSettings;

const ACTION: &str = "SendSms";
const VERSION: &str = "2017-05-25";
const ALGORITHM: &str = "ACS3-HMAC-SHA256";

#[derive(Clone)]
pub struct AliyunSms {
    http: reqwest::Client,
    endpoint: String,
    host: String,
    key_id: String,
    secret: crate::config::Secret,
    sign_name: String,
    template_code: String,
    template_param: std::collections::BTreeMap<String, String>,
    timeout: Duration,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Answer {
    code: Option<String>,
    message: Option<String>,
}

impl AliyunSms {
    pub fn new(s: &SmsSettings) -> Result<Self, reqwest::Error> {
        let endpoint = s.endpoint.trim_end_matches('/').to_owned();
        let host = endpoint
            .split_once("://")
            .map_or(endpoint.as_str(), |(_, rest)| rest)
            .split('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(s.timeout_secs))
                .build()?,
            endpoint,
            host,
            key_id: s.access_key_id.clone(),
            secret: s.access_key_secret.clone(),
            sign_name: s.sign_name.clone(),
            template_code: s.template_code.clone(),
            template_param: s.template_param.clone(),
            timeout: Duration::from_secs(s.timeout_secs),
        })
    }

    /// The longest one try may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The request's parameters, in the query string.
    fn params(&self, msg: &Outgoing) -> Vec<(&'static str, String)> {
        let vars: serde_json::Map<String, serde_json::Value> = self
            .template_param
            .iter()
            .map(|(k, v)| (k.clone(), v.replace("{message}", &msg.message).into()))
            .collect();
        vec![
            ("OutId", msg.send_key.clone()),
            ("PhoneNumbers", msg.phone.clone()),
            ("SignName", self.sign_name.clone()),
            ("TemplateCode", self.template_code.clone()),
            ("TemplateParam", serde_json::Value::Object(vars).to_string()),
        ]
    }

    pub async fn send(&self, msg: &Outgoing) -> Result<(), SendError> {
        let query = canonical_query(&self.params(msg));
        let date = Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let nonce = ulid::Ulid::generate().to_string();
        let headers = [
            ("host", self.host.clone()),
            ("x-acs-action", ACTION.to_owned()),
            ("x-acs-content-sha256", hex(&Sha256::digest(b""))),
            ("x-acs-date", date),
            ("x-acs-signature-nonce", nonce),
            ("x-acs-version", VERSION.to_owned()),
        ];
        let authorization =
            authorization(&self.key_id, self.secret.expose(), "POST", &query, &headers);
        let mut req = self
            .http
            .post(format!("{}/?{query}", self.endpoint))
            .header("Authorization", authorization);
        for (name, value) in headers.iter().filter(|(n, _)| *n != "host") {
            req = req.header(*name, value);
        }
        let response = req.send().await.map_err(|e| {
            if e.is_connect() {
                SendError::NotDelivered(format!("cannot connect: {}", e.without_url()))
            } else if e.is_timeout() {
                SendError::Uncertain("timed out waiting for Alibaba Cloud SMS".into())
            } else {
                SendError::Uncertain(e.without_url().to_string())
            }
        })?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        let answer: Option<Answer> = serde_json::from_str(&body).ok();
        let code = answer.as_ref().and_then(|a| a.code.clone());
        let message = answer.and_then(|a| a.message).unwrap_or_default();
        match code.as_deref() {
            Some("OK") if status.is_success() => Ok(()),
            Some(code) => Err(classify(code, &message)),
            None if status.is_server_error() || status.as_u16() == 429 => {
                Err(SendError::NotDelivered(format!("HTTP {status}")))
            }
            // Accepted or not, we cannot tell from an answer we cannot read.
            None => Err(SendError::Uncertain(format!(
                "HTTP {status}: unreadable answer {}",
                body.chars().take(120).collect::<String>()
            ))),
        }
    }
}

/// What an error code of SendSms means for the revisit.
fn classify(code: &str, message: &str) -> SendError {
    let text = format!("{code}: {message}");
    let retry = matches!(
        code,
        // Per-number flow control (1 a minute, 5 an hour, 10 a day), daily limits, the
        // platform's own errors and throttling, and an account that needs topping up.
        "isv.BUSINESS_LIMIT_CONTROL"
            | "isv.DAY_LIMIT_CONTROL"
            | "isv.AMOUNT_NOT_ENOUGH"
            | "isv.OUT_OF_SERVICE"
            | "ServiceUnavailable"
            | "InternalError"
    ) || code.starts_with("isp.")
        || code.starts_with("Throttling");
    if retry {
        SendError::NotDelivered(text)
    } else {
        SendError::Rejected(text)
    }
}

/// `Authorization` of Alibaba Cloud's V3 signature for an RPC call whose parameters are all in
/// `query` and whose body is empty. `headers` are the signed headers, names in lower case.
pub fn authorization(
    key_id: &str,
    secret: &str,
    method: &str,
    query: &str,
    headers: &[(&str, String)],
) -> String {
    let mut sorted: Vec<&(&str, String)> = headers.iter().collect();
    sorted.sort_by_key(|(name, _)| *name);
    let canonical_headers: String = sorted
        .iter()
        .map(|(name, value)| format!("{name}:{}\n", value.trim()))
        .collect();
    let signed: Vec<&str> = sorted.iter().map(|(name, _)| *name).collect();
    let signed = signed.join(";");
    let payload = headers
        .iter()
        .find(|(n, _)| *n == "x-acs-content-sha256")
        .map_or_else(|| hex(&Sha256::digest(b"")), |(_, v)| v.clone());
    let canonical_request =
        format!("{method}\n/\n{query}\n{canonical_headers}\n{signed}\n{payload}");
    let to_sign = format!(
        "{ALGORITHM}\n{}",
        hex(&Sha256::digest(canonical_request.as_bytes()))
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(to_sign.as_bytes());
    let signature = hex(&mac.finalize().into_bytes());
    format!("{ALGORITHM} Credential={key_id},SignedHeaders={signed},Signature={signature}")
}

/// Parameters sorted by name, each name and value percent-encoded by RFC 3986 (only
/// `A–Z a–z 0–9 - _ . ~` stay as they are; a space is `%20`), joined by `&`.
pub fn canonical_query(params: &[(&str, String)]) -> String {
    let mut sorted: Vec<&(&str, String)> = params.iter().collect();
    sorted.sort_by_key(|(name, _)| *name);
    sorted
        .iter()
        .map(|(name, value)| format!("{}={}", encode(name), encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_follows_rfc_3986() {
        assert_eq!(encode("a b*c~d-e_f.g"), "a%20b%2Ac~d-e_f.g");
        assert_eq!(encode("生"), "%E7%94%9F");
        assert_eq!(encode("{\"k\":1}"), "%7B%22k%22%3A1%7D");
        assert_eq!(
            canonical_query(&[("b", "2".into()), ("A", "x y".into()), ("a", "1".into())]),
            "A=x%20y&a=1&b=2"
        );
    }

    #[test]
    fn the_authorization_names_its_signed_headers_in_order() {
        let headers = [
            ("x-acs-version", VERSION.to_owned()),
            ("host", "dysmsapi.aliyuncs.com".to_owned()),
            ("x-acs-action", ACTION.to_owned()),
        ];
        let a = authorization("AK", "secret", "POST", "A=1", &headers);
        assert!(
            a.starts_with(
                "ACS3-HMAC-SHA256 Credential=AK,SignedHeaders=host;x-acs-action;x-acs-version,Signature="
            ),
            "{a}"
        );
        let sig = a.rsplit('=').next().unwrap();
        assert_eq!(sig.len(), 64);
        // Any change to what is signed changes the signature.
        assert_ne!(a, authorization("AK", "secret", "POST", "A=2", &headers));
        assert_ne!(a, authorization("AK", "other", "POST", "A=1", &headers));
    }

    #[test]
    fn error_codes_map_to_retry_or_rejection() {
        assert!(matches!(
            classify("isv.BUSINESS_LIMIT_CONTROL", "触发分钟级流控"),
            SendError::NotDelivered(_)
        ));
        assert!(matches!(
            classify("isp.SYSTEM_ERROR", ""),
            SendError::NotDelivered(_)
        ));
        assert!(matches!(
            classify("Throttling.User", ""),
            SendError::NotDelivered(_)
        ));
        for permanent in [
            "isv.MOBILE_NUMBER_ILLEGAL",
            "isv.SMS_TEMPLATE_ILLEGAL",
            "isv.SMS_SIGNATURE_ILLEGAL",
            "isv.TEMPLATE_MISSING_PARAMETERS",
            "isv.PARAM_LENGTH_LIMIT",
            "isv.BLACK_KEY_CONTROL_LIMIT",
            "SignatureDoesNotMatch",
            "InvalidAccessKeyId.NotFound",
        ] {
            assert!(
                matches!(classify(permanent, ""), SendError::Rejected(_)),
                "{permanent}"
            );
        }
    }
}
