//! The tokens page: a creation form in the manner of Cloudflare's (whose
//! token, narrowed to which role and scope, for how long, from which
//! networks), the secret shown once with a copy button, and the list of
//! tokens the person may see (filtered by owner, kind, soon expiring,
//! unused) with roll and revoke. Each action is the admin API's handler
//! (`POST /v1/tokens`, `/v1/tokens/{id}/roll`, `/v1/tokens/{id}/revoke`).

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use laissez_core::admin::{POLICIES_READ, PRINCIPALS_READ, RESOURCES_READ, ROLES_READ};
use laissez_core::credential::{Credential, CredentialState};
use laissez_core::{PrincipalRef, Scope};
use serde::Deserialize;

use super::{Chrome, Console, Form, decode, render, render_with_script, see_other, when};
use crate::AppState;
use crate::api::tokens::{CreateToken, IssuedToken, ListTokens};
use crate::problem::{ApiError, ApiJson};

/// A token as `GET /v1/tokens` lists it.
#[derive(Deserialize)]
pub(super) struct TokenRow {
    #[serde(flatten)]
    pub credential: Credential,
    pub state: CredentialState,
    pub principal: PrincipalRef,
    pub owner: Option<PrincipalRef>,
}

/// One row of the list.
struct Row {
    id: String,
    hint: String,
    principal: String,
    kind: String,
    owner: String,
    role: String,
    scope: String,
    ips: String,
    state: &'static str,
    expires: String,
    used: String,
    live: bool,
}

/// A choice in a `<select>` or `<datalist>`.
pub(super) struct Choice {
    pub value: String,
    pub label: String,
}

#[derive(Template)]
#[template(path = "console/tokens.html")]
struct Page {
    title: &'static str,
    chrome: Chrome,
    principals: Vec<Choice>,
    roles: Vec<Choice>,
    permissions: Vec<String>,
    scopes: Vec<String>,
    rows: Vec<Row>,
    owners: Vec<String>,
    owner: String,
    kind: String,
    expiring: bool,
    unused: bool,
}

#[derive(Template)]
#[template(path = "console/secret.html")]
struct Secret {
    title: &'static str,
    chrome: Chrome,
    token: String,
    id: String,
    principal: String,
    expires: String,
}

/// Tokens expiring within this many seconds count as expiring.
const EXPIRING: i64 = 7 * 86_400;
/// Tokens unused for this many seconds (or never used) count as unused.
const UNUSED: i64 = 30 * 86_400;

/// `GET /console/tokens`.
pub async fn page(
    State(state): State<AppState>,
    console: Console,
    RawQuery(query): RawQuery,
) -> Response {
    let filter = Form::query(query.as_deref());
    let listed = crate::api::tokens::list(
        State(state.clone()),
        console.caller.clone(),
        Query(ListTokens {
            principal: None,
            limit: Some(1000),
            cursor: None,
        }),
    )
    .await;
    let tokens: Vec<TokenRow> = match listed {
        Ok(response) => match decode(response).await {
            Ok(tokens) => tokens,
            Err(e) => return console.refusal(&e),
        },
        Err(e) => return console.refusal(&e),
    };
    let now = crate::now();
    let mut owners: Vec<String> = tokens
        .iter()
        .filter_map(|t| t.owner.as_ref().map(|o| o.name.clone()))
        .collect();
    owners.sort();
    owners.dedup();
    let (owner, kind) = (filter.get("owner"), filter.get("kind"));
    let (expiring, unused) = (filter.get("expiring") == "1", filter.get("unused") == "1");
    let rows = tokens
        .into_iter()
        .filter(|t| owner.is_empty() || t.owner.as_ref().is_some_and(|o| o.name == owner))
        .filter(|t| kind.is_empty() || t.principal.kind.as_str() == kind)
        .filter(|t| {
            !expiring
                || (t.state == CredentialState::Active
                    && t.credential
                        .expires_at
                        .is_some_and(|at| at - now <= EXPIRING))
        })
        .filter(|t| {
            !unused
                || (t.state == CredentialState::Active
                    && t.credential
                        .last_used_at
                        .is_none_or(|at| now - at >= UNUSED))
        })
        .map(|t| Row {
            hint: format!("{}…{}", t.credential.prefix, t.credential.last4),
            principal: t.principal.name,
            kind: t.principal.kind.to_string(),
            owner: t.owner.map(|o| o.name).unwrap_or_default(),
            role: limits(&t.credential.restriction),
            scope: t
                .credential
                .restriction
                .scope
                .map(|s| s.to_string())
                .unwrap_or_else(|| "(anywhere)".into()),
            ips: if t.credential.allowed_ips.is_empty() {
                "any".into()
            } else {
                t.credential
                    .allowed_ips
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" ")
            },
            state: match t.state {
                CredentialState::Active => "active",
                CredentialState::Expired => "expired",
                CredentialState::Revoked => "revoked",
            },
            live: t.state == CredentialState::Active,
            expires: when(t.credential.expires_at),
            used: when(t.credential.last_used_at),
            id: t.credential.id,
        })
        .collect();
    let choices = Choices::gather(&state, &console).await;
    let page = Page {
        title: "Tokens",
        chrome: console.chrome("tokens"),
        principals: choices.principals,
        roles: choices.roles,
        permissions: choices.permissions,
        scopes: choices.scopes,
        rows,
        owners,
        owner: owner.to_owned(),
        kind: kind.to_owned(),
        expiring,
        unused,
    };
    render(StatusCode::OK, &page)
}

