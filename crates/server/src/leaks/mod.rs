//! The leak intake: reports of leaked tokens become revocations and incidents.
//!
//! `POST /v1/leaks` speaks GitHub's secret-scanning partner protocol (a JSON
//! array of `{token, type, url, source}` signed by GitHub) and, with the same
//! body shape, takes reports from principals holding `laissez.leaks.report`
//! (`laissez scan --report`, the gate's DLP), who may add `"public": false`.
//! Each token's checksum is verified offline, then it is looked up by hash;
//! a live one in a public place is revoked durably before the answer, and
//! every gate has applied the revocation before the answer too. Each real
//! token becomes an incident: an audit record, notifications to its owner,
//! and an entry in `GET /v1/leaks`. The answer gives each token GitHub's
//! label (`true_positive` or `false_positive`) with its hash, never the token.
//!
//! `POST /v1/leaks/check` tells `laissez scan --verify` whether tokens,
//! named by their SHA-256 only, are live.

pub mod github;
pub mod notify;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequestParts, Query, State};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use laissez_core::Scope;
use laissez_core::admin::{LEAKS_READ, LEAKS_REPORT};
use laissez_core::audit::{AuditEvent, Outcome};
use laissez_core::credential::hash_secret;
use laissez_core::leak::{Incident, LeakAction, LeakReport};
use laissez_store::Error as StoreError;
use laissez_token::Token;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::auth::Authenticated;
use crate::problem::ApiError;
use crate::{AppState, new_id};

/// The intake's routes.
pub fn routes() -> axum::Router<AppState> {
    use axum::routing::post;
    axum::Router::new()
        .route("/v1/leaks", post(report).get(list))
        .route("/v1/leaks/check", post(check))
}

/// What the intake needs beyond the store.
#[derive(Default)]
pub struct LeakIntake {
    /// GitHub's keys, when the partner protocol is enabled.
    pub github: Option<github::GithubKeys>,
    /// Delivers notifications, when any channel is configured.
    pub notifier: Option<Arc<notify::Notifier>>,
}

/// Most tokens in one report.
const MAX_REPORTED: usize = 1000;

/// One reported token, as GitHub sends it (plus `public` from principals).
#[derive(Deserialize, utoipa::ToSchema)]
pub struct ReportedToken {
    /// The token.
    pub token: String,
    /// The reporter's name for its type.
    #[serde(rename = "type", default)]
    pub token_type: String,
    /// Where it was seen.
    #[serde(default)]
    pub url: String,
    /// What kind of place (`content`, `commit`, `gist`, ...).
    #[serde(default)]
    pub source: Option<String>,
    /// Whether the place is public (always true for GitHub; default true).
    #[serde(default)]
    pub public: Option<bool>,
}

/// The answer for one reported token.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenVerdict {
    /// SHA-256 of the token, hex.
    pub token_hash: String,
    /// The type as reported.
    pub token_type: String,
    /// `true_positive` or `false_positive`.
    pub label: &'static str,
    /// What was done.
    pub action: LeakAction,
    /// The incident recorded, for real tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
}

/// Receives a leak report: from GitHub (signed) or from a principal.
#[utoipa::path(post, path = "/v1/leaks", tag = "leaks", request_body = Vec<ReportedToken>,
    responses((status = 200, body = Vec<TokenVerdict>), (status = 400, body = crate::problem::Problem),
        (status = 401, body = crate::problem::Problem), (status = 409, body = crate::problem::Problem)))]
