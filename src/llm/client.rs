//! An OpenAI-compatible `chat/completions` client.
//!
//! Within one job attempt a call is tried up to `max_tries_per_attempt` times on 429, 5xx,
//! timeouts and connection errors, waiting as `Retry-After` says (capped) or with a short
//! doubling delay. What still fails is returned as retryable, with the server's wait as a hint,
//! and the job's stored backoff takes over. 4xx other than 429 are permanent.

use std::{sync::Arc, time::Duration};

use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tracing::{debug, warn};

use crate::config::LlmSettings;

/// Longest wait inside one attempt; longer `Retry-After`s go to the job's backoff.
const MAX_INLINE_WAIT: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// Worth another try later: overloaded, timed out, unreachable.
    #[error("LLM unavailable: {message}")]
    Unavailable {
        message: String,
        retry_after: Option<Duration>,
    },
    /// Will not work by trying again: bad key, bad request, unusable answer.
    #[error("LLM refused: {0}")]
    Refused(String),
}

#[derive(Clone)]
pub struct LlmClient {
    http: reqwest::Client,
    settings: Arc<LlmSettings>,
    slots: Arc<Semaphore>,
}

#[derive(Serialize)]
struct ChatRequest<'a> {
    model: &'a str,
    messages: [ChatMessage<'a>; 2],
    temperature: f32,
    max_tokens: u32,
    stream: bool,
    /// DeepSeek's V4 models think before answering unless told not to; a greeting needs no
    /// reasoning, and thinking would spend the token budget. Left out when not configured,
    /// for APIs that reject unknown fields.
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking: Option<Thinking<'a>>,
}

#[derive(Serialize)]
struct Thinking<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
}

#[derive(Serialize)]
struct ChatMessage<'a> {
    role: &'a str,
    content: &'a str,
}

