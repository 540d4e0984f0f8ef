//! Token exchange (RFC 8693) for task credentials, and polling a task that
//! waits for approval (the RFC 8628 device-code grant, the approval id as
//! `device_code`).
//!
//! Only a client an administrator registered, backed by an agent or service
//! principal, exchanges: it authenticates as itself, sends a DPoP proof of
//! the key the task binds to (or, without one, connects with the TLS client
//! certificate it binds to, RFC 8705), and names the permissions (`scope`), the apps
//! (`resource`) or scope nodes (`audience`), and optionally the user it acts
//! for (`subject_token`: that user's access token, issued to this client) or
//! the task it narrows (`subject_token`: a task's `lztt_` token or JWT, of
//! the same agent). What it gets is bounded as every task is
//! ([`crate::tasks::issue`]); the answer's `access_token` is the task's JWT
//! for the app (or its `lztt_` token with `requested_token_type`
//! `urn:laissez:params:oauth:token-type:task_token`).

use std::collections::BTreeSet;

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use laissez_core::binding::{BindingRefusal, ChoiceError, KeyBinding};
use laissez_core::task::TaskResource;
use laissez_core::{PrincipalKind, Status};
use laissez_oauth::client::Client;
use laissez_oauth::{ErrorCode, OAuthError, OAuthScopes};
use laissez_store::task::{Poll, TaskRecord};
use serde_json::{Value, json};

use super::response::{OAuthFailure, no_store};
use super::token::TokenRequest;
use crate::tasks::issue::{self, IssuedTask, Outcome, Requester, Subject, TaskAsk, TaskError};
use crate::{AppState, now};

/// The token exchange grant type.
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// The device-code grant type, for polling a pending task.
pub const DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// An access token (RFC 8693 §3).
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// A task's `lztt_` token.
pub const TASK_TOKEN_TYPE: &str = "urn:laissez:params:oauth:token-type:task_token";

/// RFC 8693 token exchange.
pub async fn exchange(
    state: &AppState,
    headers: &HeaderMap,
    client: &Client,
    request: &TokenRequest,
    certificate: Option<&str>,
) -> Result<Response, OAuthFailure> {
    let requester = acting_client(state, client).await?;
    let proved = match proved(state, headers, certificate) {
        Ok(proved) => proved,
        Err(answer) => return Ok(*answer),
    };
    let wanted = match request.requested_token_type.as_deref() {
        None | Some(ACCESS_TOKEN_TYPE) => ACCESS_TOKEN_TYPE,
        Some(TASK_TOKEN_TYPE) => TASK_TOKEN_TYPE,
        Some(_) => {
            return Err(OAuthError::invalid_request(format!(
                "requested_token_type must be {ACCESS_TOKEN_TYPE} or {TASK_TOKEN_TYPE}"
            ))
            .into());
        }
    };
    let (subject, parent) = subject(state, request, &requester, client, &proved).await?;
    let mut resources: Vec<String> = request.resource.iter().cloned().collect();
    resources.extend(request.audience.iter().cloned());
    if wanted == ACCESS_TOKEN_TYPE && request.resource.is_none() {
        return Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            "name the app the access token is for as resource (or ask for requested_token_type task_token)",
        )
        .into());
    }
    if let (Some(subject), Some(asked)) = (&subject, request.resource.as_deref()) {
        let asked = TaskResource::parse(asked)
            .map_err(|e| OAuthError::new(ErrorCode::InvalidTarget, e.to_string()))?;
        if !subject.audience.covers(&asked) {
            return Err(OAuthError::new(
                ErrorCode::InvalidTarget,
                format!(
                    "the subject token was issued for {}, not for {asked}",
                    subject.audience
                ),
            )
            .into());
        }
    }
    let asked_scopes = OAuthScopes::parse(request.scope.as_deref())?;
    // The administrator's registration bounds the client, as for client
    // credentials: a scope it was not registered for is refused.
    let registered = OAuthScopes::parse(client.metadata.scope.as_deref())?;
    let beyond = asked_scopes.difference(&registered);
    if !beyond.is_empty() {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            format!("the client is not registered for: {beyond}"),
        )
        .into());
    }
    let permissions = asked_scopes.iter().map(str::to_owned).collect();
    // A task narrowed for a sub-agent binds to that agent's key.
    if request
        .dpop_jkt
        .as_deref()
        .is_some_and(|jkt| !crate::dpop::is_thumbprint(jkt))
    {
        return Err(OAuthError::invalid_request(
            "dpop_jkt must be an RFC 7638 SHA-256 thumbprint (43 base64url characters)",
        )
        .into());
    }
    let binding = KeyBinding::choose(
        &proved,
        request.dpop_jkt.as_deref(),
        client.metadata.tls_client_certificate_bound_access_tokens,
    )
    .map_err(|e| OAuthError::new(ErrorCode::InvalidClient, e.to_string()))?;
    let asked = TaskAsk {
        description: request.task_description.clone().unwrap_or_default(),
        permissions,
        resources,
        ttl: request.task_ttl,
        allowed_ips: Vec::new(),
        binding,
    };
    let requester = Requester {
        parent,
        ..requester
    };
    match issue::ask(state, &requester, subject.as_ref(), &asked).await {
        Ok(Outcome::Issued(issued)) => Ok(issued_answer(&issued, wanted, request)),
        Ok(Outcome::Pending { task, reasons, .. }) => Ok(pending(&task, &reasons)),
        Err(error) => Err(task_failure(error)),
    }
}

