//! Token introspection (RFC 7662) for access tokens and revocation (RFC 7009)
//! for access tokens and refresh tokens (a refresh token takes its family).
//!
//! Introspection answers only resource servers (a gate's credential, one
//! allowed `laissez.audit.write`, sent as a Bearer token) and, about its own
//! tokens, the confidential client they were issued to; any other client
//! learns `active: false`. It tells the truth a gate would act on: a token
//! is active only if its signature, issuer and expiry hold, it was not
//! revoked, its grant was not disconnected, its client not deleted, and the
//! principal it speaks for (and that principal's owners) is active.
//! Revocation accepts any client, but a client may only revoke tokens issued to it.

use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use jsonwebtoken::Validation;
use laissez_core::audit::AuditEvent;
use laissez_oauth::access_token::AccessTokenClaims;
use laissez_oauth::{ErrorCode, OAuthError};
use serde::Deserialize;
use serde_json::json;

use laissez_core::admin::AUDIT_WRITE;
use laissez_core::{Scope, Status};

use super::client_auth::{ClientForm, ConnectionCertificate, authenticate};
use super::response::{OAuthFailure, OAuthForm, no_store};
use crate::AppState;
use crate::auth::Authenticated;

/// Introspection and revocation parameters.
#[derive(Debug, Deserialize)]
pub struct TokenParams {
    token: Option<String>,
    #[serde(rename = "token_type_hint")]
    _hint: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    client_assertion_type: Option<String>,
    client_assertion: Option<String>,
}

impl TokenParams {
    /// The parameters that authenticate the client.
    fn client_form<'a>(
        &'a self,
        certificate: Option<&'a laissez_tls::ClientCertificate>,
    ) -> ClientForm<'a> {
        ClientForm {
            client_id: self.client_id.as_deref(),
            client_secret: self.client_secret.as_deref(),
            client_assertion_type: self.client_assertion_type.as_deref(),
            client_assertion: self.client_assertion.as_deref(),
            certificate: ConnectionCertificate::of(certificate),
        }
    }
}

/// Verifies an access token's signature, issuer and expiry (any audience).
pub fn decode(state: &AppState, token: &str) -> Option<AccessTokenClaims> {
    let mut validation: Validation = super::keys::validation(&state.issuer, &[]);
    validation.validate_aud = false;
    state
        .keys
        .verify::<AccessTokenClaims>(token, &validation)
        .ok()
}

/// Who asks.
enum Introspector {
    /// A resource server (a gate's credential): told about any token.
    ResourceServer,
    /// A confidential client: told only about its own tokens.
    Client(String),
}

/// RFC 7662: whether a token is active, and what it carries.
pub async fn introspect(State(state): State<AppState>, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    let bearer = parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer "));
    let gate = if bearer {
        let caller = match Authenticated::from_request_parts(&mut parts, &state).await {
            Ok(caller) => caller,
            Err(e) => return e.into_response(),
        };
        if let Err(e) = caller
            .authorize(&state, AUDIT_WRITE, &Scope::root(), None)
            .await
        {
            return e.into_response();
        }
        true
    } else {
        false
    };
    let headers = parts.headers.clone();
    let certificate = parts
        .extensions
        .get::<laissez_tls::ClientCertificate>()
        .cloned();
    let request = Request::from_parts(parts, body);
    let params = match OAuthForm::<TokenParams>::from_request(request, &state).await {
        Ok(OAuthForm(params)) => params,
        Err(failure) => return failure.into_response(),
    };
    let asker = if gate {
        Ok(Introspector::ResourceServer)
    } else {
        client_introspector(&state, &headers, &params, certificate.as_ref()).await
    };
    let answer = match asker {
        Ok(asker) => answer(&state, asker, params.token).await,
        Err(failure) => Err(failure),
    };
    answer.unwrap_or_else(IntoResponse::into_response)
}

async fn client_introspector(
    state: &AppState,
    headers: &HeaderMap,
    params: &TokenParams,
    certificate: Option<&laissez_tls::ClientCertificate>,
) -> Result<Introspector, OAuthFailure> {
    let client = authenticate(
        state,
        headers,
        params.client_form(certificate),
        "/oauth/introspect",
    )
    .await?;
    if !client.metadata.is_confidential() {
        return Err(OAuthError::new(
            ErrorCode::InvalidClient,
            "introspection needs a confidential client or a resource server's credential",
        )
        .into());
    }
    Ok(Introspector::Client(client.client_id))
}

/// Whether the token is live by every check a gate makes, with the server's
/// own, current view of the store.
async fn live(state: &AppState, claims: &AccessTokenClaims) -> Result<bool, OAuthFailure> {
    if !laissez_gate_subject(&claims.sub)
        || state.store.is_access_token_revoked(&claims.jti).await?
        || state
            .store
            .disconnected_since(&claims.sub, &claims.client_id, claims.issued_ms())
            .await?
    {
        return Ok(false);
    }
    // A task's app token dies with its task and with every task above it.
    let now = crate::now();
    for task in claims.tasks() {
        if !state.store.task_live(task, now).await? {
            return Ok(false);
        }
    }
    let chain = state.store.chain(&claims.sub).await?;
    Ok(chain.last().is_some_and(|p| p.id == claims.sub)
        && chain.iter().all(|p| p.status == Status::Active))
}

