//! Sign-in through the organization's upstream OpenID Connect provider: one
//! identity provider, configured once at `serve`, used by every account.
//!
//! Laissez is an ordinary OpenID Connect relying party here: authorization
//! code with PKCE S256, a `state` bound to the browser by a cookie (so nobody
//! can sign a victim in with the attacker's code), a `nonce` checked in the ID
//! token, `iss` checked on the response when the provider sends it (RFC 9207),
//! and the ID token's signature, issuer, audience, `azp` and expiry verified
//! against the provider's published keys. A provider identity (issuer and
//! subject) is linked to one local user on first sign-in, by a claim the
//! operator names (`preferred_username` unless configured); with
//! `create_users` a missing user is created.
//!
//! Whether people may also use local passwords is an organization setting
//! (`require_federated_login`), which no account can weaken.

use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use laissez_core::audit::AuditEvent;
use laissez_core::credential::hash_secret;
use laissez_core::{Name, Principal, PrincipalKind, Status};
use laissez_oauth::pkce;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;
use tokio::sync::Mutex;
use url::Url;

use crate::oauth::authorize::{AuthorizeParams, error_page};
use crate::web::console::return_to::console_target;
use crate::web::session;
use crate::{AppState, now};

/// The cookie that binds a pending upstream sign-in to the browser that started it.
const STATE_COOKIE: &str = "laissez_federate";
/// How long a person has to finish signing in upstream, seconds.
const PENDING_TTL: i64 = 600;
/// Keys are fetched again on an unknown `kid` at most this often.
const JWKS_REFETCH: Duration = Duration::from_secs(10);
/// Provider metadata is fetched again after this long.
const METADATA_TTL: Duration = Duration::from_secs(3600);
/// Algorithms accepted for ID tokens (never `none`, never HMAC).
const ALGORITHMS: [Algorithm; 7] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// The organization's upstream provider, as the operator configured it.
#[derive(Clone, Debug)]
pub struct UpstreamConfig {
    /// The provider's issuer URL (its discovery document lives under it).
    pub issuer: String,
    /// Laissez's client id at the provider.
    pub client_id: String,
    /// Laissez's client secret at the provider (kept in memory only).
    pub client_secret: String,
    /// The name on the sign-in button ("Acme SSO").
    pub display_name: String,
    /// The ID token claim that names the local user on first sign-in.
    pub username_claim: String,
    /// Create a local user when none has that name.
    pub create_users: bool,
}

/// How an upstream issuer is reached, which decides whether it may be used:
/// ID tokens and Laissez's client secret must not cross a network in clear.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IssuerTransport {
    /// `https://`.
    Https,
    /// `http://` to this machine (a provider for development or tests).
    LoopbackHttp,
    /// `http://` to another host: refused.
    PlainHttp,
    /// Not an http(s) URL, or one with a query or fragment: refused.
    Invalid,
}

impl IssuerTransport {
    /// Classifies an issuer URL.
    pub fn of(issuer: &str) -> IssuerTransport {
        let Ok(url) = url::Url::parse(issuer) else {
            return IssuerTransport::Invalid;
        };
        if url.query().is_some() || url.fragment().is_some() {
            return IssuerTransport::Invalid;
        }
        let loopback = match url.host() {
            Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => return IssuerTransport::Invalid,
        };
        match (url.scheme(), loopback) {
            ("https", _) => IssuerTransport::Https,
            ("http", true) => IssuerTransport::LoopbackHttp,
            ("http", false) => IssuerTransport::PlainHttp,
            _ => IssuerTransport::Invalid,
        }
    }
}

/// Why signing in upstream failed (shown to the person, audited).
#[derive(Debug, thiserror::Error)]
pub enum FederationError {
    /// The provider could not be reached or answered nonsense.
    #[error("the identity provider cannot be used right now: {0}")]
    Provider(String),
    /// The provider's answer did not prove who signed in.
    #[error("the identity provider's answer was refused: {0}")]
    Rejected(String),
    /// Nobody here matches the identity.
    #[error("{0}")]
    NoUser(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] laissez_store::Error),
}

#[derive(Clone, Debug, Deserialize)]
struct ProviderMetadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    #[serde(default)]
    userinfo_endpoint: Option<String>,
}

struct Discovered {
    metadata: ProviderMetadata,
    keys: JwkSet,
    metadata_at: Instant,
    keys_at: Instant,
}

