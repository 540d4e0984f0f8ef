//! Local access token verification: ES256 signatures against the issuer's
//! JWKS (fetched at start and again when an unknown key id appears, so key
//! rotation needs no restart), `typ: at+jwt`, issuer, expiry, audience (this
//! gate's resource or a path below it), and the issuer's revocation feed,
//! followed in the background with long polls: the issuer answers as soon as
//! something is revoked and waits for this gate's acknowledgement (its next
//! poll) before it confirms the revocation, so a revoked token is refused on
//! the next request.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use laissez_oauth::access_token::{AccessTokenClaims, TYP};
use laissez_oauth::resource::Resource;

use crate::{GateConfig, GateError};

/// How long one poll of the revocation feed waits for a change, seconds.
const FEED_WAIT: u64 = 25;
/// The pause before asking again after the feed could not be read.
const FEED_RETRY: Duration = Duration::from_millis(500);
/// Least time between two JWKS fetches caused by unknown key ids (a new key
/// after rotation is picked up at once; a flood of bogus key ids costs one
/// fetch a second).
const JWKS_REFETCH: Duration = Duration::from_secs(1);

/// Why a token was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Not a well-formed access token of this issuer.
    #[error("the access token is not valid: {0}")]
    Invalid(String),
    /// Past its expiry.
    #[error("the access token has expired")]
    Expired,
    /// Issued for another resource.
    #[error("the access token was issued for another resource")]
    WrongAudience,
    /// Revoked.
    #[error("the access token was revoked")]
    Revoked,
}

/// Verifies access tokens for one gate.
pub struct Verifier {
    issuer: String,
    jwks_uri: String,
    revoked_uri: String,
    audience: String,
    http: reqwest::Client,
    /// The issuer's keys, and when an unknown key id last made us refetch them.
    keys: RwLock<(HashMap<String, DecodingKey>, Option<Instant>)>,
    revoked: RwLock<Revoked>,
    verified: RwLock<HashMap<String, AccessTokenClaims>>,
    /// This gate's id in the feed (for the issuer to wait for its acknowledgement).
    gate_id: String,
}

/// Verified tokens kept (a few MB at most).
const VERIFIED_CACHE: usize = 10_000;

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// What the revocation feed said last.
#[derive(Default)]
struct Revoked {
    jtis: HashSet<String>,
    /// (user, client) → tokens issued at or before this time are refused.
    disconnected: HashMap<(String, String), i64>,
    /// Users who may no longer act.
    deactivated: HashSet<String>,
    /// The feed version this state is from.
    version: Option<String>,
}

async fn fetch_json(http: &reqwest::Client, url: &str) -> Result<serde_json::Value, String> {
    let response = http
        .get(url)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("{url}: HTTP {}", response.status()));
    }
    response.json().await.map_err(|e| format!("{url}: {e}"))
}

fn decoding_keys(jwks: serde_json::Value) -> Result<HashMap<String, DecodingKey>, String> {
    let set: JwkSet = serde_json::from_value(jwks).map_err(|e| format!("not a JWK Set: {e}"))?;
    Ok(set
        .keys
        .iter()
        .filter_map(|jwk| Some((jwk.common.key_id.clone()?, DecodingKey::from_jwk(jwk).ok()?)))
        .collect())
}

