//! People with browsers: a request for a page without a token is redirected
//! to sign in at the authorization server (the gate is an OAuth client of
//! its own, registered at start), and comes back with a session cookie. The
//! session holds the access and refresh tokens in the gate's memory; the
//! cookie holds only a random id, and the app never sees it.
//!
//! A sign-in in progress is bound to the browser that started it (a second
//! cookie, checked at the callback, so nobody can sign a victim's browser
//! into the attacker's account), used once, and kept in a bounded set
//! (count and bytes, oldest evicted), so anonymous requests cannot grow
//! the gate's memory. The return target is checked twice: only a
//! same-origin, path-absolute target survives ([`safe_return_target`]).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::header::{COOKIE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use laissez_oauth::grant::OFFLINE_ACCESS;
use laissez_oauth::pkce::challenge_for;
use serde::Deserialize;
use serde_json::Value;
use subtle::ConstantTimeEq;

use crate::{Gate, GateError};

/// The session cookie's name (over https: [`SECURE_COOKIE_NAME`]).
pub const COOKIE_NAME: &str = "laissez_gate";
/// The cookie binding a sign-in to the browser that started it (over
/// https: [`SECURE_SIGN_IN_COOKIE`]).
pub const SIGN_IN_COOKIE: &str = "laissez_gate_signin";
/// The session cookie over https: the `__Host-` prefix makes browsers
/// refuse one set by a sibling subdomain or over http (cookie tossing,
/// which would sign a victim into the attacker's session).
pub const SECURE_COOKIE_NAME: &str = "__Host-laissez_gate";
/// The sign-in cookie over https, `__Host-` for the same reason.
pub const SECURE_SIGN_IN_COOKIE: &str = "__Host-laissez_gate_signin";
/// Most sign-ins pending at once; the oldest are evicted first.
pub const MAX_PENDING: usize = 10_000;
/// Most bytes pending sign-ins may hold.
pub const MAX_PENDING_BYTES: usize = 16 << 20;
/// The longest return target kept; a longer one returns to `/`.
pub const MAX_RETURN_TO: usize = 2048;
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
    browser: String,
    started: Instant,
}

impl Pending {
    fn size(&self, state: &str) -> usize {
        state.len() + self.verifier.len() + self.return_to.len() + self.browser.len() + 64
    }
}

/// Sign-ins started and not yet back: bounded in count and bytes, the
/// oldest evicted first, each taken at most once.
#[derive(Default)]
struct PendingSignIns {
    by_state: HashMap<String, Pending>,
    /// States oldest first (some already taken).
    order: VecDeque<String>,
    bytes: usize,
}

impl PendingSignIns {
    fn insert(&mut self, state: String, pending: Pending) {
        let size = pending.size(&state);
        while let Some(oldest) = self.order.front() {
            let expired = self
                .by_state
                .get(oldest)
                .is_none_or(|p| p.started.elapsed() >= PENDING_TTL);
            let full = self.by_state.len() >= MAX_PENDING
                || self.bytes + size > MAX_PENDING_BYTES
                || self.order.len() >= 2 * MAX_PENDING;
            if !expired && !full {
                break;
            }
            if let Some(oldest) = self.order.pop_front() {
                self.evict(&oldest);
            }
        }
        self.bytes += size;
        self.order.push_back(state.clone());
        if let Some(replaced) = self.by_state.insert(state.clone(), pending) {
            self.bytes = self.bytes.saturating_sub(replaced.size(&state));
        }
    }

    fn evict(&mut self, state: &str) -> Option<Pending> {
        let pending = self.by_state.remove(state)?;
        self.bytes = self.bytes.saturating_sub(pending.size(state));
        Some(pending)
    }

    /// The sign-in `state` names, once, if it has not expired.
    fn take(&mut self, state: &str) -> Option<Pending> {
        self.evict(state)
            .filter(|p| p.started.elapsed() < PENDING_TTL)
    }
}

