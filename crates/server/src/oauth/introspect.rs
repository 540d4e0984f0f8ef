//! Token introspection (RFC 7662) for access tokens and revocation (RFC 7009)
//! for access tokens and refresh tokens (a refresh token takes its family).
//! Introspection needs a confidential client; revocation accepts any client,
//! but a client may only revoke tokens issued to it.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use jsonwebtoken::Validation;
use laissez_core::audit::AuditEvent;
use laissez_oauth::access_token::AccessTokenClaims;
use laissez_oauth::{ErrorCode, OAuthError};
use serde::Deserialize;
use serde_json::json;

use super::client_auth::authenticate;
use super::response::{OAuthFailure, OAuthForm, no_store};
use crate::AppState;

/// Introspection and revocation parameters.
#[derive(Debug, Deserialize)]
pub struct TokenParams {
    token: Option<String>,
    #[serde(rename = "token_type_hint")]
    _hint: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// Verifies an access token's signature, issuer and expiry (any audience).
pub fn decode(state: &AppState, token: &str) -> Option<AccessTokenClaims> {
    let mut validation: Validation = super::keys::validation(&state.issuer, &[]);
    validation.validate_aud = false;
    state
        .keys
        .verify::<AccessTokenClaims>(token, &validation)
        .ok()
}

/// RFC 7662: whether a token is active, and what it carries.
pub async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    OAuthForm(params): OAuthForm<TokenParams>,
) -> Result<Response, OAuthFailure> {
    let client = authenticate(
        &state,
        &headers,
        params.client_id.as_deref(),
        params.client_secret.as_deref(),
    )
    .await?;
    if !client.metadata.is_confidential() {
        return Err(OAuthError::new(
            ErrorCode::InvalidClient,
            "introspection needs a confidential client",
        )
        .into());
    }
    let token = params
        .token
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let claims = match decode(&state, &token) {
        Some(claims)
            if !state.store.is_access_token_revoked(&claims.jti).await?
                && !state
                    .store
                    .disconnected_since(&claims.sub, &claims.client_id, claims.iat)
                    .await? =>
        {
            claims
        }
        _ => return Ok(no_store(StatusCode::OK, &json!({"active": false}))),
    };
    let mut body = json!({
            "active": true,
            "iss": claims.iss,
            "sub": claims.sub,
            "aud": claims.aud,
            "client_id": claims.client_id,
            "scope": claims.scope,
            "exp": claims.exp,
            "iat": claims.iat,
            "jti": claims.jti,
            "token_type": "Bearer",
            "act": claims.act,
    });
    if !claims.accounts.is_empty() {
        body["accounts"] = json!(claims.accounts);
    }
    Ok(no_store(StatusCode::OK, &body))
}

/// RFC 7009: revokes a token. Answers 200 for unknown or invalid tokens too.
pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    OAuthForm(params): OAuthForm<TokenParams>,
) -> Result<Response, OAuthFailure> {
    let client = authenticate(
        &state,
        &headers,
        params.client_id.as_deref(),
        params.client_secret.as_deref(),
    )
    .await?;
    let token = params
        .token
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    if laissez_token::Token::parse(&token).is_ok_and(|t| t.kind() == laissez_token::Kind::Refresh) {
        let audit = AuditEvent::success(&[], "oauth.refresh.revoke", client.client_id.clone());
        state
            .store
            .revoke_refresh(
                laissez_core::credential::hash_secret(&token),
                &client.client_id,
                audit,
            )
            .await?;
        return Ok(no_store(StatusCode::OK, &json!({})));
    }
    if let Some(claims) = decode(&state, &token) {
        if claims.client_id != client.client_id {
            return Err(OAuthError::new(
                ErrorCode::InvalidClient,
                "the token was not issued to this client",
            )
            .into());
        }
        let audit = AuditEvent::success(&[], "oauth.token.revoke", claims.jti.clone())
            .with_detail(json!({"client_id": client.client_id, "sub": claims.sub}));
        state
            .store
            .revoke_access_token(&claims.jti, claims.exp, audit)
            .await?;
        state.feed.published().await;
    }
    Ok(no_store(StatusCode::OK, &json!({})))
}
