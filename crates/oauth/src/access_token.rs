//! Access token claims (RFC 9068, JWT profile for OAuth 2.0 access tokens).
//! The header's `typ` is `at+jwt`; the claims say who (`sub`), through which
//! client (`client_id`), acting as which agent (`act`, RFC 8693), for which
//! resource (`aud`), in which of the subject's accounts (`accounts`) and with
//! which scopes.

use serde::{Deserialize, Serialize};

/// The JOSE `typ` of access tokens.
pub const TYP: &str = "at+jwt";

/// The actor a token acts through (RFC 8693 §4.1): the current actor, and
/// in `act` the one before it (a sub-agent's token names its agent there).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The acting party, e.g. the agent's client id or principal id.
    pub sub: String,
    /// The actor before this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Box<Actor>>,
}

impl Actor {
    /// The actors from the current one back to the first.
    pub fn chain(&self) -> Vec<&str> {
        let mut out = vec![self.sub.as_str()];
        let mut next = self.act.as_deref();
        while let Some(actor) = next {
            if out.len() >= 16 {
                break;
            }
            out.push(actor.sub.as_str());
            next = actor.act.as_deref();
        }
        out
    }
}

/// The key a token is bound to (RFC 7800 `cnf`): a DPoP key's RFC 7638
/// thumbprint (RFC 9449 `jkt`), or a client certificate's SHA-256
/// thumbprint (RFC 8705 `x5t#S256`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// DPoP key thumbprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jkt: Option<String>,
    /// Client certificate thumbprint.
    #[serde(rename = "x5t#S256", default, skip_serializing_if = "Option::is_none")]
    pub x5t_s256: Option<String>,
}

/// RFC 9068 claims.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
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
    /// The key the token is bound to: presented without proof of it, the
    /// token is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
    /// The task credential this token is the app form of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// The tasks above it, root first: ending any of them ends this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub task_chain: Vec<String>,
    /// A random value unique to this token (task tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// base64url SHA-256 of the task's granted `permission@resource` list,
    /// newline-separated in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grants_hash: Option<String>,
    /// Client IP ranges the token may be used from; empty means anywhere.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_ips: Vec<String>,
}

impl AccessTokenClaims {
    /// The DPoP key thumbprint it is bound to.
    pub fn bound_jkt(&self) -> Option<&str> {
        self.cnf.as_ref().and_then(|c| c.jkt.as_deref())
    }

    /// Whether it is bound to a key of any kind (so a bearer use is refused).
    pub fn is_bound(&self) -> bool {
        self.cnf
            .as_ref()
            .is_some_and(|c| c.jkt.is_some() || c.x5t_s256.is_some())
    }

    /// Every task whose end ends this token: its chain and its own.
    pub fn tasks(&self) -> impl Iterator<Item = &str> {
        self.task_chain
            .iter()
            .map(String::as_str)
            .chain(self.task.as_deref())
    }

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
