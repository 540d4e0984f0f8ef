//! Verification of one DPoP proof (RFC 9449 §4.3), as a pure function over
//! the proof and what the server knows of the request.
//!
//! [`verify_proof`] checks, in order: the size bound, the compact JWS shape,
//! `typ`, `alg`, the public `jwk`, the signature, the claims (`jti`, `htm`,
//! `htu`, `iat`), the `iat` window, `ath` when an access token comes with the
//! request, and `nonce` when the server requires one. It keeps no state:
//! replay detection is [`crate::ReplayCache`]'s job, stateless nonces are
//! [`crate::Nonces`]'s.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use url::Url;

use crate::jwk;

/// The `typ` header of a DPoP proof.
pub const TYP: &str = "dpop+jwt";

/// Algorithms accepted in proofs (asymmetric only), and what metadata
/// advertises as `dpop_signing_alg_values_supported`. ES256 is verified by
/// `ring`, the others by `jsonwebtoken`'s RustCrypto backend; each is
/// covered by a test.
pub const ALGORITHMS: &[&str] = &["ES256", "ES384", "EdDSA", "RS256", "PS256"];

/// Longest proof accepted, in bytes, checked before any parsing.
pub const MAX_PROOF_LEN: usize = 8 * 1024;

/// Longest `jti` accepted, in characters.
pub const MAX_JTI_LEN: usize = 256;

/// What the verifier expects of a proof for this request.
#[derive(Clone, Copy, Debug)]
pub struct Expected<'a> {
    /// The request's HTTP method, compared exactly with `htm`.
    pub method: &'a str,
    /// The request's absolute URL as the server sees it; compared with `htu`
    /// after both go through [`htu`].
    pub url: &'a str,
    /// The DPoP-bound access token the request carries, if any: `ath` must
    /// then equal [`ath`] of it.
    pub access_token: Option<&'a str>,
    /// The nonce the server requires, if any: the proof's `nonce` must equal
    /// it. For stateless nonces, leave this `None` and use
    /// [`crate::verify_proof_with_nonces`] (or check [`Verified::nonce`] with
    /// [`crate::Nonces::check`]).
    pub nonce: Option<&'a str>,
    /// The server's clock, Unix seconds.
    pub now: i64,
    /// Seconds a proof stays acceptable after its `iat` (e.g. 60).
    pub max_age: i64,
    /// Clock skew allowed into the future and the past, seconds (e.g. 5).
    pub leeway: i64,
}

impl Expected<'_> {
    /// The last second at which a proof issued at `iat` is still acceptable:
    /// the `until` to give [`crate::ReplayCache::admit`] for it.
    pub fn replay_until(&self, iat: i64) -> i64 {
        iat.saturating_add(self.max_age).saturating_add(self.leeway)
    }
}

/// A proof that passed every check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The RFC 7638 thumbprint of the proof's key, base64url: what `cnf.jkt`
    /// of a bound access token holds.
    pub jkt: String,
    /// The proof's unique identifier, for replay detection.
    pub jti: String,
    /// When the client says it made the proof, Unix seconds.
    pub iat: i64,
    /// The proof's `nonce` claim, if it has one.
    pub nonce: Option<String>,
}

impl Verified {
    /// Whether the proof's key is the one a token is bound to (its
    /// `cnf.jkt`), compared in constant time.
    pub fn matches(&self, cnf_jkt: &str) -> bool {
        self.jkt.as_bytes().ct_eq(cnf_jkt.as_bytes()).into()
    }

    /// [`Verified::matches`] as a result: [`ProofError::KeyMismatch`] when
    /// the proof's key is not the one the token is bound to.
    pub fn bound_to(&self, cnf_jkt: &str) -> Result<(), ProofError> {
        if self.matches(cnf_jkt) {
            Ok(())
        } else {
            Err(ProofError::KeyMismatch)
        }
    }
}

