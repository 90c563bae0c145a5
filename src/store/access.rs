//! Who may use the REST API and the console: bearer tokens, kept as SHA-256 digests. A staff
//! token belongs to one institution and sees only it; an admin token sees the whole chain.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::StoreResult;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// One institution's staff: its customers, revisits, dashboard and imports.
    Staff,
    /// The chain's operators: every institution, the jobs, initialisation.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Staff => "staff",
            Self::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "staff" => Some(Self::Staff),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

/// A token to store: its digest, never the secret.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub hash: String,
    pub prefix: String,
    pub role: Role,
    pub institution_id: Option<i64>,
    pub label: Option<String>,
    /// Days until it expires; `None`: until revoked.
    pub expires_in_days: Option<u32>,
}

/// The holder of a valid (not revoked) token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub token_id: i64,
    pub role: Role,
    pub institution_id: Option<i64>,
    pub institution_code: Option<String>,
    /// When the token was last seen, to refresh it now and then rather than on every request.
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A token as `revisit tokens list` shows it.
#[derive(Debug, Clone)]
pub struct TokenRow {
    pub id: i64,
    pub prefix: String,
    pub role: Role,
    pub institution_code: Option<String>,
    pub label: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// The token rows a store reads, before the role is parsed.
pub(crate) type TokenTuple = (
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
);

pub(crate) fn token_row(t: TokenTuple) -> TokenRow {
    TokenRow {
        id: t.0,
        prefix: t.1,
        role: Role::parse(&t.2).unwrap_or(Role::Staff),
        institution_code: t.3,
        label: t.4,
        created_at: t.5,
        last_used_at: t.6,
        revoked_at: t.7,
        expires_at: t.8,
    }
}

/// (id, role, institution id, institution code, last used) of a token found by its digest.
pub(crate) type PrincipalTuple = (
    i64,
    String,
    Option<i64>,
    Option<String>,
    Option<DateTime<Utc>>,
);

/// A principal from its row; a role this build does not know grants nothing.
pub(crate) fn principal(t: PrincipalTuple) -> Option<Principal> {
    Some(Principal {
        token_id: t.0,
        role: Role::parse(&t.1)?,
        institution_id: t.2,
        institution_code: t.3,
        last_used_at: t.4,
    })
}

/// The tokens of the API.
#[async_trait]
pub trait Access: Send + Sync {
    /// Stores a token; returns its id.
    async fn create_token(&self, token: &NewToken) -> StoreResult<i64>;
    /// The holder of the token with this digest, unless it is revoked, expired or unknown.
    async fn token_principal(&self, hash: &str) -> StoreResult<Option<Principal>>;
    /// Records that a token was used now.
    async fn touch_token(&self, id: i64) -> StoreResult<()>;
    /// Every token, newest first.
    async fn list_tokens(&self) -> StoreResult<Vec<TokenRow>>;
    /// Revokes a token; false if there is no such token or it was revoked already.
    async fn revoke_token(&self, id: i64) -> StoreResult<bool>;
}
