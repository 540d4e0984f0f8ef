//! Credentials: issuing a scannable token (the only time its secret is
//! shown), listing them without secrets, rolling and revoking.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use laissez_core::admin::{TOKENS_READ, TOKENS_WRITE};
use laissez_core::credential::{Credential, CredentialState, hash_secret, parse_ip_range};
use std::collections::BTreeSet;

use laissez_core::{
    Name, Permission, Principal, PrincipalKind, PrincipalRef, Restriction, Scope, Status, Ttl,
};
use laissez_token::{Kind, Token};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::lookup_principal;
use super::page::{self, PageRequest};
use crate::auth::Authenticated;
use crate::problem::{ApiError, ApiJson, Problem};
use crate::{AppState, new_id, now};

/// A new token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// Whose token (name or id).
    pub principal: String,
    /// Narrow the token to this role (never wider than the principal's policies).
    pub role: Option<String>,
    /// Narrow the token to this scope.
    pub scope: Option<String>,
    /// Narrow the token to these permissions (each held by the principal;
    /// with `role`, each also the role's). Leave it out (or `null`) for no
    /// such limit; an empty list is refused, since it would allow nothing.
    #[serde(default)]
    pub permissions: Option<Vec<String>>,
    /// Lifetime such as `30m`, `12h`, `7d`; the organization default when absent.
    pub ttl: Option<String>,
    /// Client IP ranges (CIDR or single addresses) it may be used from.
    #[serde(default)]
    pub allowed_ips: Vec<String>,
    /// Free text for people.
    #[serde(default)]
    pub description: String,
}

/// A new secret for an existing token.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollToken {
    /// Lifetime of the new secret; the old lifetime (capped by the maximum) when absent.
    pub ttl: Option<String>,
}

/// A token's metadata, with who it belongs to. Never the secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    /// The credential.
    #[serde(flatten)]
    pub credential: Credential,
    /// Whether it works now.
    pub state: CredentialState,
    /// Its principal.
    pub principal: PrincipalRef,
    /// The principal's human owner (the principal itself for users).
    pub owner: Option<PrincipalRef>,
}

/// A freshly issued or rolled token. `token` is shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedToken {
    /// The secret. Store it now: Laissez keeps only its hash.
    pub token: String,
    /// Its metadata.
    #[serde(flatten)]
    pub view: TokenView,
}

/// Filter for listing tokens.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListTokens {
    /// Only this principal's tokens (name or id).
    pub principal: Option<String>,
    /// Items per page (1 to 1000, default 100).
    pub limit: Option<usize>,
    /// Where the previous page ended (its `Laissez-Next-Cursor`).
    pub cursor: Option<String>,
}

fn parse_ttl(ttl: Option<&str>) -> Result<Option<Ttl>, ApiError> {
    ttl.map(Ttl::parse).transpose().map_err(ApiError::from)
}

fn kind_for(principal: &Principal) -> Kind {
    match principal.kind {
        PrincipalKind::User => Kind::User,
        PrincipalKind::Service | PrincipalKind::Agent => Kind::Account,
        PrincipalKind::Task => Kind::Task,
    }
}

async fn view(state: &AppState, credential: Credential) -> Result<TokenView, ApiError> {
    let chain = state.store.chain(&credential.principal_id).await?;
    let principal = chain.last().map(Principal::reference).ok_or_else(|| {
        ApiError::Unavailable(format!("credential {} has no principal", credential.id))
    })?;
    let owner = chain.first().map(Principal::reference);
    Ok(TokenView {
        state: credential.state(now()),
        credential,
        principal,
        owner,
    })
}

/// Checks that a restriction is no wider than what the principal's chain
/// holds: every permission it admits (its role's, its listed ones, or those
/// of both) must be held by every link on its scope (anywhere, without one).
async fn check_narrowing(
    state: &AppState,
    chain: &[Principal],
    restriction: &Restriction,
) -> Result<(), ApiError> {
    if !restriction.limits_permissions() {
        // A scope alone only ever narrows: evaluation intersects it with the policies.
        return Ok(());
    }
    let ids: Vec<String> = chain.iter().map(|p| p.id.clone()).collect();
    let refs: Vec<PrincipalRef> = chain.iter().map(Principal::reference).collect();
    let policies = state.store.policy_set(&ids).await?;
    let target = chain.last().map(|p| p.name.to_string()).unwrap_or_default();
    let admitted = admitted_permissions(&policies, restriction)?;
    let missing: Vec<&Permission> = match &restriction.scope {
        Some(scope) => admitted
            .iter()
            .filter(|p| !policies.evaluate(&refs, None, p, scope).is_allow())
            .collect(),
        None => {
            let held: Vec<_> = ids.iter().map(|id| policies.permissions_of(id)).collect();
            admitted
                .iter()
                .filter(|p| !held.iter().all(|h| h.contains(*p)))
                .collect()
        }
    };
    if !missing.is_empty() {
        let names: Vec<&str> = missing.iter().map(|p| p.as_str()).collect();
        return Err(ApiError::BadRequest(format!(
            "a token can only narrow its principal's access, and {target} does not hold {} {}; grant a policy first or pick fewer permissions",
            names.join(", "),
            match &restriction.scope {
                Some(s) => format!("on '{s}'"),
                None => "anywhere".to_owned(),
            }
        )));
    }
    Ok(())
}