/// The upstream provider and what was learnt from it.
pub struct Federation {
    config: UpstreamConfig,
    http: reqwest::Client,
    discovered: Mutex<Option<Discovered>>,
}

/// A sign-in sent upstream, stored by the hash of its `state`.
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    verifier: String,
    nonce: String,
    /// The authorization request to resume, empty for the account pages.
    resume: Vec<(String, String)>,
    /// The console page to return to when no authorization request is
    /// resumed, already validated by
    /// [`console_target`](crate::web::console::return_to::console_target)
    /// (and validated again before use).
    #[serde(default)]
    return_to: Option<String>,
}

impl Federation {
    /// A provider to be discovered on first use (so `serve` starts while it is down).
    pub fn new(config: UpstreamConfig) -> Federation {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Federation {
            config,
            http,
            discovered: Mutex::new(None),
        }
    }

    /// Fetches and checks the provider's discovery document and keys now.
    /// `laissez serve` calls it at start, so a provider that is unreachable
    /// or names another issuer is reported then, not at the first sign-in.
    pub async fn discover(&self) -> Result<(), FederationError> {
        self.metadata().await.map(|_| ())
    }

    /// The name on the sign-in button.
    pub fn display_name(&self) -> &str {
        &self.config.display_name
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
    ) -> Result<T, FederationError> {
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| FederationError::Provider(format!("{url}: {e}")))?;
        if !response.status().is_success() {
            return Err(FederationError::Provider(format!(
                "{url} answered {}",
                response.status()
            )));
        }
        response
            .json()
            .await
            .map_err(|e| FederationError::Provider(format!("{url}: {e}")))
    }

    /// The provider's metadata, discovered and checked (RFC 8414 §3.3 as
    /// OpenID Connect Discovery §4.3 requires: its issuer is the configured one).
    async fn metadata(&self) -> Result<ProviderMetadata, FederationError> {
        let mut discovered = self.discovered.lock().await;
        if let Some(d) = discovered.as_ref()
            && d.metadata_at.elapsed() < METADATA_TTL
        {
            return Ok(d.metadata.clone());
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.config.issuer.trim_end_matches('/')
        );
        let metadata: ProviderMetadata = self.get_json(&url).await?;
        if metadata.issuer != self.config.issuer {
            return Err(FederationError::Provider(format!(
                "its discovery document names issuer '{}', not '{}'",
                metadata.issuer, self.config.issuer
            )));
        }
        let keys: JwkSet = self.get_json(&metadata.jwks_uri).await?;
        let at = Instant::now();
        *discovered = Some(Discovered {
            metadata: metadata.clone(),
            keys,
            metadata_at: at,
            keys_at: at,
        });
        Ok(metadata)
    }

    /// The verification key for `kid`, fetching the key set again when the
    /// provider has rotated to a key not seen yet.
    async fn key(&self, kid: Option<&str>) -> Result<jsonwebtoken::jwk::Jwk, FederationError> {
        let metadata = self.metadata().await?;
        let mut discovered = self.discovered.lock().await;
        let find = |set: &JwkSet| match kid {
            Some(kid) => set.find(kid).cloned(),
            None if set.keys.len() == 1 => set.keys.first().cloned(),
            None => None,
        };
        if let Some(d) = discovered.as_ref()
            && let Some(key) = find(&d.keys)
        {
            return Ok(key);
        }
        let stale = discovered
            .as_ref()
            .is_none_or(|d| d.keys_at.elapsed() >= JWKS_REFETCH);
        if stale {
            let keys: JwkSet = self.get_json(&metadata.jwks_uri).await?;
            let found = find(&keys);
            if let Some(d) = discovered.as_mut() {
                d.keys = keys;
                d.keys_at = Instant::now();
            }
            if let Some(key) = found {
                return Ok(key);
            }
        }
        Err(FederationError::Rejected(format!(
            "the ID token is signed with key '{}', which the provider does not publish",
            kid.unwrap_or("(none)")
        )))
    }

    /// Exchanges the code and verifies the ID token; returns its claims.
    async fn redeem(
        &self,
        code: &str,
        pending: &Pending,
        redirect_uri: &str,
    ) -> Result<Value, FederationError> {
        let metadata = self.metadata().await?;
        let encode =
            |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let response = self
            .http
            .post(&metadata.token_endpoint)
            .basic_auth(
                encode(&self.config.client_id),
                Some(encode(&self.config.client_secret)),
            )
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", redirect_uri),
                ("code_verifier", &pending.verifier),
            ])
            .send()
            .await
            .map_err(|e| FederationError::Provider(format!("token endpoint: {e}")))?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .map_err(|e| FederationError::Provider(format!("token endpoint: {e}")))?;
        if !status.is_success() {
            return Err(FederationError::Rejected(format!(
                "the token endpoint answered {status}: {}",
                body["error_description"]
                    .as_str()
                    .or(body["error"].as_str())
                    .unwrap_or("no reason given")
            )));
        }
        let id_token = body["id_token"]
            .as_str()
            .ok_or_else(|| FederationError::Rejected("no ID token in the token response".into()))?;
        let header = jsonwebtoken::decode_header(id_token)
            .map_err(|e| FederationError::Rejected(format!("the ID token is malformed: {e}")))?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(FederationError::Rejected(format!(
                "the ID token is signed with {:?}, which is not accepted",
                header.alg
            )));
        }
        let jwk = self.key(header.kid.as_deref()).await?;
        let key = DecodingKey::from_jwk(&jwk).map_err(|e| {
            FederationError::Rejected(format!("the provider's key is unusable: {e}"))
        })?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&metadata.issuer]);
        validation.set_audience(&[&self.config.client_id]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = 60;
        let mut claims = jsonwebtoken::decode::<Value>(id_token, &key, &validation)
            .map_err(|e| FederationError::Rejected(format!("the ID token is not valid: {e}")))?
            .claims;
        let nonce_ok = claims["nonce"]
            .as_str()
            .is_some_and(|n| bool::from(n.as_bytes().ct_eq(pending.nonce.as_bytes())));
        if !nonce_ok {
            return Err(FederationError::Rejected(
                "the ID token's nonce is not the one this sign-in sent".into(),
            ));
        }
        // Several audiences: the token must have been issued to us (OIDC Core §3.1.3.7).
        if claims["aud"].as_array().is_some_and(|a| a.len() > 1)
            && claims["azp"].as_str() != Some(&self.config.client_id)
        {
            return Err(FederationError::Rejected(
                "the ID token has several audiences and Laissez is not its authorized party".into(),
            ));
        }
        // Providers that keep profile claims out of ID tokens serve them at
        // userinfo (OIDC Core §5.3), for the same subject.
        let claim = self.config.username_claim.as_str();
        if claims.get(claim).is_none()
            && let (Some(endpoint), Some(access_token)) =
                (&metadata.userinfo_endpoint, body["access_token"].as_str())
        {
            let info: Value = self
                .http
                .get(endpoint)
                .bearer_auth(access_token)
                .send()
                .await
                .map_err(|e| FederationError::Provider(format!("userinfo: {e}")))?
                .json()
                .await
                .map_err(|e| FederationError::Provider(format!("userinfo: {e}")))?;
            if info["sub"] != claims["sub"] {
                return Err(FederationError::Rejected(
                    "userinfo is about a different subject than the ID token".into(),
                ));
            }
            if let (Some(claims), Some(info)) = (claims.as_object_mut(), info.as_object()) {
                for (k, v) in info {
                    claims.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
        }
        Ok(claims)
    }

    /// The local user an ID token is about: linked before, else matched by
    /// name (and linked), else created when the operator allows it.
    async fn user(&self, state: &AppState, claims: &Value) -> Result<Principal, FederationError> {
        let issuer = &self.config.issuer;
        let subject = claims["sub"]
            .as_str()
            .filter(|s| !s.is_empty() && s.len() <= 255)
            .ok_or_else(|| FederationError::Rejected("the ID token has no usable sub".into()))?;
        if let Some(user_id) = state.store.federated_user(issuer, subject).await? {
            return state
                .store
                .principal(&user_id)
                .await?
                .ok_or_else(|| FederationError::NoUser("the linked user no longer exists".into()));
        }
        let claim = &self.config.username_claim;
        let username = claims[claim.as_str()].as_str().ok_or_else(|| {
            FederationError::NoUser(format!(
                "the identity provider did not send the '{claim}' claim that names your Laissez user"
            ))
        })?;
        let name = Name::parse(username, "user name").map_err(|e| {
            FederationError::NoUser(format!("'{username}' cannot be a Laissez user name: {e}"))
        })?;
        let user = match state.store.principal(name.as_str()).await? {
            Some(user) if user.kind == PrincipalKind::User && user.name == name => user,
            Some(_) => {
                return Err(FederationError::NoUser(format!(
                    "'{name}' is not a person in Laissez"
                )));
            }
            None if self.config.create_users => {
                let user = Principal {
                    id: crate::new_id("usr")
                        .map_err(|e| FederationError::Provider(e.to_string()))?,
                    kind: PrincipalKind::User,
                    name: name.clone(),
                    owner_id: None,
                    parent_id: None,
                    status: Status::Active,
                    description: format!("signed in through {issuer}"),
                    created_at: now(),
                };
                let audit =
                    AuditEvent::success(&[user.reference()], "principal.create", user.id.clone())
                        .with_detail(json!({"kind": "user", "name": name.as_str(), "via": issuer}));
                state.store.create_principal(user.clone(), audit).await?;
                user
            }
            None => {
                return Err(FederationError::NoUser(format!(
                    "no Laissez user is named '{name}'; ask an administrator to create it"
                )));
            }
        };
        let audit =
            AuditEvent::success(&[user.reference()], "user.link_federated", user.id.clone())
                .with_detail(json!({"issuer": issuer, "subject": subject}));
        state
            .store
            .link_federated(issuer, subject, &user.id, audit)
            .await?;
        Ok(user)
    }
}

fn callback_uri(state: &AppState) -> String {
    format!(
        "{}/oauth/federate/callback",
        state.issuer.trim_end_matches('/')
    )
}

/// `GET /oauth/federate`: sends the browser to the upstream provider,
/// remembering the authorization request (its query) to resume afterwards,
/// or the console page (`return_to`, only if it is one) to return to.
pub async fn start(
    State(state): State<AppState>,
    Query(resume): Query<Vec<(String, String)>>,
) -> Response {
    let Some(federation) = state.federation.clone() else {
        return error_page(
            StatusCode::NOT_FOUND,
            "no upstream identity provider is configured",
        );
    };
    let metadata = match federation.metadata().await {
        Ok(metadata) => metadata,
        Err(e) => return error_page(StatusCode::BAD_GATEWAY, &e.to_string()),
    };
    let (Ok(flow_state), Ok(nonce), Ok(verifier)) = (
        laissez_token::random_base62(43),
        laissez_token::random_base62(43),
        laissez_token::random_base62(64),
    ) else {
        return error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "cannot generate a sign-in state",
        );
    };
    let return_to = resume
        .iter()
        .find(|(k, _)| k == "return_to")
        .and_then(|(_, v)| console_target(v));
    let resume: Vec<(String, String)> = resume
        .into_iter()
        .filter(|(k, _)| AuthorizeParams::KEYS.contains(&k.as_str()))
        .take(16)
        .collect();
    let pending = Pending {
        verifier: verifier.clone(),
        nonce: nonce.clone(),
        resume,
        return_to,
    };
    let data = serde_json::to_string(&pending).unwrap_or_default();
    if let Err(e) = state
        .store
        .create_login_state(hash_secret(&flow_state), data, now() + PENDING_TTL)
        .await
    {
        return error_page(StatusCode::SERVICE_UNAVAILABLE, &e.to_string());
    }
    let Ok(mut url) = Url::parse(&metadata.authorization_endpoint) else {
        return error_page(
            StatusCode::BAD_GATEWAY,
            "the provider's authorization endpoint is not a URL",
        );
    };
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &federation.config.client_id)
        .append_pair("redirect_uri", &callback_uri(&state))
        .append_pair("scope", "openid profile email")
        .append_pair("state", &flow_state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &pkce::challenge_for(&verifier))
        .append_pair("code_challenge_method", "S256");
    let mut response = Redirect::to(url.as_str()).into_response();
    let secure = if state.issuer.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    if let Ok(cookie) = HeaderValue::from_str(&format!(
        "{STATE_COOKIE}={flow_state}; Path=/oauth/federate; HttpOnly; SameSite=Lax; Max-Age={PENDING_TTL}{secure}"
    )) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The provider's answer.