/// What a token may do, as the list shows it: its role, its listed
/// permissions, or all of its principal's policies.
fn limits(restriction: &laissez_core::Restriction) -> String {
    let listed = restriction.permissions.as_ref().map(|listed| {
        listed
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    });
    match (&restriction.role, listed) {
        (Some(role), Some(listed)) => format!("{role}: only {listed}"),
        (Some(role), None) => role.to_string(),
        (None, Some(listed)) => listed,
        (None, None) => "(all of its policies)".into(),
    }
}

/// What the creation form offers: principals, roles and known scopes, each
/// as far as the person may read them (quietly: offering fewer choices is
/// not a refusal).
pub(super) struct Choices {
    pub principals: Vec<Choice>,
    pub roles: Vec<Choice>,
    /// Every permission some role grants, for narrowing a token to a few.
    pub permissions: Vec<String>,
    pub scopes: Vec<String>,
}

impl Choices {
    pub(super) async fn gather(state: &AppState, console: &Console) -> Choices {
        let caller = &console.caller;
        let may = |permission: &'static str| quietly_may(state, caller, permission);
        let mut principals = vec![Choice {
            value: console.user().name.to_string(),
            label: format!("{} (you)", console.user().name),
        }];
        if may(PRINCIPALS_READ).await
            && let Ok(all) = console.principals(state, None).await
        {
            principals.extend(
                all.into_iter()
                    .filter(|p| p.id != console.user().id)
                    .filter(|p| p.kind != laissez_core::PrincipalKind::Task)
                    .map(|p| Choice {
                        value: p.name.to_string(),
                        label: format!("{} ({})", p.name, p.kind),
                    }),
            );
        }
        let mut roles = Vec::new();
        let mut permissions = std::collections::BTreeSet::new();
        if may(ROLES_READ).await
            && let Ok(axum::Json(all)) =
                crate::api::policies::list_roles(State(state.clone()), caller.clone()).await
        {
            permissions = all
                .iter()
                .flat_map(|r| r.permissions.iter().map(|p| p.as_str().to_owned()))
                .collect();
            roles = all
                .into_iter()
                .map(|r| {
                    let permissions: Vec<&str> = r.permissions.iter().map(|p| p.as_str()).collect();
                    Choice {
                        label: format!("{}: {}", r.name, permissions.join(", ")),
                        value: r.name.to_string(),
                    }
                })
                .collect();
        }
        let mut scopes = vec!["/".to_owned()];
        if may(POLICIES_READ).await
            && let Ok(policies) = listed::<laissez_core::Policy>(crate::api::policies::list(
                State(state.clone()),
                caller.clone(),
                Query(crate::api::policies::ListPolicies {
                    principal: None,
                    limit: Some(1000),
                    cursor: None,
                }),
            ))
            .await
        {
            scopes.extend(policies.into_iter().map(|p| p.scope.to_string()));
        }
        if may(RESOURCES_READ).await
            && let Ok(axum::Json(resources)) =
                crate::api::resources::list(State(state.clone()), caller.clone()).await
        {
            scopes.extend(resources.into_iter().map(|r| r.resource));
        }
        scopes.sort();
        scopes.dedup();
        Choices {
            principals,
            roles,
            permissions: permissions.into_iter().collect(),
            scopes,
        }
    }
}

