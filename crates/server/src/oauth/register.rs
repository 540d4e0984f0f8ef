//! Dynamic client registration (RFC 7591) and its management (RFC 7592:
//! read, update, delete with the registration access token). Open, as MCP clients expect: the
//! registration itself grants nothing; a user still has to consent before a
//! client acts for them, and client-credentials clients get no more than
//! their registration's scopes.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
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
    // RFC 7592: the bearer credential for reading, updating and deleting this registration.
    let registration = Token::generate(&state.namespace, Kind::ClientSecret)
        .map_err(|e| server_error(e.to_string()))?;
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
            Some(hash_secret(registration.expose())),
            audit,
        )
        .await?;
    let mut body = serde_json::to_value(&metadata).unwrap_or_default();
    body["client_id"] = json!(client_id);
    body["client_id_issued_at"] = json!(issued_at);
    body["registration_access_token"] = json!(registration.expose());
    body["registration_client_uri"] = json!(format!(
        "{}/oauth/register/{client_id}",
        state.issuer.trim_end_matches('/')
    ));
    if let Some(secret) = &secret {
        body["client_secret"] = json!(secret.expose());
        body["client_secret_expires_at"] = json!(0);
    }
    Ok(no_store(StatusCode::CREATED, &body))
}

/// Authenticates an RFC 7592 request by its registration access token.
async fn registered(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    client_id: &str,
) -> Result<Client, Response> {
    use subtle::ConstantTimeEq;
    let refuse = || {
        let mut response = (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "invalid_token", "error_description": "send this client's registration_access_token as a Bearer token"})),
        )
            .into_response();
        response.headers_mut().insert(
            axum::http::header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Bearer error=\"invalid_token\""),
        );
        response
    };
    let presented = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| Token::parse(t).is_ok())
        .ok_or_else(refuse)?;
    let stored = state
        .store
        .registration_token(client_id)
        .await
        .map_err(|e| OAuthFailure::from(e).into_response())?;
    let client = state
        .store
        .client(client_id)
        .await
        .map_err(|e| OAuthFailure::from(e).into_response())?;
    match (stored, client) {
        (Some(stored), Some((client, _))) if bool::from(hash_secret(presented).ct_eq(&stored)) => {
            Ok(client)
        }
        _ => Err(refuse()),
    }
}

fn client_document(state: &AppState, client: &Client) -> serde_json::Value {
    let mut body = serde_json::to_value(&client.metadata).unwrap_or_default();
    body["client_id"] = json!(client.client_id);
    body["client_id_issued_at"] = json!(client.created_at);
    body["registration_client_uri"] = json!(format!(
        "{}/oauth/register/{}",
        state.issuer.trim_end_matches('/'),
        client.client_id
    ));
    body
}

/// RFC 7592 read.
pub async fn read(
    State(state): State<AppState>,
    axum::extract::Path(client_id): axum::extract::Path<String>,
    headers: axum::http::HeaderMap,
) -> Response {
    match registered(&state, &headers, &client_id).await {
        Ok(client) => no_store(StatusCode::OK, &client_document(&state, &client)),
        Err(response) => response,
    }
}

/// RFC 7592 update: the body is the complete new metadata, with `client_id`.
pub async fn update(
    State(state): State<AppState>,
    axum::extract::Path(client_id): axum::extract::Path<String>,
    headers: axum::http::HeaderMap,
    OAuthJson(document): OAuthJson<serde_json::Value>,
) -> Response {
    let mut client = match registered(&state, &headers, &client_id).await {
        Ok(client) => client,
        Err(response) => return response,
    };
    if document["client_id"] != client_id.as_str() {
        return OAuthFailure(OAuthError::invalid_request(
            "the body's client_id must be the client's",
        ))
        .into_response();
    }
    if document.get("client_secret").is_some()
        || document.get("registration_access_token").is_some()
    {
        return OAuthFailure(OAuthError::new(
            ErrorCode::InvalidClientMetadata,
            "secrets cannot be set by an update",
        ))
        .into_response();
    }
    let request: RegistrationRequest = match serde_json::from_value(document) {
        Ok(request) => request,
        Err(e) => {
            return OAuthFailure(OAuthError::new(
                ErrorCode::InvalidClientMetadata,
                e.to_string(),
            ))
            .into_response();
        }
    };
    let metadata = match request.validate() {
        Ok(metadata) => metadata,
        Err(e) => return OAuthFailure(e).into_response(),
    };
    if metadata.is_confidential() != client.metadata.is_confidential() {
        return OAuthFailure(OAuthError::new(
            ErrorCode::InvalidClientMetadata,
            "a client cannot switch between public and confidential; register a new one",
        ))
        .into_response();
    }
    client.metadata = metadata;
    let audit = AuditEvent::success(&[], "oauth.client.update", client_id.clone());
    if let Err(e) = state.store.update_client(client.clone(), audit).await {
        return OAuthFailure::from(e).into_response();
    }
    no_store(StatusCode::OK, &client_document(&state, &client))
}

/// RFC 7592 delete: the client and every grant to it end.
pub async fn delete(
    State(state): State<AppState>,
    axum::extract::Path(client_id): axum::extract::Path<String>,
    headers: axum::http::HeaderMap,
) -> Response {
    if let Err(response) = registered(&state, &headers, &client_id).await {
        return response;
    }
    let audit = AuditEvent::success(&[], "oauth.client.delete", client_id.clone());
    match state.store.delete_client(&client_id, audit).await {
        Ok(()) => {
            state.feed.published().await;
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => OAuthFailure::from(e).into_response(),
    }
}
