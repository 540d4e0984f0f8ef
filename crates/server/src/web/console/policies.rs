//! The policies page: every policy (who holds which role on which scope)
//! and the roles with their permissions; granting and removing a policy
//! (`POST /v1/policies`, `DELETE /v1/policies/{id}`); and "explain", the
//! `laissez check` question (`POST /v1/check`): may this principal use this
//! permission on this resource, along which chain, by which policy.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use laissez_core::{Policy, Principal};

use super::tokens::{Choice, Choices, listed};
use super::{Chrome, Console, Form, render, see_other, when};
use crate::AppState;
use crate::api::policies::{CheckRequest, CreatePolicy, ListPolicies};
use crate::problem::ApiJson;

struct Row {
    id: String,
    principal: String,
    role: String,
    scope: String,
    created: String,
}

/// The answer of "explain".
struct Explained {
    allowed: bool,
    chain: String,
    explanation: String,
}

#[derive(Template)]
#[template(path = "console/policies.html")]
struct Page {
    title: &'static str,
    chrome: Chrome,
    rows: Vec<Row>,
    principals: Vec<Choice>,
    roles: Vec<Choice>,
    scopes: Vec<String>,
    permissions: Vec<String>,
    asked: (String, String, String),
    explained: Option<Explained>,
}

/// `GET /console/policies`.
pub async fn page(State(state): State<AppState>, console: Console) -> Response {
    show(
        &state,
        &console,
        (String::new(), String::new(), String::new()),
        None,
    )
    .await
}

async fn show(
    state: &AppState,
    console: &Console,
    asked: (String, String, String),
    explained: Option<Explained>,
) -> Response {
    let policies: Vec<Policy> = match listed(crate::api::policies::list(
        State(state.clone()),
        console.caller.clone(),
        Query(ListPolicies {
            principal: None,
            limit: Some(1000),
            cursor: None,
        }),
    ))
    .await
    {
        Ok(all) => all,
        Err(e) => return console.refusal(&e),
    };
    // Policies name principals by id; people read names.
    let principals: Vec<Principal> = console.principals(state, None).await.unwrap_or_default();
    let names = super::names(&principals);
    let rows = policies
        .iter()
        .map(|p| Row {
            id: p.id.clone(),
            principal: names
                .get(p.principal_id.as_str())
                .copied()
                .unwrap_or(p.principal_id.as_str())
                .to_owned(),
            role: p.role.to_string(),
            scope: p.scope.to_string(),
            created: when(Some(p.created_at)),
        })
        .collect();
    let choices = Choices::gather(state, console).await;
    let mut permissions: Vec<String> = match crate::api::policies::list_roles(
        State(state.clone()),
        console.caller.clone(),
    )
    .await
    {
        Ok(axum::Json(roles)) => roles
            .into_iter()
            .flat_map(|r| r.permissions.into_iter().map(|p| p.as_str().to_owned()))
            .collect(),
        Err(_) => Vec::new(),
    };
    permissions.sort();
    permissions.dedup();
    let page = Page {
        title: "Policies and roles",
        chrome: console.chrome("policies"),
        rows,
        principals: choices.principals,
        roles: choices.roles,
        scopes: choices.scopes,
        permissions,
        asked,
        explained,
    };
    render(StatusCode::OK, &page)
}

/// `POST /console/policies`: grants a role on a scope through `POST /v1/policies`.
pub async fn create(State(state): State<AppState>, console: Console, body: Bytes) -> Response {
    let form = match console.form(&body) {
        Ok(form) => form,
        Err(refused) => return *refused,
    };
    let request = CreatePolicy {
        principal: form.get("principal").to_owned(),
        role: form.get("role").to_owned(),
        scope: form.get("scope").to_owned(),
    };
    match crate::api::policies::create(State(state), console.caller.clone(), ApiJson(request)).await
    {
        Ok(_) => see_other("/console/policies"),
        Err(e) => console.refusal(&e),
    }
}

/// `POST /console/policies/remove`: through `DELETE /v1/policies/{id}`.
pub async fn remove(State(state): State<AppState>, console: Console, body: Bytes) -> Response {
    let form = match console.form(&body) {
        Ok(form) => form,
        Err(refused) => return *refused,
    };
    let id = Path(form.get("id").to_owned());
    match crate::api::policies::remove(State(state), console.caller.clone(), id).await {
        Ok(_) => see_other("/console/policies"),
        Err(e) => console.refusal(&e),
    }
}

/// `GET /console/policies/explain?principal=&permission=&resource=`: the
/// answer of `POST /v1/check` (a question, so a GET: it changes nothing).
pub async fn explain(
    State(state): State<AppState>,
    console: Console,
    RawQuery(query): RawQuery,
) -> Response {
    let form = Form::query(query.as_deref());
    let request = CheckRequest {
        principal: form.get("principal").to_owned(),
        permission: form.get("permission").to_owned(),
        resource: form.get("resource").to_owned(),
    };
    let asked = (
        request.principal.clone(),
        request.permission.clone(),
        request.resource.clone(),
    );
    let answer = match crate::api::policies::check(
        State(state.clone()),
        console.caller.clone(),
        ApiJson(request),
    )
    .await
    {
        Ok(axum::Json(answer)) => answer,
        Err(e) => return console.refusal(&e),
    };
    let explained = Explained {
        allowed: answer.allowed,
        chain: laissez_core::principal::format_chain(&answer.chain),
        explanation: answer.explanation,
    };
    show(&state, &console, asked, Some(explained)).await
}
