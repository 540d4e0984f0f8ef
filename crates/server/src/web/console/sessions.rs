//! The sessions page: where the signed-in person is signed in, and ending
//! any of those sessions (this one included, which is signing out). A
//! person's own sessions are theirs alone, so this page reads the store as
//! the account page does; each ending is audited with the person's chain
//! and address.

use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;

use super::{Chrome, Console, message, render, see_other, when};
use crate::AppState;
use crate::problem::ApiError;
use crate::web::session;

struct Row {
    handle: String,
    current: bool,
    signed_in: String,
    expires: String,
}

#[derive(Template)]
#[template(path = "console/sessions.html")]
struct Page {
    title: &'static str,
    chrome: Chrome,
    rows: Vec<Row>,
}

/// `GET /console/sessions`.
pub async fn page(State(state): State<AppState>, console: Console) -> Response {
    let sessions = match state.store.sessions(&console.user().id).await {
        Ok(sessions) => sessions,
        Err(e) => return console.refusal(&ApiError::from(e)),
    };
    let current = session::handle(&console.secret);
    let rows = sessions
        .into_iter()
        .map(|(handle, expires_at)| Row {
            current: handle == current,
            signed_in: when(Some(expires_at - session::SESSION_TTL)),
            expires: when(Some(expires_at)),
            handle,
        })
        .collect();
    let page = Page {
        title: "Sessions",
        chrome: console.chrome("sessions"),
        rows,
    };
    render(StatusCode::OK, &page)
}

/// `POST /console/sessions/end`: ends the session `session` names (`current`
/// for this browser's: signing out).
pub async fn end(State(state): State<AppState>, console: Console, body: Bytes) -> Response {
    let form = match console.form(&body) {
        Ok(form) => form,
        Err(refused) => return *refused,
    };
    let this = session::handle(&console.secret);
    let handle = match form.get("session") {
        "current" => this.clone(),
        other => other.to_owned(),
    };
    if handle.is_empty() || handle.len() > 64 {
        return message(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "name a session to end",
        );
    }
    let user = console.user();
    let audit = console
        .caller
        .event("session.end", user.id.clone())
        .with_detail(serde_json::json!({"session": handle, "via": "console"}));
    match state.store.end_session(&user.id, &handle, audit).await {
        Ok(true) if handle == this => {
            let mut response = see_other("/console");
            let secure = if state.issuer.starts_with("https://") {
                "; Secure"
            } else {
                ""
            };
            if let Ok(value) = HeaderValue::from_str(&format!(
                "{}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}",
                session::COOKIE_NAME
            )) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
        }
        Ok(true) => see_other("/console/sessions"),
        Ok(false) => message(
            StatusCode::NOT_FOUND,
            "Not found",
            "no such session of yours; reload the page",
        ),
        Err(e) => console.refusal(&ApiError::from(e)),
    }
}
