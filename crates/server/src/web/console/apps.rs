//! The apps page: the applications people connected (across every user,
//! as `GET /v1/connected-apps?user=` shows each one's) with disconnect
//! (`POST /v1/connected-apps/disconnect`); the OAuth clients with who
//! published them (`GET /v1/clients`); and the resources registered behind
//! gates (`GET /v1/resources`).

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use laissez_core::{Principal, PrincipalKind};
use serde::Deserialize;

use super::tokens::listed;
use super::{Chrome, Console, render, see_other, when};
use crate::AppState;
use crate::api::connected::{ConnectedQuery, Disconnect};
use crate::problem::ApiJson;

/// A client as `GET /v1/clients` lists it (the fields shown here).
#[derive(Deserialize)]
struct ClientRow {
    client_id: String,
    kind: String,
    client_name: Option<String>,
    confidential: bool,
    grant_types: Vec<String>,
}

struct Connected {
    user: String,
    user_id: String,
    name: String,
    client_id: String,
    scope: String,
    granted: String,
    used: String,
}

struct Published {
    name: String,
    client_id: String,
    publisher: &'static str,
    confidential: bool,
    grants: String,
}

struct Gated {
    name: String,
    resource: String,
    gate: String,
    scopes: String,
}

#[derive(Template)]
#[template(path = "console/apps.html")]
struct Page {
    title: &'static str,
    chrome: Chrome,
    connected: Vec<Connected>,
    clients: Vec<Published>,
    resources: Vec<Gated>,
}

/// `GET /console/apps`.
pub async fn page(State(state): State<AppState>, console: Console) -> Response {
    let caller = &console.caller;
    let people: Vec<Principal> = match console.principals(&state, Some(PrincipalKind::User)).await {
        Ok(people) => people,
        Err(e) => return console.refusal(&e),
    };
    let mut connected = Vec::new();
    for person in &people {
        let apps = match crate::api::connected::list(
            State(state.clone()),
            caller.clone(),
            Query(ConnectedQuery {
                user: Some(person.id.clone()),
            }),
        )
        .await
        {
            Ok(axum::Json(apps)) => apps,
            Err(e) => return console.refusal(&e),
        };
        connected.extend(apps.into_iter().map(|app| Connected {
            user: person.name.to_string(),
            user_id: person.id.clone(),
            name: app.client_name.unwrap_or_else(|| "(unnamed)".into()),
            scope: app.scope,
            granted: when(Some(app.granted_at)),
            used: when(app.last_used_at),
            client_id: app.client_id,
        }));
    }
    let clients: Vec<ClientRow> = match listed(crate::api::clients::list(
        State(state.clone()),
        caller.clone(),
        Query(crate::api::clients::ListClients {
            limit: Some(1000),
            cursor: None,
        }),
    ))
    .await
    {
        Ok(clients) => clients,
        Err(e) => return console.refusal(&e),
    };
    let clients = clients
        .into_iter()
        .map(|c| Published {
            name: c.client_name.unwrap_or_else(|| "(unnamed)".into()),
            publisher: match c.kind.as_str() {
                "preregistered" => "the organization's administrators",
                "metadata_document" | "metadata-document" => {
                    "the site serving its metadata document"
                }
                _ => "itself (unverified)",
            },
            confidential: c.confidential,
            grants: c.grant_types.join(" "),
            client_id: c.client_id,
        })
        .collect();
    // Resources need `laissez.resources.read`; without it the section is
    // left out rather than the page refused.
    let resources = match crate::api::resources::list(State(state.clone()), caller.clone()).await {
        Ok(axum::Json(resources)) => resources
            .into_iter()
            .map(|r| Gated {
                gate: match &r.gate {
                    Some(gate) => format!(
                        "{} → {}",
                        gate.listen.as_deref().unwrap_or("separate gate"),
                        gate.upstream
                    ),
                    None => "no gate configured here".into(),
                },
                scopes: r.scopes.keys().cloned().collect::<Vec<_>>().join(" "),
                name: r.name,
                resource: r.resource,
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    let page = Page {
        title: "Apps",
        chrome: console.chrome("apps"),
        connected,
        clients,
        resources,
    };
    render(StatusCode::OK, &page)
}

/// `POST /console/apps/disconnect`: through `POST /v1/connected-apps/disconnect`.
pub async fn disconnect(State(state): State<AppState>, console: Console, body: Bytes) -> Response {
    let form = match console.form(&body) {
        Ok(form) => form,
        Err(refused) => return *refused,
    };
    let request = Disconnect {
        client_id: form.get("client_id").to_owned(),
        user: form.optional("user"),
    };
    match crate::api::connected::disconnect(State(state), console.caller.clone(), ApiJson(request))
        .await
    {
        Ok(_) => see_other("/console/apps"),
        Err(e) => console.refusal(&e),
    }
}