/// Why a proof (or a key, or a replay check) was refused.
///
/// Each message is one sentence a client developer can act on; servers send
/// it as `error_description` with [`ProofError::oauth_error`] as `error`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The proof is not a well-formed DPoP JWT.
    #[error("the DPoP proof is malformed: {0}")]
    Malformed(String),
    /// The proof is longer than [`MAX_PROOF_LEN`].
    #[error(
        "the DPoP proof is longer than 8 KiB; send a compact proof with only the required header and claims"
    )]
    TooLarge,
    /// The `typ` header is not `dpop+jwt`.
    #[error("the DPoP proof's header must have \"typ\": \"dpop+jwt\"")]
    WrongType,
    /// The algorithm (or the key type for it) is not accepted.
    #[error(
        "the DPoP proof uses an unsupported algorithm or key ({0}); sign with one of ES256, ES384, EdDSA, RS256, PS256"
    )]
    UnsupportedAlgorithm(String),
    /// The header has no `jwk`.
    #[error("the DPoP proof's header must carry the public key as \"jwk\"")]
    MissingJwk,
    /// The header's `jwk` holds private key material.
    #[error(
        "the DPoP proof's \"jwk\" contains private key material; put only the public key in the header and treat this key as compromised"
    )]
    PrivateKeyInHeader,
    /// The signature does not verify with the header's key.
    #[error("the DPoP proof's signature does not verify with the key in its header")]
    BadSignature,
    /// `htm` differs from the request's method.
    #[error("the DPoP proof's \"htm\" does not match the request's HTTP method")]
    WrongMethod,
    /// `htu` differs from the request's URL.
    #[error(
        "the DPoP proof's \"htu\" does not match the request's URL (scheme, host, port and path, without query or fragment)"
    )]
    WrongUrl,
    /// `iat` is older than `max_age` plus `leeway`.
    #[error("the DPoP proof is too old; make a fresh proof for each request")]
    Stale,
    /// `iat` is later than `now` plus `leeway`.
    #[error("the DPoP proof's \"iat\" is in the future; check the client's clock")]
    Future,
    /// The request carries an access token but the proof has no `ath`.
    #[error("the DPoP proof must carry \"ath\", the hash of the access token sent with it")]
    MissingAth,
    /// `ath` is not the hash of the request's access token.
    #[error("the DPoP proof's \"ath\" does not match the access token sent with it")]
    WrongAth,
    /// A nonce is required and the proof's is missing or not the current one.
    #[error(
        "the DPoP proof must carry the nonce from the server's DPoP-Nonce header; retry with it"
    )]
    UseNonce,
    /// This proof was already used.
    #[error("this DPoP proof was already used; make a fresh proof (new jti) for each request")]
    Replayed,
    /// The replay cache is full of unexpired proofs.
    #[error("the server cannot record more DPoP proofs right now; retry in a few seconds")]
    CacheFull,
    /// The proof's key is not the one the access token is bound to.
    #[error(
        "the DPoP proof is signed by a different key than the one the access token is bound to"
    )]
    KeyMismatch,
    /// A proof key could not be read or created.
    #[error("the DPoP key is unusable: {0}")]
    BadKey(String),
    /// The operating system's random generator failed.
    #[error("the operating system's random number generator is unavailable")]
    RandomUnavailable,
}

impl ProofError {
    /// The OAuth `error` code for this refusal: `use_dpop_nonce` for
    /// [`ProofError::UseNonce`], `invalid_dpop_proof` otherwise.
    pub fn oauth_error(&self) -> &'static str {
        match self {
            ProofError::UseNonce => "use_dpop_nonce",
            _ => "invalid_dpop_proof",
        }
    }
}

