//! The token endpoint (RFC 6749 §3.2): authorization codes (with PKCE and
//! the exact redirect URI), refresh tokens (rotated on every use; a reused one
//! revokes its family) and client credentials (a confidential client acting
//! for itself, with at most the scopes it registered). Access tokens are
//! short-lived RFC 9068 JWTs for one resource.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use laissez_oauth::access_token::{AccessTokenClaims, TYP};
use laissez_oauth::client::{Client, GrantType};
use laissez_oauth::grant::{REFRESH_TTL, RefreshGrant, RefreshUse};
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
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    refresh_token: Option<String>,
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
        "authorization_code" => authorization_code(&state, &client, &request).await,
        "refresh_token" => refresh(&state, &client, &request).await,
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
    let token = TokenFor {
        subject: &client.client_id,
        client_id: &client.client_id,
        actor: None,
        audience: &audience,
        scopes: &requested,
        accounts: &[],
    };
    issue(state, &token, None)
}

fn audience_for(
    state: &AppState,
    granted: Option<&str>,
    requested: Option<&str>,
) -> Result<String, OAuthFailure> {
    let granted = granted.map(Resource::parse).transpose()?;
    let requested = requested.map(Resource::parse).transpose()?;
    match (granted, requested) {
        (Some(g), Some(r)) if g != r => Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            "resource differs from the one the user authorized",
        )
        .into()),
        (Some(g), _) => Ok(g.to_string()),
        (None, Some(r)) => Ok(r.to_string()),
        (None, None) => Ok(state.issuer.clone()),
    }
}

async fn active_user(state: &AppState, user_id: &str) -> Result<(), OAuthFailure> {
    match state.store.principal(user_id).await? {
        Some(user) if user.status == laissez_core::Status::Active => Ok(()),
        _ => {
            Err(OAuthError::invalid_grant("the user who granted access is no longer active").into())
        }
    }
}

async fn authorization_code(
    state: &AppState,
    client: &Client,
    request: &TokenRequest,
) -> Result<Response, OAuthFailure> {
    require_grant(client, GrantType::AuthorizationCode, "authorization_code")?;
    let code = request
        .code
        .as_deref()
        .ok_or_else(|| OAuthError::invalid_request("code is required"))?;
    let verifier = request
        .code_verifier
        .as_deref()
        .ok_or_else(|| OAuthError::invalid_request("code_verifier is required (PKCE)"))?;
    let Some((grant, spent)) = state
        .store
        .take_code(laissez_core::credential::hash_secret(code))
        .await?
    else {
        return Err(OAuthError::invalid_grant("unknown authorization code").into());
    };
    if spent {
        // A replayed code means it leaked (RFC 6749 §4.1.2, RFC 9700 §4.5):
        // end everything this user gave this client; they consent again.
        let audit = laissez_core::audit::AuditEvent::success(
            &[],
            "oauth.code.reuse",
            grant.client_id.clone(),
        )
        .with_detail(json!({"user": grant.user_id}));
        state
            .store
            .disconnect(&grant.user_id, &grant.client_id, audit)
            .await?;
        state.feed.published().await;
        return Err(OAuthError::invalid_grant(
            "the authorization code was already used; every token issued from it is revoked",
        )
        .into());
    }
    if grant.expires_at <= now() {
        return Err(
            OAuthError::invalid_grant("the authorization code expired; start again").into(),
        );
    }
    if grant.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(
            "the authorization code was issued to another client",
        )
        .into());
    }
    if request.redirect_uri.as_deref() != Some(grant.redirect_uri.as_str()) {
        return Err(OAuthError::invalid_grant(
            "redirect_uri must repeat the authorization request's exactly",
        )
        .into());
    }
    laissez_oauth::pkce::Challenge::stored(grant.code_challenge.clone()).verify(verifier)?;
    active_user(state, &grant.user_id).await?;
    if !client.metadata.allows(GrantType::RefreshToken) {
        // Otherwise storing the refresh token records the use.
        state
            .store
            .touch_grant(&grant.user_id, &client.client_id)
            .await?;
    }
    let audience = audience_for(
        state,
        grant.resource.as_deref(),
        request.resource.as_deref(),
    )?;
    let scopes = OAuthScopes::parse(Some(&grant.scope))?;
    let refresh = if client.metadata.allows(GrantType::RefreshToken) {
        let family_id = new_id("fam").map_err(|e| server_error(e.to_string()))?;
        let next = RefreshGrant {
            family_id,
            client_id: client.client_id.clone(),
            user_id: grant.user_id.clone(),
            scope: grant.scope.clone(),
            resource: Some(audience.clone()),
            accounts: grant.accounts.clone(),
            expires_at: now() + REFRESH_TTL,
            issued_at: now(),
        };
        Some(new_refresh(state, next).await?)
    } else {
        None
    };
    let token = TokenFor::user(&grant.user_id, client, &audience, &scopes, &grant.accounts);
    issue(state, &token, refresh)
}

