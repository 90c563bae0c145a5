//! Bearer tokens: made by `revisit tokens create`, kept as SHA-256 digests, checked on every
//! request. A staff token reaches only its own institution: a request naming another one is
//! refused before anything is looked up, so the answer says nothing about what exists there.

use std::sync::Arc;

use axum::{extract::FromRequestParts, http::request::Parts};
use chrono::Utc;
use sha2::{Digest, Sha256};

use super::error::{ApiError, ApiResult};
use crate::{
    app::App,
    store::{
        access::{Principal, Role},
        directory::InstitutionRef,
    },
};

/// The secret's visible start (`rv_` and 7 characters), kept to tell tokens apart.
const PREFIX_LEN: usize = 10;

/// A new secret (`rv_` and 64 hex digits from the OS's random source) and its prefix.
pub fn new_secret() -> anyhow::Result<(String, String)> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no random source: {e}"))?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let secret = format!("rv_{hex}");
    let prefix = secret[..PREFIX_LEN].to_owned();
    Ok((secret, prefix))
}

/// What the store keeps of a secret.
pub fn digest(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The holder of the request's token.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

/// The token of a request, if it has one (`Authorization: Bearer …`).
fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The principal of a request's token; `None` without a token, an error for a bad one.
pub async fn principal(app: &App, parts: &Parts) -> ApiResult<Option<Principal>> {
    let Some(token) = bearer(parts) else {
        return Ok(None);
    };
    let Some(p) = app.store.token_principal(&digest(token)).await? else {
        return Err(ApiError::unauthorized("令牌无效或已吊销"));
    };
    // Fail closed: a staff token that names no institution sees nothing, whatever the
    // database's constraints allow.
    if p.role == Role::Staff && p.institution_id.is_none() {
        tracing::warn!(
            token = p.token_id,
            "staff token without an institution refused"
        );
        return Err(ApiError::unauthorized("令牌无效：员工令牌未绑定机构"));
    }
    // Last use is recorded at most every five minutes, not on every request.
    // Best effort: a busy store must not fail the request over bookkeeping.
    if p.last_used_at
        .is_none_or(|t| Utc::now() - t > chrono::Duration::minutes(5))
        && let Err(e) = app.store.touch_token(p.token_id).await
    {
        tracing::warn!(error = %e, token = p.token_id, "could not record the token's use");
    }
    Ok(Some(p))
}

impl FromRequestParts<Arc<App>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> ApiResult<Self> {
        match principal(app, parts).await? {
            Some(p) => Ok(Caller(p)),
            None => Err(ApiError::unauthorized(
                "缺少令牌：请在 Authorization 头中以 Bearer 方式提供",
            )),
        }
    }
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        self.0.role == Role::Admin
    }

    pub fn require_admin(&self) -> ApiResult<()> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::admin_only())
        }
    }

    /// The institution a staff token is limited to; `None` for an admin.
    pub fn scope(&self) -> Option<i64> {
        match self.0.role {
            Role::Admin => None,
            // `principal` refuses a staff token without an institution; were one to get here,
            // id 0 (no institution has it) keeps it from seeing anything.
            Role::Staff => Some(self.0.institution_id.unwrap_or(0)),
        }
    }

    /// Whether this caller may see what belongs to institution `id`.
    pub fn sees(&self, institution_id: i64) -> bool {
        self.scope().is_none_or(|own| own == institution_id)
    }

    /// The institution named `code`, if this caller may see it: a staff token naming another
    /// institution is refused before the code is looked up.
    pub async fn institution(&self, app: &App, code: &str) -> ApiResult<InstitutionRef> {
        if !self.is_admin() && self.0.institution_code.as_deref() != Some(code) {
            return Err(ApiError::forbidden());
        }
        app.store
            .institution(code)
            .await?
            .ok_or_else(|| ApiError::not_found("机构"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_and_only_their_digest_is_kept() {
        let (a, prefix) = new_secret().unwrap();
        let (b, _) = new_secret().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("rv_") && a.len() == 67);
        assert!(a.starts_with(&prefix));
        assert_eq!(digest(&a).len(), 64);
        assert_ne!(digest(&a), digest(&b));
        assert!(!digest(&a).contains(&a[3..]));
    }

    #[test]
    fn a_staff_principal_without_an_institution_sees_nothing() {
        let orphan = Caller(Principal {
            token_id: 1,
            role: Role::Staff,
            institution_id: None,
            institution_code: None,
            last_used_at: None,
        });
        assert_eq!(orphan.scope(), Some(0));
        assert!(!orphan.sees(1) && !orphan.sees(2));
        let admin = Caller(Principal {
            role: Role::Admin,
            ..orphan.0.clone()
        });
        assert!(admin.scope().is_none() && admin.sees(2));
    }
}
