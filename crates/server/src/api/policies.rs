//! Roles, policies and the `check` question: may this principal do this here,
//! and which policy says so?

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use laissez_core::admin::{POLICIES_READ, POLICIES_WRITE, ROLES_READ, ROLES_WRITE};
use laissez_core::audit::AuditEvent;
use laissez_core::{Decision, Name, Permission, Policy, Principal, PrincipalRef, Role, Scope};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::lookup_principal;
use super::page::{self, PageRequest};
use crate::auth::Authenticated;
use crate::problem::{ApiError, ApiJson, Problem};
use crate::{AppState, new_id, now};

/// A new role.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRole {
    /// Unique role name.
    pub name: String,
    /// Permissions such as `wiki.pages.read`.
    pub permissions: Vec<String>,
    /// Free text for people.
    #[serde(default)]
    pub description: String,
}

/// A new policy: principal + role + scope.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePolicy {
    /// Who (name or id).
    pub principal: String,
    /// Which role.
    pub role: String,
    /// Where: this node and everything below it (`/` for everything).
    pub scope: String,
}

/// Filter for listing policies.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListPolicies {
    /// Only this principal's policies (name or id).
    pub principal: Option<String>,
    /// Items per page (1 to 1000, default 100).
    pub limit: Option<usize>,
    /// Where the previous page ended (its `Laissez-Next-Cursor`).
    pub cursor: Option<String>,
}

/// A question for the policy engine.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    /// Who (name or id); delegates are checked along their whole chain.
    pub principal: String,
    /// What, e.g. `wiki.pages.read`.
    pub permission: String,
    /// Where, e.g. `acme/apps/wiki/pages/42`.
    pub resource: String,
}

/// The engine's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckResult {
    /// Allowed or not.
    pub allowed: bool,
    /// The chain that was evaluated, human first.
    pub chain: Vec<PrincipalRef>,
    /// The full decision: the policy per link, or why not.
    pub decision: Decision,
    /// The decision in one sentence.
    pub explanation: String,
}

/// Creates a role.
#[utoipa::path(post, path = "/v1/roles", tag = "policies", request_body = CreateRole,
    responses((status = 201, body = Role), (status = 400, body = Problem), (status = 409, body = Problem)))]
pub async fn create_role(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiJson(body): ApiJson<CreateRole>,
) -> Result<(StatusCode, Json<Role>), ApiError> {
    let name = Name::parse(&body.name, "role name")?;
    if body.permissions.is_empty() {
        return Err(ApiError::BadRequest(
            "a role needs at least one permission (CLI: --permission p)".into(),
        ));
    }
    if body.permissions.len() > 256 {
        return Err(ApiError::BadRequest(
            "a role has at most 256 permissions".into(),
        ));
    }
    let permissions = body
        .permissions
        .iter()
        .map(|p| Permission::parse(p))
        .collect::<Result<BTreeSet<_>, _>>()?;
    if body.description.len() > 1024 {
        return Err(ApiError::BadRequest(
            "description is longer than 1024 bytes".into(),
        ));
    }
    caller
        .authorize(&state, ROLES_WRITE, &Scope::root(), None)
        .await?;
    let role = Role {
        name,
        permissions,
        builtin: false,
        description: body.description,
    };
    let event = caller
        .event("role.create", role.name.to_string())
        .with_detail(serde_json::json!({"permissions": role.permissions}));
    state.store.create_role(role.clone(), event).await?;
    Ok((StatusCode::CREATED, Json(role)))
}

/// Lists roles, built-in ones included.
#[utoipa::path(get, path = "/v1/roles", tag = "policies", responses((status = 200, body = Vec<Role>)))]
pub async fn list_roles(
    State(state): State<AppState>,
    caller: Authenticated,
) -> Result<Json<Vec<Role>>, ApiError> {
    caller
        .authorize(&state, ROLES_READ, &Scope::root(), None)
        .await?;
    Ok(Json(state.store.roles().await?))
}