/// Subjects the server mints tokens for: principal ids (the gate refuses others too).
fn laissez_gate_subject(sub: &str) -> bool {
    laissez_gate::verify::subject_is_principal(sub)
}

async fn answer(
    state: &AppState,
    asker: Introspector,
    token: Option<String>,
) -> Result<Response, OAuthFailure> {
    let token = token.ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let inactive = || Ok(no_store(StatusCode::OK, &json!({"active": false})));
    let Some(claims) = decode(state, &token) else {
        return inactive();
    };
    if let Introspector::Client(client_id) = &asker
        && *client_id != claims.client_id
    {
        return inactive();
    }
    if !live(state, &claims).await? {
        return inactive();
    }
    let mut body = json!({
            "active": true,
            "iss": claims.iss,
            "sub": claims.sub,
            "aud": claims.aud,
            "client_id": claims.client_id,
            "scope": claims.scope,
            "exp": claims.exp,
            "iat": claims.iat,
            "jti": claims.jti,
            "token_type": if claims.cnf.as_ref().is_some_and(|c| c.jkt.is_some()) { "DPoP" } else { "Bearer" },
            "act": claims.act,
    });
    // RFC 9449 §6.2 / RFC 8705 §3.2: a bound token's confirmation, so the
    // resource server can check the sender.
    if let Some(cnf) = &claims.cnf {
        body["cnf"] = json!(cnf);
    }
    if let Some(task) = &claims.task {
        body["task"] = json!(task);
        body["task_chain"] = json!(claims.task_chain);
    }
    if !claims.accounts.is_empty() {
        body["accounts"] = json!(claims.accounts);
    }
    Ok(no_store(StatusCode::OK, &body))
}

/// RFC 7009: revokes a token. Answers 200 for unknown or invalid tokens too.
pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    certificate: Option<axum::Extension<laissez_tls::ClientCertificate>>,
    OAuthForm(params): OAuthForm<TokenParams>,
) -> Result<Response, OAuthFailure> {
    let certificate = certificate.as_ref().map(|c| &c.0);
    let client = authenticate(
        &state,
        &headers,
        params.client_form(certificate),
        "/oauth/revoke",
    )
    .await?;
    let token = params
        .token
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    if laissez_token::Token::parse(&token).is_ok_and(|t| t.kind() == laissez_token::Kind::Refresh) {
        let audit = AuditEvent::success(&[], "oauth.refresh.revoke", client.client_id.clone());
        state
            .store
            .revoke_refresh(
                laissez_core::credential::hash_secret(&token),
                &client.client_id,
                audit,
            )
            .await?;
        return Ok(no_store(StatusCode::OK, &json!({})));
    }
    if laissez_token::Token::parse(&token).is_ok_and(|t| t.kind() == laissez_token::Kind::Task) {
        let hash = laissez_core::credential::hash_secret(&token);
        if let Some((task, _)) = state.store.task_by_token(hash, crate::now()).await? {
            end_task_of_client(&state, &client, &task).await?;
        }
        return Ok(no_store(StatusCode::OK, &json!({})));
    }
    if let Some(claims) = decode(&state, &token) {
        if let Some(task_id) = claims.task.as_deref()
            && let Some(task) = state.store.task(task_id).await?
        {
            end_task_of_client(&state, &client, &task).await?;
            return Ok(no_store(StatusCode::OK, &json!({})));
        }
        if claims.client_id != client.client_id {
            return Err(OAuthError::new(
                ErrorCode::InvalidClient,
                "the token was not issued to this client",
            )
            .into());
        }
        let audit = AuditEvent::success(&[], "oauth.token.revoke", claims.jti.clone())
            .with_detail(json!({"client_id": client.client_id, "sub": claims.sub}));
        let store = state.store.clone();
        let (jti, exp) = (claims.jti.clone(), claims.exp);
        let commit = async move { store.revoke_access_token(&jti, exp, audit).await };
        let added = super::feed::Added {
            ended_tasks: Vec::new(),
            revoked: vec![claims.jti],
        };
        state.feed.added_while(added, commit).await?;
    }
    Ok(no_store(StatusCode::OK, &json!({})))
}

/// RFC 7009 for a task token (either form): the task and everything derived
/// from it end, when the task was issued through this client.
async fn end_task_of_client(
    state: &AppState,
    client: &laissez_oauth::client::Client,
    task: &laissez_store::task::TaskRecord,
) -> Result<(), OAuthFailure> {
    if task.client_id.as_deref() != Some(client.client_id.as_str()) {
        return Err(OAuthError::new(
            ErrorCode::InvalidClient,
            "the task was not issued through this client",
        )
        .into());
    }
    let chain = crate::tasks::issue::task_ref(&task.id);
    let audit = AuditEvent::success(&[chain], "task.revoke", task.id.clone()).with_detail(
        json!({"task": task.id, "client_id": client.client_id, "ancestors": task.ancestors}),
    );
    let revoked = laissez_store::task::TaskState::Revoked;
    crate::tasks::api::end_task(state, task, revoked, audit).await?;
    Ok(())
}
