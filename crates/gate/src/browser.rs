//! People with browsers: a request for a page without a token is redirected
//! to sign in at the authorization server (the gate is an OAuth client of
//! its own, registered at start), and comes back with a session cookie. The
//! session holds the access and refresh tokens in the gate's memory; the
//! cookie holds only a random id, and the app never sees it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::header::{COOKIE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use laissez_oauth::pkce::challenge_for;
use serde::Deserialize;
use serde_json::Value;

use crate::{Gate, GateError};

/// The session cookie's name.
pub const COOKIE_NAME: &str = "laissez_gate";
/// Where the authorization server sends people back.
pub const CALLBACK: &str = "/.laissez/callback";
const PENDING_TTL: Duration = Duration::from_secs(600);
const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);

struct Session {
    access_token: String,
    refresh_token: Option<String>,
    access_expires: Instant,
    ends: Instant,
}

struct Pending {
    verifier: String,
    return_to: String,
    started: Instant,
}

/// The gate's client registration and its browser sessions.
pub struct Browsers {
    client_id: String,
    client_secret: String,
    authorize_url: String,
    token_url: String,
    redirect_uri: String,
    http: reqwest::Client,
    pending: Mutex<HashMap<String, Pending>>,
    sessions: Mutex<HashMap<String, Session>>,
}

/// Whether a request comes from a person's browser asking for a page.
pub fn wants_page(headers: &HeaderMap, method: &str) -> bool {
    method == "GET"
        && headers
            .get("accept")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"))
}

/// The session id in a request's cookies.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE_NAME)
        .map(|(_, v)| v.to_owned())
}

/// Removes the gate's own cookie before the request goes to the app.
pub fn strip_cookie(headers: &mut HeaderMap) {
    let kept: Vec<String> = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|pair| !pair.is_empty() && !pair.starts_with(&format!("{COOKIE_NAME}=")))
        .map(str::to_owned)
        .collect();
    headers.remove(COOKIE);
    if !kept.is_empty()
        && let Ok(value) = HeaderValue::from_str(&kept.join("; "))
    {
        headers.insert(COOKIE, value);
    }
}

fn random(len: usize) -> String {
    laissez_token::random_base62(len).unwrap_or_default()
}

impl Browsers {
    /// Registers the gate as a confidential client of the authorization server.
    pub async fn register(
        app: &str,
        resource: &str,
        metadata: &Value,
        scope: &str,
    ) -> Result<Browsers, GateError> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| GateError::Issuer(e.to_string()))?;
        let endpoint = |name: &str| {
            metadata[name]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| GateError::Issuer(format!("the authorization server has no {name}")))
        };
        let redirect_uri = format!("{}{CALLBACK}", resource.trim_end_matches('/'));
        let registered: Value = http
            .post(endpoint("registration_endpoint")?)
            .json(&serde_json::json!({
                "client_name": format!("{app} (Laissez gate)"),
                "redirect_uris": [redirect_uri],
                "grant_types": ["authorization_code", "refresh_token"],
                "token_endpoint_auth_method": "client_secret_basic",
                "scope": scope,
            }))
            .send()
            .await
            .map_err(|e| GateError::Issuer(e.to_string()))?
            .json()
            .await
            .map_err(|e| GateError::Issuer(e.to_string()))?;
        let field = |name: &str| {
            registered[name].as_str().map(str::to_owned).ok_or_else(|| {
                GateError::Issuer(format!("registering the gate failed: {registered}"))
            })
        };
        Ok(Browsers {
            client_id: field("client_id")?,
            client_secret: field("client_secret")?,
            authorize_url: endpoint("authorization_endpoint")?,
            token_url: endpoint("token_endpoint")?,
            redirect_uri,
            http,
            pending: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
        })
    }

    /// Sends the browser to sign in, remembering where it wanted to go.
    pub fn start(&self, gate: &Gate, return_to: &str, scopes: &[String]) -> Response {
        let state = random(32);
        let verifier = random(64);
        if let Ok(mut pending) = self.pending.lock() {
            pending.retain(|_, p| p.started.elapsed() < PENDING_TTL);
            pending.insert(
                state.clone(),
                Pending {
                    verifier: verifier.clone(),
                    return_to: return_to.to_owned(),
                    started: Instant::now(),
                },
            );
        }
        let mut url = match url::Url::parse(&self.authorize_url) {
            Ok(url) => url,
            Err(_) => return StatusCode::BAD_GATEWAY.into_response(),
        };
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("state", &state)
            .append_pair("code_challenge", &challenge_for(&verifier))
            .append_pair("code_challenge_method", "S256")
            .append_pair(
                "resource",
                gate.config.resource.as_str().trim_end_matches('/'),
            )
            .append_pair("scope", &scopes.join(" "));
        (StatusCode::SEE_OTHER, [(LOCATION, url.to_string())]).into_response()
    }

    async fn token(&self, form: &[(&str, &str)]) -> Option<Value> {
        let response = self
            .http
            .post(&self.token_url)
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .form(form)
            .send()
            .await
            .ok()?;
        if !response.status().is_success() {
            return None;
        }
        response.json().await.ok()
    }

    /// The access token of a browser session, refreshed when it expired.
    pub async fn access_token(&self, session_id: &str) -> Option<String> {
        let (token, refresh, fresh) = {
            let sessions = self.sessions.lock().ok()?;
            let session = sessions.get(session_id)?;
            if session.ends <= Instant::now() {
                return None;
            }
            (
                session.access_token.clone(),
                session.refresh_token.clone(),
                session.access_expires > Instant::now(),
            )
        };
        if fresh {
            return Some(token);
        }
        let tokens = self
            .token(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh?),
            ])
            .await?;
        let access = tokens["access_token"].as_str()?.to_owned();
        if let Ok(mut sessions) = self.sessions.lock()
            && let Some(session) = sessions.get_mut(session_id)
        {
            session.access_token = access.clone();
            session.refresh_token = tokens["refresh_token"].as_str().map(str::to_owned);
            session.access_expires = Instant::now()
                + Duration::from_secs(
                    tokens["expires_in"]
                        .as_u64()
                        .unwrap_or(60)
                        .saturating_sub(10),
                );
        }
        Some(access)
    }
}