/// The permissions a restriction admits: its role's, its listed ones (each
/// known to some role and, with a role, that role's), or both.
fn admitted_permissions(
    policies: &laissez_core::PolicySet,
    restriction: &Restriction,
) -> Result<BTreeSet<Permission>, ApiError> {
    let of_role = match &restriction.role {
        Some(role) => Some(
            policies
                .role(role)
                .ok_or_else(|| unknown_role(role))?
                .permissions
                .clone(),
        ),
        None => None,
    };
    let Some(listed) = &restriction.permissions else {
        return Ok(of_role.unwrap_or_default());
    };
    if let Some(unknown) = listed.iter().find(|p| !policies.knows(p)) {
        return Err(ApiError::BadRequest(format!(
            "no role grants the permission '{unknown}'; see the permissions each role holds with `laissez role list`"
        )));
    }
    if let (Some(role), Some(of_role)) = (&restriction.role, &of_role)
        && let Some(outside) = listed.iter().find(|p| !of_role.contains(*p))
    {
        return Err(ApiError::BadRequest(format!(
            "the role '{role}' does not have the permission '{outside}'; drop it, or drop the role and list permissions alone"
        )));
    }
    Ok(listed.clone())
}

/// Parses the permissions a token is limited to; an empty list is refused
/// rather than read as "no limit" (fail closed on a list computed empty).
fn listed_permissions(names: &[String]) -> Result<BTreeSet<Permission>, ApiError> {
    if names.is_empty() {
        return Err(ApiError::BadRequest(
            "permissions is empty, which would allow nothing; list at least one, or leave it out for all the principal's (or the role's) permissions".into(),
        ));
    }
    if names.len() > MAX_LISTED_PERMISSIONS {
        return Err(ApiError::BadRequest(format!(
            "at most {MAX_LISTED_PERMISSIONS} permissions; pick a role instead"
        )));
    }
    names
        .iter()
        .map(|name| Permission::parse(name).map_err(ApiError::from))
        .collect()
}

/// Most individual permissions one token may list.
const MAX_LISTED_PERMISSIONS: usize = 64;

fn unknown_role(role: &Name) -> ApiError {
    ApiError::BadRequest(format!(
        "unknown role '{role}'; list roles with `laissez role list`"
    ))
}

/// Issues a token. The response is the only place its secret ever appears.
#[utoipa::path(post, path = "/v1/tokens", tag = "tokens", request_body = CreateToken,
    responses((status = 201, body = IssuedToken), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiJson(body): ApiJson<CreateToken>,
) -> Result<(StatusCode, Json<IssuedToken>), ApiError> {
    let restriction = Restriction {
        role: body
            .role
            .as_deref()
            .map(|r| Name::parse(r, "role"))
            .transpose()?,
        scope: body.scope.as_deref().map(Scope::parse).transpose()?,
        permissions: body
            .permissions
            .as_deref()
            .map(listed_permissions)
            .transpose()?,
    };
    let ttl = parse_ttl(body.ttl.as_deref())?;
    if body.allowed_ips.len() > 64 {
        return Err(ApiError::BadRequest("at most 64 allowed IP ranges".into()));
    }
    let allowed_ips = body
        .allowed_ips
        .iter()
        .map(|r| parse_ip_range(r))
        .collect::<Result<Vec<_>, _>>()?;
    if body.description.len() > 1024 {
        return Err(ApiError::BadRequest(
            "description is longer than 1024 bytes".into(),
        ));
    }
    let principal = lookup_principal(&state, &body.principal).await?;
    caller
        .may_issue_for(&state, &principal, "token.create")
        .await?;
    let chain = state.store.chain(&principal.id).await?;
    if let Some(inactive) = chain.iter().find(|p| p.status == Status::Inactive) {
        return Err(ApiError::Conflict(format!(
            "{} {} is inactive, so its tokens would not work; reactivate it first",
            inactive.kind, inactive.name
        )));
    }
    check_narrowing(&state, &chain, &restriction).await?;
    let settings = state.store.settings().await?;
    let lifetime = settings.lifetime(ttl).map_err(|e| {
        ApiError::BadRequest(format!(
            "ttl {} is longer than the organization maximum of {}; ask for {} or less",
            e.requested, e.max, e.max
        ))
    })?;
    let kind = kind_for(&principal);
    let token = Token::generate(&state.namespace, kind)
        .map_err(|e| ApiError::Unavailable(format!("cannot generate a token: {e}")))?;
    let now = now();
    let credential = Credential {
        restriction,
        allowed_ips,
        ..Credential::issued(
            new_id("tok")?,
            &token,
            &principal.id,
            lifetime,
            now,
            &body.description,
        )
    };
    let event = caller
        .event("token.create", credential.id.clone())
        .with_detail(serde_json::json!({
            "principal": principal.id,
            "prefix": credential.prefix,
            "last4": credential.last4,
            "role": credential.restriction.role,
            "scope": credential.restriction.scope,
            "permissions": credential.restriction.permissions,
            "expires_at": credential.expires_at,
            "allowed_ips": credential.allowed_ips,
        }));
    state
        .store
        .create_credential(credential.clone(), hash_secret(token.expose()), event)
        .await?;
    state.metrics.issued("api_token");
    let view = view(&state, credential).await?;
    Ok((
        StatusCode::CREATED,
        Json(IssuedToken {
            token: token.expose().to_owned(),
            view,
        }),
    ))
}