async fn refresh(
    state: &AppState,
    client: &Client,
    request: &TokenRequest,
) -> Result<Response, OAuthFailure> {
    require_grant(client, GrantType::RefreshToken, "refresh_token")?;
    let token = request
        .refresh_token
        .as_deref()
        .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
    if laissez_token::Token::parse(token).is_err() {
        return Err(OAuthError::invalid_grant("not a valid refresh token (checksum)").into());
    }
    let grant = match state
        .store
        .use_refresh(laissez_core::credential::hash_secret(token))
        .await?
    {
        RefreshUse::Fresh(grant) => grant,
        RefreshUse::Reused(grant) => {
            let audit = laissez_core::audit::AuditEvent::success(
                &[],
                "oauth.refresh.reuse",
                grant.family_id.clone(),
            )
            .with_detail(json!({"client_id": grant.client_id, "user": grant.user_id}));
            let _ = state.store.append_audit(audit).await;
            return Err(OAuthError::invalid_grant(
                "this refresh token was already used; the whole grant is revoked, sign in again",
            )
            .into());
        }
        RefreshUse::Invalid => {
            return Err(
                OAuthError::invalid_grant("unknown, expired or revoked refresh token").into(),
            );
        }
    };
    if grant.client_id != client.client_id {
        return Err(
            OAuthError::invalid_grant("the refresh token was issued to another client").into(),
        );
    }
    active_user(state, &grant.user_id).await?;
    let granted = OAuthScopes::parse(Some(&grant.scope))?;
    let scopes = match request.scope.as_deref() {
        Some(_) => {
            let asked = OAuthScopes::parse(request.scope.as_deref())?;
            if !asked.is_subset(&granted) {
                return Err(OAuthError::new(
                    ErrorCode::InvalidScope,
                    "a refresh can only narrow the granted scopes",
                )
                .into());
            }
            asked
        }
        None => granted,
    };
    let audience = audience_for(
        state,
        grant.resource.as_deref(),
        request.resource.as_deref(),
    )?;
    let next = RefreshGrant {
        expires_at: now() + REFRESH_TTL,
        issued_at: now(),
        ..grant.clone()
    };
    let next = new_refresh(state, next).await?;
    let token = TokenFor::user(&grant.user_id, client, &audience, &scopes, &grant.accounts);
    issue(state, &token, Some(next))
}

/// Refuses clients not registered for `grant`.
fn require_grant(client: &Client, grant: GrantType, name: &str) -> Result<(), OAuthFailure> {
    if client.metadata.allows(grant) {
        return Ok(());
    }
    Err(OAuthError::new(
        ErrorCode::UnauthorizedClient,
        format!("this client is not registered for the {name} grant"),
    )
    .into())
}

fn server_error(e: String) -> OAuthFailure {
    OAuthFailure(OAuthError::new(ErrorCode::ServerError, e))
}

async fn new_refresh(state: &AppState, grant: RefreshGrant) -> Result<String, OAuthFailure> {
    let token = laissez_token::Token::generate(&state.namespace, laissez_token::Kind::Refresh)
        .map_err(|e| server_error(e.to_string()))?;
    state
        .store
        .create_refresh(laissez_core::credential::hash_secret(token.expose()), grant)
        .await?;
    Ok(token.expose().to_owned())
}

/// What an access token is about.
pub struct TokenFor<'a> {
    /// The user, or the client itself for client credentials.
    pub subject: &'a str,
    /// The client it is issued to.
    pub client_id: &'a str,
    /// The agent acting for the subject.
    pub actor: Option<&'a str>,
    /// The resource.
    pub audience: &'a str,
    /// Granted scopes.
    pub scopes: &'a OAuthScopes,
    /// The subject's accounts it may act in.
    pub accounts: &'a [String],
}

impl<'a> TokenFor<'a> {
    /// A token for `user`, through `client` (the agent acting for them).
    fn user(
        user: &'a str,
        client: &'a Client,
        audience: &'a str,
        scopes: &'a OAuthScopes,
        accounts: &'a [String],
    ) -> TokenFor<'a> {
        TokenFor {
            subject: user,
            client_id: &client.client_id,
            actor: Some(&client.client_id),
            audience,
            scopes,
            accounts,
        }
    }
}

/// Signs an access token and builds the token response.
pub fn issue(
    state: &AppState,
    token: &TokenFor<'_>,
    refresh_token: Option<String>,
) -> Result<Response, OAuthFailure> {
    let scopes = token.scopes;
    let server_error = |e: String| OAuthFailure(OAuthError::new(ErrorCode::ServerError, e));
    let now = now();
    let claims = AccessTokenClaims {
        iss: state.issuer.clone(),
        sub: token.subject.to_owned(),
        aud: token.audience.to_owned(),
        exp: now + ACCESS_TOKEN_TTL,
        iat: now,
        jti: new_id("at").map_err(|e| server_error(e.to_string()))?,
        client_id: token.client_id.to_owned(),
        scope: scopes.to_string(),
        accounts: token.accounts.to_vec(),
        act: token.actor.map(|sub| laissez_oauth::access_token::Actor {
            sub: sub.to_owned(),
        }),
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
    if let Some(refresh) = refresh_token {
        body["refresh_token"] = json!(refresh);
    }
    Ok(no_store(StatusCode::OK, &body))
}
