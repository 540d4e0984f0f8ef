//! The principals page: people, services and agents with their owners;
//! giving a service or an agent to another person
//! (`POST /v1/principals/{id}/owner`), and deactivating or reactivating
//! any principal (`POST /v1/principals/{id}/deactivate`, `/activate`).

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use laissez_core::{Principal, PrincipalKind, Status};

use super::{Chrome, Console, render, see_other, when};
use crate::AppState;
use crate::api::principals::TransferOwner;
use crate::problem::ApiJson;

struct Row {
    id: String,
    name: String,
    kind: String,
    owner: String,
    active: bool,
    created: String,
    transferable: bool,
}

#[derive(Template)]
#[template(path = "console/principals.html")]
struct Page {
    title: &'static str,
    chrome: Chrome,
    rows: Vec<Row>,
    people: Vec<String>,
}

/// `GET /console/principals`.
pub async fn page(State(state): State<AppState>, console: Console) -> Response {
    let all: Vec<Principal> = match console.principals(&state, None).await {
        Ok(all) => all,
        Err(e) => return console.refusal(&e),
    };
    let names = super::names(&all);
    let people: Vec<String> = all
        .iter()
        .filter(|p| p.kind == PrincipalKind::User && p.status == Status::Active)
        .map(|p| p.name.to_string())
        .collect();
    let rows = all
        .iter()
        .filter(|p| p.kind != PrincipalKind::Task)
        .map(|p| Row {
            id: p.id.clone(),
            name: p.name.to_string(),
            kind: p.kind.to_string(),
            owner: p
                .owner_id
                .as_deref()
                .map(|id| names.get(id).copied().unwrap_or(id).to_owned())
                .unwrap_or_default(),
            active: p.status == Status::Active,
            created: when(Some(p.created_at)),
            transferable: matches!(p.kind, PrincipalKind::Service | PrincipalKind::Agent),
        })
        .collect();
    let page = Page {
        title: "Principals",
        chrome: console.chrome("principals"),
        rows,
        people,
    };
    render(StatusCode::OK, &page)
}

/// `POST /console/principals/owner`: through `POST /v1/principals/{id}/owner`.
pub async fn transfer(State(state): State<AppState>, console: Console, body: Bytes) -> Response {
    let form = match console.form(&body) {
        Ok(form) => form,
        Err(refused) => return *refused,
    };
    let request = TransferOwner {
        owner: form.get("owner").to_owned(),
    };
    match crate::api::principals::transfer_owner(
        State(state),
        console.caller.clone(),
        Path(form.get("id").to_owned()),
        ApiJson(request),
    )
    .await
    {
        Ok(_) => see_other("/console/principals"),
        Err(e) => console.refusal(&e),
    }
}

/// `POST /console/principals/status`: `status=inactive` through
/// `POST /v1/principals/{id}/deactivate`, `status=active` through `/activate`.
pub async fn status(State(state): State<AppState>, console: Console, body: Bytes) -> Response {
    let form = match console.form(&body) {
        Ok(form) => form,
        Err(refused) => return *refused,
    };
    let id = Path(form.get("id").to_owned());
    let caller = console.caller.clone();
    let answer = match form.get("status") {
        "inactive" => crate::api::principals::deactivate(State(state), caller, id).await,
        "active" => crate::api::principals::activate(State(state), caller, id).await,
        _ => {
            return super::message(
                StatusCode::BAD_REQUEST,
                "Bad request",
                "status must be active or inactive",
            );
        }
    };
    match answer {
        Ok(_) => see_other("/console/principals"),
        Err(e) => console.refusal(&e),
    }
}
