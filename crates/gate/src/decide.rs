//! The gate's one decision: given what a request is ([`RequestFacts`],
//! [`RpcCalls`]), what its credential turned out to be ([`Verified`]) and
//! the app's configuration, forward it, send the browser to sign in,
//! challenge the caller, or refuse. Pure: no I/O, no clock of its own.

use axum::http::StatusCode;
use laissez_oauth::OAuthScopes;
use laissez_oauth::access_token::AccessTokenClaims;

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

/// Every scope a request needs: its route's, and each called tool's.
pub fn required_scopes(facts: &RequestFacts, calls: &RpcCalls, config: &GateConfig) -> Vec<String> {
    let mut required = config.required_scopes(&facts.method, &facts.path).to_vec();
    for tool in &calls.tools {
        if let Some(scopes) = config.tool_scopes(tool) {
            required.extend(scopes.iter().cloned());
        }
    }
    required.sort();
    required.dedup();
    required
}

/// Decides what to do with a request.
pub fn decide<'a>(
    facts: &RequestFacts,
    calls: &RpcCalls,
    verified: Verified<'a>,
    config: &GateConfig,
    now: i64,
) -> Decision<'a> {
    let required = required_scopes(facts, calls, config);
    let claims = match verified {
        Verified::Valid(claims) if claims.exp > now => claims,
        Verified::Valid(_) => {
            return Decision::Challenge(Challenge {
                status: StatusCode::UNAUTHORIZED,
                error: Some(("invalid_token", "the token has expired".into())),
                scopes: required,
                reason: "the token has expired".into(),
            });
        }
        Verified::Refused(why) => {
            return Decision::Challenge(Challenge {
                status: StatusCode::UNAUTHORIZED,
                error: Some(("invalid_token", why.to_owned())),
                scopes: required,
                reason: why.to_owned(),
            });
        }
        Verified::Missing => {
            if config.browser_login
                && facts.wants_page
                && !matches!(facts.credential, Credential::Bearer(_))
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
        });
    }
    Decision::Allow(Forward { claims, required })
}
