//! Connected applications: which OAuth clients each user has let act for
//! them, with what scopes, since when and last used; and disconnecting one,
//! which ends the grant, revokes its refresh tokens and puts its outstanding
//! access tokens on the revocation feed gates follow.

use axum::Json;
use axum::extract::{Query, State};
use laissez_core::admin::{PRINCIPALS_READ, PRINCIPALS_WRITE};
use laissez_core::{PrincipalKind, Scope};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::lookup_principal;
use crate::AppState;
use crate::auth::Authenticated;
use crate::problem::{ApiError, ApiJson, Problem};

/// Whose applications.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ConnectedQuery {
    /// The user (name or id); the caller when absent.
    pub user: Option<String>,
}

/// One application a user let act for them.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectedAppView {
    /// The user's name.
    pub user: String,
    /// The client.
    pub client_id: String,
    /// Its name, if it gave one.
    pub client_name: Option<String>,
    /// Granted scopes.
    pub scope: String,
    /// The user's accounts it may act in (`/` for every account).
    pub accounts: Vec<String>,
    /// The resource granted.
    pub resource: Option<String>,
    /// When access was granted.
    pub granted_at: i64,
    /// When it last obtained tokens.
    pub last_used_at: Option<i64>,
}

/// Which application to disconnect.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Disconnect {
    /// The client.
    pub client_id: String,
    /// The user (name or id); the caller when absent.
    pub user: Option<String>,
}

/// Resolves the user a request is about: the caller themself, or another
/// user when the caller may administer principals.
async fn subject_user(
    state: &AppState,
    caller: &Authenticated,
    user: Option<&str>,
    permission: &str,
) -> Result<laissez_core::Principal, ApiError> {
    let me = caller.principal();
    let user = match user {
        Some(key) => lookup_principal(state, key).await?,
        None if me.kind == PrincipalKind::User => me.clone(),
        None => {
            return Err(ApiError::BadRequest(
                "name the user: `user` (CLI: --user)".into(),
            ));
        }
    };
    if user.kind != PrincipalKind::User {
        return Err(ApiError::BadRequest(format!(
            "'{}' is not a user",
            user.name
        )));
    }
    let myself = caller.chain.len() == 1 && me.id == user.id;
    if !myself {
        caller
            .authorize(state, permission, &Scope::root(), None)
            .await?;
        // Changing what another person has connected is acting on them.
        if permission == PRINCIPALS_WRITE {
            caller.may_act_on(state, &user, "oauth.disconnect").await?;
        }
    }
    Ok(user)
}

/// Lists a user's connected applications.
#[utoipa::path(get, path = "/v1/connected-apps", tag = "oauth", params(ConnectedQuery),
    responses((status = 200, body = Vec<ConnectedAppView>), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Authenticated,
    Query(query): Query<ConnectedQuery>,
) -> Result<Json<Vec<ConnectedAppView>>, ApiError> {
    let user = subject_user(&state, &caller, query.user.as_deref(), PRINCIPALS_READ).await?;
    let apps = state.store.connected_apps(Some(&user.id)).await?;
    Ok(Json(
        apps.into_iter()
            .map(|a| ConnectedAppView {
                user: user.name.to_string(),
                client_id: a.client_id,
                client_name: a.client_name,
                scope: a.scope,
                accounts: a.accounts,
                resource: a.resource,
                granted_at: a.granted_at,
                last_used_at: a.last_used_at,
            })
            .collect(),
    ))
}

/// Disconnects an application from a user, at once.
#[utoipa::path(post, path = "/v1/connected-apps/disconnect", tag = "oauth", request_body = Disconnect,
    responses((status = 200, body = Vec<ConnectedAppView>), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn disconnect(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiJson(body): ApiJson<Disconnect>,
) -> Result<Json<Vec<ConnectedAppView>>, ApiError> {
    if body.client_id.is_empty() || body.client_id.len() > 2048 {
        return Err(ApiError::BadRequest("client_id is required".into()));
    }
    let user = subject_user(&state, &caller, body.user.as_deref(), PRINCIPALS_WRITE).await?;
    let event = caller
        .event("oauth.disconnect", body.client_id.clone())
        .with_detail(serde_json::json!({"user": user.id}));
    if !state
        .store
        .disconnect(&user.id, &body.client_id, event)
        .await?
    {
        return Err(ApiError::NotFound(format!(
            "{} has not connected '{}'; see `laissez app connected`",
            user.name, body.client_id
        )));
    }
    state.feed.published().await;
    list(
        State(state),
        caller,
        Query(ConnectedQuery {
            user: Some(user.id),
        }),
    )
    .await
}