/// Polls a task waiting for approval; the approved task is issued once.
pub async fn poll(
    state: &AppState,
    headers: &HeaderMap,
    client: &Client,
    request: &TokenRequest,
    certificate: Option<&str>,
) -> Result<Response, OAuthFailure> {
    let requester = acting_client(state, client).await?;
    let id = request
        .device_code
        .as_deref()
        .ok_or_else(|| OAuthError::invalid_request("device_code (the approval id) is required"))?;
    let proved = match proved(state, headers, certificate) {
        Ok(proved) => proved,
        Err(answer) => return Ok(*answer),
    };
    let unknown = || OAuthError::invalid_grant("unknown approval for this client");
    let (task, approval) = state.store.approval(id).await?.ok_or_else(unknown)?;
    if Some(task.agent_id.as_str()) != requester.agent().map(|a| a.id.as_str())
        || task.client_id.as_deref() != Some(client.client_id.as_str())
    {
        return Err(unknown().into());
    }
    if let Err(refusal) = task.binding.admits(&proved) {
        let code = match refusal {
            BindingRefusal::NoProof | BindingRefusal::OtherKey => ErrorCode::InvalidDpopProof,
            _ => ErrorCode::InvalidGrant,
        };
        return Err(OAuthError::new(
            code,
            format!("this is not the key this task was asked for with: {refusal}"),
        )
        .into());
    }
    let code = |code, text: &str| Err(OAuthError::new(code, text.to_owned()).into());
    match state
        .store
        .poll_approval(id, issue::POLL_INTERVAL * 1000)
        .await?
    {
        Poll::Pending => code(
            ErrorCode::AuthorizationPending,
            "the owner has not decided yet; poll again after the interval",
        ),
        Poll::SlowDown => code(
            ErrorCode::SlowDown,
            "polled too fast; add 5 seconds to the interval",
        ),
        Poll::Denied => code(ErrorCode::AccessDenied, "the owner refused this task"),
        Poll::Over(_) => code(ErrorCode::ExpiredToken, "the request is over; ask again"),
        Poll::Approved(task) => {
            let issued = issue::collect(state, &requester, task, approval.ttl)
                .await
                .map_err(task_failure)?;
            let wanted = if issued.access_tokens.is_empty() {
                TASK_TOKEN_TYPE
            } else {
                ACCESS_TOKEN_TYPE
            };
            Ok(issued_answer(&issued, wanted, request))
        }
    }
}

/// The DPoP key an ordinary grant's tokens bind to: the request's proof, if
/// it sent one (required when the client registered
/// `dpop_bound_access_tokens`); or the answer refusing the proof.
pub fn binding(
    state: &AppState,
    headers: &HeaderMap,
    client: &Client,
) -> Result<Option<String>, Box<Response>> {
    // Without a proof there is nothing to check (and no refusal to build).
    if crate::dpop::proofs(headers).is_ok_and(|p| p.is_empty()) {
        return if client.metadata.dpop_bound_access_tokens {
            Err(Box::new(dpop_refusal(
                state,
                ErrorCode::InvalidDpopProof,
                "this client registered dpop_bound_access_tokens: send a DPoP proof".into(),
            )))
        } else {
            Ok(None)
        };
    }
    proof(state, headers).map(|proof| proof.map(|p| p.jkt))
}

fn dpop_refusal(state: &AppState, code: ErrorCode, text: String) -> Response {
    let mut answer = no_store(
        StatusCode::BAD_REQUEST,
        &json!({"error": code.as_str(), "error_description": text}),
    );
    if let Ok(nonce) = HeaderValue::from_str(&state.dpop.nonce(now())) {
        answer.headers_mut().insert("dpop-nonce", nonce);
    }
    answer
}

