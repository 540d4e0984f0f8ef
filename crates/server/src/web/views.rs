//! The pages people see, as compile-time-checked askama templates
//! (`crates/server/templates/`: `base.html` is the layout, each page extends
//! it) over one stylesheet served at [`STYLESHEET_PATH`]. Templates escape
//! every value; no page carries inline style or script, so the
//! [`CONTENT_SECURITY_POLICY`] allows neither.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

/// Where the stylesheet is served.
pub const STYLESHEET_PATH: &str = "/static/laissez.css";

/// The stylesheet every page links.
const STYLESHEET: &str = include_str!("../../static/laissez.css");

/// What every page may load: its own stylesheet, images over https (client
/// logos), forms posted back here; nothing inline, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self' https:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A page that only says something (errors, mostly).
#[derive(Template)]
#[template(path = "message.html")]
pub struct Message<'a> {
    /// The heading.
    pub title: &'a str,
    /// The sentence.
    pub message: &'a str,
}

/// The landing page at `/`.
#[derive(Template)]
#[template(path = "landing.html")]
pub struct Landing<'a> {
    /// "Laissez".
    pub title: &'static str,
    /// This server's issuer URL.
    pub issuer: &'a str,
}

/// A link to a home page, shown by its host.
pub struct Link {
    /// The URL.
    pub href: String,
    /// Its host.
    pub host: String,
}

/// The organization's identity provider, on the sign-in page.
pub struct Upstream {
    /// Where sign-in through it starts.
    pub href: String,
    /// Its display name.
    pub name: String,
}

/// The sign-in page.
#[derive(Template)]
#[template(path = "signin.html")]
pub struct SignIn {
    /// "Sign in".
    pub title: &'static str,
    /// Why the last attempt failed.
    pub problem: Option<String>,
    /// Only the identity provider signs people in.
    pub federated_only: bool,
    /// The identity provider, when configured.
    pub upstream: Option<Upstream>,
    /// The authorization request, carried through the form.
    pub fields: Vec<(String, String)>,
    /// The form's CSRF token.
    pub csrf: String,
}

/// What the consent page says of who published the client.
pub enum Publisher {
    /// Registered by the organization's administrators.
    Organization(Option<Link>),
    /// A Client ID Metadata Document served by `served_by`; `home` is a
    /// self-asserted home page on another site.
    Domain {
        /// The host serving the document.
        served_by: String,
        /// A home page elsewhere, if it names one.
        home: Option<Link>,
    },
    /// Self-registered: whatever it says is unverified.
    SelfAsserted(Option<Link>),
}

/// A scope offered on the consent page.
pub struct ScopeChoice {
    /// The scope.
    pub value: String,
    /// What the resource says it means.
    pub words: Option<String>,
}

/// An account offered on the consent page.
pub struct AccountChoice {
    /// The account scope.
    pub value: String,
    /// It is `/`: every account the person reaches.
    pub everything: bool,
}

/// The consent page.
#[derive(Template)]
#[template(path = "consent.html")]
pub struct Consent {
    /// "Allow access?".
    pub title: &'static str,
    /// The client's logo (https).
    pub logo: Option<String>,
    /// The client's name.
    pub name: String,
    /// The person asked.
    pub user: String,
    /// Who published the client.
    pub publisher: Publisher,
    /// Where the answer goes.
    pub redirect_host: String,
    /// The answer goes to this computer.
    pub localhost: bool,
    /// The resource asked for.
    pub resource: Option<String>,
    /// The authorization request, carried through the form.
    pub fields: Vec<(String, String)>,
    /// The form's CSRF token.
    pub csrf: String,
    /// The scopes offered.
    pub scopes: Vec<ScopeChoice>,
    /// The accounts offered.
    pub accounts: Vec<AccountChoice>,
}

/// A connected application on the account page.
pub struct AppRow {
    /// Its name.
    pub name: String,
    /// Its client id.
    pub client_id: String,
    /// Granted scopes.
    pub scope: String,
    /// Granted accounts.
    pub accounts: String,
    /// When, in words.
    pub granted: String,
    /// When last used, in words.
    pub used: String,
}

/// A browser session on the account page.
pub struct SessionRow {
    /// Its public handle.
    pub handle: String,
    /// It is this browser's.
    pub current: bool,
    /// When, in words.
    pub signed_in: String,
}

/// The account page: connected applications and sessions.
#[derive(Template)]
#[template(path = "account.html")]
pub struct Account {
    /// "Connected applications".
    pub title: &'static str,
    /// The forms' CSRF token.
    pub csrf: String,
    /// Connected applications.
    pub apps: Vec<AppRow>,
    /// Browser sessions.
    pub sessions: Vec<SessionRow>,
}

/// Renders `page` with `status` and the headers every page carries: not
/// stored, not framed, the content security policy.
pub fn render(status: StatusCode, page: &impl Template) -> Response {
    let mut response = match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a page failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page failed to render",
            )
                .into_response()
        }
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    response
}

/// `GET /`: what this server is, with links for people.
pub async fn landing(
    axum::extract::State(state): axum::extract::State<crate::AppState>,
) -> Response {
    render(
        StatusCode::OK,
        &Landing {
            title: "Laissez",
            issuer: &state.issuer,
        },
    )
}

/// `GET /static/laissez.css`.
pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        STYLESHEET,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_and_nothing_is_inline() {
        let page = SignIn {
            title: "Sign in",
            problem: Some("<script>alert(1)</script>".into()),
            federated_only: false,
            upstream: None,
            fields: vec![("state".into(), "\"><img src=x onerror=alert(1)>".into())],
            csrf: "c".into(),
        }
        .render()
        .unwrap();
        assert!(!page.contains("<script>"), "{page}");
        assert!(!page.contains("\"><img"), "{page}");
        assert!(
            !page.contains("style=") && !page.contains("<style"),
            "{page}"
        );
        assert!(
            page.contains("<input type=\"hidden\" name=\"csrf\" value=\"c\">"),
            "{page}"
        );
        assert!(page.contains(STYLESHEET_PATH));
    }
}
