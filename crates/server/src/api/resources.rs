//! Protected resources: the apps behind gates, registered so the
//! authorization server can describe their scopes in plain words on consent
//! pages, give requests that name no scope the resource's defaults, and list
//! them in its metadata (`protected_resources`).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use laissez_core::Scope;
use laissez_core::admin::{RESOURCES_READ, SETTINGS_WRITE};
use laissez_oauth::OAuthScopes;
use laissez_oauth::protected::{GateSettings, ProtectedResource};
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
    /// The gate's configuration, to run it by name (`laissez gate --app NAME`)
    /// or inside `laissez serve` (with `listen`).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub gate: Option<GateSettings>,
}

/// Checks a gate configuration; the error says which field is wrong.
fn validate_gate(gate: &GateSettings) -> Result<(), String> {
    let upstream = url::Url::parse(&gate.upstream)
        .map_err(|e| format!("gate.upstream '{}' is not a URL: {e}", gate.upstream))?;
    if !matches!(upstream.scheme(), "http" | "https") || upstream.host().is_none() {
        return Err(format!(
            "gate.upstream '{}' must be an http(s) URL",
            gate.upstream
        ));
    }
    if let Some(listen) = &gate.listen
        && listen.parse::<std::net::SocketAddr>().is_err()
    {
        return Err(format!(
            "gate.listen '{listen}' must be an address such as 127.0.0.1:8800"
        ));
    }
    OAuthScopes::parse(Some(&gate.required_scopes.join(" ")))
        .map_err(|e| format!("gate.required_scopes: {}", e.description))?;
    for rule in &gate.rules {
        laissez_gate::Rule::parse(rule).map_err(|e| format!("gate.rules: {e}"))?;
    }
    if let Some(account) = &gate.account {
        let ok = Scope::parse(account).is_ok_and(|s| s.account() == Some(account.as_str()));
        if !ok {
            return Err(format!("gate.account '{account}' is not an account name"));
        }
    }
    laissez_gate::dlp::DlpAction::parse(&gate.dlp_request)
        .map_err(|e| format!("gate.dlp_request: {e}"))?;
    laissez_gate::dlp::DlpAction::parse(&gate.dlp_response)
        .map_err(|e| format!("gate.dlp_response: {e}"))?;
    Ok(())
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
    if let Some(gate) = &body.gate {
        validate_gate(gate).map_err(ApiError::BadRequest)?;
    }
    caller
        .authorize(&state, SETTINGS_WRITE, &Scope::root(), None)
        .await?;
    let existing = state.store.resources().await?;
    if let Some(other) = existing
        .iter()
        .find(|r| r.name == body.name && r.resource != resource.to_string())
    {
        return Err(ApiError::Conflict(format!(
            "the name '{}' is taken by {}; gates find their app by name",
            body.name, other.resource
        )));
    }
    let registered = ProtectedResource {
        resource: resource.to_string(),
        name: body.name,
        scopes: body.scopes,
        default_scopes: body.default_scopes,
        gate: body.gate,
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
        .authorize(&state, RESOURCES_READ, &Scope::root(), None)
        .await?;
    Ok(Json(state.store.resources().await?))
}
