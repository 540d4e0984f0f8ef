//! The authorization endpoint (RFC 6749 §4.1 as OAuth 2.1 restricts it):
//! validate the request, sign the user in, ask for consent, and send the
//! code back to the client's redirect URI with `state` and `iss` (RFC 9207).
//!
//! Until the client and its redirect URI are known to be good, errors are
//! shown to the user and never redirected (no open redirector). After that,
//! every error goes back to the client as `error`, `error_description`,
//! `state` and `iss`.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use laissez_core::audit::AuditEvent;
use laissez_core::credential::hash_secret;
use laissez_core::{Permission, PolicySet, PrincipalKind, PrincipalRef, Scope, Status};
use laissez_oauth::client::{Client, ClientKind, GrantType};
use laissez_oauth::grant::{AuthorizationCode, CODE_TTL, scopes_for_person};
use laissez_oauth::pkce::Challenge;
use laissez_oauth::resource::Resource;
use laissez_oauth::{ErrorCode, OAuthError, OAuthScopes, redirect};
use serde::Deserialize;
use serde_json::json;
use url::Url;

use crate::web::views;
use crate::web::{password, session};
use crate::{AppState, now};

/// The authorization request's parameters.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct AuthorizeParams {
    client_id: Option<String>,
    redirect_uri: Option<String>,
    response_type: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    resource: Option<String>,
    prompt: Option<String>,
    /// Where a sign-in for the console returns to (only console paths:
    /// [`crate::web::console::return_to::console_target`]).
    return_to: Option<String>,
}

impl AuthorizeParams {
    /// The parameter names an authorization request may carry.
    pub const KEYS: [&'static str; 9] = [
        "client_id",
        "redirect_uri",
        "response_type",
        "scope",
        "state",
        "code_challenge",
        "code_challenge_method",
        "resource",
        "prompt",
    ];

