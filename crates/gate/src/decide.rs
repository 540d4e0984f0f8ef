//! The gate's one decision: given what a request is ([`RequestFacts`],
//! [`RpcCalls`]), what its credential turned out to be ([`Verified`]) and
//! the app's configuration, forward it, send the browser to sign in,
//! challenge the caller, or refuse. Pure: no I/O, no clock of its own.

use axum::http::StatusCode;
use laissez_oauth::OAuthScopes;
use laissez_oauth::access_token::AccessTokenClaims;

use crate::binding::BindingRefusal;
use crate::config::GateConfig;
use crate::facts::{Credential, RequestFacts, RpcCalls};
use crate::respond::Problem;

/// What verifying the request's credential gave.
#[derive(Clone, Copy, Debug)]
pub enum Verified<'a> {
    /// There was no credential (or no live browser session).
    Missing,
    /// The token was refused, and why.
    Refused(&'a str),
    /// A valid token's claims.
    Valid(&'a AccessTokenClaims),
    /// A valid token this request may not use (its key was not proven, or
    /// it comes from outside its IP ranges).
    Unbound(&'a AccessTokenClaims, &'a BindingRefusal),
}

/// What the gate does with a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision<'a> {
    /// Send it to the app.
    Allow(Forward<'a>),
    /// Send the person's browser to sign in, coming back to `return_to`.
    SignIn {
        /// Where to come back to.
        return_to: String,
    },
    /// `401`/`403` with a `WWW-Authenticate` challenge.
    Challenge(Challenge),
    /// A problem-details refusal.
    Refuse(Problem),
}

/// An allowed request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Forward<'a> {
    /// Who is calling.
    pub claims: &'a AccessTokenClaims,
    /// Every scope the request needed (all held).
    pub required: Vec<String>,
}

/// A challenge to present.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// `401` (no valid token) or `403` (too little).
    pub status: StatusCode,
    /// The OAuth error code and description, if any.
    pub error: Option<(&'static str, String)>,
    /// Every scope the request needs.
    pub scopes: Vec<String>,
    /// Why, for the audit log.
    pub reason: String,
    /// Whether to add a `DPoP` challenge (the error is about DPoP, or the
    /// app requires it).
    pub dpop: bool,
}

impl Challenge {
    /// The decision as recorded: `unauthenticated` or `deny`.
    pub fn decision(&self) -> &'static str {
        if self.status == StatusCode::FORBIDDEN {
            "deny"
        } else {
            "unauthenticated"
        }
    }
}

/// Every scope a request needs: its route's (matched on the normalised
/// path, `HEAD` as `GET`), and each called tool's.
pub fn required_scopes(facts: &RequestFacts, calls: &RpcCalls, config: &GateConfig) -> Vec<String> {
    let mut required = config
        .required_scopes(facts.rule_method(), &facts.rule_path)
        .to_vec();
    for tool in &calls.tools {
        if let Some(scopes) = config.tool_scopes(tool) {
            required.extend(scopes.iter().cloned());
        }
    }
    required.sort();
    required.dedup();
    required
}

/// Whether the request's body must be read for tool rules: any request
/// with a body (or a `POST`) to an app with tool rules.
pub fn reads_body(facts: &RequestFacts, config: &GateConfig) -> bool {
    config.has_tool_rules() && (facts.method == "POST" || facts.has_body)
}

