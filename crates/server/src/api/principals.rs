//! Users, services, agents and tasks: creating them with their owner, listing,
//! deactivating (which suspends everything they own) and reactivating.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use laissez_core::admin::{PRINCIPALS_READ, PRINCIPALS_WRITE, SelfService};
use laissez_core::{Name, Principal, PrincipalKind, Scope, Status};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::lookup_principal;
use super::page::{self, PageRequest};
use crate::auth::Authenticated;
use crate::problem::{ApiError, ApiJson, Problem};
use crate::{AppState, new_id, now};

/// A new principal.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePrincipal {
    /// `user`, `service`, `agent` or `task`.
    pub kind: PrincipalKind,
    /// Unique name: lowercase letters, digits, `.`, `_`, `-`, `@`.
    pub name: String,
    /// The owning user (name or id). Required for services and agents.
    pub owner: Option<String>,
    /// The delegating agent or service (name or id). Required for tasks.
    pub parent: Option<String>,
    /// Free text for people.
    #[serde(default)]
    pub description: String,
}

/// Filter for listing principals.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListPrincipals {
    /// Only this kind.
    pub kind: Option<PrincipalKind>,
    /// Items per page (1 to 1000, default 100).
    pub limit: Option<usize>,
    /// Where the previous page ended (its `Laissez-Next-Cursor`).
    pub cursor: Option<String>,
}

/// Creates a principal. Every non-human principal has an active human owner.
#[utoipa::path(post, path = "/v1/principals", tag = "principals", request_body = CreatePrincipal,
    responses((status = 201, body = Principal), (status = 400, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiJson(body): ApiJson<CreatePrincipal>,
) -> Result<(StatusCode, Json<Principal>), ApiError> {
    let name = Name::parse(&body.name, "principal name")?;
    if body.description.len() > 1024 {
        return Err(ApiError::BadRequest(
            "description is longer than 1024 bytes".into(),
        ));
    }
    caller
        .authorize(&state, PRINCIPALS_WRITE, &Scope::root(), None)
        .await?;
    let (owner_id, parent_id) = match body.kind {
        PrincipalKind::User => {
            if body.owner.is_some() || body.parent.is_some() {
                return Err(ApiError::BadRequest(
                    "a user is a human and has no owner or parent".into(),
                ));
            }
            (None, None)
        }
        PrincipalKind::Service | PrincipalKind::Agent => {
            if body.parent.is_some() {
                return Err(ApiError::BadRequest(format!(
                    "a {} has an owner, not a parent",
                    body.kind
                )));
            }
            let owner = body.owner.as_deref().ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "every {} needs a human owner: pass `owner` (CLI: --owner USER)",
                    body.kind
                ))
            })?;
            let owner = lookup_principal(&state, owner).await?;
            may_own(&owner)?;
            (Some(owner.id.clone()), Some(owner.id))
        }
        PrincipalKind::Task => {
            let parent = body.parent.as_deref().ok_or_else(|| {
                ApiError::BadRequest(
                    "every task needs a parent: the agent or service that runs it".into(),
                )
            })?;
            let parent = lookup_principal(&state, parent).await?;
            if !matches!(parent.kind, PrincipalKind::Agent | PrincipalKind::Service) {
                return Err(ApiError::BadRequest(
                    "a task's parent must be an agent or a service".into(),
                ));
            }
            if let Some(owner) = body.owner.as_deref() {
                let owner = lookup_principal(&state, owner).await?;
                if Some(&owner.id) != parent.owner_id.as_ref() {
                    return Err(ApiError::BadRequest(
                        "a task's owner is its parent's owner".into(),
                    ));
                }
            }
            (parent.owner_id.clone(), Some(parent.id))
        }
    };
    let principal = Principal {
        id: new_id(match body.kind {
            PrincipalKind::User => "usr",
            PrincipalKind::Service => "svc",
            PrincipalKind::Agent => "agt",
            PrincipalKind::Task => "tsk",
        })?,
        kind: body.kind,
        name,
        owner_id,
        parent_id,
        status: Status::Active,
        description: body.description,
        created_at: now(),
    };
    let event = caller
        .event("principal.create", principal.id.clone())
        .with_detail(serde_json::json!({"kind": principal.kind, "name": principal.name, "owner": principal.owner_id}));
    state
        .store
        .create_principal(principal.clone(), event)
        .await?;
    Ok((StatusCode::CREATED, Json(principal)))
}