    pub(crate) fn pairs(&self) -> Vec<(&'static str, &str)> {
        [
            ("client_id", &self.client_id),
            ("redirect_uri", &self.redirect_uri),
            ("response_type", &self.response_type),
            ("scope", &self.scope),
            ("state", &self.state),
            ("code_challenge", &self.code_challenge),
            ("code_challenge_method", &self.code_challenge_method),
            ("resource", &self.resource),
            ("prompt", &self.prompt),
            ("return_to", &self.return_to),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
        .collect()
    }

    fn from_pairs(pairs: &[(String, String)]) -> AuthorizeParams {
        let get = |k: &str| {
            pairs
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        AuthorizeParams {
            client_id: get("client_id"),
            redirect_uri: get("redirect_uri"),
            response_type: get("response_type"),
            scope: get("scope"),
            state: get("state"),
            code_challenge: get("code_challenge"),
            code_challenge_method: get("code_challenge_method"),
            resource: get("resource"),
            prompt: get("prompt"),
            return_to: get("return_to"),
        }
    }

    /// The request, as the hidden fields of a form.
    fn hidden_fields(&self) -> Vec<(String, String)> {
        self.pairs()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }
}

/// A request that passed validation.
struct Valid {
    client: Client,
    redirect_uri: String,
    challenge: Challenge,
    scopes: OAuthScopes,
    resource: Option<Resource>,
    protected: Option<laissez_oauth::protected::ProtectedResource>,
    state: Option<String>,
}

/// The registered resource a request names: exactly, or the longest
/// registered resource the requested URL lies under.
pub(crate) async fn registered_resource(
    state: &AppState,
    resource: &Resource,
) -> Option<laissez_oauth::protected::ProtectedResource> {
    let wanted = resource.as_str();
    state
        .store
        .resources()
        .await
        .ok()?
        .into_iter()
        .filter(|r| wanted == r.resource || wanted.starts_with(&format!("{}/", r.resource)))
        .max_by_key(|r| r.resource.len())
}

/// Where an error goes.
enum Failure {
    /// Shown to the user: the client or redirect URI cannot be trusted.
    Page(StatusCode, String),
    /// Sent back to the client's redirect URI.
    Redirect(String, OAuthError, Option<String>),
}

pub(crate) fn error_page(status: StatusCode, message: &str) -> Response {
    views::render(
        status,
        &views::Message {
            title: "Cannot continue",
            message,
        },
    )
}

impl Failure {
    fn respond(self, issuer: &str) -> Response {
        match self {
            Failure::Page(status, message) => error_page(status, &message),
            Failure::Redirect(uri, error, state) => {
                let mut params = vec![
                    ("error", error.error.as_str().to_owned()),
                    ("error_description", error.description),
                    ("iss", issuer.to_owned()),
                ];
                if let Some(state) = state {
                    params.push(("state", state));
                }
                redirect_with(&uri, &params)
            }
        }
    }
}

fn redirect_with(uri: &str, params: &[(&str, String)]) -> Response {
    let Ok(mut url) = Url::parse(uri) else {
        return error_page(StatusCode::BAD_REQUEST, "the redirect URI is not valid");
    };
    {
        let mut query = url.query_pairs_mut();
        for (k, v) in params {
            query.append_pair(k, v);
        }
    }
    let mut response = Redirect::to(url.as_str()).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn validate(state: &AppState, params: &AuthorizeParams) -> Result<Valid, Failure> {
    let page = |m: &str| Failure::Page(StatusCode::BAD_REQUEST, m.to_owned());
    let client_id = params
        .client_id
        .as_deref()
        .ok_or_else(|| page("the application did not say who it is (client_id is missing)"))?;
    let client = match super::resolve_client(state, client_id).await {
        Ok(Some((client, _))) => client,
        Ok(None) => {
            return Err(page(
                "the application is not registered with this server (unknown client_id)",
            ));
        }
        Err(super::response::OAuthFailure(e)) => {
            return Err(page(&format!(
                "the application could not be identified: {}",
                e.description
            )));
        }
    };
    let registered = &client.metadata.redirect_uris;
    let redirect_uri = match params.redirect_uri.as_deref() {
        Some(uri) if redirect::matches(registered, uri) => uri.to_owned(),
        Some(_) => {
            return Err(page(
                "the redirect URI does not match any the application registered",
            ));
        }
        None if registered.len() == 1 => registered[0].clone(),
        None => {
            return Err(page(
                "redirect_uri is required: the application registered several",
            ));
        }
    };
    let back =
        |error: OAuthError| Failure::Redirect(redirect_uri.clone(), error, params.state.clone());
    if params.response_type.as_deref() != Some("code") {
        return Err(back(OAuthError::new(
            ErrorCode::UnsupportedResponseType,
            "response_type must be code",
        )));
    }
    if !client.metadata.allows(GrantType::AuthorizationCode) {
        return Err(back(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client is not registered for the authorization_code grant",
        )));
    }
    let challenge = Challenge::from_request(
        params.code_challenge.as_deref(),
        params.code_challenge_method.as_deref(),
    )
    .map_err(back)?;
    let resource = params
        .resource
        .as_deref()
        .map(Resource::parse)
        .transpose()
        .map_err(back)?;
    let protected = match &resource {
        Some(r) => registered_resource(state, r).await,
        None => None,
    };
    let mut scopes = OAuthScopes::parse(params.scope.as_deref()).map_err(back)?;
    if params.scope.is_none() {
        // No scope asked: the resource's defaults, else the client's registered scopes.
        scopes = match &protected {
            Some(p) if !p.default_scopes.is_empty() => {
                OAuthScopes::from_names(p.default_scopes.iter().map(String::as_str))
            }
            _ => OAuthScopes::parse(client.metadata.scope.as_deref()).unwrap_or_default(),
        };
    }
    // A registered resource that defines its scopes bounds what anyone may
    // be granted for it (offline_access is the server's own).
    if let Some(p) = protected.as_ref().filter(|p| !p.scopes.is_empty()) {
        let defined = OAuthScopes::from_names(
            p.scopes
                .keys()
                .map(String::as_str)
                .chain(["offline_access"]),
        );
        scopes = scopes.intersection(&defined);
    }
    if params.state.as_ref().is_some_and(|s| s.len() > 1024) {
        return Err(back(OAuthError::invalid_request(
            "state is longer than 1024 characters",
        )));
    }
    Ok(Valid {
        client,
        redirect_uri,
        challenge,
        scopes,
        resource,
        protected,
        state: params.state.clone(),
    })
}

/// `GET /oauth/authorize`: login if needed, then the consent page.
pub async fn authorize(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<AuthorizeParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(params)) = query else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "the authorization request is malformed (a parameter is repeated or not text)",
        );
    };
    let valid = match validate(&state, &params).await {
        Ok(valid) => valid,
        Err(failure) => return failure.respond(&state.issuer),
    };
    match session::current(&state, &headers).await {
        Ok(Some((user_id, secret))) => {
            consent_page(&state, &params, &valid, &user_id, &secret).await
        }
        Ok(None) => login_page(&state, &params, None).await,
        Err(e) => error_page(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

/// The pre-login cookie whose derived token the login form must echo
/// (double submit), so no other site can sign a browser in.
const LOGIN_COOKIE: &str = "laissez_login";

/// The sign-in page: the organization's identity provider when one is
/// configured, and the password form unless the organization requires the provider.
pub(crate) async fn login_page(
    state: &AppState,
    params: &AuthorizeParams,
    problem: Option<&str>,
) -> Response {
    let federated_only = match state.store.settings().await {
        Ok(settings) => settings.require_federated_login,
        Err(e) => return error_page(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let upstream = state.federation.as_ref().map(|f| {
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params.pairs())
            .finish();
        views::Upstream {
            href: format!("/oauth/federate?{query}"),
            name: f.display_name().to_owned(),
        }
    });
    let mut page = views::SignIn {
        title: "Sign in",
        problem: problem.map(str::to_owned),
        federated_only,
        upstream,
        fields: params.hidden_fields(),
        csrf: String::new(),
    };
    if federated_only {
        return views::render(StatusCode::OK, &page);
    }
    let Ok(nonce) = laissez_token::random_base62(32) else {
        return error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "cannot generate a form token",
        );
    };
    page.csrf = session::csrf_for(&nonce);
    let mut response = views::render(StatusCode::OK, &page);
    let headers = response.headers_mut();
    if let Ok(cookie) = HeaderValue::from_str(&format!(
        "{LOGIN_COOKIE}={nonce}; Path=/oauth; HttpOnly; SameSite=Lax; Max-Age=1800"
    )) {
        headers.insert(header::SET_COOKIE, cookie);
    }
    response
}

/// The accounts a user can grant: those their policies reach (`/` when a
/// policy covers every account), sorted.
async fn accounts_of(state: &AppState, user_id: &str) -> Result<Vec<String>, laissez_store::Error> {
    let mut accounts: Vec<String> = state
        .store
        .policies(Some(user_id))
        .await?
        .iter()
        .map(|p| p.scope.account().unwrap_or("/").to_owned())
        .collect();
    accounts.sort();
    accounts.dedup();
    Ok(accounts)
}

/// What a person's policies let them grant: each scope is read as a
/// permission, held on the node that concerns the resource (the gate's
/// configured account; else one of the accounts granted; else any node).
pub(crate) struct Holdings {
    policies: PolicySet,
    person: PrincipalRef,
    /// `None`: no account is involved, a policy anywhere counts.
    nodes: Option<Vec<Scope>>,
}

impl Holdings {
    /// Loads `person`'s policies for a grant on `protected` in `accounts`.
    pub(crate) async fn of(
        state: &AppState,
        person: PrincipalRef,
        protected: Option<&laissez_oauth::protected::ProtectedResource>,
        accounts: &[String],
    ) -> Result<Holdings, laissez_store::Error> {
        let policies = state
            .store
            .policy_set(std::slice::from_ref(&person.id))
            .await?;
        let gate_account = protected
            .and_then(|p| p.gate.as_ref())
            .and_then(|g| g.account.as_deref());
        // A node that does not parse grants nothing (an empty list).
        let node = |a: &str| Scope::parse(a).ok();
        let nodes = match gate_account {
            Some(account) => Some(node(account).into_iter().collect()),
            None if !accounts.is_empty() => Some(accounts.iter().filter_map(|a| node(a)).collect()),
            None => None,
        };
        Ok(Holdings {
            policies,
            person,
            nodes,
        })
    }

    /// Whether the person holds `scope` (as a permission) where it matters.
    pub(crate) fn holds(&self, scope: &str) -> bool {
        let Ok(permission) = Permission::parse(scope) else {
            return false;
        };
        match &self.nodes {
            Some(nodes) => nodes.iter().any(|node| {
                self.policies
                    .evaluate(std::slice::from_ref(&self.person), None, &permission, node)
                    .is_allow()
            }),
            None => self
                .policies
                .permissions_of(&self.person.id)
                .contains(&permission),
        }
    }
}

/// The scopes a registered resource defines, when it defines any.
pub(crate) fn defined_scopes(
    protected: Option<&laissez_oauth::protected::ProtectedResource>,
) -> Option<OAuthScopes> {
    protected
        .filter(|p| !p.scopes.is_empty())
        .map(|p| OAuthScopes::from_names(p.scopes.keys().map(String::as_str)))
}

/// Who stands behind a client, and how far that is verified.
fn publisher(client: &Client) -> views::Publisher {
    let m = &client.metadata;
    let home = m.client_uri.as_deref().and_then(|u| Url::parse(u).ok());
    let link = |url: &Url| views::Link {
        href: url.as_str().to_owned(),
        host: url.host_str().unwrap_or_default().to_owned(),
    };
    match client.kind {
        ClientKind::Preregistered => views::Publisher::Organization(home.as_ref().map(link)),
        ClientKind::MetadataDocument => {
            let served_by = Url::parse(&client.client_id)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
                .unwrap_or_default();
            let same_site = home
                .as_ref()
                .and_then(|u| u.host_str())
                .is_some_and(|h| h == served_by || h.ends_with(&format!(".{served_by}")));
            views::Publisher::Domain {
                home: home.as_ref().filter(|_| !same_site).map(link),
                served_by,
            }
        }
        ClientKind::Dynamic => views::Publisher::SelfAsserted(home.as_ref().map(link)),
    }
}

async fn consent_page(
    state: &AppState,
    params: &AuthorizeParams,
    valid: &Valid,
    user_id: &str,
    secret: &str,
) -> Response {
    let user = match state.store.principal(user_id).await {
        Ok(Some(user)) if user.status == Status::Active => user,
        Ok(_) => return login_page(state, params, Some("Your account is not active.")).await,
        Err(e) => return error_page(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let m = &valid.client.metadata;
    let name = m
        .client_name
        .clone()
        .unwrap_or_else(|| valid.client.client_id.clone());
    let logo = m.logo_uri.clone();
    let publisher = publisher(&valid.client);
    let accounts = match accounts_of(state, &user.id).await {
        Ok(accounts) => accounts,
        Err(e) => return error_page(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    // Only what the person holds is offered; nothing left fails to the client.
    let offered =
        match Holdings::of(state, user.reference(), valid.protected.as_ref(), &accounts).await {
            Ok(holdings) => scopes_for_person(
                &valid.scopes,
                defined_scopes(valid.protected.as_ref()).as_ref(),
                |s| holdings.holds(s),
            ),
            Err(e) => return error_page(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
        };
    let offered = match offered {
        Ok(offered) => offered,
        Err(error) => {
            return Failure::Redirect(valid.redirect_uri.clone(), error, valid.state.clone())
                .respond(&state.issuer);
        }
    };
    let redirect = Url::parse(&valid.redirect_uri).ok();
    let page = views::Consent {
        title: "Allow access?",
        logo,
        name,
        user: user.name.as_str().to_owned(),
        publisher,
        redirect_host: redirect
            .as_ref()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default(),
        localhost: redirect.as_ref().is_some_and(redirect::is_loopback),
        resource: valid.resource.as_ref().map(|r| r.as_str().to_owned()),
        fields: params.hidden_fields(),
        csrf: session::csrf_for(secret),
        scopes: offered
            .iter()
            .map(|scope| views::ScopeChoice {
                value: scope.to_string(),
                words: valid
                    .protected
                    .as_ref()
                    .and_then(|p| p.describe(scope))
                    .map(str::to_owned),
            })
            .collect(),
        accounts: accounts
            .into_iter()
            .map(|a| views::AccountChoice {
                everything: a == "/",
                value: a,
            })
            .collect(),
    };
    views::render(StatusCode::OK, &page)
}

pub(crate) fn form_pairs(body: &Bytes) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// The sign-in page for a console page: after signing in, the person
/// returns to `back` if it is a console path.
pub(crate) async fn console_login(state: &AppState, back: &str) -> Response {
    let params = AuthorizeParams {
        return_to: crate::web::console::return_to::console_target(back),
        ..AuthorizeParams::default()
    };
    login_page(state, &params, None).await
}

/// `POST /oauth/login`: checks the password and starts a session.
pub async fn login(State(state): State<AppState>, request: axum::extract::Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, crate::problem::MAX_BODY_BYTES).await else {
        return error_page(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the sign-in form is too large",
        );
    };
    let headers = parts.headers;
    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0);
    let pairs = form_pairs(&body);
    let params = AuthorizeParams::from_pairs(&pairs);
    // Signing in for an application, or for the account pages.
    let for_app = params.client_id.is_some();
    if for_app && let Err(failure) = validate(&state, &params).await {
        return failure.respond(&state.issuer);
    }
    let form_ok = session::cookie(&headers, LOGIN_COOKIE)
        .is_some_and(|nonce| session::csrf_ok(nonce, get(&pairs, "csrf").unwrap_or_default()));
    if !form_ok {
        return login_page(
            &state,
            &params,
            Some("The sign-in form expired or did not come from this server; sign in again."),
        )
        .await;
    }
    let username = get(&pairs, "username").unwrap_or_default();
    let password_text = get(&pairs, "password").unwrap_or_default().to_owned();
    let address = peer.map(|p| p.ip());
    match state.store.settings().await {
        Ok(settings) if settings.require_federated_login => {
            let audit = AuditEvent {
                outcome: laissez_core::audit::Outcome::Denied,
                // The submitted name may be a mistyped password: never recorded.
                ..AuditEvent::success(&[], "session.login", "")
                .with_detail(json!({"method": "password", "reason": "the organization requires its identity provider"}))
            };
            let _ = state.store.append_audit(audit).await;
            return login_page(
                &state,
                &params,
                Some("Passwords are not accepted here: sign in through the organization's identity provider."),
            )
            .await;
        }
        Ok(_) => {}
        Err(e) => return error_page(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
    if let crate::web::throttle::Attempt::Wait(wait) = state.throttle.check(username, address) {
        let message = format!(
            "Too many failed sign-ins for this account from your network; try again in {} seconds.",
            wait.as_secs().max(1)
        );
        return login_page(&state, &params, Some(&message)).await;
    }
    let user = match state.store.principal(username).await {
        Ok(Some(user)) if user.kind == PrincipalKind::User && username == user.name.as_str() => {
            Some(user)
        }
        Ok(_) => None,
        Err(e) => return error_page(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let phc = match &user {
        Some(user) => state.store.password(&user.id).await.ok().flatten(),
        None => None,
    };
    // Argon2 is deliberately slow: keep it off the async workers.
    let ok = tokio::task::spawn_blocking(move || match &phc {
        Some(phc) => password::verify(&password_text, phc),
        None => {
            password::dummy_verify(&password_text);
            false
        }
    })
    .await
    .unwrap_or(false);
    let user = match user {
        Some(user) if ok && user.status == Status::Active => user,
        _ => {
            // Only a name that is an existing user's is recorded: what
            // was typed may be a password in the wrong field.
            let target = user.as_ref().map(|u| u.id.clone()).unwrap_or_default();
            let audit = AuditEvent {
                outcome: laissez_core::audit::Outcome::Unauthenticated,
                ..AuditEvent::success(&[], "session.login", target)
            }
            .from_ip(address.map(|ip| ip.to_string()));
            let _ = state.store.append_audit(audit).await;
            state.throttle.failed(username, address);
            return login_page(&state, &params, Some("Wrong user name or password.")).await;
        }
    };
    state.throttle.succeeded(username, address);
    let cookie = match session::start(&state, &user, json!({"method": "password"})).await {
        Ok(cookie) => cookie,
        Err(e) => return error_page(StatusCode::SERVICE_UNAVAILABLE, &e),
    };
    let back: Vec<(&str, String)> = params
        .pairs()
        .into_iter()
        .map(|(k, v)| (k, v.to_owned()))
        .collect();
    let mut response = if for_app {
        redirect_with(
            &format!("{}/oauth/authorize", state.issuer.trim_end_matches('/')),
            &back,
        )
    } else {
        // Back to the console page that asked, if it is one; else the account page.
        let target = params
            .return_to
            .as_deref()
            .and_then(crate::web::console::return_to::console_target)
            .unwrap_or_else(|| "/account".to_owned());
        Redirect::to(&target).into_response()
    };
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// `POST /oauth/consent`: the user's answer. Approving issues a code.
pub async fn consent(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let pairs = form_pairs(&body);
    let params = AuthorizeParams::from_pairs(&pairs);
    let valid = match validate(&state, &params).await {
        Ok(valid) => valid,
        Err(failure) => return failure.respond(&state.issuer),
    };
    let (user_id, secret) = match session::current(&state, &headers).await {
        Ok(Some(current)) => current,
        Ok(None) => {
            return login_page(&state, &params, Some("Your session ended; sign in again.")).await;
        }
        Err(e) => return error_page(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    if !session::csrf_ok(&secret, get(&pairs, "csrf").unwrap_or_default()) {
        return error_page(
            StatusCode::FORBIDDEN,
            "the form expired or did not come from this server; start again",
        );
    }
    let user = match state.store.principal(&user_id).await {
        Ok(Some(user)) if user.status == Status::Active => user,
        _ => return error_page(StatusCode::FORBIDDEN, "your account is not active"),
    };
    let chain = [user.reference()];
    if get(&pairs, "decision") != Some("approve") {
        let mut audit =
            AuditEvent::success(&chain, "oauth.consent", valid.client.client_id.clone());
        audit.outcome = laissez_core::audit::Outcome::Denied;
        let _ = state.store.append_audit(audit).await;
        return Failure::Redirect(
            valid.redirect_uri,
            OAuthError::new(ErrorCode::AccessDenied, "the user denied the request"),
            valid.state,
        )
        .respond(&state.issuer);
    }
    // The user may narrow the scopes, never widen them.
    let chosen = OAuthScopes::from_names(
        pairs
            .iter()
            .filter(|(k, _)| k == "grant_scope")
            .map(|(_, v)| v.as_str()),
    );
    // And the accounts: only among those their policies reach.
    let offered = match accounts_of(&state, &user.id).await {
        Ok(accounts) => accounts,
        Err(e) => return error_page(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let accounts: Vec<String> = offered
        .into_iter()
        .filter(|a| pairs.iter().any(|(k, v)| k == "grant_account" && v == a))
        .collect();
    // And never beyond what the person's own policies grant where it matters.
    let holdings = match Holdings::of(
        &state,
        user.reference(),
        valid.protected.as_ref(),
        &accounts,
    )
    .await
    {
        Ok(holdings) => holdings,
        Err(e) => return error_page(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let held = match scopes_for_person(
        &valid.scopes,
        defined_scopes(valid.protected.as_ref()).as_ref(),
        |s| holdings.holds(s),
    ) {
        Ok(held) => held,
        Err(error) => {
            return Failure::Redirect(valid.redirect_uri, error, valid.state)
                .respond(&state.issuer);
        }
    };
    let scopes = chosen.intersection(&held);
    let Ok(code) = laissez_token::random_base62(43) else {
        return error_page(StatusCode::SERVICE_UNAVAILABLE, "cannot generate a code");
    };
    let grant = AuthorizationCode {
        client_id: valid.client.client_id.clone(),
        user_id: user.id.clone(),
        redirect_uri: valid.redirect_uri.clone(),
        code_challenge: valid.challenge.as_str().to_owned(),
        scope: scopes.to_string(),
        resource: valid.resource.as_ref().map(|r| r.to_string()),
        accounts,
        expires_at: now() + CODE_TTL,
    };
    let audit = AuditEvent::success(&chain, "oauth.consent", valid.client.client_id.clone())
        .with_detail(json!({"scope": grant.scope, "resource": grant.resource, "accounts": grant.accounts, "redirect_uri": grant.redirect_uri}));
    if let Err(e) = state
        .store
        .create_code(hash_secret(&code), grant, audit)
        .await
    {
        return error_page(StatusCode::SERVICE_UNAVAILABLE, &e.to_string());
    }
    let mut back = vec![("code", code), ("iss", state.issuer.clone())];
    if let Some(s) = valid.state {
        back.push(("state", s));
    }
    redirect_with(&valid.redirect_uri, &back)
}