/// Decides what to do with a request.
pub fn decide<'a>(
    facts: &RequestFacts,
    calls: &RpcCalls,
    verified: Verified<'a>,
    config: &GateConfig,
    now: i64,
) -> Decision<'a> {
    if reads_body(facts, config) && !calls.body_read {
        // Tool rules cannot apply to a body nobody read: never forward it.
        return Decision::Refuse(Problem::new(
            StatusCode::BAD_REQUEST,
            "bad-json-rpc",
            "Body is not JSON-RPC",
            "this route's tool rules need a JSON-RPC body the gate can read",
        ));
    }
    let required = required_scopes(facts, calls, config);
    let claims = match verified {
        Verified::Valid(claims) if claims.exp > now => claims,
        Verified::Valid(_) => {
            return Decision::Challenge(Challenge {
                status: StatusCode::UNAUTHORIZED,
                error: Some(("invalid_token", "the token has expired".into())),
                scopes: required,
                reason: "the token has expired".into(),
                dpop: config.require_dpop,
            });
        }
        Verified::Refused(why) => {
            return Decision::Challenge(Challenge {
                status: StatusCode::UNAUTHORIZED,
                error: Some(("invalid_token", why.to_owned())),
                scopes: required,
                reason: why.to_owned(),
                dpop: config.require_dpop,
            });
        }
        Verified::Unbound(_, refusal) => {
            return Decision::Challenge(Challenge {
                status: StatusCode::UNAUTHORIZED,
                error: Some((refusal.code, refusal.reason.clone())),
                scopes: required,
                reason: refusal.reason.clone(),
                dpop: true,
            });
        }
        Verified::Missing => {
            if config.browser_login
                && facts.wants_page
                && !matches!(
                    facts.credential,
                    Credential::Bearer(_) | Credential::Dpop(_)
                )
            {
                return Decision::SignIn {
                    return_to: facts.path_and_query(),
                };
            }
            return Decision::Challenge(Challenge {
                status: StatusCode::UNAUTHORIZED,
                error: None,
                scopes: required,
                reason: "no bearer token".into(),
                dpop: config.require_dpop,
            });
        }
    };
    let held = OAuthScopes::parse(Some(&claims.scope)).unwrap_or_default();
    let needed = OAuthScopes::from_names(required.iter().map(String::as_str));
    // Both refusals are 403 insufficient_scope: asking the user again (with
    // more scopes, or choosing the account) is how a client gets further.
    if !needed.is_subset(&held) {
        let missing = needed.difference(&held);
        return Decision::Challenge(Challenge {
            status: StatusCode::FORBIDDEN,
            error: Some((
                "insufficient_scope",
                format!("this operation needs: {needed}"),
            )),
            scopes: required,
            reason: format!("missing scopes: {missing}"),
            dpop: config.require_dpop,
        });
    }
    if !config.account_allowed(&claims.accounts) {
        let account = config.account.as_deref().unwrap_or_default();
        return Decision::Challenge(Challenge {
            status: StatusCode::FORBIDDEN,
            error: Some((
                "insufficient_scope",
                format!(
                    "the user did not grant this application access to account {account}; ask again and choose it"
                ),
            )),
            scopes: required,
            reason: format!("the grant does not include account {account}"),
            dpop: config.require_dpop,
        });
    }
    Decision::Allow(Forward { claims, required })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::config::Rule;

    fn config() -> GateConfig {
        let mut config = GateConfig::new(
            "notes",
            "http://gate.test".parse().unwrap(),
            "http://app.test".parse().unwrap(),
            "http://issuer.test",
        );
        config.default_scopes = vec!["notes.read".into()];
        config.rules = vec![
            Rule::parse("/admin notes.admin").unwrap(),
            Rule::parse("GET /reports notes.reports").unwrap(),
            Rule::parse("tool:write_note notes.write").unwrap(),
        ];
        config
    }

    fn claims(scope: &str) -> AccessTokenClaims {
        AccessTokenClaims {
            iss: "http://issuer.test".into(),
            sub: "usr_alice".into(),
            aud: "http://gate.test".into(),
            exp: 2_000,
            iat: 1_000,
            jti: "j".into(),
            client_id: "cli_1".into(),
            scope: scope.into(),
            accounts: Vec::new(),
            act: None,
            iat_ms: None,
            nbf: None,
            ..AccessTokenClaims::default()
        }
    }

    fn facts(method: &str, path: &str) -> Result<RequestFacts, Problem> {
        let request = axum::http::Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", "Bearer t")
            .body(())
            .map_err(|e| Problem::new(StatusCode::BAD_REQUEST, "x", "x", e.to_string()))?;
        RequestFacts::from_parts(&request.into_parts().0, &config())
    }

    fn outcome(
        method: &str,
        path: &str,
        tools: &[&str],
        scope: &str,
    ) -> Result<StatusCode, StatusCode> {
        let facts = facts(method, path).map_err(|p| p.status)?;
        let calls = RpcCalls {
            tools: tools.iter().map(|t| t.to_string()).collect(),
            body_read: true,
        };
        let claims = claims(scope);
        match decide(&facts, &calls, Verified::Valid(&claims), &config(), 1_500) {
            Decision::Allow(_) => Ok(StatusCode::OK),
            Decision::Challenge(c) => Err(c.status),
            Decision::Refuse(p) => Err(p.status),
            Decision::SignIn { .. } => Err(StatusCode::SEE_OTHER),
        }
    }

    #[test]
    fn rules_apply_to_every_spelling_of_a_path_and_method() {
        let forbidden = Err(StatusCode::FORBIDDEN);
        type Row<'a> = (
            &'a str,
            &'a str,
            &'a [&'a str],
            &'a str,
            Result<StatusCode, StatusCode>,
        );
        let table: &[Row] = &[
            ("GET", "/notes", &[], "notes.read", Ok(StatusCode::OK)),
            ("GET", "/admin", &[], "notes.read", forbidden),
            ("GET", "/%61dmin", &[], "notes.read", forbidden),
            ("GET", "//admin", &[], "notes.read", forbidden),
            ("GET", "/./admin", &[], "notes.read", forbidden),
            ("GET", "/x/../admin/users", &[], "notes.read", forbidden),
            ("GET", "/admin/", &[], "notes.read", forbidden),
            ("GET", "/admin;jsessionid=1", &[], "notes.read", forbidden),
            ("GET", "/notes/..;/admin", &[], "notes.read", forbidden),
            (
                "GET",
                "/admin%2fx",
                &[],
                "notes.read",
                Err(StatusCode::BAD_REQUEST),
            ),
            ("GET", "/admin", &[], "notes.admin", Ok(StatusCode::OK)),
            ("GET", "/adminx", &[], "notes.read", Ok(StatusCode::OK)),
            ("GET", "/reports", &[], "notes.read", forbidden),
            ("HEAD", "/reports", &[], "notes.read", forbidden),
            ("get", "/reports", &[], "notes.read", forbidden),
            ("POST", "/reports", &[], "notes.read", Ok(StatusCode::OK)),
            (
                "POST",
                "/mcp",
                &["read_note"],
                "notes.read",
                Ok(StatusCode::OK),
            ),
            ("POST", "/mcp", &["write_note"], "notes.read", forbidden),
            (
                "POST",
                "/mcp",
                &["read_note", "write_note"],
                "notes.read",
                forbidden,
            ),
            (
                "POST",
                "/mcp",
                &["write_note"],
                "notes.read notes.write",
                Ok(StatusCode::OK),
            ),
        ];
        let unread = facts("POST", "/mcp").unwrap();
        let claims = claims("notes.read notes.write");
        assert!(matches!(
            decide(
                &unread,
                &RpcCalls::default(),
                Verified::Valid(&claims),
                &config(),
                1_500
            ),
            Decision::Refuse(Problem {
                status: StatusCode::BAD_REQUEST,
                ..
            })
        ));
        for (method, path, tools, scope, expected) in table {
            assert_eq!(
                outcome(method, path, tools, scope),
                *expected,
                "{method} {path} {tools:?} with {scope}"
            );
        }
    }

    #[test]
    fn no_token_expired_tokens_and_browsers() {
        let facts = facts("GET", "/admin").unwrap();
        let calls = RpcCalls::default();
        let Decision::Challenge(c) = decide(&facts, &calls, Verified::Missing, &config(), 0) else {
            panic!("a challenge");
        };
        assert_eq!(c.status, StatusCode::UNAUTHORIZED);
        assert_eq!(c.scopes, ["notes.admin"]);
        let expired = claims("notes.admin");
        assert!(matches!(
            decide(&facts, &calls, Verified::Valid(&expired), &config(), 2_000),
            Decision::Challenge(Challenge {
                status: StatusCode::UNAUTHORIZED,
                ..
            })
        ));
        let mut browser = facts.clone();
        browser.credential = Credential::Missing;
        browser.wants_page = true;
        browser.query = Some("a=1".into());
        let mut with_login = config();
        with_login.browser_login = true;
        assert_eq!(
            decide(&browser, &calls, Verified::Missing, &with_login, 0),
            Decision::SignIn {
                return_to: "/admin?a=1".into()
            }
        );
    }

    /// A path as a lenient app sees it: every escape decoded, repeated
    /// slashes merged, dot segments resolved.
    fn app_view(raw: &str) -> String {
        view(raw, false)
    }

    /// The same, read as a servlet container does: `;parameters` dropped
    /// from each segment before dots are resolved (`/..;/` is `/../`).
    fn servlet_view(raw: &str) -> String {
        view(raw, true)
    }

    fn view(raw: &str, servlet: bool) -> String {
        let path = raw.split('?').next().unwrap_or_default();
        let path = if servlet {
            let segments: Vec<&str> = path
                .split('/')
                .map(|s| s.split(';').next().unwrap_or_default())
                .collect();
            segments.join("/")
        } else {
            path.to_owned()
        };
        let bytes = path.as_bytes();
        let mut decoded = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            let hex = |at: usize| bytes.get(at).and_then(|b| (*b as char).to_digit(16));
            if let (b'%', Some(h), Some(l)) = (bytes[i], hex(i + 1), hex(i + 2)) {
                decoded.push((h * 16 + l) as u8);
                i += 3;
            } else {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
        let decoded = String::from_utf8_lossy(&decoded).replace('\\', "/");
        let mut segments: Vec<&str> = Vec::new();
        for segment in decoded.split('/') {
            match segment {
                "" | "." => {}
                ".." => {
                    segments.pop();
                }
                s => segments.push(s),
            }
        }
        format!("/{}", segments.join("/"))
    }

    fn piece() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "/",
            "//",
            "admin",
            "%61dmin",
            "%61%64%6d%69%6e",
            "adm%69n",
            "ADMIN",
            ".",
            "..",
            "%2e",
            "%2E%2e",
            "x",
            "%2F",
            "%5C",
            "%zz",
            "%",
            "a%20",
            "~",
            "%7E",
            "?",
            ";",
        ])
    }

    proptest! {
        /// No spelling of a path that normalises into a rule's prefix is
        /// allowed without that rule's scopes.
        #[test]
        fn no_path_into_a_rule_passes_without_its_scopes(
            pieces in prop::collection::vec(piece(), 1..8),
            method in prop::sample::select(vec!["GET", "HEAD", "get", "Head", "POST"]),
        ) {
            let raw = format!("/{}", pieces.concat());
            // Where an app that decodes everything and resolves dots
            // (the most lenient reading) would route it.
            let seen = app_view(&raw);
            let servlet = servlet_view(&raw);
            let into_admin = [&seen, &servlet]
                .iter()
                .any(|v| v.as_str() == "/admin" || v.starts_with("/admin/"));
            let Ok(facts) = facts(method, &raw) else {
                return Ok(());
            };
            let claims = claims("notes.read notes.reports");
            let allowed = matches!(
                decide(&facts, &RpcCalls::default(), Verified::Valid(&claims), &config(), 1_500),
                Decision::Allow(_)
            );
            prop_assert!(!(allowed && into_admin), "{} {} -> {} (app: {})", method, raw, facts.path, seen);
            // What is forwarded is its own normal form and reads the same
            // to the app.
            let again = crate::facts::normalize_path(&facts.path, false);
            prop_assert_eq!(again.as_deref(), Ok(facts.path.as_str()));
            prop_assert_eq!(app_view(&facts.path), seen);
        }
    }
}