/// The gate's client registration and its browser sessions.
pub struct Browsers {
    client_id: String,
    client_secret: String,
    authorize_url: String,
    token_url: String,
    redirect_uri: String,
    http: reqwest::Client,
    pending: Mutex<PendingSignIns>,
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

/// The session id in a request's cookies; `secure` when the gate is
/// reached over https.
pub fn session_cookie(headers: &HeaderMap, secure: bool) -> Option<String> {
    cookie(headers, cookie_names(secure).0)
}

/// The session and sign-in cookie names, over https (`secure`) or not.
pub fn cookie_names(secure: bool) -> (&'static str, &'static str) {
    if secure {
        (SECURE_COOKIE_NAME, SECURE_SIGN_IN_COOKIE)
    } else {
        (COOKIE_NAME, SIGN_IN_COOKIE)
    }
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// Removes the gate's own cookies before the request goes to the app.
pub fn strip_cookie(headers: &mut HeaderMap) {
    let kept: Vec<String> = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|pair| {
            let name = pair.split_once('=').map_or(*pair, |(name, _)| name);
            !pair.is_empty()
                && ![
                    COOKIE_NAME,
                    SIGN_IN_COOKIE,
                    SECURE_COOKIE_NAME,
                    SECURE_SIGN_IN_COOKIE,
                ]
                .contains(&name)
        })
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

const BROWSER_ID_LEN: usize = 43;

fn secure(gate: &Gate) -> &'static str {
    if gate.config.resource.scheme() == "https" {
        "; Secure"
    } else {
        ""
    }
}

fn sign_in_cookie(gate: &Gate) -> &'static str {
    cookie_names(gate.config.resource.scheme() == "https").1
}

/// Where a browser may be sent back to after signing in: `target` if it
/// is a same-origin, path-absolute reference (`/…`, not `//…`), made of
/// visible ASCII, with no backslash, whose percent-decoded forms are just
/// as plain; anything else returns to `/`. `/\evil`, `//evil`, `/%5Cevil`,
/// `/%2F%2Fevil`, `https://evil`, `javascript:…` and control characters
/// all become `/`.
pub fn safe_return_target(target: &str) -> String {
    let fallback = || "/".to_owned();
    if target.len() > MAX_RETURN_TO
        || !target.bytes().all(|b| b.is_ascii_graphic())
        || target.contains('\\')
    {
        return fallback();
    }
    let mut decoded = target.to_owned();
    for _ in 0..3 {
        if !decoded.starts_with('/')
            || decoded.starts_with("//")
            || decoded.contains('\\')
            || decoded.chars().any(char::is_control)
        {
            return fallback();
        }
        let next = percent_decode_lossy(&decoded);
        if next == decoded {
            break;
        }
        decoded = next;
    }
    // And a browser resolving it against this origin must stay here.
    let Ok(base) = url::Url::parse("http://gate.invalid/") else {
        return fallback();
    };
    match base.join(target) {
        Ok(resolved) if resolved.origin() == base.origin() => target.to_owned(),
        _ => fallback(),
    }
}