#[derive(Debug, Default, Deserialize)]
pub struct CallbackParams {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /oauth/federate/callback`: verifies the provider's answer, signs the
/// person in and resumes the authorization request (or returns to the
/// console page kept with the sign-in's state; nothing in the answer names
/// where to go).
pub async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<CallbackParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Some(federation) = state.federation.clone() else {
        return error_page(
            StatusCode::NOT_FOUND,
            "no upstream identity provider is configured",
        );
    };
    let Ok(Query(params)) = query else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "the identity provider's answer is malformed",
        );
    };
    let flow_state = params.state.as_deref().unwrap_or_default();
    let same_browser = session::cookie(&headers, STATE_COOKIE).is_some_and(|c| {
        !flow_state.is_empty() && bool::from(c.as_bytes().ct_eq(flow_state.as_bytes()))
    });
    if !same_browser {
        return error_page(
            StatusCode::BAD_REQUEST,
            "this sign-in was not started in this browser; start again from the sign-in page",
        );
    }
    let pending = match state.store.take_login_state(hash_secret(flow_state)).await {
        Ok(Some(data)) => match serde_json::from_str::<Pending>(&data) {
            Ok(pending) => pending,
            Err(_) => return error_page(StatusCode::BAD_REQUEST, "this sign-in cannot be resumed"),
        },
        Ok(None) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "this sign-in expired or was already used; start again",
            );
        }
        Err(e) => return error_page(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let outcome = finish(&state, &federation, &params, &pending).await;
    let user = match outcome {
        Ok(user) => user,
        Err(e) => {
            let audit = AuditEvent {
                outcome: laissez_core::audit::Outcome::Unauthenticated,
                ..AuditEvent::success(&[], "session.login", federation.config.issuer.clone())
                    .with_detail(json!({"method": "oidc", "reason": e.to_string()}))
            };
            let _ = state.store.append_audit(audit).await;
            let status = match e {
                FederationError::Provider(_) => StatusCode::BAD_GATEWAY,
                FederationError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::FORBIDDEN,
            };
            return error_page(status, &e.to_string());
        }
    };
    let detail = json!({"method": "oidc", "issuer": federation.config.issuer});
    let cookie = match session::start(&state, &user, detail).await {
        Ok(cookie) => cookie,
        Err(e) => return error_page(StatusCode::SERVICE_UNAVAILABLE, &e),
    };
    let target = if pending.resume.is_empty() {
        // Back to the console page the sign-in started from, if it is one.
        pending
            .return_to
            .as_deref()
            .and_then(console_target)
            .unwrap_or_else(|| "/account".to_owned())
    } else {
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&pending.resume)
            .finish();
        format!("/oauth/authorize?{query}")
    };
    let mut response = Redirect::to(&target).into_response();
    let h = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        h.append(header::SET_COOKIE, value);
    }
    h.append(
        header::SET_COOKIE,
        HeaderValue::from_static("laissez_federate=; Path=/oauth/federate; HttpOnly; Max-Age=0"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn finish(
    state: &AppState,
    federation: &Federation,
    params: &CallbackParams,
    pending: &Pending,
) -> Result<Principal, FederationError> {
    if let Some(error) = &params.error {
        return Err(FederationError::Rejected(format!(
            "{error}: {}",
            params
                .error_description
                .as_deref()
                .unwrap_or("no reason given")
        )));
    }
    let metadata = federation.metadata().await?;
    // RFC 9207: an answer naming another issuer is a mix-up attack.
    if params
        .iss
        .as_deref()
        .is_some_and(|iss| iss != metadata.issuer)
    {
        return Err(FederationError::Rejected(
            "the answer names a different issuer than the provider this sign-in went to".into(),
        ));
    }
    let code = params
        .code
        .as_deref()
        .filter(|c| !c.is_empty() && c.len() <= 4096)
        .ok_or_else(|| FederationError::Rejected("the answer has no code".into()))?;
    let claims = federation
        .redeem(code, pending, &callback_uri(state))
        .await?;
    let user = federation.user(state, &claims).await?;
    if user.status != Status::Active {
        return Err(FederationError::NoUser(format!(
            "the Laissez user '{}' is not active",
            user.name
        )));
    }
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::IssuerTransport::{self, *};

    #[test]
    fn issuers_must_be_https_except_on_loopback() {
        let table = [
            ("https://sso.acme.example", Https),
            ("https://sso.acme.example/realms/acme", Https),
            ("http://127.0.0.1:9000", LoopbackHttp),
            ("http://localhost:9000", LoopbackHttp),
            ("http://[::1]:9000", LoopbackHttp),
            ("http://sso.acme.example", PlainHttp),
            ("http://10.0.0.5", PlainHttp),
            ("http://127.0.0.1.nip.io", PlainHttp),
            ("https://sso.acme.example?x=1", Invalid),
            ("ftp://sso.acme.example", Invalid),
            ("sso.acme.example", Invalid),
        ];
        for (issuer, expected) in table {
            assert_eq!(IssuerTransport::of(issuer), expected, "{issuer}");
        }
    }
}
