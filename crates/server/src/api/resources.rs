//! Protected resources: the apps behind gates, registered so the
//! authorization server can describe their scopes in plain words on consent
//! pages, give requests that name no scope the resource's defaults, and list
//! them in its metadata (`protected_resources`).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use laissez_core::Scope;
use laissez_core::admin::{PRINCIPALS_READ, SETTINGS_WRITE};
use laissez_oauth::OAuthScopes;
use laissez_oauth::protected::ProtectedResource;
use laissez_oauth::resource::Resource;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::Authenticated;
use crate::problem::{ApiError, ApiJson, Problem};

/// A resource to register.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutResource {
    /// The resource URL agents connect to (the gate's public URL).
    pub resource: String,
    /// A name for people.
    pub name: String,
    /// Each scope and what it allows, in plain words.
    #[serde(default)]
    pub scopes: BTreeMap<String, String>,
    /// Scopes for requests that name none (each must be in `scopes`).
    #[serde(default)]
    pub default_scopes: Vec<String>,
}

/// Registers or replaces a protected resource.
#[utoipa::path(put, path = "/v1/resources", tag = "oauth", request_body = PutResource,
    responses((status = 200, body = Object), (status = 400, body = Problem), (status = 403, body = Problem)))]
pub async fn put(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiJson(body): ApiJson<PutResource>,
) -> Result<Json<ProtectedResource>, ApiError> {
    let resource =
        Resource::parse(&body.resource).map_err(|e| ApiError::BadRequest(e.description))?;
    if body.name.is_empty() || body.name.len() > 100 {
        return Err(ApiError::BadRequest(
            "name must be 1 to 100 characters".into(),
        ));
    }
    let names: Vec<&str> = body.scopes.keys().map(String::as_str).collect();
    OAuthScopes::parse(Some(&names.join(" "))).map_err(|e| ApiError::BadRequest(e.description))?;
    if body.scopes.values().any(|d| d.len() > 200) {
        return Err(ApiError::BadRequest(
            "scope descriptions are at most 200 characters".into(),
        ));
    }
    if let Some(unknown) = body
        .default_scopes
        .iter()
        .find(|s| !body.scopes.contains_key(*s))
    {
        return Err(ApiError::BadRequest(format!(
            "default scope '{unknown}' is not one of the resource's scopes"
        )));
    }
    caller
        .authorize(&state, SETTINGS_WRITE, &Scope::root(), None)
        .await?;
    let registered = ProtectedResource {
        resource: resource.to_string(),
        name: body.name,
        scopes: body.scopes,
        default_scopes: body.default_scopes,
    };
    let event = caller
        .event("resource.put", registered.resource.clone())
        .with_detail(serde_json::json!({"scopes": registered.scopes.keys().collect::<Vec<_>>()}));
    state.store.put_resource(registered.clone(), event).await?;
    Ok(Json(registered))
}

/// Lists protected resources.
#[utoipa::path(get, path = "/v1/resources", tag = "oauth", responses((status = 200, body = Object), (status = 403, body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Authenticated,
) -> Result<Json<Vec<ProtectedResource>>, ApiError> {
    caller
        .authorize(&state, PRINCIPALS_READ, &Scope::root(), None)
        .await?;
    Ok(Json(state.store.resources().await?))
}
