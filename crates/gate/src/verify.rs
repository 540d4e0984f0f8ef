//! Local access token verification: ES256 signatures against the issuer's
//! JWKS (fetched at start and again when an unknown key id appears, so key
//! rotation needs no restart), `typ: at+jwt`, issuer, expiry, audience (this
//! gate's resource or a path below it), and the issuer's revocation feed,
//! followed in the background with long polls: the issuer answers as soon as
//! something is revoked and waits for this gate's acknowledgement (its next
//! poll) before it confirms the revocation, so a revoked token is refused on
//! the next request. The feed is read with the gate's credential (the
//! `laissez-gate` role): it names deactivated principals and revoked tokens.
//!
//! Beyond the signature, a token must speak for a principal (the issuer
//! mints tokens only for principal ids), not be issued or valid only in the
//! future, and neither its subject (nor the subject's owner) may be
//! deactivated, its grant disconnected, nor its client deleted.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use laissez_oauth::access_token::{AccessTokenClaims, TYP};
use laissez_oauth::resource::Resource;

use crate::{GateConfig, GateError};

/// How long one poll of the revocation feed waits for a change at most,
/// seconds (less when the gate's freshness bound is short: a third of it).
const FEED_WAIT: u64 = 25;
/// The pause before asking again after the feed could not be read.
const FEED_RETRY: Duration = Duration::from_millis(500);
/// How far in the future `iat` and `nbf` may be (clock skew between the
/// issuer and this gate), seconds.
pub const CLOCK_LEEWAY: i64 = 60;
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

/// Whether `sub` names a principal: the ids Laissez gives users, services,
/// agents and tasks. A token for anything else (a client id, say) was not
/// minted by a Laissez that bounds tokens by principals, and is refused.
pub fn subject_is_principal(sub: &str) -> bool {
    let Some((prefix, random)) = sub.split_once('_') else {
        return false;
    };
    matches!(prefix, "usr" | "svc" | "agt" | "tsk")
        && !random.is_empty()
        && random.len() <= 64
        && random.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The key id of an access token's JWS header, once the header says it is
/// an ES256 `at+jwt` (the first step of verification, before any key is
/// looked up; pure, for fuzzing).
pub fn access_token_key_id(token: &str) -> Result<String, Refusal> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| Refusal::Invalid(e.to_string()))?;
    if header.alg != Algorithm::ES256 || header.typ.as_deref() != Some(TYP) {
        return Err(Refusal::Invalid(
            "expected an ES256 at+jwt access token".into(),
        ));
    }
    header
        .kid
        .ok_or_else(|| Refusal::Invalid("no key id".into()))
}

/// One of the issuer's signing keys (P-256). `ring` checks signatures with
/// it, several times faster than the `p256` crate behind `jsonwebtoken`,
/// which then checks the claims.
#[derive(Clone)]
pub struct IssuerKey {
    signature: laissez_dpop::jwk::PublicKey,
    claims: DecodingKey,
}

impl IssuerKey {
    /// The key of one JWK of the issuer's set: a public P-256 key with
    /// coordinates of the right size, on the curve; anything else is refused.
    pub fn from_jwk(jwk: &serde_json::Value) -> Result<IssuerKey, String> {
        let signature =
            laissez_dpop::jwk::public_key(jwk, Algorithm::ES256).map_err(|e| e.to_string())?;
        let claims =
            laissez_dpop::jwk::decoding_key(jwk, Algorithm::ES256).map_err(|e| e.to_string())?;
        Ok(IssuerKey { signature, claims })
    }
}

