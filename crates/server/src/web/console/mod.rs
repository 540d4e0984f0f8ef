//! The web console at `/console`: server-rendered pages over the admin API
//! for the signed-in person. There is no side door: every page turns the
//! browser session into an [`Authenticated`] caller (credential kind
//! `session`, the person alone in its chain) and calls the admin API's own
//! handlers, so a page shows exactly what the API would show that person,
//! every change is authorized and audited as the API does it, and a refusal
//! is the API's refusal rendered as a page. Every change is a POST carrying
//! the session's CSRF token; every page works without JavaScript.

pub mod approvals;
pub mod apps;
pub mod audit;
pub mod leaks;
pub mod overview;
pub mod policies;
pub mod principals;
pub mod return_to;
pub mod sessions;
pub mod tokens;

use std::net::SocketAddr;

use askama::Template;
use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use laissez_core::credential::{Credential, hash_secret};
use laissez_core::{Principal, PrincipalKind, Restriction, Status};
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::auth::Authenticated;
use crate::problem::ApiError;
use crate::web::{session, views};

/// Principals one page lists at most.
pub const LISTED: usize = 1000;

/// Principal names by id, for pages that show what the API names by id.
pub fn names(principals: &[Principal]) -> std::collections::HashMap<&str, &str> {
    principals
        .iter()
        .map(|p| (p.id.as_str(), p.name.as_str()))
        .collect()
}

/// Where the console's script is served (only pages that need it load it).
pub const SCRIPT_PATH: &str = "/static/console.js";

/// The console's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console", get(overview::page))
        .route("/console/tokens", get(tokens::page).post(tokens::create))
        .route("/console/tokens/roll", post(tokens::roll))
        .route("/console/tokens/revoke", post(tokens::revoke))
        .route("/console/principals", get(principals::page))
        .route("/console/principals/owner", post(principals::transfer))
        .route("/console/principals/status", post(principals::status))
        .route(
            "/console/policies",
            get(policies::page).post(policies::create),
        )
        .route("/console/policies/remove", post(policies::remove))
        .route("/console/policies/explain", get(policies::explain))
        .route("/console/approvals", get(approvals::page))
        .route("/console/approvals/approve", post(approvals::approve))
        .route("/console/approvals/deny", post(approvals::deny))
        .route("/console/apps", get(apps::page))
        .route("/console/apps/disconnect", post(apps::disconnect))
        .route("/console/audit", get(audit::page))
        .route("/console/leaks", get(leaks::page))
        .route("/console/sessions", get(sessions::page))
        .route("/console/sessions/end", post(sessions::end))
        .route(SCRIPT_PATH, get(script))
}

/// The signed-in person, as the admin API sees them.
pub struct Console {
    /// The person as an API caller (credential kind `session`).
    pub caller: Authenticated,
    /// The session's cookie value (never shown, never logged).
    secret: String,
    /// The CSRF token of every form on the page.
    pub csrf: String,
}

impl FromRequestParts<AppState> for Console {
    type Rejection = Response;

    /// The session's person, or the sign-in page that returns here (for a
    /// GET; a POST without a session changes nothing and goes to sign-in).
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let client_ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        let (user_id, secret) = match session::current(state, &parts.headers).await {
            Ok(Some(current)) => current,
            Ok(None) => {
                let here = parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/console");
                let back = if parts.method == axum::http::Method::GET {
                    here
                } else {
                    "/console"
                };
                return Err(crate::oauth::authorize::console_login(state, back).await);
            }
            Err(e) => return Err(refusal(&ApiError::from(e))),
        };
        let chain = match state.store.chain(&user_id).await {
            Ok(chain) => chain,
            Err(e) => return Err(refusal(&ApiError::from(e))),
        };
        let person_ok = matches!(chain.as_slice(), [user] if user.kind == PrincipalKind::User && user.status == Status::Active);
        if !person_ok {
            return Err(refusal(&ApiError::Forbidden(
                "your account is not available: it is inactive or not a person's".into(),
            )));
        }
        let caller = Authenticated {
            credential: session_credential(&chain[0], &secret),
            chain,
            client_ip,
            secret_hash: hash_secret(&secret),
            task: None,
            proof: None,
            certificate: None,
        };
        Ok(Console {
            csrf: session::csrf_for(&secret),
            caller,
            secret,
        })
    }
}

