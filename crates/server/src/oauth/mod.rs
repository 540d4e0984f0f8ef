//! The OAuth 2.1 authorization server inside `laissez serve`: discovery
//! (RFC 8414, and the OpenID Connect discovery path MCP clients also try)
//! and the signing keys that access tokens are verified with, dynamic client
//! registration, the token endpoint, introspection and revocation.

pub mod authorize;
pub mod cimd;
pub mod client_auth;
pub mod exchange;
pub mod feed;
pub mod introspect;
pub mod keys;
pub mod register;
pub mod response;
pub mod token;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use laissez_oauth::metadata::ServerMetadata;

use crate::AppState;

/// The authorization server's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/.well-known/oauth-authorization-server", get(metadata))
        .route("/.well-known/openid-configuration", get(metadata))
        .route("/oauth/jwks", get(jwks))
        .route("/oauth/revoked", get(feed::revoked))
        .route("/oauth/register", post(register::register))
        .route(
            "/oauth/register/{client_id}",
            get(register::read)
                .put(register::update)
                .delete(register::delete),
        )
        .route("/oauth/authorize", get(authorize::authorize))
        .route("/oauth/login", post(authorize::login))
        .route("/oauth/consent", post(authorize::consent))
        .route("/oauth/federate", get(crate::web::federation::start))
        .route(
            "/oauth/federate/callback",
            get(crate::web::federation::callback),
        )
        .route("/", get(crate::web::views::landing))
        .route(
            crate::web::views::STYLESHEET_PATH,
            get(crate::web::views::stylesheet),
        )
        .route("/account", get(crate::web::account::connected))
        .route("/account/disconnect", post(crate::web::account::disconnect))
        .route(
            "/account/sessions/end",
            post(crate::web::account::end_session),
        )
        .route("/oauth/token", post(token::token))
        .route("/oauth/introspect", post(introspect::introspect))
        .route("/oauth/revoke", post(introspect::revoke))
}

/// The RFC 8414 metadata document; `issuer` is exactly the configured issuer URL.
pub async fn metadata(
    State(state): State<AppState>,
) -> Result<impl IntoResponse, crate::problem::ApiError> {
    let resources = state.store.resources().await?;
    let mut scopes: Vec<String> = resources
        .iter()
        .flat_map(|r| r.scopes.keys().cloned())
        .collect();
    scopes.push("offline_access".into());
    scopes.sort();
    scopes.dedup();
    let protected = resources.into_iter().map(|r| r.resource).collect();
    let mut document = ServerMetadata::new(&state.issuer, scopes, protected);
    if state.mutual_tls {
        document = document.with_mutual_tls();
    }
    Ok((
        [(header::CACHE_CONTROL, "public, max-age=60")],
        axum::Json(document),
    ))
}

/// The public signing keys (JWK Set).
pub async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        axum::Json(state.keys.jwks()),
    )
}

/// The client with this id: a metadata document for https URLs, otherwise a
/// registered client with its secret's hash.
pub async fn resolve_client(
    state: &AppState,
    client_id: &str,
) -> Result<Option<(laissez_oauth::client::Client, Option<[u8; 32]>)>, response::OAuthFailure> {
    if cimd::is_document_url(client_id) {
        return Ok(Some((state.documents.resolve(client_id).await?, None)));
    }
    Ok(state.store.client(client_id).await?)
}
