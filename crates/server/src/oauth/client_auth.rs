//! Client authentication at the token, introspection and revocation
//! endpoints: HTTP Basic or form parameters for confidential clients (their
//! `lzcs_` secret checked offline by checksum, then by hash in constant
//! time), the bare `client_id` for public clients.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use laissez_core::credential::hash_secret;
use laissez_oauth::client::Client;
use laissez_oauth::{ErrorCode, OAuthError};
use subtle::ConstantTimeEq;

use super::response::OAuthFailure;
use crate::AppState;

fn invalid_client(why: &str) -> OAuthFailure {
    OAuthFailure(OAuthError::new(ErrorCode::InvalidClient, why))
}

fn form_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={text}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// The credentials a request presents.
fn presented(
    headers: &HeaderMap,
    form_id: Option<&str>,
    form_secret: Option<&str>,
) -> Result<(String, Option<String>), OAuthFailure> {
    if let Some(value) = headers.get(AUTHORIZATION) {
        let value = value
            .to_str()
            .map_err(|_| invalid_client("the Authorization header is not ASCII"))?;
        if let Some(encoded) = value
            .strip_prefix("Basic ")
            .or_else(|| value.strip_prefix("basic "))
        {
            if form_secret.is_some() {
                return Err(OAuthFailure(OAuthError::invalid_request(
                    "use one client authentication method, not Basic and client_secret together",
                )));
            }
            let decoded = STANDARD
                .decode(encoded.trim())
                .ok()
                .and_then(|d| String::from_utf8(d).ok())
                .ok_or_else(|| {
                    invalid_client("the Basic credentials are not valid base64 of id:secret")
                })?;
            let (id, secret) = decoded.split_once(':').ok_or_else(|| {
                invalid_client("the Basic credentials must be client_id:client_secret")
            })?;
            let id = form_decode(id);
            if form_id.is_some_and(|f| f != id) {
                return Err(invalid_client(
                    "client_id in the body differs from the Basic credentials",
                ));
            }
            return Ok((id, Some(form_decode(secret))));
        }
    }
    let id =
        form_id.ok_or_else(|| invalid_client("client authentication is required (client_id)"))?;
    Ok((id.to_owned(), form_secret.map(str::to_owned)))
}

/// Authenticates the calling client.
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    form_id: Option<&str>,
    form_secret: Option<&str>,
) -> Result<Client, OAuthFailure> {
    let (id, secret) = presented(headers, form_id, form_secret)?;
    if id.is_empty() || id.len() > 2048 {
        return Err(invalid_client("client_id is empty or too long"));
    }
    let Some((client, stored_hash)) = super::resolve_client(state, &id).await? else {
        return Err(invalid_client("unknown client_id; register first"));
    };
    match (stored_hash, secret) {
        // A confidential client without a stored secret had it revoked
        // (reported leaked): it must not fall back to acting as public.
        (None, _) if client.metadata.is_confidential() => Err(invalid_client(
            "this client's secret was revoked (reported leaked); its owner must register the client again",
        )),
        (None, None) => Ok(client),
        (None, Some(_)) => Err(invalid_client(
            "this is a public client; it has no secret to send",
        )),
        (Some(_), None) => Err(invalid_client(
            "this client is confidential; send its client_secret",
        )),
        (Some(stored), Some(secret)) => {
            // Offline checksum first: a mistyped secret never reaches the hash compare.
            laissez_token::Token::parse(&secret).map_err(|_| {
                invalid_client("the client_secret is not a valid Laissez client secret")
            })?;
            if bool::from(hash_secret(&secret).ct_eq(&stored)) {
                Ok(client)
            } else {
                Err(invalid_client("wrong client_secret"))
            }
        }
    }
}