impl Console {
    /// The person.
    pub fn user(&self) -> &Principal {
        self.caller.principal()
    }

    /// The page frame: who is signed in, which section, the CSRF token.
    pub fn chrome(&self, section: &'static str) -> Chrome {
        Chrome {
            user: self.user().name.to_string(),
            section,
            csrf: self.csrf.clone(),
        }
    }

    /// The admin API's refusal as a page with the navigation, so that a
    /// person refused one section can still reach the others.
    pub fn refusal(&self, error: &ApiError) -> Response {
        let (status, problem) = status_of(error);
        render(
            status,
            &MessagePage {
                title: &problem.title,
                message: &problem.detail,
                status: status.as_u16(),
                chrome: Some(self.chrome("")),
            },
        )
    }

    /// The principals the person may list (the first [`LISTED`]), of
    /// `kind` when given, through `GET /v1/principals`.
    pub async fn principals(
        &self,
        state: &AppState,
        kind: Option<PrincipalKind>,
    ) -> Result<Vec<Principal>, ApiError> {
        tokens::listed(crate::api::principals::list(
            axum::extract::State(state.clone()),
            self.caller.clone(),
            axum::extract::Query(crate::api::principals::ListPrincipals {
                kind,
                limit: Some(LISTED),
                cursor: None,
            }),
        ))
        .await
    }

    /// The fields of a posted form, once its CSRF token is checked; a form
    /// without the right token is refused (403) and changes nothing.
    pub fn form(&self, body: &[u8]) -> Result<Form, Box<Response>> {
        let form = Form::parse(body);
        if session::csrf_ok(&self.secret, form.get("csrf")) {
            Ok(form)
        } else {
            Err(Box::new(message(
                StatusCode::FORBIDDEN,
                "Not allowed",
                "The form expired or did not come from this server; reload the page and try again.",
            )))
        }
    }
}

/// The session as a credential of the admin API: no narrowing, no address
/// ranges, named by the session's public handle.
fn session_credential(user: &Principal, secret: &str) -> Credential {
    Credential {
        id: format!("ses_{}", session::handle(secret)),
        kind: "session".into(),
        prefix: String::new(),
        last4: String::new(),
        principal_id: user.id.clone(),
        restriction: Restriction {
            role: None,
            scope: None,
            permissions: None,
        },
        allowed_ips: Vec::new(),
        description: "console session".into(),
        created_at: crate::now(),
        expires_at: None,
        last_used_at: None,
        revoked_at: None,
    }
}

/// The frame every console page shares.
pub struct Chrome {
    /// The signed-in person's name.
    pub user: String,
    /// The section shown (for the navigation).
    pub section: &'static str,
    /// The CSRF token (the sign-out form).
    pub csrf: String,
}

impl Chrome {
    /// `aria-current` for the navigation link of `section`.
    pub fn current(&self, section: &str) -> &'static str {
        if self.section == section {
            "page"
        } else {
            "false"
        }
    }
}

/// Form or query fields, decoded.
pub struct Form(Vec<(String, String)>);

impl Form {
    /// Decodes `application/x-www-form-urlencoded` bytes.
    pub fn parse(bytes: &[u8]) -> Form {
        Form(
            url::form_urlencoded::parse(bytes)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// A query string's fields.
    pub fn query(query: Option<&str>) -> Form {
        Form::parse(query.unwrap_or_default().as_bytes())
    }

    /// A field's value, trimmed (empty when absent).
    pub fn get(&self, key: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.trim())
            .unwrap_or_default()
    }

    /// Every value of a field given several times (checkboxes), trimmed,
    /// empty ones left out.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
            .collect()
    }

    /// A field's value, or `None` when absent or empty.
    pub fn optional(&self, key: &str) -> Option<String> {
        Some(self.get(key))
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    }
}

/// A page that only says something.
#[derive(Template)]
#[template(path = "console/message.html")]
struct MessagePage<'a> {
    title: &'a str,
    message: &'a str,
    status: u16,
    /// The navigation, for a signed-in person.
    chrome: Option<Chrome>,
}

