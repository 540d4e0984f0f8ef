//! DPoP (RFC 9449) at the authorization server: the proof a request carries
//! is checked against the request's method and URL as the client addressed
//! it (the issuer's origin and the request's path), its freshness, the
//! access token it comes with, and replay, by the server's one
//! [`laissez_dpop::Guard`]. Refusals are problem details with the `DPoP`
//! challenge and a fresh `DPoP-Nonce`.

use axum::http::HeaderMap;
use laissez_dpop::{ProofError, Verified};

use crate::problem::ApiError;
use crate::{AppState, now};

/// The request's URL as the client addressed it.
pub fn request_url(state: &AppState, path: &str) -> String {
    format!("{}{path}", state.issuer.trim_end_matches('/'))
}

/// Every `DPoP` header value of a request (a non-ASCII one is refused).
pub fn proofs(headers: &HeaderMap) -> Result<Vec<&str>, ProofError> {
    headers
        .get_all("dpop")
        .iter()
        .map(|v| {
            v.to_str()
                .map_err(|_| ProofError::Malformed("the DPoP header is not ASCII".into()))
        })
        .collect()
}

/// The request's verified proof, or none when it carries no `DPoP` header.
pub fn optional(
    state: &AppState,
    headers: &HeaderMap,
    method: &str,
    path: &str,
    access_token: Option<&str>,
) -> Result<Option<Verified>, ProofError> {
    let proofs = proofs(headers)?;
    if proofs.is_empty() {
        return Ok(None);
    }
    let url = request_url(state, path);
    state
        .dpop
        .check(
            &proofs,
            &laissez_dpop::guard::Request {
                method,
                url: &url,
                access_token,
                require_nonce: false,
                now: now(),
            },
        )
        .map(Some)
}

/// The request's verified proof; a missing one is refused.
pub fn require(
    state: &AppState,
    headers: &HeaderMap,
    method: &str,
    path: &str,
    access_token: Option<&str>,
) -> Result<Verified, ApiError> {
    match optional(state, headers, method, path, access_token) {
        Ok(Some(verified)) => Ok(verified),
        Ok(None) => Err(refusal(
            state,
            ProofError::Malformed(
                "task credentials are sender-constrained: send a DPoP proof (RFC 9449) of the key to bind".into(),
            ),
        )),
        Err(error) => Err(refusal(state, error)),
    }
}

/// A refused proof as problem details (401 with the DPoP challenge).
pub fn refusal(state: &AppState, error: ProofError) -> ApiError {
    ApiError::Dpop(
        error.oauth_error(),
        error.to_string(),
        Some(state.dpop.nonce(now())),
    )
}

/// Whether `text` looks like an RFC 7638 SHA-256 thumbprint.
pub fn is_thumbprint(text: &str) -> bool {
    text.len() == 43
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