impl Verifier {
    /// Discovers the issuer's JWKS and loads its keys.
    pub async fn new(config: &GateConfig) -> Result<Verifier, GateError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| GateError::Issuer(e.to_string()))?;
        let base = config.issuer.trim_end_matches('/');
        let metadata = fetch_json(
            &http,
            &format!("{base}/.well-known/oauth-authorization-server"),
        )
        .await
        .map_err(GateError::Issuer)?;
        if metadata["issuer"] != config.issuer.as_str() {
            return Err(GateError::Issuer(format!(
                "the metadata's issuer {} is not {}",
                metadata["issuer"], config.issuer
            )));
        }
        let jwks_uri = metadata["jwks_uri"]
            .as_str()
            .ok_or_else(|| GateError::Issuer("the metadata has no jwks_uri".into()))?
            .to_owned();
        let keys = decoding_keys(
            fetch_json(&http, &jwks_uri)
                .await
                .map_err(GateError::Issuer)?,
        )
        .map_err(GateError::Issuer)?;
        let audience = Resource::parse(config.resource.as_str())
            .map_err(|e| GateError::Config(e.description))?
            .to_string();
        Ok(Verifier {
            issuer: config.issuer.clone(),
            jwks_uri,
            revoked_uri: format!("{base}/oauth/revoked"),
            audience,
            http,
            keys: RwLock::new((keys, None)),
            revoked: RwLock::new(Revoked::default()),
            verified: RwLock::new(HashMap::new()),
            gate_id: laissez_token::random_base62(16)
                .map_err(|e| GateError::Issuer(e.to_string()))?,
        })
    }

    /// Follows the revocation feed in the background, for as long as the verifier lives.
    pub fn follow_revocations(self: Arc<Self>) {
        let weak = Arc::downgrade(&self);
        drop(self);
        tokio::spawn(async move {
            loop {
                let Some(verifier) = weak.upgrade() else {
                    return;
                };
                let read = verifier.poll_revocations(FEED_WAIT).await;
                drop(verifier);
                if !read {
                    tokio::time::sleep(FEED_RETRY).await;
                }
            }
        });
    }

    /// Asks the feed for anything newer than what this gate holds, waiting
    /// up to `wait` seconds; returns whether the feed was read.
    pub async fn poll_revocations(&self, wait: u64) -> bool {
        let held = self
            .revoked
            .read()
            .ok()
            .and_then(|r| r.version.clone())
            .unwrap_or_default();
        let mut url = format!("{}?gate={}&wait={wait}", self.revoked_uri, self.gate_id);
        if !held.is_empty() {
            url.push_str(&format!("&after={held}"));
        }
        let response = self
            .http
            .get(&url)
            .timeout(Duration::from_secs(wait + 10))
            .send()
            .await;
        let fetched = match response {
            Ok(r) if r.status().is_success() => r
                .json::<serde_json::Value>()
                .await
                .map_err(|e| e.to_string()),
            Ok(r) => Err(format!("HTTP {}", r.status())),
            Err(e) => Err(e.to_string()),
        };
        match fetched {
            Ok(feed) => {
                let jtis: HashSet<String> = feed["revoked"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|j| j.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                let disconnected = feed["disconnected"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|g| {
                                let key = (
                                    g["sub"].as_str()?.to_owned(),
                                    g["client_id"].as_str()?.to_owned(),
                                );
                                Some((key, g["issued_before"].as_i64()?))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let deactivated = feed["deactivated"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|u| u.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                let version = feed["version"].as_str().map(str::to_owned);
                if let Ok(mut revoked) = self.revoked.write() {
                    *revoked = Revoked {
                        jtis,
                        disconnected,
                        deactivated,
                        version,
                    };
                }
                true
            }
            Err(error) => {
                tracing::warn!(%error, "cannot read the revocation feed; keeping the last one");
                false
            }
        }
    }

    async fn key(&self, kid: &str) -> Option<DecodingKey> {
        if let Some(key) = self.keys.read().ok()?.0.get(kid) {
            return Some(key.clone());
        }
        let stale = self
            .keys
            .read()
            .ok()?
            .1
            .is_none_or(|at| at.elapsed() >= JWKS_REFETCH);
        if stale
            && let Ok(keys) = fetch_json(&self.http, &self.jwks_uri)
                .await
                .and_then(decoding_keys)
            && let Ok(mut guard) = self.keys.write()
        {
            *guard = (keys, Some(Instant::now()));
        }
        self.keys.read().ok()?.0.get(kid).cloned()
    }

    /// A token whose signature was verified before and that has not expired.
    /// Keyed by the whole token, so a hit proves the exact bytes were verified.
    fn cached(&self, token: &str) -> Option<AccessTokenClaims> {
        let cache = self.verified.read().ok()?;
        let claims = cache.get(token)?;
        (claims.exp > unix_now()).then(|| claims.clone())
    }

    fn remember(&self, token: &str, claims: &AccessTokenClaims) {
        if let Ok(mut cache) = self.verified.write() {
            if cache.len() >= VERIFIED_CACHE {
                let now = unix_now();
                cache.retain(|_, c| c.exp > now);
                if cache.len() >= VERIFIED_CACHE {
                    cache.clear();
                }
            }
            cache.insert(token.to_owned(), claims.clone());
        }
    }

    async fn check_signature(&self, token: &str) -> Result<AccessTokenClaims, Refusal> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| Refusal::Invalid(e.to_string()))?;
        if header.alg != Algorithm::ES256 || header.typ.as_deref() != Some(TYP) {
            return Err(Refusal::Invalid(
                "expected an ES256 at+jwt access token".into(),
            ));
        }
        let kid = header
            .kid
            .ok_or_else(|| Refusal::Invalid("no key id".into()))?;
        let key = self
            .key(&kid)
            .await
            .ok_or_else(|| Refusal::Invalid("signed by an unknown key".into()))?;
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_issuer(&[&self.issuer]);
        validation.validate_aud = false;
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        jsonwebtoken::decode::<AccessTokenClaims>(token, &key, &validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => Refusal::Expired,
                _ => Refusal::Invalid(e.to_string()),
            })
    }

    /// Verifies a bearer token for this gate: signature (once per token,
    /// then from a cache of verified tokens), expiry, audience and revocation
    /// (on every request).
    pub async fn verify(&self, token: &str) -> Result<AccessTokenClaims, Refusal> {
        let claims = match self.cached(token) {
            Some(claims) => claims,
            None => {
                let claims = self.check_signature(token).await?;
                self.remember(token, &claims);
                claims
            }
        };
        let audience_ok = Resource::parse(&claims.aud).is_ok_and(|aud| {
            let aud = aud.to_string();
            aud == self.audience || aud.starts_with(&format!("{}/", self.audience))
        });
        if !audience_ok {
            return Err(Refusal::WrongAudience);
        }
        // Fail closed: if the feed's state cannot be read, refuse.
        let refused = match self.revoked.read() {
            Ok(r) => {
                r.jtis.contains(&claims.jti)
                    || r.deactivated.contains(&claims.sub)
                    || r.disconnected
                        .get(&(claims.sub.clone(), claims.client_id.clone()))
                        .is_some_and(|&before| claims.iat <= before)
            }
            Err(_) => true,
        };
        if refused {
            return Err(Refusal::Revoked);
        }
        Ok(claims)
    }
}