/// The authorization server's answer.
#[derive(Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /.laissez/callback`: exchanges the code and starts the session.
pub async fn callback(State(gate): State<Gate>, Query(answer): Query<Callback>) -> Response {
    let Some(browsers) = gate.browsers.as_ref() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let pending = answer
        .state
        .as_deref()
        .and_then(|state| browsers.pending.lock().ok()?.remove(state))
        .filter(|p| p.started.elapsed() < PENDING_TTL);
    let (Some(pending), Some(code)) = (pending, answer.code) else {
        let why = answer
            .error
            .unwrap_or_else(|| "the sign-in expired or did not start here".into());
        return (
            StatusCode::FORBIDDEN,
            format!("Sign-in failed: {why}. Reload the page to try again.\n"),
        )
            .into_response();
    };
    let Some(tokens) = browsers
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &browsers.redirect_uri),
            ("code_verifier", &pending.verifier),
        ])
        .await
    else {
        return (
            StatusCode::BAD_GATEWAY,
            "The authorization server refused the sign-in.\n",
        )
            .into_response();
    };
    let Some(access) = tokens["access_token"].as_str() else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let session_id = random(43);
    if let Ok(mut sessions) = browsers.sessions.lock() {
        sessions.retain(|_, s| s.ends > Instant::now());
        sessions.insert(
            session_id.clone(),
            Session {
                access_token: access.to_owned(),
                refresh_token: tokens["refresh_token"].as_str().map(str::to_owned),
                access_expires: Instant::now()
                    + Duration::from_secs(
                        tokens["expires_in"]
                            .as_u64()
                            .unwrap_or(60)
                            .saturating_sub(10),
                    ),
                ends: Instant::now() + SESSION_TTL,
            },
        );
    }
    let secure = if gate.config.resource.scheme() == "https" {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!("{COOKIE_NAME}={session_id}; Path=/; HttpOnly; SameSite=Lax{secure}");
    let return_to = if pending.return_to.starts_with('/') && !pending.return_to.starts_with("//") {
        pending.return_to
    } else {
        "/".to_owned()
    };
    let mut response = (StatusCode::SEE_OTHER, [(LOCATION, return_to)]).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(SET_COOKIE, value);
    }
    response
}
