//! What the authorization server remembers between steps of the
//! authorization code flow: the code (single use, a minute long) and the
//! refresh token family it starts (rotated on every use; a reused refresh
//! token revokes the whole family, RFC 9700 §4.14.2).

use serde::{Deserialize, Serialize};

/// How long an authorization code is valid, seconds.
pub const CODE_TTL: i64 = 60;
/// How long a refresh token is valid, seconds.
pub const REFRESH_TTL: i64 = 30 * 86_400;

/// An issued authorization code (stored by the hash of the code).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationCode {
    /// The client it was issued to.
    pub client_id: String,
    /// The user who consented.
    pub user_id: String,
    /// The redirect URI of the authorization request (must be repeated exactly).
    pub redirect_uri: String,
    /// The S256 PKCE challenge.
    pub code_challenge: String,
    /// Granted scopes, space-separated.
    pub scope: String,
    /// The resource (audience), if the request named one.
    pub resource: Option<String>,
    /// The user's accounts the application may act in (`/` for all).
    #[serde(default)]
    pub accounts: Vec<String>,
    /// Expiry.
    pub expires_at: i64,
}

/// One refresh token of a family (stored by the hash of the token).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshGrant {
    /// All rotations of one grant share a family; reuse revokes it.
    pub family_id: String,
    /// The client.
    pub client_id: String,
    /// The user.
    pub user_id: String,
    /// Granted scopes, space-separated.
    pub scope: String,
    /// The resource (audience).
    pub resource: Option<String>,
    /// The user's accounts the application may act in.
    #[serde(default)]
    pub accounts: Vec<String>,
    /// Expiry.
    pub expires_at: i64,
    /// When this token of the family was issued (a disconnect refuses older ones).
    #[serde(default)]
    pub issued_at: i64,
    /// The same in milliseconds (0 in tokens stored before it was kept).
    #[serde(default)]
    pub issued_at_ms: i64,
}

impl RefreshGrant {
    /// When it was issued, in milliseconds; a token stored without the
    /// milliseconds counts as issued at the end of its second (so a
    /// disconnect in that second still ends it).
    pub fn issued_ms(&self) -> i64 {
        if self.issued_at_ms > 0 {
            self.issued_at_ms
        } else {
            self.issued_at.saturating_mul(1000).saturating_add(999)
        }
    }
}

/// An application a user has let act for them (one per user and client).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectedApp {
    /// The user.
    pub user_id: String,
    /// The client.
    pub client_id: String,
    /// The client's name, if it gave one.
    pub client_name: Option<String>,
    /// Scopes last granted.
    pub scope: String,
    /// The resource last granted.
    pub resource: Option<String>,
    /// The accounts last granted.
    #[serde(default)]
    pub accounts: Vec<String>,
    /// First consent.
    pub granted_at: i64,
    /// When it last obtained tokens.
    pub last_used_at: Option<i64>,
}

/// What presenting a refresh token found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefreshUse {
    /// A live token, now spent: rotate it.
    Fresh(RefreshGrant),
    /// A spent token presented again: its family is now revoked.
    Reused(RefreshGrant),
    /// Unknown, expired or revoked.
    Invalid,
}