#[derive(Deserialize)]
struct ChatResponse {
    choices: Vec<Choice>,
    /// What the call used, when the API says (OpenAI and DeepSeek do).
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

#[derive(Deserialize)]
struct Choice {
    message: AnswerMessage,
}

#[derive(Deserialize)]
struct AnswerMessage {
    content: Option<String>,
}

impl LlmClient {
    pub fn new(settings: &LlmSettings) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(settings.timeout_secs))
            .connect_timeout(Duration::from_secs(settings.timeout_secs.min(10)))
            .build()?;
        Ok(Self {
            http,
            slots: Arc::new(Semaphore::new(settings.max_concurrent_calls)),
            settings: Arc::new(settings.clone()),
        })
    }

    pub fn model(&self) -> &str {
        &self.settings.model
    }

    /// Whether the LLM answers: `GET …/models` beside the chat URL (every OpenAI-compatible
    /// API has it), with the key. A server without that path still answered; a refused key or
    /// no answer at all is the error, in Chinese.
    pub async fn reachable(&self) -> Result<(), String> {
        let mut url = reqwest::Url::parse(&self.settings.api_url).map_err(|e| e.to_string())?;
        if let Some(base) = url.path().strip_suffix("/chat/completions") {
            let models = format!("{base}/models");
            url.set_path(&models);
        }
        let mut request = self.http.get(url).timeout(Duration::from_secs(10));
        if !self.settings.api_key.is_empty() {
            request = request.bearer_auth(self.settings.api_key.expose());
        }
        match request.send().await {
            Ok(r) if matches!(r.status().as_u16(), 401 | 403) => Err(format!(
                "密钥被拒绝（HTTP {}）：请检查 LLM_API_KEY",
                r.status().as_u16()
            )),
            Ok(_) => Ok(()),
            Err(e) if e.is_timeout() => Err("10 秒内没有应答".to_owned()),
            Err(e) => Err(format!(
                "无法连接：{}",
                crate::domain::privacy::redact_secrets(&e.to_string())
            )),
        }
    }

    /// One chat completion: the system and user prompts in, the answer's text out.
    pub async fn complete(&self, system: &str, user: &str) -> Result<String, LlmError> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| LlmError::Refused("client closed".into()))?;
        let body = ChatRequest {
            model: &self.settings.model,
            messages: [
                ChatMessage {
                    role: "system",
                    content: system,
                },
                ChatMessage {
                    role: "user",
                    content: user,
                },
            ],
            temperature: self.settings.temperature,
            max_tokens: 200,
            stream: false,
            thinking: Some(self.settings.thinking.as_str())
                .filter(|t| !t.is_empty())
                .map(|kind| Thinking { kind }),
        };
        let tries = self.settings.max_tries_per_attempt;
        let mut last = None;
        for n in 1..=tries {
            match self.try_once(&body).await {
                Ok(text) => return Ok(text),
                Err(LlmError::Unavailable {
                    message,
                    retry_after,
                }) => {
                    let wait = retry_after.unwrap_or(Duration::from_millis(500 * (1 << (n - 1))));
                    warn!(try_no = n, tries, error = %message, wait_ms = wait.as_millis() as u64, "LLM call failed");
                    if n == tries || wait > MAX_INLINE_WAIT {
                        return Err(LlmError::Unavailable {
                            message,
                            retry_after,
                        });
                    }
                    last = Some(message);
                    tokio::time::sleep(wait).await;
                }
                Err(refused) => return Err(refused),
            }
        }
        Err(LlmError::Unavailable {
            message: last.unwrap_or_else(|| "no attempt made".into()),
            retry_after: None,
        })
    }

    /// One request, counted in the metrics by how it ended.
    async fn try_once(&self, body: &ChatRequest<'_>) -> Result<String, LlmError> {
        let started = std::time::Instant::now();
        let result = self.request(body).await;
        crate::metrics::llm_call(
            match &result {
                Ok(_) => "ok",
                Err(LlmError::Unavailable { .. }) => "unavailable",
                Err(_) => "refused",
            },
            started,
        );
        result
    }

    async fn request(&self, body: &ChatRequest<'_>) -> Result<String, LlmError> {
        let started = std::time::Instant::now();
        let mut request = self.http.post(&self.settings.api_url).json(body);
        // A self-hosted model may take no key: then no Authorization header at all.
        if !self.settings.api_key.is_empty() {
            request = request.bearer_auth(self.settings.api_key.expose());
        }
        let response = request.send().await.map_err(|e| LlmError::Unavailable {
            message: if e.is_timeout() {
                format!("timed out after {}s", self.settings.timeout_secs)
            } else {
                format!("request failed: {}", without_url(&e))
            },
            retry_after: None,
        })?;
        let status = response.status();
        debug!(
            status = status.as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "LLM answered"
        );
        if status.as_u16() == 429 || status.is_server_error() {
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            return Err(LlmError::Unavailable {
                message: format!("HTTP {status}"),
                retry_after,
            });
        }
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            return Err(LlmError::Refused(format!(
                "HTTP {status}: {}",
                text.chars().take(200).collect::<String>()
            )));
        }
        let parsed: ChatResponse = response.json().await.map_err(|e| {
            if e.is_timeout() {
                LlmError::Unavailable {
                    message: "timed out reading the answer".into(),
                    retry_after: None,
                }
            } else {
                LlmError::Refused(format!(
                    "answer is not a chat completion: {}",
                    without_url(&e)
                ))
            }
        })?;
        if let Some(u) = &parsed.usage {
            crate::metrics::llm_tokens(u.prompt_tokens, u.completion_tokens);
        }
        parsed
            .choices
            .into_iter()
            .next()
            .and_then(|c| c.message.content)
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| LlmError::Refused("answer has no content".into()))
    }
}

/// reqwest errors print the URL; the API URL may carry a key in its query string.
fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(url) = e.url() {
        s = s.replace(url.as_str(), "<api_url>");
    }
    s
}
