//! The token endpoint (RFC 6749 §3.2). This part serves the client
//! credentials grant: a confidential client acting for itself gets a
//! short-lived RFC 9068 access token for one resource, with at most the
//! scopes it registered.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use laissez_oauth::access_token::{AccessTokenClaims, TYP};
use laissez_oauth::client::{Client, GrantType};
use laissez_oauth::resource::Resource;
use laissez_oauth::{ErrorCode, OAuthError, OAuthScopes};
use serde::Deserialize;
use serde_json::json;

use super::client_auth::authenticate;
use super::response::{OAuthFailure, OAuthForm, no_store};
use crate::{AppState, new_id, now};

/// Access token lifetime, seconds.
pub const ACCESS_TOKEN_TTL: i64 = 600;

/// Token request parameters.
#[derive(Debug, Deserialize)]
pub struct TokenRequest {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    scope: Option<String>,
    resource: Option<String>,
}

/// Issues tokens.
pub async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    OAuthForm(request): OAuthForm<TokenRequest>,
) -> Result<Response, OAuthFailure> {
    let grant = request
        .grant_type
        .as_deref()
        .ok_or_else(|| OAuthError::invalid_request("grant_type is required"))?;
    let client = authenticate(
        &state,
        &headers,
        request.client_id.as_deref(),
        request.client_secret.as_deref(),
    )
    .await?;
    match grant {
        "client_credentials" => client_credentials(&state, &client, &request).await,
        "authorization_code" | "refresh_token" => Err(OAuthError::new(
            ErrorCode::UnsupportedGrantType,
            format!("the {grant} grant is not available on this server yet"),
        )
        .into()),
        other => Err(OAuthError::new(
            ErrorCode::UnsupportedGrantType,
            format!(
                "grant_type '{}' is not supported",
                other.chars().take(40).collect::<String>()
            ),
        )
        .into()),
    }
}

async fn client_credentials(
    state: &AppState,
    client: &Client,
    request: &TokenRequest,
) -> Result<Response, OAuthFailure> {
    if !client.metadata.allows(GrantType::ClientCredentials) || !client.metadata.is_confidential() {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client is not registered for the client_credentials grant",
        )
        .into());
    }
    let registered = OAuthScopes::parse(client.metadata.scope.as_deref())?;
    let requested = match request.scope.as_deref() {
        Some(_) => OAuthScopes::parse(request.scope.as_deref())?,
        None => registered.clone(),
    };
    let extra = requested.difference(&registered);
    if !extra.is_empty() {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            format!("the client is not registered for: {extra}"),
        )
        .into());
    }
    let audience = match request.resource.as_deref() {
        Some(resource) => Resource::parse(resource)?.to_string(),
        None => state.issuer.clone(),
    };
    issue(
        state,
        &client.client_id,
        &client.client_id,
        None,
        &audience,
        &requested,
    )
}

/// Signs an access token and builds the token response.
pub fn issue(
    state: &AppState,
    subject: &str,
    client_id: &str,
    actor: Option<String>,
    audience: &str,
    scopes: &OAuthScopes,
) -> Result<Response, OAuthFailure> {
    let server_error = |e: String| OAuthFailure(OAuthError::new(ErrorCode::ServerError, e));
    let now = now();
    let claims = AccessTokenClaims {
        iss: state.issuer.clone(),
        sub: subject.to_owned(),
        aud: audience.to_owned(),
        exp: now + ACCESS_TOKEN_TTL,
        iat: now,
        jti: new_id("at").map_err(|e| server_error(e.to_string()))?,
        client_id: client_id.to_owned(),
        scope: scopes.to_string(),
        act: actor.map(|sub| laissez_oauth::access_token::Actor { sub }),
    };
    let jwt = state
        .keys
        .sign(TYP, &claims)
        .map_err(|e| server_error(e.to_string()))?;
    let mut body = json!({
        "access_token": jwt,
        "token_type": "Bearer",
        "expires_in": ACCESS_TOKEN_TTL,
    });
    if !scopes.is_empty() {
        body["scope"] = json!(scopes.to_string());
    }
    Ok(no_store(StatusCode::OK, &body))
}