/// Lists tokens (never their secrets). Without `laissez.tokens.read`, a user
/// sees their own tokens and those of the principals they own.
#[utoipa::path(get, path = "/v1/tokens", tag = "tokens", params(ListTokens),
    responses((status = 200, body = Vec<TokenView>), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Authenticated,
    Query(filter): Query<ListTokens>,
) -> Result<Response, ApiError> {
    let page = PageRequest::parse(filter.limit, filter.cursor.as_deref())?;
    let credentials = match filter.principal.as_deref() {
        Some(key) => {
            let principal = lookup_principal(&state, key).await?;
            caller
                .authorize(
                    &state,
                    TOKENS_READ,
                    &Scope::root(),
                    Some((&principal.id, principal.owner_id.as_deref())),
                )
                .await?;
            state.store.credentials(Some(&principal.id)).await?
        }
        None => {
            let me = caller.principal().clone();
            if caller.may(&state, TOKENS_READ, &Scope::root()).await? {
                state.store.credentials(None).await?
            } else if me.kind == PrincipalKind::User && caller.chain.len() == 1 {
                // Their own and their principals' tokens, as far as the
                // credential's own restriction admits reading tokens.
                caller
                    .authorize(&state, TOKENS_READ, &Scope::root(), Some((&me.id, None)))
                    .await?;
                let owned: Vec<String> = state
                    .store
                    .principals()
                    .await?
                    .into_iter()
                    .filter(|p| p.id == me.id || p.owner_id.as_deref() == Some(me.id.as_str()))
                    .map(|p| p.id)
                    .collect();
                let mut all = state.store.credentials(None).await?;
                all.retain(|c| owned.contains(&c.principal_id));
                all
            } else {
                caller
                    .authorize(&state, TOKENS_READ, &Scope::root(), None)
                    .await?;
                Vec::new()
            }
        }
    };
    let credentials = page.apply(credentials, |c| page::descending(c.created_at, &c.id));
    let mut views = Vec::with_capacity(credentials.items.len());
    for credential in credentials.items {
        views.push(view(&state, credential).await?);
    }
    let path = match filter.principal.as_deref() {
        Some(key) => format!("/v1/tokens?principal={}", super::query_value(key)),
        None => "/v1/tokens".to_owned(),
    };
    Ok(page::Page {
        items: views,
        next: credentials.next,
    }
    .respond(&path, page.limit))
}

async fn credential_for(
    state: &AppState,
    caller: &Authenticated,
    id: &str,
    permission: &str,
) -> Result<(Credential, Principal), ApiError> {
    if id.is_empty() || id.len() > 64 {
        return Err(ApiError::BadRequest(
            "a token is named by its id, e.g. tok_...".into(),
        ));
    }
    let credential = state.store.credential(id).await?.ok_or_else(|| {
        ApiError::NotFound(format!(
            "unknown token '{id}'; list tokens with `laissez token list`"
        ))
    })?;
    let principal = lookup_principal(state, &credential.principal_id).await?;
    // Any credential may act on itself (a holder can always revoke what it holds).
    if credential.id != caller.credential.id || permission == TOKENS_READ {
        caller
            .authorize(
                state,
                permission,
                &Scope::root(),
                Some((&principal.id, principal.owner_id.as_deref())),
            )
            .await?;
        if permission == TOKENS_WRITE {
            caller.may_act_on(state, &principal, "token.write").await?;
        }
    }
    Ok((credential, principal))
}

/// One token's metadata.
#[utoipa::path(get, path = "/v1/tokens/{id}", tag = "tokens", params(("id" = String, Path, description = "Token id")),
    responses((status = 200, body = TokenView), (status = 404, body = Problem)))]