pub async fn report(
    State(state): State<AppState>,
    mut parts: Parts,
    body: Bytes,
) -> Result<Json<Vec<TokenVerdict>>, ApiError> {
    let client_ip = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string());
    let signed = parts.headers.contains_key(github::KEY_ID_HEADER)
        || parts.headers.contains_key(github::SIGNATURE_HEADER);
    let (reporter, chain, signature) = if signed {
        let hash = verify_github(&state, &parts.headers, &body).await?;
        ("github".to_owned(), Vec::new(), Some(hash))
    } else {
        let caller = Authenticated::from_request_parts(&mut parts, &state).await?;
        caller
            .authorize(&state, LEAKS_REPORT, &Scope::root(), None)
            .await?;
        let refs = caller.refs();
        (laissez_core::principal::format_chain(&refs), refs, None)
    };
    let reported: Vec<ReportedToken> = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!(
            "the body must be a JSON array of {{\"token\", \"type\", \"url\", \"source\"}} objects: {e}"
        ))
    })?;
    if reported.is_empty() || reported.len() > MAX_REPORTED {
        return Err(ApiError::BadRequest(format!(
            "report between 1 and {MAX_REPORTED} tokens at once"
        )));
    }
    let mut verdicts = Vec::with_capacity(reported.len());
    let mut reports = Vec::new();
    let mut events = Vec::new();
    let mut positions = Vec::new();
    for (index, item) in reported.iter().enumerate() {
        // Trimmed once: the string hashed is the string parsed.
        let text = item.token.trim();
        let hash = hash_secret(text);
        verdicts.push(TokenVerdict {
            token_hash: hex::encode(hash),
            token_type: item.token_type.clone(),
            label: LeakAction::Unknown.label(),
            action: LeakAction::Unknown,
            incident: None,
        });
        // A string failing the checksum, or of another namespace, is not ours.
        let Ok(token) = Token::parse(text) else {
            continue;
        };
        if token.namespace() != state.namespace.as_str() {
            continue;
        }
        let source = item.source.clone().unwrap_or_else(|| {
            if signed {
                "github".into()
            } else {
                "report".into()
            }
        });
        let public = signed || item.public.unwrap_or(true);
        let report = LeakReport {
            token_hash: hash,
            kind: token.kind().code().to_owned(),
            prefix: token.prefix().to_owned(),
            last4: token.last4().to_owned(),
            url: bounded(&item.url, 2048),
            source: bounded(&source, 64),
            public,
            reporter: reporter.clone(),
        };
        events.push(AuditEvent {
            chain: chain.clone(),
            action: "leak.report".into(),
            target: format!("{}…{}", report.prefix, report.last4),
            outcome: Outcome::Success,
            client_ip: client_ip.clone(),
            detail: serde_json::json!({
                "reporter": reporter,
                "source": report.source,
                "url": report.url,
                "public": public,
            }),
        });
        reports.push((new_id("lk")?, report));
        positions.push(index);
    }
    if !reports.is_empty() || signature.is_some() {
        let channels = state
            .leaks
            .notifier
            .as_ref()
            .map(|n| n.channels())
            .unwrap_or_default();
        let outcomes = match state
            .store
            .record_leaks(reports, signature, channels, events)
            .await
        {
            Err(StoreError::Conflict(why)) => return Err(ApiError::Conflict(why)),
            other => other?,
        };
        let mut revoked = false;
        for (index, (action, incident)) in positions.into_iter().zip(outcomes) {
            revoked |= action == LeakAction::Revoked;
            if action == LeakAction::Revoked {
                state.metrics.revoked("leaked_credential");
            }
            if incident.is_some() {
                state.metrics.leak_incident();
            }
            let verdict = &mut verdicts[index];
            verdict.action = action;
            verdict.label = action.label();
            verdict.incident = incident.map(|i| i.id);
        }
        if revoked {
            // Every gate applies the revocation before this answers.
            state.feed.published().await;
        }
        if let Some(notifier) = &state.leaks.notifier {
            notifier.wake();
        }
    }
    Ok(Json(verdicts))
}

/// Verifies GitHub's signature; returns the body's hash for replay protection.
async fn verify_github(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<[u8; 32], ApiError> {
    let keys = state.leaks.github.as_ref().ok_or_else(|| {
        ApiError::Unauthenticated(
            "signed reports are not accepted here: start the server with --github-keys".into(),
        )
    })?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(key_id), Some(signature)) = (
        header(github::KEY_ID_HEADER),
        header(github::SIGNATURE_HEADER),
    ) else {
        return Err(ApiError::Unauthenticated(
            github::SignatureError::Missing.to_string(),
        ));
    };
    keys.verify(key_id, signature, body)
        .await
        .map_err(|e| ApiError::Unauthenticated(e.to_string()))?;
    // The body, not the signature: ECDSA signatures are malleable, so a
    // replay could carry a different valid signature of the same body.
    Ok(Sha256::digest(body).into())
}