/// A problem-style page: the status, a title and what went wrong.
pub fn message(status: StatusCode, title: &str, text: &str) -> Response {
    render(
        status,
        &MessagePage {
            title,
            message: text,
            status: status.as_u16(),
            chrome: None,
        },
    )
}

/// The admin API's refusal as a page, with the API's status and words.
pub fn refusal(error: &ApiError) -> Response {
    let (status, problem) = status_of(error);
    message(status, &problem.title, &problem.detail)
}

fn status_of(error: &ApiError) -> (StatusCode, crate::problem::Problem) {
    let problem = error.problem();
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::BAD_REQUEST);
    (status, problem)
}

/// Renders a console page (no script allowed).
pub fn render(status: StatusCode, page: &impl Template) -> Response {
    views::render(status, page)
}

/// Renders a console page that loads [`SCRIPT_PATH`]: the same policy with
/// `script-src 'self'` (never inline).
pub fn render_with_script(status: StatusCode, page: &impl Template) -> Response {
    let mut response = views::render(status, page);
    let policy = format!("{}; script-src 'self'", views::CONTENT_SECURITY_POLICY);
    if let Ok(value) = HeaderValue::from_str(&policy) {
        response
            .headers_mut()
            .insert("content-security-policy", value);
    }
    response
}

/// After a change: back to `path` (303, so a reload does not repeat it).
pub fn see_other(path: &str) -> Response {
    Redirect::to(path).into_response()
}

/// The JSON body of an API handler's answer (the list handlers answer with
/// a paged response rather than a typed value).
pub async fn decode<T: DeserializeOwned>(response: Response) -> Result<T, ApiError> {
    let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024 * 1024)
        .await
        .map_err(|e| ApiError::Unavailable(format!("cannot read the API's answer: {e}")))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::Unavailable(format!("cannot read the API's answer: {e}")))
}

/// A time as people read it: `2026-12-01 18:04 UTC` (or `never`).
pub fn when(at: Option<i64>) -> String {
    match at {
        Some(at) => {
            let (days, seconds) = (at.div_euclid(86_400), at.rem_euclid(86_400));
            let (year, month, day) = civil_from_days(days);
            format!(
                "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
                seconds / 3600,
                seconds % 3600 / 60
            )
        }
        None => "never".into(),
    }
}

/// The Unix time at the start of a `YYYY-MM-DD` day (UTC).
pub fn parse_day(text: &str) -> Option<i64> {
    let mut parts = text.splitn(3, '-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: i64 = parts.next()?.parse().ok()?;
    let day: i64 = parts.next()?.parse().ok()?;
    if text.len() != 10 || !(1970..=9999).contains(&year) || !(1..=12).contains(&month) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    // Reject days past the month's end (2026-02-31).
    (civil_from_days(days) == (year, month, day)).then_some(days * 86_400)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `GET /static/console.js`: the copy button of the token page.
pub async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        SCRIPT,
    )
        .into_response()
}

/// The console's one script.
const SCRIPT: &str = include_str!("../../../static/console.js");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_dates_and_days_parse_back() {
        assert_eq!(when(Some(0)), "1970-01-01 00:00 UTC");
        assert_eq!(when(Some(1_796_148_240)), "2026-12-01 18:04 UTC");
        assert_eq!(when(None), "never");
        assert_eq!(parse_day("2026-12-01"), Some(1_796_083_200));
        assert_eq!(parse_day("2024-02-29"), Some(1_709_164_800));
        for bad in [
            "",
            "2026-02-31",
            "2026-13-01",
            "26-12-01",
            "2026-1-1",
            "x",
            "2026-12-01x",
        ] {
            assert_eq!(parse_day(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_script_policy_adds_only_self_scripts() {
        let page = MessagePage {
            title: "t",
            message: "m",
            status: 200,
            chrome: None,
        };
        let response = render_with_script(StatusCode::OK, &page);
        let policy = response.headers()["content-security-policy"]
            .to_str()
            .unwrap_or_default()
            .to_owned();
        assert!(policy.ends_with("; script-src 'self'"), "{policy}");
        assert!(!policy.contains("unsafe"), "{policy}");
    }
}
