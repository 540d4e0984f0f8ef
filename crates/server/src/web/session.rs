//! Browser sessions: a random cookie whose SHA-256 is stored, and a CSRF
//! token derived from the cookie (so it is never stored and cannot be forged
//! without the cookie).

use axum::http::HeaderMap;
use axum::http::header::COOKIE;
use laissez_core::audit::AuditEvent;
use laissez_core::credential::hash_secret;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{AppState, now};

/// The session cookie's name.
pub const COOKIE_NAME: &str = "laissez_session";
/// Session lifetime, seconds.
pub const SESSION_TTL: i64 = 8 * 3600;

/// A cookie value from the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The CSRF token of a session (or of a pre-login cookie).
pub fn csrf_for(secret: &str) -> String {
    hex::encode(&Sha256::digest(format!("laissez-csrf:{secret}").as_bytes())[..16])
}

/// Whether `presented` is the CSRF token for `secret`, in constant time.
pub fn csrf_ok(secret: &str, presented: &str) -> bool {
    bool::from(csrf_for(secret).as_bytes().ct_eq(presented.as_bytes()))
}

/// The handle that names a session on the account page: the start of its
/// cookie's hash (which names a session but cannot open one).
pub fn handle(secret: &str) -> String {
    hex::encode(&hash_secret(secret)[..8])
}

/// The signed-in user of a request, with the session secret.
pub async fn current(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<(String, String)>, laissez_store::Error> {
    let Some(secret) = cookie(headers, COOKIE_NAME) else {
        return Ok(None);
    };
    if secret.len() != 43 {
        return Ok(None);
    }
    match state.store.session(hash_secret(secret)).await? {
        Some((user_id, expires_at)) if expires_at > now() => Ok(Some((user_id, secret.to_owned()))),
        _ => Ok(None),
    }
}

/// Starts a session for `user_id` and returns the `Set-Cookie` value.
/// `detail` says how the person proved who they are (for the audit record).
pub async fn start(
    state: &AppState,
    user: &laissez_core::Principal,
    detail: serde_json::Value,
) -> Result<String, String> {
    let secret = laissez_token::random_base62(43).map_err(|e| e.to_string())?;
    let audit = AuditEvent::success(&[user.reference()], "session.login", user.id.clone())
        .with_detail(detail);
    state
        .store
        .create_session(hash_secret(&secret), &user.id, now() + SESSION_TTL, audit)
        .await
        .map_err(|e| e.to_string())?;
    let secure = if state.issuer.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    Ok(format!(
        "{COOKIE_NAME}={secret}; Path=/; HttpOnly; SameSite=Lax; Max-Age={SESSION_TTL}{secure}"
    ))
}