/// Whether policy lets the caller use `permission` (a denial here only
/// means fewer choices on the page, so it is not audited).
async fn quietly_may(
    state: &AppState,
    caller: &crate::auth::Authenticated,
    permission: &str,
) -> bool {
    caller
        .may(state, permission, &Scope::root())
        .await
        .unwrap_or(false)
}

/// A list handler's items.
pub(super) async fn listed<T: serde::de::DeserializeOwned>(
    answer: impl std::future::Future<Output = Result<Response, ApiError>>,
) -> Result<Vec<T>, ApiError> {
    decode(answer.await?).await
}

/// `POST /console/tokens`: issues a token through `POST /v1/tokens` and
/// shows its secret this once.
pub async fn create(State(state): State<AppState>, console: Console, body: Bytes) -> Response {
    let form = match console.form(&body) {
        Ok(form) => form,
        Err(refused) => return *refused,
    };
    let allowed_ips: Vec<String> = form
        .get("allowed_ips")
        .split([',', ' ', '\n', '\r', '\t'])
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
        .collect();
    let request = CreateToken {
        principal: form.get("principal").to_owned(),
        role: form.optional("role"),
        scope: form.optional("scope"),
        // No box ticked: no limit by permission (the API refuses an empty list).
        permissions: Some(form.all("permissions"))
            .filter(|ticked| !ticked.is_empty())
            .map(|ticked| ticked.into_iter().map(str::to_owned).collect()),
        ttl: form.optional("ttl"),
        allowed_ips,
        description: form.get("description").to_owned(),
    };
    match crate::api::tokens::create(State(state), console.caller.clone(), ApiJson(request)).await {
        Ok((_, axum::Json(issued))) => show_secret(&console, issued, "Token created"),
        Err(e) => console.refusal(&e),
    }
}

/// `POST /console/tokens/roll`: a new secret through `POST /v1/tokens/{id}/roll`.
pub async fn roll(State(state): State<AppState>, console: Console, body: Bytes) -> Response {
    let form = match console.form(&body) {
        Ok(form) => form,
        Err(refused) => return *refused,
    };
    let id = form.get("id").to_owned();
    match crate::api::tokens::roll(State(state), console.caller.clone(), Path(id), Bytes::new())
        .await
    {
        Ok(axum::Json(issued)) => show_secret(&console, issued, "Token rolled"),
        Err(e) => console.refusal(&e),
    }
}

/// `POST /console/tokens/revoke`: through `POST /v1/tokens/{id}/revoke`.
pub async fn revoke(State(state): State<AppState>, console: Console, body: Bytes) -> Response {
    let form = match console.form(&body) {
        Ok(form) => form,
        Err(refused) => return *refused,
    };
    let id = form.get("id").to_owned();
    match crate::api::tokens::revoke(State(state), console.caller.clone(), Path(id)).await {
        Ok(_) => see_other("/console/tokens"),
        Err(e) => console.refusal(&e),
    }
}

fn show_secret(console: &Console, issued: IssuedToken, title: &'static str) -> Response {
    let page = Secret {
        title,
        chrome: console.chrome("tokens"),
        token: issued.token,
        id: issued.view.credential.id,
        principal: issued.view.principal.name,
        expires: when(issued.view.credential.expires_at),
    };
    render_with_script(StatusCode::OK, &page)
}