/// Verifies an access token's ES256 signature with `key`, its issuer and
/// expiry, and that it names an audience and a subject (pure, for fuzzing;
/// the audience and the revocation feed are checked by [`Verifier::verify`]).
pub fn verify_signed(
    token: &str,
    key: &IssuerKey,
    issuer: &str,
) -> Result<AccessTokenClaims, Refusal> {
    access_token_key_id(token)?;
    // The signature over everything before the last dot, as jsonwebtoken
    // splits the token below; only then are the claims read.
    let (signed, signature) = token
        .rsplit_once('.')
        .ok_or_else(|| Refusal::Invalid("not a compact JWS".into()))?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| Refusal::Invalid("the signature is not base64url".into()))?;
    key.signature
        .verify(signed.as_bytes(), &signature)
        .map_err(|_| Refusal::Invalid("InvalidSignature".into()))?;
    let mut validation = Validation::new(Algorithm::ES256);
    // The signature was verified just above, over the same bytes; what
    // jsonwebtoken does from here on is the claim checks. (Its suggested
    // replacement, `dangerous::insecure_decode`, skips those checks too.)
    #[allow(deprecated)]
    validation.insecure_disable_signature_validation();
    validation.set_issuer(&[issuer]);
    validation.validate_aud = false;
    validation.leeway = 5;
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    jsonwebtoken::decode::<AccessTokenClaims>(token, &key.claims, &validation)
        .map(|data| data.claims)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => Refusal::Expired,
            _ => Refusal::Invalid(e.to_string()),
        })
}

/// Refuses a token issued, or valid only, in the future (beyond
/// [`CLOCK_LEEWAY`]): `now` is this gate's clock, in Unix seconds.
pub fn check_times(claims: &AccessTokenClaims, now: i64) -> Result<(), Refusal> {
    if claims.iat > now.saturating_add(CLOCK_LEEWAY) {
        return Err(Refusal::Invalid(
            "the access token is issued in the future".into(),
        ));
    }
    if claims
        .nbf
        .is_some_and(|nbf| nbf > now.saturating_add(CLOCK_LEEWAY))
    {
        return Err(Refusal::Invalid(
            "the access token is not valid yet (nbf)".into(),
        ));
    }
    Ok(())
}

/// Verifies access tokens for one gate.
pub struct Verifier {
    issuer: String,
    jwks_uri: String,
    revoked_uri: String,
    audience: String,
    http: reqwest::Client,
    /// The issuer's keys, and when an unknown key id last made us refetch them.
    keys: RwLock<(HashMap<String, IssuerKey>, Option<Instant>)>,
    revoked: RwLock<Revoked>,
    verified: RwLock<HashMap<String, AccessTokenClaims>>,
    /// This gate's id in the feed (for the issuer to wait for its acknowledgement).
    gate_id: String,
    /// The gate's credential (`laissez-gate` role), for the revocation feed.
    credential: Option<String>,
    /// How long one long poll of the feed waits, seconds.
    feed_wait: u64,
    /// When the feed was last read.
    last_feed: RwLock<Option<Instant>>,
    /// When the feed last moved this gate's view to a new version.
    last_change: RwLock<Option<SystemTime>>,
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
    /// (user, client) → tokens issued at or before this time (milliseconds) are refused.
    disconnected: HashMap<(String, String), i64>,
    /// Principals who may no longer act (deactivated, or owned by someone deactivated).
    deactivated: HashSet<String>,
    /// Deleted clients: every token they minted is refused.
    deleted_clients: HashSet<String>,
    /// Tasks that ended: their tokens, and those of tasks derived from them, are refused.
    ended_tasks: HashSet<String>,
    /// The feed version this state is from.
    version: Option<String>,
}

