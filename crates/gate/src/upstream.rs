//! The headers the app receives: the client's, less the credential, the
//! gate's cookie and hop-by-hop headers, with the identity the gate
//! verified written by the gate alone. Pure over a `HeaderMap`.

use axum::http::header::{AUTHORIZATION, HOST};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use laissez_oauth::access_token::AccessTokenClaims;

/// Who is calling, as the app is told.
#[derive(Clone, Copy, Debug)]
pub struct Identity<'a> {
    /// The verified token's claims.
    pub claims: &'a AccessTokenClaims,
    /// The gate's signed assertion of them, if it could sign one.
    pub assertion: Option<&'a str>,
}

/// Rewrites a request's headers for the app.
pub fn rewrite(headers: &mut HeaderMap, identity: Identity<'_>) {
    let original_host = headers.get(HOST).cloned();
    headers.remove(AUTHORIZATION);
    crate::browser::strip_cookie(headers);
    headers.remove(HOST);
    strip_hop_by_hop(headers);
    let forged: Vec<HeaderName> = headers
        .keys()
        .filter(|k| k.as_str().starts_with("x-laissez-"))
        .cloned()
        .collect();
    for name in forged {
        headers.remove(name);
    }
    let claims = identity.claims;
    let mut set = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    set("x-laissez-user", &claims.sub);
    set("x-laissez-client", &claims.client_id);
    set("x-laissez-scope", &claims.scope);
    if !claims.accounts.is_empty() {
        set("x-laissez-accounts", &claims.accounts.join(" "));
    }
    if let Some(act) = &claims.act {
        set("x-laissez-agent", &act.sub);
    }
    if let Some(assertion) = identity.assertion {
        set("x-laissez-assertion", assertion);
    }
    if let Some(host) = original_host.as_ref().and_then(|h| h.to_str().ok()) {
        set("x-forwarded-host", host);
    }
}

/// Removes the headers that belong to one connection, not the message.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];
