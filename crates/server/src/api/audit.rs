//! Reading and verifying the audit log.

use axum::Json;
use axum::extract::{Query, State};
use laissez_core::Scope;
use laissez_core::admin::AUDIT_READ;
use laissez_core::audit::{AuditRecord, Verification};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::AppState;
use crate::auth::Authenticated;
use crate::problem::{ApiError, Problem};

/// Most records one page returns.
pub const MAX_PAGE: usize = 1000;

/// A page of the log.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct Page {
    /// Records after this `seq` (0 for the start).
    #[serde(default)]
    pub after: i64,
    /// How many (at most 1000; default 100).
    pub limit: Option<usize>,
    /// The same as `after`, as the previous page's `Laissez-Next-Cursor` gives it.
    pub cursor: Option<String>,
}

/// Audit records in order, a page at a time (page with `after` = last `seq`).
#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(Page),
    responses((status = 200, body = Vec<AuditRecord>), (status = 400, body = Problem), (status = 403, body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Authenticated,
    Query(page): Query<Page>,
) -> Result<axum::response::Response, ApiError> {
    let after = match page.cursor.as_deref() {
        None => page.after,
        Some(cursor) => match cursor.parse::<i64>() {
            Ok(seq) if page.after == 0 => seq,
            _ => {
                return Err(ApiError::BadRequest(
                    "cursor is not one this server gave out (or came with after)".into(),
                ));
            }
        },
    };
    let limit = page.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_PAGE || after < 0 {
        return Err(ApiError::BadRequest(format!(
            "limit must be 1 to {MAX_PAGE} and after must be 0 or more"
        )));
    }
    caller
        .authorize(&state, AUDIT_READ, &Scope::root(), None)
        .await?;
    let records = state.store.audit_records(after, limit).await?;
    // `after` is the cursor here: the last `seq` seen. A full page may have more.
    let mut headers = axum::http::HeaderMap::new();
    if records.len() == limit
        && let Some(last) = records.last()
    {
        let link = format!("</v1/audit?after={}&limit={limit}>; rel=\"next\"", last.seq);
        if let (Ok(link), Ok(cursor)) = (
            axum::http::HeaderValue::from_str(&link),
            axum::http::HeaderValue::from_str(&last.seq.to_string()),
        ) {
            headers.insert(axum::http::header::LINK, link);
            headers.insert(super::page::NEXT_CURSOR, cursor);
        }
    }
    Ok(axum::response::IntoResponse::into_response((
        headers,
        Json(records),
    )))
}

/// Walks the whole hash chain and names the first record that does not fit.
#[utoipa::path(get, path = "/v1/audit/verify", tag = "audit",
    responses((status = 200, body = Verification), (status = 403, body = Problem)))]
pub async fn verify(
    State(state): State<AppState>,
    caller: Authenticated,
) -> Result<Json<Verification>, ApiError> {
    caller
        .authorize(&state, AUDIT_READ, &Scope::root(), None)
        .await?;
    Ok(Json(state.store.verify_audit().await?))
}

/// One decision a gate made.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GateDecision {
    /// The app the gate fronts.
    pub app: String,
    /// `allow`, `deny` (insufficient scope), `unauthenticated`, `refuse`
    /// (a request the gate could not read: path or body), or a DLP
    /// decision on a body holding a credential: `dlp.block`, `dlp.redact`,
    /// `dlp.report`.
    pub decision: String,
    /// HTTP method.
    pub method: String,
    /// Request path (no query).
    pub path: String,
    /// The user the token acts for (access token `sub`).
    pub user: Option<String>,
    /// The OAuth client.
    pub client_id: Option<String>,
    /// The acting agent (`act.sub`).
    pub agent: Option<String>,
    /// The token's scopes.
    pub scope: Option<String>,
    /// Why it was refused.
    pub reason: Option<String>,
    /// The caller's address as the gate saw it.
    pub client_ip: Option<String>,
    /// The task credential used, when the token was one.
    pub task: Option<String>,
    /// The tasks above it, root first.
    pub task_chain: Option<Vec<String>>,
    /// The token came without proof of its key: possibly stolen.
    pub possible_theft: Option<bool>,
}

/// Most decisions one report carries.
pub const MAX_DECISIONS: usize = 1000;

/// Appends a gate's decisions to the audit log, in one transaction.
/// Needs `laissez.audit.write` (the built-in `laissez-gate` role).
#[utoipa::path(post, path = "/v1/audit/events", tag = "audit", request_body = Vec<GateDecision>,
    responses((status = 204), (status = 400, body = Problem), (status = 403, body = Problem)))]
pub async fn report(
    State(state): State<AppState>,
    caller: Authenticated,
    crate::problem::ApiJson(decisions): crate::problem::ApiJson<Vec<GateDecision>>,
) -> Result<axum::http::StatusCode, ApiError> {
    if decisions.len() > MAX_DECISIONS {
        return Err(ApiError::BadRequest(format!(
            "at most {MAX_DECISIONS} decisions per report"
        )));
    }
    caller
        .authorize(
            &state,
            laissez_core::admin::AUDIT_WRITE,
            &Scope::root(),
            None,
        )
        .await?;
    let reporter = caller.principal().reference();
    let reporter_chain = caller.refs();
    let mut events = Vec::with_capacity(decisions.len());
    for d in decisions {
        let outcome = match d.decision.as_str() {
            "allow" => laissez_core::audit::Outcome::Success,
            "deny" => laissez_core::audit::Outcome::Denied,
            "unauthenticated" => laissez_core::audit::Outcome::Unauthenticated,
            "dlp.block" | "refuse" => laissez_core::audit::Outcome::Denied,
            "dlp.redact" | "dlp.report" => laissez_core::audit::Outcome::Success,
            other => {
                return Err(ApiError::BadRequest(format!(
                    "decision '{other}' must be allow, deny, unauthenticated, refuse, dlp.block, dlp.redact or dlp.report"
                )));
            }
        };
        use laissez_gate::report::{MAX_APP, MAX_METHOD, MAX_PATH};
        if d.app.len() > MAX_APP || d.path.len() > MAX_PATH || d.method.len() > MAX_METHOD {
            return Err(ApiError::BadRequest(
                "app, method or path is too long".into(),
            ));
        }
        // The gate is the actor of its own records: the user it verified is
        // a fact it reports, never a chain it could write in anyone's name.
        events.push(laissez_core::audit::AuditEvent {
            chain: reporter_chain.clone(),
            action: format!("gate.{}", d.decision),
            target: format!("{} {} {}", d.app, d.method, d.path),
            outcome,
            client_ip: d.client_ip,
            detail: serde_json::json!({
                "user": d.user, "client_id": d.client_id, "agent": d.agent, "scope": d.scope,
                "reason": d.reason, "reporter": reporter, "task": d.task,
                "task_chain": d.task_chain, "possible_theft": d.possible_theft,
            }),
        });
    }
    state.store.append_audit_batch(events).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}
