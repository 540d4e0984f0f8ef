//! Access token claims (RFC 9068, JWT profile for OAuth 2.0 access tokens).
//! The header's `typ` is `at+jwt`; the claims say who (`sub`), through which
//! client (`client_id`), acting as which agent (`act`, RFC 8693), for which
//! resource (`aud`), in which of the subject's accounts (`accounts`) and with
//! which scopes.

use serde::{Deserialize, Serialize};

/// The JOSE `typ` of access tokens.
pub const TYP: &str = "at+jwt";

/// The actor a token acts through (RFC 8693 §4.1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The acting party, e.g. the agent's client id.
    pub sub: String,
}

/// RFC 9068 claims.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    /// Issuer.
    pub iss: String,
    /// Subject: the user, or the service or agent principal behind a
    /// pre-registered client for client credentials.
    pub sub: String,
    /// Audience: the resource the token is for.
    pub aud: String,
    /// Expiry (seconds since the epoch).
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// Issued at, in milliseconds: a disconnect refuses the tokens issued
    /// up to its own millisecond, not up to the end of its second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat_ms: Option<i64>,
    /// Not before (Laissez does not set it; a token carrying one in the
    /// future is refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Unique id, for revocation.
    pub jti: String,
    /// The client the token was issued to.
    pub client_id: String,
    /// Space-separated scopes.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scope: String,
    /// The subject's accounts the token may act in (`/` for every account
    /// the subject can reach); empty when the consent named none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<String>,
    /// The agent acting for the subject, when not the subject itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Actor>,
}

impl AccessTokenClaims {
    /// When it was issued, in milliseconds: `iat_ms` when it agrees with
    /// `iat`, else the start of the `iat` second (fail closed: a disconnect
    /// anywhere in that second ends it).
    pub fn issued_ms(&self) -> i64 {
        match self.iat_ms {
            Some(ms) if ms.div_euclid(1000) == self.iat => ms,
            _ => self.iat.saturating_mul(1000),
        }
    }
}