fn bounded(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// Tokens to check, by hash.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    /// SHA-256 of each token, hex.
    pub token_hashes: Vec<String>,
}

/// Whether each token is live.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CheckResponse {
    /// One result per hash, in order.
    pub results: Vec<CheckResult>,
}

/// One token's status.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CheckResult {
    /// The hash asked about.
    pub token_hash: String,
    /// `live`, `revoked`, `expired` or `unknown`.
    pub status: &'static str,
}

/// Whether tokens (named only by their SHA-256) are live.
#[utoipa::path(post, path = "/v1/leaks/check", tag = "leaks", request_body = CheckRequest,
    responses((status = 200, body = CheckResponse), (status = 400, body = crate::problem::Problem)))]
pub async fn check(
    State(state): State<AppState>,
    caller: Authenticated,
    crate::problem::ApiJson(request): crate::problem::ApiJson<CheckRequest>,
) -> Result<Json<CheckResponse>, ApiError> {
    caller
        .authorize(&state, LEAKS_REPORT, &Scope::root(), None)
        .await?;
    if request.token_hashes.len() > MAX_REPORTED {
        return Err(ApiError::BadRequest(format!(
            "check at most {MAX_REPORTED} tokens at once"
        )));
    }
    let mut hashes = Vec::with_capacity(request.token_hashes.len());
    for text in &request.token_hashes {
        let mut hash = [0u8; 32];
        hex::decode_to_slice(text, &mut hash).map_err(|_| {
            ApiError::BadRequest(format!(
                "'{}' is not a SHA-256 in hex (64 characters)",
                bounded(text, 80)
            ))
        })?;
        hashes.push(hash);
    }
    let statuses = state.store.token_statuses(hashes).await?;
    Ok(Json(CheckResponse {
        results: request
            .token_hashes
            .into_iter()
            .zip(statuses)
            .map(|(token_hash, status)| CheckResult {
                token_hash,
                status: status.as_str(),
            })
            .collect(),
    }))
}

/// Which page of incidents.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Items per page, newest first (1 to 1000, default 100).
    pub limit: Option<usize>,
    /// Where the previous page ended (its `Laissez-Next-Cursor`).
    pub cursor: Option<String>,
}

/// Leak incidents, newest first, a page at a time.
#[utoipa::path(get, path = "/v1/leaks", tag = "leaks", params(ListQuery),
    responses((status = 200, body = Vec<Incident>), (status = 400, body = crate::problem::Problem), (status = 403, body = crate::problem::Problem)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Authenticated,
    Query(query): Query<ListQuery>,
) -> Result<axum::response::Response, ApiError> {
    let page = crate::api::page::PageRequest::parse(query.limit, query.cursor.as_deref())?;
    caller
        .authorize(&state, LEAKS_READ, &Scope::root(), None)
        .await?;
    let before = match &page.after {
        Some(key) => {
            let (at, id) = key
                .split_once('.')
                .and_then(|(at, id)| Some((at.parse::<i64>().ok()?, id.to_owned())))
                .ok_or_else(|| {
                    ApiError::BadRequest("cursor is not one this server gave out".into())
                })?;
            Some((at, id))
        }
        None => None,
    };
    let mut incidents = state.store.incidents(page.limit + 1, before).await?;
    let next = if incidents.len() > page.limit {
        incidents.truncate(page.limit);
        incidents.last().map(|i| {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(format!("{}.{}", i.reported_at, i.id))
        })
    } else {
        None
    };
    Ok(crate::api::page::Page {
        items: incidents,
        next,
    }
    .respond("/v1/leaks", page.limit))
}