/// Grants a role on a scope. Needs `laissez.policies.write` on that scope
/// (the authority over what happens there); a role carrying Laissez's own
/// admin permissions additionally needs the caller to hold each of them
/// there, so nobody can make themselves or anyone else a bigger administrator
/// than they are.
#[utoipa::path(post, path = "/v1/policies", tag = "policies", request_body = CreatePolicy,
    responses((status = 201, body = Policy), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiJson(body): ApiJson<CreatePolicy>,
) -> Result<(StatusCode, Json<Policy>), ApiError> {
    let role = Name::parse(&body.role, "role")?;
    let scope = Scope::parse(&body.scope)?;
    let principal = lookup_principal(&state, &body.principal).await?;
    caller
        .authorize(&state, POLICIES_WRITE, &scope, None)
        .await?;
    let ids: Vec<String> = caller.chain.iter().map(|p| p.id.clone()).collect();
    let caller_policies = state.store.policy_set(&ids).await?;
    let missing = caller_policies
        .missing_for(&caller.refs(), caller.restriction(), &role, &scope)
        .map_err(|_| {
            ApiError::BadRequest(format!(
                "unknown role '{role}'; list roles with `laissez role list`"
            ))
        })?
        .into_iter()
        .filter(|p| p.as_str().starts_with("laissez."))
        .collect::<Vec<_>>();
    if !missing.is_empty() {
        let names: Vec<&str> = missing.iter().map(|p| p.as_str()).collect();
        let mut event = caller.event("policy.create", principal.id.clone());
        event.outcome = laissez_core::audit::Outcome::Denied;
        event.detail = serde_json::json!({"role": role, "scope": scope, "missing": names});
        state.store.append_audit(event).await?;
        return Err(ApiError::Forbidden(format!(
            "you cannot grant '{role}' on '{scope}' because it carries Laissez admin permissions you do not hold there yourself: {}",
            names.join(", ")
        )));
    }
    let policy = Policy {
        id: new_id("pol")?,
        principal_id: principal.id.clone(),
        role,
        scope,
        created_at: now(),
    };
    let event = caller
        .event("policy.create", policy.id.clone())
        .with_detail(serde_json::json!({"principal": principal.id, "role": policy.role, "scope": policy.scope}));
    state.store.create_policy(policy.clone(), event).await?;
    Ok((StatusCode::CREATED, Json(policy)))
}

/// Lists policies.
#[utoipa::path(get, path = "/v1/policies", tag = "policies", params(ListPolicies),
    responses((status = 200, body = Vec<Policy>), (status = 404, body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Authenticated,
    Query(filter): Query<ListPolicies>,
) -> Result<Response, ApiError> {
    let page = PageRequest::parse(filter.limit, filter.cursor.as_deref())?;
    caller
        .authorize(&state, POLICIES_READ, &Scope::root(), None)
        .await?;
    let principal = match filter.principal.as_deref() {
        Some(key) => Some(lookup_principal(&state, key).await?.id),
        None => None,
    };
    let all = state.store.policies(principal.as_deref()).await?;
    let path = match filter.principal.as_deref() {
        Some(key) => format!("/v1/policies?principal={}", super::query_value(key)),
        None => "/v1/policies".to_owned(),
    };
    Ok(page
        .apply(all, |p| page::ascending(p.created_at, &p.id))
        .respond(&path, page.limit))
}

/// Removes a policy.
#[utoipa::path(delete, path = "/v1/policies/{id}", tag = "policies", params(("id" = String, Path, description = "Policy id")),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn remove(
    State(state): State<AppState>,
    caller: Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let policy = state
        .store
        .policies(None)
        .await?
        .into_iter()
        .find(|p| p.id == id)
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "unknown policy '{id}'; list them with `laissez policy list`"
            ))
        })?;
    caller
        .authorize(&state, POLICIES_WRITE, &policy.scope, None)
        .await?;
    let event: AuditEvent = caller
        .event("policy.delete", policy.id.clone())
        .with_detail(serde_json::json!({"principal": policy.principal_id, "role": policy.role, "scope": policy.scope}));
    state.store.delete_policy(&policy.id, event).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// May this principal use this permission on this resource? Names the policy
/// that allows it for each link of the chain, or why nothing does.
#[utoipa::path(post, path = "/v1/check", tag = "policies", request_body = CheckRequest,
    responses((status = 200, body = CheckResult), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub async fn check(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiJson(body): ApiJson<CheckRequest>,
) -> Result<Json<CheckResult>, ApiError> {
    let permission = Permission::parse(&body.permission)?;
    let resource = Scope::parse(&body.resource)?;
    let principal = lookup_principal(&state, &body.principal).await?;
    caller
        .authorize(&state, POLICIES_READ, &Scope::root(), None)
        .await?;
    let chain = state.store.chain(&principal.id).await?;
    let ids: Vec<String> = chain.iter().map(|p| p.id.clone()).collect();
    let refs: Vec<PrincipalRef> = chain.iter().map(Principal::reference).collect();
    let policies = state.store.policy_set(&ids).await?;
    let decision = policies.evaluate(&refs, None, &permission, &resource);
    let explanation = match &decision {
        Decision::Allow { grants } => {
            let parts: Vec<String> = grants
                .iter()
                .map(|g| {
                    format!(
                        "{} by policy {} ({} on '{}')",
                        g.principal, g.policy_id, g.role, g.scope
                    )
                })
                .collect();
            format!("allow: {}", parts.join("; "))
        }
        Decision::Deny { reason } => format!("deny: {reason}"),
    };
    Ok(Json(CheckResult {
        allowed: decision.is_allow(),
        chain: refs,
        decision,
        explanation,
    }))
}
