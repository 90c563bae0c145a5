//! The API's endpoints, a file per area; [`crate::api::router`] puts them together.

pub mod analytics;
pub mod consent;
pub mod customers;
pub mod imports;
pub mod jobs;
pub mod queues;
pub mod reminders;
pub mod revisits;
pub mod search;
pub mod system;
pub mod tasks;

use axum::{
    body::Bytes,
    extract::{FromRequest, Request},
    http::StatusCode,
};
use serde::de::DeserializeOwned;

use super::error::{ApiError, ApiResult};

/// A JSON request body that may be left out; a bad one is a 400 naming the field at fault,
/// and one over the size limit a 413.
pub struct JsonBody<T>(pub Option<T>);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> ApiResult<Self> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| body_error(e.status()))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(None));
        }
        let de = &mut serde_json::Deserializer::from_slice(&bytes);
        serde_path_to_error::deserialize(de)
            .map(|v| Self(Some(v)))
            .map_err(|e| {
                let path = e.path().to_string();
                ApiError {
                    param: (path != ".").then_some(path),
                    ..ApiError::bad_body(format!("请求体无法解析：{}", e.inner()))
                }
            })
    }
}

impl<T: Default> JsonBody<T> {
    /// The body, or the defaults when it was left out.
    pub fn or_default(self) -> T {
        self.0.unwrap_or_default()
    }
}

/// The error for a body that could not be read.
pub fn body_error(status: StatusCode) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(status, "too_large", "请求体超过大小限制")
    } else {
        ApiError::bad_body("请求体无法读取")
    }
}

/// A numeric id from the path.
pub fn parse_id(raw: &str, name: &str) -> ApiResult<i64> {
    raw.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::bad_param(name, format!("{name} 应为正整数，收到 {raw:?}")))
}
