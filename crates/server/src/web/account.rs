//! The Connected Applications page: a signed-in user sees every application
//! they let act for them (scopes, when granted, when last used) and can
//! disconnect one, which ends its refresh and access tokens at once. The
//! same page lists the person's browser sessions (at most
//! [`laissez_store::MAX_SESSIONS`]; a new sign-in ends the oldest) and ends
//! any of them.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use crate::AppState;
use crate::oauth::authorize::{AuthorizeParams, error_page, form_pairs, login_page};
use crate::web::session;
use crate::web::views;

fn when(at: Option<i64>) -> String {
    match at {
        Some(at) => {
            let days = (crate::now() - at).max(0) / 86_400;
            match days {
                0 => "today".into(),
                1 => "yesterday".into(),
                n => format!("{n} days ago"),
            }
        }
        None => "never".into(),
    }
}

/// `GET /account`: the connected applications of the signed-in user.
pub async fn connected(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (user_id, secret) = match session::current(&state, &headers).await {
        Ok(Some(current)) => current,
        Ok(None) => return login_page(&state, &AuthorizeParams::default(), None).await,
        Err(e) => return error_page(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let apps = match state.store.connected_apps(Some(&user_id)).await {
        Ok(apps) => apps,
        Err(e) => return error_page(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let sessions = match state.store.sessions(&user_id).await {
        Ok(sessions) => sessions,
        Err(e) => return error_page(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let current = session::handle(&secret);
    let page = views::Account {
        title: "Connected applications",
        csrf: session::csrf_for(&secret),
        apps: apps
            .into_iter()
            .map(|app| views::AppRow {
                name: app.client_name.unwrap_or_else(|| "(unnamed)".into()),
                scope: if app.scope.is_empty() {
                    "(none)".into()
                } else {
                    app.scope
                },
                accounts: if app.accounts.is_empty() {
                    "(none)".into()
                } else {
                    app.accounts.join(" ")
                },
                granted: when(Some(app.granted_at)),
                used: when(app.last_used_at),
                client_id: app.client_id,
            })
            .collect(),
        sessions: sessions
            .into_iter()
            .map(|(handle, expires_at)| views::SessionRow {
                current: handle == current,
                signed_in: when(Some(expires_at - session::SESSION_TTL)),
                handle,
            })
            .collect(),
    };
    views::render(StatusCode::OK, &page)
}

/// A form posted from the account page: its fields, once the session and
/// its CSRF token are checked.
struct AccountForm(Vec<(String, String)>);

impl AccountForm {
    /// The signed-in person and the form, or the page to answer with.
    async fn read(
        state: &AppState,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Result<(laissez_core::Principal, AccountForm), Response> {
        let form = AccountForm(form_pairs(body));
        let (user_id, secret) = match session::current(state, headers).await {
            Ok(Some(current)) => current,
            Ok(None) => return Err(Redirect::to("/account").into_response()),
            Err(e) => return Err(error_page(StatusCode::SERVICE_UNAVAILABLE, &e.to_string())),
        };
        if !session::csrf_ok(&secret, form.get("csrf")) {
            return Err(error_page(
                StatusCode::FORBIDDEN,
                "the form expired or did not come from this server; reload the page",
            ));
        }
        match state.store.principal(&user_id).await {
            Ok(Some(user)) => Ok((user, form)),
            _ => Err(error_page(
                StatusCode::FORBIDDEN,
                "your account is not available",
            )),
        }
    }

    /// A field's value (empty when absent).
    fn get(&self, key: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    }
}

/// `POST /account/disconnect`: ends one application's access.
pub async fn disconnect(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (user, form) = match AccountForm::read(&state, &headers, &body).await {
        Ok(read) => read,
        Err(refusal) => return refusal,
    };
    let get = |k: &str| form.get(k);
    let audit = laissez_core::audit::AuditEvent::success(
        &[user.reference()],
        "oauth.disconnect",
        get("client_id"),
    )
    .with_detail(serde_json::json!({"user": user.id, "via": "account page"}));
    if let Err(e) = state
        .store
        .disconnect(&user.id, get("client_id"), audit)
        .await
    {
        return error_page(StatusCode::SERVICE_UNAVAILABLE, &e.to_string());
    }
    state.feed.published().await;
    Redirect::to("/account").into_response()
}

/// `POST /account/sessions/end`: ends one of the signed-in person's sessions
/// (this one included: then the browser is signed out).
pub async fn end_session(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (user, form) = match AccountForm::read(&state, &headers, &body).await {
        Ok(read) => read,
        Err(refusal) => return refusal,
    };
    let get = |k: &str| form.get(k);
    let handle = get("session");
    let audit = laissez_core::audit::AuditEvent::success(
        &[user.reference()],
        "session.end",
        user.id.clone(),
    )
    .with_detail(serde_json::json!({"session": handle, "via": "account page"}));
    match state.store.end_session(&user.id, handle, audit).await {
        Ok(true) => Redirect::to("/account").into_response(),
        Ok(false) => error_page(StatusCode::NOT_FOUND, "no such session; reload the page"),
        Err(e) => error_page(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}
