//! The leaks page: every leak incident (`GET /v1/leaks`), newest first:
//! which token, where it was seen and whether that place is public, who
//! reported it, whose it is, and what was done (revoked, flagged, already
//! inactive).

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use laissez_core::Principal;
use laissez_core::leak::{Incident, LeakAction};

use super::tokens::listed;
use super::{Chrome, Console, render, when};
use crate::AppState;

struct Row {
    id: String,
    token: String,
    credential: String,
    owner: String,
    url: String,
    source: String,
    public: bool,
    reporter: String,
    action: &'static str,
    reported: String,
}

#[derive(Template)]
#[template(path = "console/leaks.html")]
struct Page {
    title: &'static str,
    chrome: Chrome,
    rows: Vec<Row>,
}

/// The incidents the API lists, newest first (at most 1000).
pub(super) async fn incidents(
    state: &AppState,
    console: &Console,
) -> Result<Vec<Incident>, crate::problem::ApiError> {
    listed(crate::leaks::list(
        State(state.clone()),
        console.caller.clone(),
        Query(crate::leaks::ListQuery {
            limit: Some(1000),
            cursor: None,
        }),
    ))
    .await
}

/// `GET /console/leaks`.
pub async fn page(State(state): State<AppState>, console: Console) -> Response {
    let incidents = match incidents(&state, &console).await {
        Ok(incidents) => incidents,
        Err(e) => return console.refusal(&e),
    };
    let people: Vec<Principal> = console.principals(&state, None).await.unwrap_or_default();
    let names = super::names(&people);
    let name = |id: Option<&str>| {
        id.map(|id| names.get(id).copied().unwrap_or(id).to_owned())
            .unwrap_or_default()
    };
    let rows = incidents
        .iter()
        .map(|i| Row {
            id: i.id.clone(),
            token: i.token_hint.clone(),
            credential: i.credential_id.clone().unwrap_or_default(),
            owner: name(i.owner_id.as_deref()),
            url: i.url.clone(),
            source: i.source.clone(),
            public: i.public,
            reporter: i.reporter.clone(),
            action: match i.action {
                LeakAction::Revoked => "revoked",
                LeakAction::Flagged => "flagged, owner told (not revoked)",
                LeakAction::AlreadyInactive => "already inactive, owner told",
                LeakAction::Unknown => "unknown token (false positive)",
            },
            reported: when(Some(i.reported_at)),
        })
        .collect();
    let page = Page {
        title: "Leaks",
        chrome: console.chrome("leaks"),
        rows,
    };
    render(StatusCode::OK, &page)
}
