//! The admin API, one module per resource. Handlers validate every input
//! before touching the store, authorize through [`crate::auth`], and commit
//! each change together with its audit record.

pub mod audit;
pub mod audit_streams;
pub mod catalog;
pub mod clients;
pub mod connected;
pub mod digests;
pub mod ops;
pub mod page;
pub mod policies;
pub mod principals;
pub mod resources;
pub mod settings;
pub mod tokens;
pub mod whoami;

use axum::Router;
use axum::routing::{delete, get, post};
use laissez_core::Principal;

use crate::AppState;
use crate::problem::ApiError;

/// Every admin API route.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(health))
        .route("/readyz", get(ops::ready))
        .route("/metrics", get(ops::metrics))
        .route("/.well-known/api-catalog", get(catalog::catalog))
        .route("/v1/whoami", get(whoami::whoami))
        .route(
            "/v1/principals",
            post(principals::create).get(principals::list),
        )
        .route("/v1/principals/{id}", get(principals::show))
        .route(
            "/v1/principals/{id}/deactivate",
            post(principals::deactivate),
        )
        .route("/v1/principals/{id}/activate", post(principals::activate))
        .route(
            "/v1/principals/{id}/owner",
            post(principals::transfer_owner),
        )
        .route(
            "/v1/principals/{id}/password",
            axum::routing::put(principals::set_password),
        )
        .route(
            "/v1/principals/{id}/email",
            axum::routing::put(principals::set_email),
        )
        .route("/v1/tokens", post(tokens::create).get(tokens::list))
        .route("/v1/tokens/{id}", get(tokens::show))
        .route("/v1/tokens/{id}/roll", post(tokens::roll))
        .route("/v1/tokens/{id}/revoke", post(tokens::revoke))
        .route("/v1/tokens/revoke", post(tokens::revoke_by_secret))
        .route(
            "/v1/roles",
            post(policies::create_role).get(policies::list_roles),
        )
        .route("/v1/policies", post(policies::create).get(policies::list))
        .route("/v1/policies/{id}", delete(policies::remove))
        .route("/v1/check", post(policies::check))
        .route("/v1/audit", get(audit::list))
        .route("/v1/audit/verify", get(audit::verify))
        .route("/v1/audit/events", post(audit::report))
        .route("/v1/audit/streams", get(audit_streams::list))
        .route(
            "/v1/audit/streams/{sink}/replay",
            post(audit_streams::replay),
        )
        .route("/v1/settings", get(settings::show).put(settings::update))
        .route("/v1/hygiene", get(settings::hygiene))
        .route("/v1/hygiene/notify", post(digests::notify))
        .route("/v1/keys/rotate", post(settings::rotate_keys))
        .route("/v1/clients", post(clients::register).get(clients::list))
        .route(
            "/v1/resources",
            axum::routing::put(resources::put).get(resources::list),
        )
        .route("/v1/connected-apps", get(connected::list))
        .route("/v1/connected-apps/disconnect", post(connected::disconnect))
}

/// Liveness: answers when the server runs and its store can be read.
#[utoipa::path(get, path = "/healthz", tag = "meta", responses((status = 200, description = "Serving")))]
pub async fn health(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Result<&'static str, ApiError> {
    state.store.settings().await?;
    Ok("ok\n")
}

/// Percent-encodes one query value (for the `Link` of the next page).
pub(crate) fn query_value(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// The principal with this id or name, or a 404 that says how to find one.
pub async fn lookup_principal(state: &AppState, key: &str) -> Result<Principal, ApiError> {
    if key.is_empty() || key.len() > 128 {
        return Err(ApiError::BadRequest(
            "a principal is named by its name or id (1 to 128 characters)".into(),
        ));
    }
    state.store.principal(key).await?.ok_or_else(|| {
        ApiError::NotFound(format!(
            "unknown principal '{key}'; list them with `laissez user list`, `laissez service list` or `laissez agent list`"
        ))
    })
}