/// `text` with every valid `%XX` decoded (invalid ones kept as they are).
fn percent_decode_lossy(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |at: usize| bytes.get(at).and_then(|b| (*b as char).to_digit(16));
        if bytes[i] == b'%'
            && let (Some(high), Some(low)) = (hex(i + 1), hex(i + 2))
        {
            out.push((high * 16 + low) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Browsers {
    /// Registers the gate as a confidential client of the authorization
    /// server, with the gate's credential when it has one (so the client is
    /// the gate's own and does not expire while nobody signs in).
    pub async fn register(
        app: &str,
        resource: &str,
        metadata: &Value,
        scope: &str,
        credential: Option<&str>,
        http: reqwest::ClientBuilder,
    ) -> Result<Browsers, GateError> {
        let http = http
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
        let mut request = http.post(endpoint("registration_endpoint")?);
        if let Some(credential) = credential {
            request = request.bearer_auth(credential);
        }
        let registered: Value = request
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
            pending: Mutex::new(PendingSignIns::default()),
            sessions: Mutex::new(HashMap::new()),
        })
    }

    /// Sends the browser to sign in, remembering where it wanted to go and
    /// binding the sign-in to it (its sign-in cookie, set if it has none).
    pub fn start(
        &self,
        gate: &Gate,
        headers: &HeaderMap,
        return_to: &str,
        scopes: &[String],
    ) -> Response {
        let state = random(32);
        let verifier = random(64);
        let browser = cookie(headers, sign_in_cookie(gate))
            .filter(|id| {
                id.len() == BROWSER_ID_LEN && id.bytes().all(|b| b.is_ascii_alphanumeric())
            })
            .unwrap_or_else(|| random(BROWSER_ID_LEN));
        if state.is_empty() || verifier.is_empty() || browser.is_empty() {
            return crate::respond::bad_gateway("the gate cannot draw random numbers");
        }
        if let Ok(mut pending) = self.pending.lock() {
            pending.insert(
                state.clone(),
                Pending {
                    verifier: verifier.clone(),
                    return_to: safe_return_target(return_to),
                    browser: browser.clone(),
                    started: Instant::now(),
                },
            );
        }
        // offline_access: the session outlives one access token and
        // refreshes it (a refresh token comes only with that scope).
        let scope: Vec<&str> = scopes
            .iter()
            .map(String::as_str)
            .chain([OFFLINE_ACCESS])
            .collect();
        let mut url = match url::Url::parse(&self.authorize_url) {
            Ok(url) => url,
            Err(_) => {
                return crate::respond::bad_gateway("the authorization endpoint is not a URL");
            }
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
            .append_pair("scope", &scope.join(" "));
        let mut response = (StatusCode::SEE_OTHER, [(LOCATION, url.to_string())]).into_response();
        let cookie = format!(
            "{}={browser}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
            sign_in_cookie(gate),
            PENDING_TTL.as_secs(),
            secure(gate)
        );
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(SET_COOKIE, value);
        }
        response
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

/// `GET /.laissez/callback`: exchanges the code and starts the session,
/// if the sign-in is pending (once) and started in this browser.
pub async fn callback(
    State(gate): State<Gate>,
    headers: HeaderMap,
    Query(answer): Query<Callback>,
) -> Response {
    let Some(browsers) = gate.browsers.as_ref() else {
        return crate::respond::problem(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not found",
            "browser sign-in is not enabled on this gate",
            Value::Null,
        );
    };
    let pending = answer
        .state
        .as_deref()
        .and_then(|state| browsers.pending.lock().ok()?.take(state));
    let browser = cookie(&headers, sign_in_cookie(&gate)).unwrap_or_default();
    let pending = pending.filter(|p| {
        !browser.is_empty() && bool::from(p.browser.as_bytes().ct_eq(browser.as_bytes()))
    });
    let (Some(pending), Some(code)) = (pending, answer.code) else {
        let why = match answer.error {
            Some(error) => format!(
                "the authorization server answered {}",
                error.chars().take(64).collect::<String>()
            ),
            None => {
                "the sign-in expired, was used already, or did not start in this browser".into()
            }
        };
        return crate::respond::problem(
            StatusCode::FORBIDDEN,
            "sign-in-failed",
            "Sign-in failed",
            &format!("{why}; reload the page to try again"),
            Value::Null,
        );
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
        return crate::respond::bad_gateway("the authorization server refused the sign-in");
    };
    let Some(access) = tokens["access_token"].as_str() else {
        return crate::respond::bad_gateway("the authorization server sent no access token");
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
    let secure = secure(&gate);
    let (session_name, sign_in_name) = cookie_names(!secure.is_empty());
    let session = format!("{session_name}={session_id}; Path=/; HttpOnly; SameSite=Lax{secure}");
    let return_to = safe_return_target(&pending.return_to);
    let mut response = (StatusCode::SEE_OTHER, [(LOCATION, return_to)]).into_response();
    for cookie in [
        session,
        format!("{sign_in_name}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}"),
    ] {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(SET_COOKIE, value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_same_origin_path_absolute_targets_survive() {
        let kept = [
            "/",
            "/echo?page=2",
            "/a/b/c",
            "/search?q=a%20b&x=%2F",
            "/~user/",
            "/a?next=//evil",
        ];
        for target in kept {
            assert_eq!(safe_return_target(target), target, "{target}");
        }
        let refused = [
            "",
            "echo",
            "//evil.example/",
            "/\\evil.example/",
            "\\/evil.example/",
            "/%5Cevil.example/",
            "/%5cevil.example/",
            "/%2F%2Fevil.example/",
            "/%2fevil.example/",
            "/%252F%252Fevil.example",
            "/%09/evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/ /evil.example",
            "/\u{7f}evil",
            "https://evil.example/",
            "javascript:alert(1)",
            "http:/evil.example",
            "/caf\u{e9}",
        ];
        for target in refused {
            assert_eq!(safe_return_target(target), "/", "{target:?}");
        }
        assert_eq!(
            safe_return_target(&format!("/{}", "a".repeat(MAX_RETURN_TO))),
            "/"
        );
    }

    #[test]
    fn the_app_never_sees_the_gates_cookies() {
        let mut headers = HeaderMap::new();
        headers.append(
            COOKIE,
            HeaderValue::from_static("laissez_gate=s1; theme=dark"),
        );
        headers.append(
            COOKIE,
            HeaderValue::from_static("laissez_gate_signin=b1; laissez_gatex=kept"),
        );
        strip_cookie(&mut headers);
        assert_eq!(headers[COOKIE], "theme=dark; laissez_gatex=kept");
        assert_eq!(session_cookie(&headers, false), None);
        let mut headers = HeaderMap::new();
        headers.append(
            COOKIE,
            HeaderValue::from_static("laissez_gate=tossed; __Host-laissez_gate=real"),
        );
        assert_eq!(session_cookie(&headers, true).as_deref(), Some("real"));
        assert_eq!(session_cookie(&headers, false).as_deref(), Some("tossed"));
        strip_cookie(&mut headers);
        assert!(headers.get(COOKIE).is_none());
    }

    fn pending(return_to: &str) -> Pending {
        Pending {
            verifier: "v".repeat(64),
            return_to: return_to.to_owned(),
            browser: "b".repeat(BROWSER_ID_LEN),
            started: Instant::now(),
        }
    }

    #[test]
    fn pending_sign_ins_are_bounded_and_used_once() {
        let mut set = PendingSignIns::default();
        for i in 0..MAX_PENDING + 50 {
            set.insert(format!("state{i}"), pending("/"));
        }
        assert_eq!(set.by_state.len(), MAX_PENDING);
        assert!(set.take("state0").is_none(), "the oldest went first");
        let newest = format!("state{}", MAX_PENDING + 49);
        assert!(set.take(&newest).is_some());
        assert!(set.take(&newest).is_none(), "used once");

        let mut set = PendingSignIns::default();
        let long = format!("/{}", "a".repeat(MAX_RETURN_TO - 1));
        for i in 0..MAX_PENDING {
            set.insert(format!("state{i}"), pending(&long));
        }
        assert!(set.bytes <= MAX_PENDING_BYTES);
        assert!(set.by_state.len() < MAX_PENDING);
        let total: usize = set.by_state.iter().map(|(s, p)| p.size(s)).sum();
        assert_eq!(total, set.bytes);
    }

    proptest::proptest! {
        /// Whatever comes in, what goes out is `/` or a path on this origin.
        #[test]
        fn return_targets_never_leave(target in "[ -~\t\n]{0,40}") {
            let safe = safe_return_target(&target);
            proptest::prop_assert!(safe == "/" || safe == target);
            proptest::prop_assert!(safe.starts_with('/') && !safe.starts_with("//") && !safe.contains('\\'));
        }
    }
}