impl Revoked {
    /// The whole state a feed answer states.
    fn from_feed(feed: &serde_json::Value) -> Revoked {
        let disconnected = feed["disconnected"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|g| {
                        let key = (
                            g["sub"].as_str()?.to_owned(),
                            g["client_id"].as_str()?.to_owned(),
                        );
                        // Milliseconds; a feed without them counts to the end of the second.
                        let before = g["issued_before_ms"].as_i64().or_else(|| {
                            Some(
                                g["issued_before"]
                                    .as_i64()?
                                    .saturating_mul(1000)
                                    .saturating_add(999),
                            )
                        })?;
                        Some((key, before))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Revoked {
            jtis: strings(&feed["revoked"]).collect(),
            disconnected,
            deactivated: strings(&feed["deactivated"]).collect(),
            deleted_clients: strings(&feed["deleted_clients"]).collect(),
            ended_tasks: strings(&feed["ended_tasks"]).collect(),
            version: feed["version"].as_str().map(str::to_owned),
        }
    }

    /// Applies a feed answer: additions to the version held (`delta`, with
    /// the version they follow), else the whole state. Additions that
    /// follow another version are not applied and the version is dropped,
    /// so the next poll asks for the whole state; what is held stays (a
    /// gate never forgets a revocation because an answer was odd).
    fn apply(&mut self, feed: &serde_json::Value) {
        if feed["delta"] != serde_json::Value::Bool(true) {
            *self = Revoked::from_feed(feed);
            return;
        }
        if feed["since"].as_str() != self.version.as_deref() || self.version.is_none() {
            self.version = None;
            return;
        }
        self.jtis.extend(strings(&feed["revoked"]));
        self.ended_tasks.extend(strings(&feed["ended_tasks"]));
        self.version = feed["version"].as_str().map(str::to_owned);
    }

    /// Whether the feed's state refuses a token.
    fn refuses(&self, claims: &AccessTokenClaims) -> bool {
        self.jtis.contains(&claims.jti)
            || self.deactivated.contains(&claims.sub)
            || self.deleted_clients.contains(&claims.client_id)
            || claims.tasks().any(|task| self.ended_tasks.contains(task))
            || self
                .disconnected
                .get(&(claims.sub.clone(), claims.client_id.clone()))
                .is_some_and(|&before| claims.issued_ms() <= before)
    }
}

/// The strings of a JSON array (nothing, for anything else).
fn strings(value: &serde_json::Value) -> impl Iterator<Item = String> + '_ {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
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

/// The P-256 keys of a JWK Set, by key id (other keys are skipped).
fn decoding_keys(jwks: serde_json::Value) -> Result<HashMap<String, IssuerKey>, String> {
    let keys = jwks["keys"]
        .as_array()
        .ok_or("not a JWK Set: no \"keys\" array")?;
    Ok(keys
        .iter()
        .filter_map(|jwk| {
            let kid = jwk["kid"].as_str()?.to_owned();
            Some((kid, IssuerKey::from_jwk(jwk).ok()?))
        })
        .collect())
}

impl Verifier {
    /// Discovers the issuer's JWKS and loads its keys.
    pub async fn new(config: &GateConfig) -> Result<Verifier, GateError> {
        let http = config
            .issuer_client()?
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
            credential: config
                .feed_token
                .clone()
                .or_else(|| config.audit_token.clone()),
            // Three polls fit in the freshness bound, so a live feed never
            // looks stale between two answers.
            feed_wait: (config.feed_max_age.as_secs() / 3).clamp(1, FEED_WAIT),
            last_feed: RwLock::new(None),
            last_change: RwLock::new(None),
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
                let read = verifier.poll_revocations(verifier.feed_wait).await;
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
        let mut url = format!(
            "{}?gate={}&wait={wait}&delta=1",
            self.revoked_uri, self.gate_id
        );
        if !held.is_empty() {
            url.push_str(&format!("&after={held}"));
        }
        let mut request = self.http.get(&url).timeout(Duration::from_secs(wait + 10));
        if let Some(credential) = &self.credential {
            request = request.bearer_auth(credential);
        }
        let fetched = match request.send().await {
            Ok(r) if r.status().is_success() => r
                .json::<serde_json::Value>()
                .await
                .map_err(|e| e.to_string()),
            Ok(r) if matches!(r.status().as_u16(), 401 | 403) => Err(format!(
                "HTTP {}: the feed is only for gates; give this gate a credential with the laissez-gate role (--audit-token)",
                r.status()
            )),
            Ok(r) => Err(format!("HTTP {}", r.status())),
            Err(e) => Err(e.to_string()),
        };
        match fetched {
            Ok(feed) => {
                let changed = self.revoked.write().is_ok_and(|mut revoked| {
                    let before = revoked.version.clone();
                    revoked.apply(&feed);
                    revoked.version.is_some() && revoked.version != before
                });
                if changed && let Ok(mut last) = self.last_change.write() {
                    *last = Some(SystemTime::now());
                }
                if let Ok(mut last) = self.last_feed.write() {
                    *last = Some(Instant::now());
                }
                true
            }
            Err(error) => {
                tracing::warn!(%error, "cannot read the revocation feed; keeping the last one");
                false
            }
        }
    }

    /// How long ago the revocation feed was last read (`None`: never).
    pub fn feed_age(&self) -> Option<Duration> {
        self.last_feed.read().ok()?.map(|at| at.elapsed())
    }

    /// When the revocation feed last moved this gate's view to a new
    /// version (`None`: not since it started): from then on the gate refuses
    /// what that version revoked.
    pub fn feed_changed_at(&self) -> Option<SystemTime> {
        *self.last_change.read().ok()?
    }

    /// How many of the issuer's signing keys this gate holds.
    pub fn keys_loaded(&self) -> usize {
        self.keys.read().map(|keys| keys.0.len()).unwrap_or(0)
    }

    async fn key(&self, kid: &str) -> Option<IssuerKey> {
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
        let kid = access_token_key_id(token)?;
        let key = self
            .key(&kid)
            .await
            .ok_or_else(|| Refusal::Invalid("signed by an unknown key".into()))?;
        verify_signed(token, &key, &self.issuer)
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
        check_times(&claims, unix_now())?;
        if !subject_is_principal(&claims.sub) {
            return Err(Refusal::Invalid(
                "the access token does not speak for a principal".into(),
            ));
        }
        // Fail closed: if the feed's state cannot be read, refuse.
        let refused = match self.revoked.read() {
            Ok(r) => r.refuses(&claims),
            Err(_) => true,
        };
        if refused {
            return Err(Refusal::Revoked);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(iat: i64, nbf: Option<i64>) -> AccessTokenClaims {
        AccessTokenClaims {
            iss: "https://issuer.example".into(),
            sub: "usr_abc".into(),
            aud: "https://app.example".into(),
            exp: iat.saturating_add(600),
            iat,
            iat_ms: None,
            nbf,
            jti: "at_1".into(),
            client_id: "cli_1".into(),
            scope: String::new(),
            accounts: Vec::new(),
            act: None,
            ..AccessTokenClaims::default()
        }
    }

    /// A P-256 key pair: the signer, and the issuer key of its public JWK.
    fn issuer_key(seed: u8) -> (p256::ecdsa::SigningKey, IssuerKey) {
        let signing = p256::ecdsa::SigningKey::from_slice(&[seed; 32]).expect("a scalar");
        let point = signing.verifying_key().to_encoded_point(false);
        let jwk = serde_json::json!({"kty": "EC", "crv": "P-256", "kid": "k1",
            "x": URL_SAFE_NO_PAD.encode(point.x().expect("x")),
            "y": URL_SAFE_NO_PAD.encode(point.y().expect("y"))});
        (signing, IssuerKey::from_jwk(&jwk).expect("a P-256 key"))
    }

    fn jws(key: &p256::ecdsa::SigningKey, header: &str, claims: &serde_json::Value) -> String {
        use p256::ecdsa::signature::Signer as _;
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature: p256::ecdsa::Signature = key.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }

    #[test]
    fn only_a_token_signed_by_the_issuer_key_over_these_exact_bytes_is_accepted() {
        const HEADER: &str = r#"{"alg":"ES256","typ":"at+jwt","kid":"k1"}"#;
        let (signer, key) = issuer_key(7);
        let (other, _) = issuer_key(9);
        let now = unix_now();
        let good = serde_json::to_value(claims(now, None)).expect("claims");
        let token = jws(&signer, HEADER, &good);
        assert_eq!(
            verify_signed(&token, &key, "https://issuer.example")
                .expect("valid")
                .sub,
            "usr_abc"
        );
        let (message, signature) = token.rsplit_once('.').expect("parts");
        let mut flipped = URL_SAFE_NO_PAD.decode(signature).expect("b64");
        flipped[10] ^= 1;
        let mut other_claims = good.clone();
        other_claims["sub"] = "usr_admin".into();
        let (header_part, _) = message.split_once('.').expect("parts");
        let mut expired = good.clone();
        expired["exp"] = (now - 3600).into();
        let refused = [
            (
                "a flipped signature bit",
                format!("{message}.{}", URL_SAFE_NO_PAD.encode(&flipped)),
            ),
            (
                "other claims under the signature",
                format!(
                    "{header_part}.{}.{signature}",
                    URL_SAFE_NO_PAD.encode(other_claims.to_string())
                ),
            ),
            ("another key", jws(&other, HEADER, &good)),
            (
                "HS256",
                jws(
                    &signer,
                    r#"{"alg":"HS256","typ":"at+jwt","kid":"k1"}"#,
                    &good,
                ),
            ),
            (
                "no typ",
                jws(&signer, r#"{"alg":"ES256","kid":"k1"}"#, &good),
            ),
            ("an empty signature", format!("{message}.")),
            ("a signature not base64url", format!("{message}.@@@")),
            ("a fourth part", format!("{token}.{signature}")),
            ("the unsigned input", message.to_owned()),
        ];
        for (what, token) in refused {
            assert!(
                matches!(
                    verify_signed(&token, &key, "https://issuer.example"),
                    Err(Refusal::Invalid(_))
                ),
                "{what} is refused"
            );
        }
        assert!(matches!(
            verify_signed(
                &jws(&signer, HEADER, &expired),
                &key,
                "https://issuer.example"
            ),
            Err(Refusal::Expired)
        ));
        assert!(matches!(
            verify_signed(&token, &key, "https://other.example"),
            Err(Refusal::Invalid(_))
        ));
    }

    #[test]
    fn issuer_keys_are_public_p256_keys_only() {
        let x = URL_SAFE_NO_PAD.encode([1u8; 32]);
        for jwk in [
            serde_json::json!({"kty": "EC", "crv": "P-256", "x": x, "y": x}),
            serde_json::json!({"kty": "EC", "crv": "P-384", "x": x, "y": x}),
            serde_json::json!({"kty": "oct", "k": x}),
            serde_json::json!({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}),
        ] {
            assert!(IssuerKey::from_jwk(&jwk).is_err(), "{jwk}");
        }
    }

    #[test]
    fn future_iat_and_nbf_are_refused() {
        let now = 1_000_000;
        for (iat, nbf, ok) in [
            (now, None, true),
            (now - 500, None, true),
            (now + CLOCK_LEEWAY, None, true),
            (now + CLOCK_LEEWAY + 1, None, false),
            (now + 3600, None, false),
            (now, Some(now), true),
            (now, Some(now + CLOCK_LEEWAY), true),
            (now, Some(now + CLOCK_LEEWAY + 1), false),
            (now, Some(i64::MAX), false),
            (i64::MAX, None, false),
        ] {
            assert_eq!(
                check_times(&claims(iat, nbf), now).is_ok(),
                ok,
                "iat {iat} nbf {nbf:?}"
            );
        }
    }

    #[test]
    fn malformed_headers_are_refused_before_any_key() {
        for token in [
            "",
            "a.b.c",
            "eyJhbGciOiJub25lIn0.e30.",
            // {"alg":"HS256","typ":"at+jwt","kid":"k"}
            "eyJhbGciOiJIUzI1NiIsInR5cCI6ImF0K2p3dCIsImtpZCI6ImsifQ.e30.sig",
            // {"alg":"ES256","typ":"JWT","kid":"k"}
            "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImsifQ.e30.sig",
            // {"alg":"ES256","typ":"at+jwt"}
            "eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCJ9.e30.sig",
        ] {
            assert!(access_token_key_id(token).is_err(), "{token}");
        }
        // {"alg":"ES256","typ":"at+jwt","kid":"k"}
        assert_eq!(
            access_token_key_id("eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCIsImtpZCI6ImsifQ.e30.sig"),
            Ok("k".to_owned())
        );
    }

    #[test]
    fn only_principals_are_subjects() {
        for (sub, ok) in [
            ("usr_3kT9aZ", true),
            ("svc_abc123", true),
            ("agt_x", true),
            ("tsk_y", true),
            ("cli_abc", false),
            ("https://client.example/meta.json", false),
            ("usr_", false),
            ("usr", false),
            ("usr_a-b", false),
            ("USR_abc", false),
            ("", false),
        ] {
            assert_eq!(subject_is_principal(sub), ok, "{sub}");
        }
    }

    #[test]
    fn the_feed_refuses_by_millisecond_deleted_client_and_owner() {
        let mut revoked = Revoked::default();
        revoked
            .disconnected
            .insert(("usr_abc".into(), "cli_1".into()), 1_000_000_500);
        let mut token = claims(1_000_000, None);
        token.iat_ms = Some(1_000_000_400);
        assert!(revoked.refuses(&token), "issued before the disconnect");
        token.iat_ms = Some(1_000_000_600);
        assert!(!revoked.refuses(&token), "issued in the same second, after");
        token.iat_ms = None;
        assert!(
            revoked.refuses(&token),
            "no milliseconds: the start of the second, refused"
        );
        token.iat_ms = Some(999_999_999);
        assert!(
            revoked.refuses(&token),
            "iat_ms disagreeing with iat is ignored"
        );
        token.iat_ms = Some(1_000_000_600);
        revoked.deleted_clients.insert("cli_1".into());
        assert!(revoked.refuses(&token), "deleted client");
        revoked.deleted_clients.clear();
        revoked.deactivated.insert("usr_abc".into());
        assert!(revoked.refuses(&token), "suspended subject");
    }

    /// A full answer replaces what is held; additions extend it only when
    /// they follow the version held; odd answers never unrevoke anything.
    #[test]
    fn feed_answers_apply_as_whole_states_or_additions() {
        use serde_json::json;
        let mut held = Revoked::default();
        held.apply(
            &json!({"version": "b-1", "revoked": ["at_1"], "deactivated": ["usr_x"],
            "ended_tasks": ["tsk_1"], "disconnected": [], "deleted_clients": []}),
        );
        assert_eq!(held.version.as_deref(), Some("b-1"));
        held.apply(&json!({"version": "b-3", "delta": true, "since": "b-1",
            "revoked": ["at_2"], "ended_tasks": ["tsk_2"]}));
        assert_eq!(held.version.as_deref(), Some("b-3"));
        assert_eq!(held.jtis, HashSet::from(["at_1".into(), "at_2".into()]));
        assert_eq!(
            held.ended_tasks,
            HashSet::from(["tsk_1".into(), "tsk_2".into()])
        );
        assert!(
            held.deactivated.contains("usr_x"),
            "additions keep the rest"
        );

        // Additions to a version this gate does not hold: nothing is
        // dropped, and the next poll asks for the whole state.
        held.apply(&json!({"version": "b-9", "delta": true, "since": "b-7",
            "revoked": ["at_9"], "ended_tasks": []}));
        assert_eq!(held.version, None);
        assert!(!held.jtis.contains("at_9"));
        assert!(held.jtis.contains("at_2"));
        held.apply(&json!({"version": "b-9", "delta": true, "since": null,
            "revoked": ["at_9"], "ended_tasks": []}));
        assert_eq!(held.version, None, "additions to nothing held");

        // A whole state replaces: what expired or was reactivated goes.
        held.apply(
            &json!({"version": "b-9", "revoked": ["at_9"], "deactivated": [],
            "ended_tasks": [], "disconnected": [], "deleted_clients": []}),
        );
        assert_eq!(held.jtis, HashSet::from(["at_9".into()]));
        assert!(held.deactivated.is_empty() && held.ended_tasks.is_empty());
        // `delta` must be exactly true to add.
        held.apply(&json!({"version": "b-10", "delta": "true", "since": "b-9", "revoked": []}));
        assert!(held.jtis.is_empty(), "read as a whole state");
    }
}
