//! Dynamic client registration (RFC 7591). Open, as MCP clients expect: the
//! registration itself grants nothing; a user still has to consent before a
//! client acts for them, and client-credentials clients get no more than
//! their registration's scopes.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use laissez_core::audit::AuditEvent;
use laissez_core::credential::hash_secret;
use laissez_oauth::client::{Client, ClientKind, RegistrationRequest};
use laissez_oauth::{ErrorCode, OAuthError};
use laissez_token::{Kind, Token};
use serde_json::json;

use super::response::{OAuthFailure, OAuthJson, no_store};
use crate::{AppState, new_id, now};

/// Registers a client and returns its id (and secret, for confidential clients) once.
pub async fn register(
    State(state): State<AppState>,
    OAuthJson(request): OAuthJson<RegistrationRequest>,
) -> Result<Response, OAuthFailure> {
    let metadata = request.validate()?;
    let server_error = |e: String| OAuthFailure(OAuthError::new(ErrorCode::ServerError, e));
    let client_id = new_id("cli").map_err(|e| server_error(e.to_string()))?;
    let secret = if metadata.is_confidential() {
        Some(
            Token::generate(&state.namespace, Kind::ClientSecret)
                .map_err(|e| server_error(e.to_string()))?,
        )
    } else {
        None
    };
    let issued_at = now();
    let client = Client {
        client_id: client_id.clone(),
        kind: ClientKind::Dynamic,
        metadata: metadata.clone(),
        owner_id: None,
        created_at: issued_at,
    };
    let audit =
        AuditEvent::success(&[], "oauth.client.register", client_id.clone()).with_detail(json!({
            "client_name": metadata.client_name,
            "redirect_uris": metadata.redirect_uris,
            "grant_types": metadata.grant_types,
            "confidential": metadata.is_confidential(),
        }));
    state
        .store
        .create_client(
            client,
            secret.as_ref().map(|s| hash_secret(s.expose())),
            audit,
        )
        .await?;
    let mut body = serde_json::to_value(&metadata).unwrap_or_default();
    body["client_id"] = json!(client_id);
    body["client_id_issued_at"] = json!(issued_at);
    if let Some(secret) = &secret {
        body["client_secret"] = json!(secret.expose());
        body["client_secret_expires_at"] = json!(0);
    }
    Ok(no_store(StatusCode::CREATED, &body))
}