/// Lists principals, oldest first, a page at a time.
#[utoipa::path(get, path = "/v1/principals", tag = "principals", params(ListPrincipals),
    responses((status = 200, body = Vec<Principal>), (status = 400, body = Problem), (status = 403, body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Authenticated,
    Query(filter): Query<ListPrincipals>,
) -> Result<Response, ApiError> {
    let page = PageRequest::parse(filter.limit, filter.cursor.as_deref())?;
    caller
        .authorize(&state, PRINCIPALS_READ, &Scope::root(), None)
        .await?;
    let mut all = state.store.principals().await?;
    if let Some(kind) = filter.kind {
        all.retain(|p| p.kind == kind);
    }
    let path = match filter.kind {
        Some(kind) => format!("/v1/principals?kind={kind}"),
        None => "/v1/principals".to_owned(),
    };
    Ok(page
        .apply(all, |p| page::ascending(p.created_at, &p.id))
        .respond(&path, page.limit))
}

/// One principal.
#[utoipa::path(get, path = "/v1/principals/{id}", tag = "principals", params(("id" = String, Path, description = "Name or id")),
    responses((status = 200, body = Principal), (status = 404, body = Problem)))]
pub async fn show(
    State(state): State<AppState>,
    caller: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Principal>, ApiError> {
    caller
        .authorize(&state, PRINCIPALS_READ, &Scope::root(), None)
        .await?;
    Ok(Json(lookup_principal(&state, &id).await?))
}

/// Deactivates a principal: its credentials, and those of everything it owns
/// or delegates to, stop working at once.
#[utoipa::path(post, path = "/v1/principals/{id}/deactivate", tag = "principals", params(("id" = String, Path, description = "Name or id")),
    responses((status = 200, body = Principal), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn deactivate(
    State(state): State<AppState>,
    caller: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Principal>, ApiError> {
    set_status(state, caller, id, Status::Inactive).await
}

/// Reactivates a principal.
#[utoipa::path(post, path = "/v1/principals/{id}/activate", tag = "principals", params(("id" = String, Path, description = "Name or id")),
    responses((status = 200, body = Principal), (status = 404, body = Problem)))]
pub async fn activate(
    State(state): State<AppState>,
    caller: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Principal>, ApiError> {
    set_status(state, caller, id, Status::Active).await
}

async fn set_status(
    state: AppState,
    caller: Authenticated,
    id: String,
    status: Status,
) -> Result<Json<Principal>, ApiError> {
    let mut principal = lookup_principal(&state, &id).await?;
    caller
        .authorize(&state, PRINCIPALS_WRITE, &Scope::root(), None)
        .await?;
    if status == Status::Inactive && caller.chain.iter().any(|p| p.id == principal.id) {
        return Err(ApiError::Conflict(
            "you cannot deactivate a principal in your own chain; ask another administrator".into(),
        ));
    }
    let action = match status {
        Status::Active => "principal.activate",
        Status::Inactive => "principal.deactivate",
    };
    caller.may_act_on(&state, &principal, action).await?;
    if status == Status::Inactive && principal.kind == PrincipalKind::User {
        let users: Vec<Principal> = state
            .store
            .principals()
            .await?
            .into_iter()
            .filter(|p| p.kind == PrincipalKind::User && p.status == Status::Active)
            .collect();
        let ids: Vec<String> = users.iter().map(|p| p.id.clone()).collect();
        let refs: Vec<_> = users.iter().map(Principal::reference).collect();
        let policies = state.store.policy_set(&ids).await?;
        if laissez_core::admin::leaves_no_administrator(&policies, &refs, &principal.id) {
            return Err(ApiError::Conflict(format!(
                "{} is the last active administrator; make another one first (`laissez policy grant`)",
                principal.name
            )));
        }
    }
    let event = caller.event(action, principal.id.clone());
    state
        .store
        .set_principal_status(&principal.id, status, event)
        .await?;
    state.feed.published().await;
    principal.status = status;
    Ok(Json(principal))
}

/// A new owner for a service or an agent.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferOwner {
    /// The new owner: an active user (name or id).
    pub owner: String,
}

/// Gives a service or an agent a new human owner (its tasks follow). Needs
/// `laissez.principals.write` and standing over the principal; the new owner
/// must be an active user.
#[utoipa::path(post, path = "/v1/principals/{id}/owner", tag = "principals", params(("id" = String, Path, description = "Name or id")),
    request_body = TransferOwner,
    responses((status = 200, body = Principal), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn transfer_owner(
    State(state): State<AppState>,
    caller: Authenticated,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<TransferOwner>,
) -> Result<Json<Principal>, ApiError> {
    let mut principal = lookup_principal(&state, &id).await?;
    let owner = lookup_principal(&state, &body.owner).await?;
    caller
        .authorize(&state, PRINCIPALS_WRITE, &Scope::root(), None)
        .await?;
    caller
        .may_act_on(&state, &principal, "principal.owner")
        .await?;
    if !matches!(
        principal.kind,
        PrincipalKind::Service | PrincipalKind::Agent
    ) {
        return Err(ApiError::BadRequest(format!(
            "only services and agents change owners, and '{}' is a {}",
            principal.name, principal.kind
        )));
    }
    may_own(&owner)?;
    if principal.owner_id.as_deref() == Some(owner.id.as_str()) {
        return Err(ApiError::Conflict(format!(
            "{} {} is already owned by {}",
            principal.kind, principal.name, owner.name
        )));
    }
    let event = caller
        .event("principal.owner", principal.id.clone())
        .with_detail(serde_json::json!({"from": principal.owner_id, "to": owner.id}));
    state
        .store
        .set_principal_owner(&principal.id, &owner.id, event)
        .await?;
    principal.owner_id = Some(owner.id.clone());
    principal.parent_id = Some(owner.id);
    Ok(Json(principal))
}

/// A new password for a user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPassword {
    /// The password (12 to 256 characters). Stored only as an argon2id hash.
    pub password: String,
}

/// Sets a user's password for signing in to consent pages. Administrators
/// (`laissez.principals.write`) may set anyone's; users may set their own.
#[utoipa::path(put, path = "/v1/principals/{id}/password", tag = "principals", params(("id" = String, Path, description = "Name or id")),
    request_body = SetPassword,
    responses((status = 204), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn set_password(
    State(state): State<AppState>,
    caller: Authenticated,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SetPassword>,
) -> Result<StatusCode, ApiError> {
    crate::web::password::check_new(&body.password).map_err(ApiError::BadRequest)?;
    let user = user_managed_by(&state, &caller, &id, "sign in with a password").await?;
    let phc = crate::web::password::hash(&body.password).map_err(ApiError::Unavailable)?;
    let event = caller.event("principal.password", user.id.clone());
    state.store.set_password(&user.id, phc, event).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A user's email address, for leak notifications.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetEmail {
    /// The address, or null to remove it.
    pub email: Option<String>,
}

/// Sets the email address a user is told of leaks at. Administrators may
/// set anyone's; users may set their own.
#[utoipa::path(put, path = "/v1/principals/{id}/email", tag = "principals", params(("id" = String, Path, description = "Name or id")),
    request_body = SetEmail,
    responses((status = 204), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn set_email(
    State(state): State<AppState>,
    caller: Authenticated,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SetEmail>,
) -> Result<StatusCode, ApiError> {
    if let Some(email) = &body.email {
        let (local, domain) = email.split_once('@').unwrap_or(("", ""));
        let plausible = email.len() <= 254
            && !local.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && email
                .chars()
                .all(|c| c.is_ascii_graphic() && !matches!(c, '<' | '>' | ',' | ';' | '"'))
            && email.matches('@').count() == 1;
        if !plausible {
            return Err(ApiError::BadRequest(format!(
                "'{}' is not an email address like name@example.com",
                email.chars().take(80).collect::<String>()
            )));
        }
    }
    let user = user_managed_by(&state, &caller, &id, "are told of leaks (their owner is)").await?;
    let event = caller
        .event("principal.email", user.id.clone())
        .with_detail(serde_json::json!({"set": body.email.is_some()}));
    state.store.set_email(&user.id, body.email, event).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The user `id`, if the caller may manage what only users have (a password,
/// an email address): administrators anyone's, users their own. `what`
/// completes "only users …" in the refusal of a non-user.
async fn user_managed_by(
    state: &AppState,
    caller: &Authenticated,
    id: &str,
    what: &str,
) -> Result<Principal, ApiError> {
    let user = lookup_principal(state, id).await?;
    if user.kind != PrincipalKind::User {
        return Err(ApiError::BadRequest(format!(
            "only users {what}, and '{}' is a {}",
            user.name, user.kind
        )));
    }
    match caller.self_service(state, &user.id).await? {
        SelfService::Full | SelfService::Explicit => return Ok(user),
        SelfService::NotOwn => {}
        narrowed @ (SelfService::Narrowed | SelfService::AddressBound) => {
            let mut event = caller.event("principal.manage", user.id.clone());
            event.outcome = laissez_core::audit::Outcome::Denied;
            event.detail = serde_json::json!({"reason": format!("{narrowed:?}")});
            state.store.append_audit(event).await?;
            return Err(ApiError::Forbidden(
                "changing your own password or email address needs a credential that is not narrowed: \
                 a token without a role, scope or IP restriction (or one restricted to a role carrying laissez.self.manage)"
                    .into(),
            ));
        }
    }
    caller
        .authorize(state, PRINCIPALS_WRITE, &Scope::root(), None)
        .await?;
    caller.may_act_on(state, &user, "principal.manage").await?;
    Ok(user)
}

/// Whether `owner` may own a non-human identity: an active user.
fn may_own(owner: &Principal) -> Result<(), ApiError> {
    if owner.kind != PrincipalKind::User {
        return Err(ApiError::BadRequest(format!(
            "the owner must be a user, and '{}' is a {}",
            owner.name, owner.kind
        )));
    }
    if owner.status != Status::Active {
        return Err(ApiError::Conflict(format!(
            "the owner '{}' is inactive",
            owner.name
        )));
    }
    Ok(())
}