/// The client must be an administrator's, backed by an active agent or
/// service principal (and its owner).
async fn acting_client(state: &AppState, client: &Client) -> Result<Requester, OAuthFailure> {
    let principal_id = match (&client.principal_id, client.may_act_alone()) {
        (Some(id), true) => id.clone(),
        _ => {
            return Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                "only a client an administrator registered for an agent or service principal may exchange tokens for tasks",
            )
            .into());
        }
    };
    let chain = state.store.chain(&principal_id).await?;
    let acting = chain.last().is_some_and(|p| {
        p.id == principal_id && matches!(p.kind, PrincipalKind::Service | PrincipalKind::Agent)
    });
    if !acting || chain.iter().any(|p| p.status != Status::Active) {
        return Err(OAuthError::invalid_grant(
            "the principal behind this client (or its owner) is not active",
        )
        .into());
    }
    Ok(Requester {
        chain,
        restriction: None,
        parent: None,
        client_id: Some(client.client_id.clone()),
        client_ip: None,
    })
}

/// What the request proved: its DPoP proof's key and its connection's TLS
/// client certificate; or the answer refusing a bad proof, or a request that
/// proves neither.
fn proved(
    state: &AppState,
    headers: &HeaderMap,
    certificate: Option<&str>,
) -> Result<KeyBinding, Box<Response>> {
    let proved = KeyBinding {
        jkt: proof(state, headers)?.map(|p| p.jkt),
        x5t: certificate.map(str::to_owned),
    };
    if proved.is_bound() {
        Ok(proved)
    } else {
        Err(Box::new(dpop_refusal(
            state,
            ErrorCode::InvalidDpopProof,
            ChoiceError::NothingToBind.to_string(),
        )))
    }
}

/// The request's DPoP proof, if it sent one, or the answer refusing it.
fn proof(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<laissez_dpop::Verified>, Box<Response>> {
    let refused = |code: ErrorCode, text: String| Box::new(dpop_refusal(state, code, text));
    match crate::dpop::optional(state, headers, "POST", "/oauth/token", None) {
        Ok(proof) => Ok(proof),
        Err(laissez_dpop::ProofError::UseNonce) => Err(refused(
            ErrorCode::UseDpopNonce,
            laissez_dpop::ProofError::UseNonce.to_string(),
        )),
        Err(error) => Err(refused(ErrorCode::InvalidDpopProof, error.to_string())),
    }
}

/// Reads `subject_token`: a user's delegated access token (issued to this
/// client) or a task of this agent to narrow.
async fn subject(
    state: &AppState,
    request: &TokenRequest,
    requester: &Requester,
    client: &Client,
    proved: &KeyBinding,
) -> Result<(Option<Subject>, Option<TaskRecord>), OAuthFailure> {
    let Some(token) = request.subject_token.as_deref() else {
        return Ok((None, None));
    };
    let agent_id = requester.agent().map(|a| a.id.clone()).unwrap_or_default();
    let kind = request.subject_token_type.as_deref();
    if laissez_token::Token::parse(token).is_ok_and(|t| t.kind() == laissez_token::Kind::Task) {
        if kind.is_some_and(|k| k != TASK_TOKEN_TYPE) {
            return Err(OAuthError::invalid_request(format!(
                "a task token's subject_token_type is {TASK_TOKEN_TYPE}"
            ))
            .into());
        }
        let hash = laissez_core::credential::hash_secret(token);
        let parent = match state.store.task_by_token(hash, now()).await? {
            Some((task, true)) if task.agent_id == agent_id => task,
            _ => {
                return Err(OAuthError::invalid_grant(
                    "the subject task has ended, expired, or is not this agent's",
                )
                .into());
            }
        };
        // Holding the token is not enough: the request proves the parent's key.
        if let Err(refusal) = parent.binding.admits(proved) {
            return Err(OAuthError::invalid_grant(format!(
                "the subject task's key is not proven by this request ({refusal}); narrow it with a proof of its key (and dpop_jkt for a sub-agent's key)"
            ))
            .into());
        }
        return Ok((None, Some(parent)));
    }
    if kind.is_some_and(|k| k != ACCESS_TOKEN_TYPE) {
        return Err(OAuthError::invalid_request(format!(
            "subject_token_type must be {ACCESS_TOKEN_TYPE} or {TASK_TOKEN_TYPE}"
        ))
        .into());
    }
    let claims = super::introspect::decode(state, token).ok_or_else(|| {
        OAuthError::invalid_grant(
            "the subject token is not a valid, unexpired access token of this server",
        )
    })?;
    if state.store.is_access_token_revoked(&claims.jti).await? {
        return Err(OAuthError::invalid_grant("the subject token was revoked").into());
    }
    let bound = KeyBinding {
        jkt: claims.bound_jkt().map(str::to_owned),
        x5t: claims.cnf.as_ref().and_then(|c| c.x5t_s256.clone()),
    };
    if bound.is_bound()
        && let Err(refusal) = bound.admits(proved)
    {
        return Err(OAuthError::invalid_grant(format!(
            "the subject token's key is not proven by this request: {refusal}"
        ))
        .into());
    }
    if let Some(task_id) = claims.task.as_deref() {
        if !bound.is_bound() {
            return Err(
                OAuthError::invalid_grant("the subject task token is not bound to a key").into(),
            );
        }
        let parent = match state.store.task(task_id).await? {
            Some(task)
                if task.agent_id == agent_id && state.store.task_live(task_id, now()).await? =>
            {
                task
            }
            _ => {
                return Err(OAuthError::invalid_grant(
                    "the subject task has ended, expired, or is not this agent's",
                )
                .into());
            }
        };
        return Ok((None, Some(parent)));
    }
    if claims.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(
            "the subject token was issued to another client; exchange only tokens your users gave this client",
        )
        .into());
    }
    let user = match state.store.principal(&claims.sub).await? {
        Some(user) if user.kind == PrincipalKind::User && user.status == Status::Active => user,
        _ => {
            return Err(OAuthError::invalid_grant(
                "the subject token's user is not an active user",
            )
            .into());
        }
    };
    let audience = TaskResource::parse(&claims.aud)
        .map_err(|e| OAuthError::new(ErrorCode::InvalidTarget, e.to_string()))?;
    let scopes: BTreeSet<String> = claims
        .scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    Ok((
        Some(Subject {
            user,
            scopes,
            audience,
        }),
        None,
    ))
}