pub async fn show(
    State(state): State<AppState>,
    caller: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<TokenView>, ApiError> {
    let (credential, _) = credential_for(&state, &caller, &id, TOKENS_READ).await?;
    Ok(Json(view(&state, credential).await?))
}

/// Replaces a token's secret: the old one stops working before this answers.
#[utoipa::path(post, path = "/v1/tokens/{id}/roll", tag = "tokens", params(("id" = String, Path, description = "Token id")),
    request_body = RollToken,
    responses((status = 200, body = IssuedToken), (status = 400, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn roll(
    State(state): State<AppState>,
    caller: Authenticated,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<IssuedToken>, ApiError> {
    let body: RollToken = crate::problem::json_or_default(&body)?;
    let ttl = parse_ttl(body.ttl.as_deref())?;
    let (credential, principal) = credential_for(&state, &caller, &id, TOKENS_WRITE).await?;
    // The secret this roll replaces: the store swaps it only if it is still
    // the current one, so of concurrent rolls of one secret exactly one wins.
    // A token rolling itself replaces the secret it presented: a request that
    // authenticated with a secret another roll just replaced gets nothing.
    let stored = state
        .store
        .stored_credential(&credential.id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("unknown token '{id}'")))?;
    let replaces = if credential.id == caller.credential.id {
        caller.secret_hash
    } else {
        stored.secret_hash
    };
    // Describe the secret being replaced as read together with its hash.
    let mut credential = stored.credential;
    let settings = state.store.settings().await?;
    let previous = credential
        .expires_at
        .map(|at| at - credential.created_at)
        .and_then(Ttl::from_seconds)
        .map(|t| t.min(settings.max_ttl));
    let lifetime = settings.lifetime(ttl.or(previous)).map_err(|e| {
        ApiError::BadRequest(format!(
            "ttl {} is longer than the organization maximum of {}",
            e.requested, e.max
        ))
    })?;
    let kind = kind_for(&principal);
    let token = Token::generate(&state.namespace, kind)
        .map_err(|e| ApiError::Unavailable(format!("cannot generate a token: {e}")))?;
    let now = now();
    let rolled = laissez_store::Rolled {
        replaces,
        secret_hash: hash_secret(token.expose()),
        last4: token.last4().to_owned(),
        created_at: now,
        expires_at: Some(now + lifetime.seconds()),
    };
    let event = caller
        .event("token.roll", credential.id.clone())
        .with_detail(serde_json::json!({
            "old_last4": credential.last4,
            "last4": rolled.last4,
            "expires_at": rolled.expires_at,
        }));
    state
        .store
        .roll_credential(&credential.id, rolled.clone(), event)
        .await?;
    credential.last4 = rolled.last4;
    credential.created_at = rolled.created_at;
    credential.expires_at = rolled.expires_at;
    credential.last_used_at = None;
    let view = view(&state, credential).await?;
    Ok(Json(IssuedToken {
        token: token.expose().to_owned(),
        view,
    }))
}

/// Revokes a token. Durable before this answers; refused on the next request.
#[utoipa::path(post, path = "/v1/tokens/{id}/revoke", tag = "tokens", params(("id" = String, Path, description = "Token id")),
    responses((status = 200, body = TokenView), (status = 404, body = Problem)))]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<TokenView>, ApiError> {
    let (mut credential, _) = credential_for(&state, &caller, &id, TOKENS_WRITE).await?;
    let now = now();
    let event = caller.event("token.revoke", credential.id.clone());
    state
        .store
        .revoke_credential(&credential.id, now, event)
        .await?;
    state.metrics.revoked("api_token");
    credential.revoked_at.get_or_insert(now);
    Ok(Json(view(&state, credential).await?))
}

/// A token named by its secret, for revoking it without knowing its id.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeBySecret {
    /// The token's secret (`lzat_…`). Sent in the body, never in a URL.
    pub token: String,
}

/// Revokes the token with this secret, found by its SHA-256 as every lookup
/// is. Authorized as revoking it by id; the secret is never echoed.
#[utoipa::path(post, path = "/v1/tokens/revoke", tag = "tokens", request_body = RevokeBySecret,
    operation_id = "revoke_token_by_secret",
    responses((status = 200, body = TokenView), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub async fn revoke_by_secret(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiJson(body): ApiJson<RevokeBySecret>,
) -> Result<Json<TokenView>, ApiError> {
    let token = Token::parse(body.token.trim()).map_err(|_| {
        ApiError::BadRequest(
            "`token` is not a Laissez token (wrong format or checksum); nothing was revoked".into(),
        )
    })?;
    let found = state
        .store
        .caller(&hash_secret(token.expose()))
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(
                "no token has this secret; list tokens with `laissez token list`".into(),
            )
        })?;
    revoke(State(state), caller, Path(found.stored.credential.id)).await
}
