//! Organization settings (token lifetimes, how people sign in) and the
//! hygiene report.

use axum::Json;
use axum::extract::{Query, State};
use laissez_core::Scope;
use laissez_core::admin::{PRINCIPALS_READ, SETTINGS_WRITE, TOKENS_READ};
use laissez_core::credential::{Finding, Settings, hygiene as report};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Authenticated;
use crate::problem::{ApiError, ApiJson, Problem};
use crate::{AppState, now};

/// The hygiene report's threshold.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct HygieneQuery {
    /// Report credentials unused for at least this many days (default 30).
    pub unused_days: Option<i64>,
}

/// The organization settings.
#[utoipa::path(get, path = "/v1/settings", tag = "settings", responses((status = 200, body = Settings)))]
pub async fn show(
    State(state): State<AppState>,
    _caller: Authenticated,
) -> Result<Json<Settings>, ApiError> {
    Ok(Json(state.store.settings().await?))
}

/// Replaces the organization settings.
#[utoipa::path(put, path = "/v1/settings", tag = "settings", request_body = Settings,
    responses((status = 200, body = Settings), (status = 400, body = Problem), (status = 403, body = Problem)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiJson(settings): ApiJson<Settings>,
) -> Result<Json<Settings>, ApiError> {
    settings
        .validate()
        .map_err(|why| ApiError::BadRequest(why.into()))?;
    caller
        .authorize(&state, SETTINGS_WRITE, &Scope::root(), None)
        .await?;
    if settings.require_federated_login && state.federation.is_none() {
        return Err(ApiError::Conflict(
            "require_federated_login needs an upstream identity provider (start serve with --oidc-issuer); without one nobody could sign in".into(),
        ));
    }
    let event = caller
        .event("settings.update", "settings")
        .with_detail(serde_json::json!({
            "default_ttl": settings.default_ttl,
            "max_ttl": settings.max_ttl,
            "require_federated_login": settings.require_federated_login,
            "revoke_private_leaks": settings.revoke_private_leaks,
        }));
    state.store.set_settings(settings, event).await?;
    Ok(Json(settings))
}

/// Principals whose owner is inactive and credentials that are unused, never
/// used, without expiry, or longer-lived than the organization allows.
#[utoipa::path(get, path = "/v1/hygiene", tag = "settings", params(HygieneQuery),
    responses((status = 200, body = Vec<Finding>), (status = 400, body = Problem), (status = 403, body = Problem)))]
pub async fn hygiene(
    State(state): State<AppState>,
    caller: Authenticated,
    Query(query): Query<HygieneQuery>,
) -> Result<Json<Vec<Finding>>, ApiError> {
    let unused_days = query.unused_days.unwrap_or(30);
    if !(1..=3650).contains(&unused_days) {
        return Err(ApiError::BadRequest("unused_days must be 1 to 3650".into()));
    }
    caller
        .authorize(&state, PRINCIPALS_READ, &Scope::root(), None)
        .await?;
    caller
        .authorize(&state, TOKENS_READ, &Scope::root(), None)
        .await?;
    let principals = state.store.principals().await?;
    let credentials = state.store.credentials(None).await?;
    let settings = state.store.settings().await?;
    Ok(Json(report(
        &principals,
        &credentials,
        &settings,
        unused_days,
        now(),
    )))
}

/// Signing keys after a rotation.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Rotated {
    /// The key id that signs from now on.
    pub signing_kid: String,
    /// Every published key id, newest first (older ones keep verifying tokens in flight).
    pub published: Vec<String>,
}

/// Rotates the access token signing key. Tokens signed with older keys keep
/// verifying until they expire; the last three keys stay published.
#[utoipa::path(post, path = "/v1/keys/rotate", tag = "settings",
    responses((status = 200, body = Rotated), (status = 403, body = Problem)))]
pub async fn rotate_keys(
    State(state): State<AppState>,
    caller: Authenticated,
) -> Result<Json<Rotated>, ApiError> {
    caller
        .authorize(&state, SETTINGS_WRITE, &Scope::root(), None)
        .await?;
    let kid = state
        .keys
        .rotate(now())
        .map_err(|e| ApiError::Unavailable(format!("cannot rotate the signing key: {e}")))?;
    let published: Vec<String> = state.keys.jwks()["keys"]
        .as_array()
        .map(|keys| {
            keys.iter()
                .filter_map(|k| k["kid"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let event = caller
        .event("keys.rotate", kid.clone())
        .with_detail(serde_json::json!({"published": published}));
    state.store.append_audit(event).await?;
    Ok(Json(Rotated {
        signing_kid: kid,
        published,
    }))
}