fn issued_answer(issued: &IssuedTask, wanted: &str, request: &TokenRequest) -> Response {
    // A poll names no resource: the task's app is the one it was asked for.
    let app = match request.resource.as_deref() {
        Some(r) => TaskResource::parse(r).ok().and_then(|asked| {
            let asked = asked.to_string();
            issued
                .access_tokens
                .iter()
                .find(|t| TaskResource::parse(&t.resource).is_ok_and(|p| p.to_string() == asked))
        }),
        None => issued.access_tokens.first(),
    };
    let (token, kind, scope) = match (wanted, app) {
        (ACCESS_TOKEN_TYPE, Some(app)) => (
            app.access_token.clone(),
            ACCESS_TOKEN_TYPE,
            app.scope.clone(),
        ),
        _ => (
            issued.token.clone(),
            TASK_TOKEN_TYPE,
            issued.task.grants.join(" "),
        ),
    };
    let body: Value = json!({
        "access_token": token,
        "issued_token_type": kind,
        "token_type": issued.task.binding.token_type(),
        "expires_in": issued.task.expires_at - now(),
        "scope": scope,
        "task_id": issued.task.id,
        "task_token": issued.token,
        "granted": issued.task.grants,
        "dropped": issue::dropped_json(&issued.bounded),
    });
    no_store(StatusCode::OK, &body)
}

fn pending(task: &TaskRecord, reasons: &[String]) -> Response {
    no_store(
        StatusCode::BAD_REQUEST,
        &json!({
            "error": "authorization_pending",
            "error_description": format!("a person must approve this task first: {}", reasons.join("; ")),
            "approval_id": task.id,
            "device_code": task.id,
            "interval": issue::POLL_INTERVAL,
            "expires_in": task.expires_at - now(),
        }),
    )
}

fn task_failure(error: TaskError) -> OAuthFailure {
    match error {
        TaskError::BadRequest(why) => OAuthError::invalid_request(why).into(),
        error @ TaskError::NothingGranted(_) => {
            OAuthError::new(ErrorCode::InvalidScope, error.to_string()).into()
        }
        TaskError::Forbidden(why) => OAuthError::new(ErrorCode::AccessDenied, why).into(),
        TaskError::Store(error) => error.into(),
        TaskError::Unavailable(why) => OAuthError::new(ErrorCode::ServerError, why).into(),
    }
}
