//! Hygiene digests: each person hears, through the notification outbox
//! (webhook, email), of what they answer for that needs care: credentials
//! expiring soon, unused, never used, without expiry or longer-lived than
//! allowed, and (for the people who can hand things over) principals whose
//! owner left. Queued now by `POST /v1/hygiene/notify` (`laissez hygiene
//! --notify`), and by the server itself every `--hygiene-digest-every`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use laissez_core::admin::{PRINCIPALS_WRITE, SETTINGS_WRITE};
use laissez_core::audit::AuditEvent;
use laissez_core::credential::{digests, expiring, hygiene};
use laissez_core::{PrincipalKind, Scope, Status};
use laissez_store::Digest;
use serde::{Deserialize, Serialize};

use crate::auth::Authenticated;
use crate::problem::{ApiError, ApiJson, Problem};
use crate::{AppState, now};

/// What a digest reports.
#[derive(Clone, Copy, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DigestRequest {
    /// Credentials unused for at least this many days (default 30).
    pub unused_days: Option<i64>,
    /// Credentials expiring within this many days (default 7).
    pub expiring_days: Option<i64>,
}

/// What was queued.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Queued {
    /// Digests queued: one per person with something to hear.
    pub digests: usize,
    /// Findings in them (a finding told to several stewards counts once each).
    pub findings: usize,
    /// The people told, by name.
    pub people: Vec<String>,
}

/// Queues a hygiene digest for every person with something to hear, now.
#[utoipa::path(post, path = "/v1/hygiene/notify", tag = "settings", request_body = DigestRequest,
    responses((status = 202, body = Queued), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 409, body = Problem, description = "No webhook or SMTP server is configured")))]
pub async fn notify(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiJson(request): ApiJson<DigestRequest>,
) -> Result<(StatusCode, Json<Queued>), ApiError> {
    let unused_days = request.unused_days.unwrap_or(30);
    let expiring_days = request.expiring_days.unwrap_or(7);
    if !(1..=3650).contains(&unused_days) || !(1..=365).contains(&expiring_days) {
        return Err(ApiError::BadRequest(
            "unused_days must be 1 to 3650 and expiring_days 1 to 365".into(),
        ));
    }
    caller
        .authorize(&state, SETTINGS_WRITE, &Scope::root(), None)
        .await?;
    if state.leaks.notifier.is_none() {
        return Err(ApiError::Conflict(
            "nowhere to send digests: start serve with --leak-webhook or --smtp".into(),
        ));
    }
    let event = caller.event("hygiene.notify", "hygiene");
    let queued = queue(&state, unused_days, expiring_days, event).await?;
    Ok((StatusCode::ACCEPTED, Json(queued)))
}

/// Builds and queues the digests (with `audit`, in one transaction).
pub async fn queue(
    state: &AppState,
    unused_days: i64,
    expiring_days: i64,
    audit: AuditEvent,
) -> Result<Queued, ApiError> {
    let now = now();
    let principals = state.store.principals().await?;
    let credentials = state.store.credentials(None).await?;
    let settings = state.store.settings().await?;
    let mut findings = hygiene(&principals, &credentials, &settings, unused_days, now);
    findings.extend(expiring(&principals, &credentials, expiring_days, now));
    let stewards = stewards(state, &principals).await?;
    let by_person = digests(findings, &principals, &stewards);
    let name = |id: &str| {
        principals
            .iter()
            .find(|p| p.id == id)
            .map(|p| p.name.to_string())
            .unwrap_or_else(|| id.to_owned())
    };
    let mut queued = Queued {
        digests: by_person.len(),
        findings: by_person.values().map(Vec::len).sum(),
        people: by_person.keys().map(|id| name(id)).collect(),
    };
    queued.people.sort();
    let mut rows = Vec::with_capacity(by_person.len());
    for (owner_id, findings) in by_person {
        rows.push(Digest {
            id: crate::new_id("dig")?,
            owner_id,
            findings: serde_json::to_value(&findings).unwrap_or_default(),
            created_at: now,
        });
    }
    let channels = state
        .leaks
        .notifier
        .as_ref()
        .map(|n| n.channels())
        .unwrap_or_default();
    let audit = audit.with_detail(serde_json::json!({
        "digests": queued.digests, "findings": queued.findings, "people": queued.people,
        "unused_days": unused_days, "expiring_days": expiring_days,
    }));
    state
        .store
        .queue_digests(rows, channels, now, audit)
        .await?;
    if let Some(notifier) = &state.leaks.notifier {
        notifier.wake();
    }
    Ok(queued)
}

/// The people who can hand over what someone left behind: active users
/// allowed to manage principals everywhere.
async fn stewards(
    state: &AppState,
    principals: &[laissez_core::Principal],
) -> Result<Vec<String>, ApiError> {
    let mut stewards = Vec::new();
    for user in principals
        .iter()
        .filter(|p| p.kind == PrincipalKind::User && p.status == Status::Active)
    {
        let policies = state
            .store
            .policy_set(std::slice::from_ref(&user.id))
            .await?;
        let allowed = laissez_core::admin::authorize(
            &policies,
            &[user.reference()],
            None,
            PRINCIPALS_WRITE,
            &Scope::root(),
            None,
        )
        .is_allow();
        if allowed {
            stewards.push(user.id.clone());
        }
    }
    Ok(stewards)
}

/// Queues a digest every `every` seconds while the server runs (the first
/// one `every` after the last, or after the start when there was none).
pub async fn periodic(state: AppState, every: i64) {
    let started = now();
    loop {
        let last = match state.store.last_digest_at().await {
            Ok(last) => last.unwrap_or(started),
            Err(error) => {
                tracing::warn!(%error, "cannot read when the last hygiene digest went out");
                started
            }
        };
        let due_in = (last + every - now()).max(0);
        if due_in > 0 {
            tokio::time::sleep(std::time::Duration::from_secs(due_in.min(3600) as u64)).await;
            continue;
        }
        let event = AuditEvent::success(&[], "hygiene.notify", "hygiene");
        if let Err(error) = queue(&state, 30, 7, event).await {
            tracing::warn!(%error, "cannot queue the hygiene digests; retrying in a minute");
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
        }
    }
}