/// Verifies one DPoP proof JWT (the `DPoP` header's value) against the
/// request. Pure: no clock, no state, no I/O.
pub fn verify_proof(proof: &str, expected: &Expected<'_>) -> Result<Verified, ProofError> {
    if proof.len() > MAX_PROOF_LEN {
        return Err(ProofError::TooLarge);
    }
    let parts: Vec<&str> = proof.split('.').collect();
    let [header_part, claims_part, signature_part] = parts.as_slice() else {
        return Err(malformed(
            "a DPoP proof is a compact JWS of three dot-separated parts",
        ));
    };
    if signature_part.is_empty() {
        return Err(malformed("the proof has no signature"));
    }
    let header: Value = URL_SAFE_NO_PAD
        .decode(header_part)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .filter(Value::is_object)
        .ok_or_else(|| malformed("the header is not a base64url-encoded JSON object"))?;
    if header.get("typ").and_then(Value::as_str) != Some(TYP) {
        return Err(ProofError::WrongType);
    }
    let alg_name = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or_else(|| malformed("the header has no string \"alg\""))?;
    if !ALGORITHMS.contains(&alg_name) {
        return Err(ProofError::UnsupportedAlgorithm(alg_name.to_owned()));
    }
    let alg: Algorithm = alg_name
        .parse()
        .map_err(|_| ProofError::UnsupportedAlgorithm(alg_name.to_owned()))?;
    let jwk = header.get("jwk").ok_or(ProofError::MissingJwk)?;
    let key = jwk::public_key(jwk, alg)?;
    let jkt = jwk::thumbprint(jwk)?;

    // The typed header parse must agree with ours (it also refuses duplicate
    // members, which a `Value` would silently collapse).
    let typed = jsonwebtoken::decode_header(proof)
        .map_err(|e| malformed(&format!("the header is not a valid JOSE header: {e}")))?;
    if typed.alg != alg {
        return Err(ProofError::UnsupportedAlgorithm(alg_name.to_owned()));
    }
    // The signature first, then the claims it covers.
    let signature = URL_SAFE_NO_PAD
        .decode(signature_part)
        .map_err(|_| malformed("the claims or the signature are not base64url"))?;
    let signed = &proof[..header_part.len() + 1 + claims_part.len()];
    key.verify(signed.as_bytes(), &signature)?;
    let claims: Claims = URL_SAFE_NO_PAD
        .decode(claims_part)
        .map_err(|_| malformed("the claims or the signature are not base64url"))
        .and_then(|bytes| {
            serde_json::from_slice(&bytes).map_err(|e| malformed(&format!(
                "the claims must be a JSON object with string \"jti\", \"htm\", \"htu\" and integer \"iat\" ({e})"
            )))
        })?;

    if claims.jti.is_empty() || claims.jti.chars().count() > MAX_JTI_LEN {
        return Err(malformed(
            "\"jti\" must be a non-empty string of at most 256 characters",
        ));
    }
    if claims.htm != expected.method {
        return Err(ProofError::WrongMethod);
    }
    let request_url = htu(expected.url)?;
    let proof_url = htu(&claims.htu).map_err(|_| ProofError::WrongUrl)?;
    if proof_url != request_url {
        return Err(ProofError::WrongUrl);
    }
    if claims.iat > expected.now.saturating_add(expected.leeway) {
        return Err(ProofError::Future);
    }
    if claims.iat
        < expected
            .now
            .saturating_sub(expected.max_age)
            .saturating_sub(expected.leeway)
    {
        return Err(ProofError::Stale);
    }
    if let Some(token) = expected.access_token {
        let claimed = claims.ath.as_deref().ok_or(ProofError::MissingAth)?;
        if !bool::from(ath(token).as_bytes().ct_eq(claimed.as_bytes())) {
            return Err(ProofError::WrongAth);
        }
    }
    if let Some(required) = expected.nonce {
        let matches = claims
            .nonce
            .as_deref()
            .is_some_and(|nonce| bool::from(nonce.as_bytes().ct_eq(required.as_bytes())));
        if !matches {
            return Err(ProofError::UseNonce);
        }
    }
    Ok(Verified {
        jkt,
        jti: claims.jti,
        iat: claims.iat,
        nonce: claims.nonce,
    })
}

/// Normalises a URL for `htu` comparison (RFC 9449 §4.3 step 9, RFC 3986
/// §6.2.2–6.2.3): scheme and host lowercased, default port dropped, query and
/// fragment removed, path kept without percent-decoding.
///
/// Refuses anything that is not an absolute `http` or `https` URL with a
/// host, and URLs with userinfo.
pub fn htu(url: &str) -> Result<String, ProofError> {
    let parsed = Url::parse(url).map_err(|e| malformed(&format!("{url:?} is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(malformed(&format!("{url:?} is not an http or https URL")));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(malformed(&format!("{url:?} must not contain userinfo")));
    }
    let Some(host) = parsed.host_str() else {
        return Err(malformed(&format!("{url:?} has no host")));
    };
    // `Url` already lowercases the scheme and host and forgets a default port.
    let port = parsed
        .port()
        .map(|port| format!(":{port}"))
        .unwrap_or_default();
    Ok(format!(
        "{}://{host}{port}{}",
        parsed.scheme(),
        parsed.path()
    ))
}

/// The `ath` of an access token: base64url of its SHA-256, without padding.
pub fn ath(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(access_token.as_bytes()))
}

/// The claims a proof must (and may) carry.
#[derive(Deserialize)]
struct Claims {
    jti: String,
    htm: String,
    htu: String,
    iat: i64,
    ath: Option<String>,
    nonce: Option<String>,
}

fn malformed(reason: &str) -> ProofError {
    ProofError::Malformed(reason.to_owned())
}
