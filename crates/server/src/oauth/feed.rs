//! The revocation feed gates follow: revoked access tokens, disconnected
//! grants, deleted clients, ended tasks and principals that may not act (deactivated, or
//! owned by someone deactivated), served at `/oauth/revoked` as a long poll.
//!
//! Only gates read it: the request must carry a credential allowed
//! `laissez.audit.write` (the `laissez-gate` role), since the feed names
//! deactivated principals and revoked tokens, and only such authenticated
//! gates are waited for, so a stranger's poll cannot delay a revocation.
//!
//! Each revocation moves the feed to a new version (a per-start random
//! prefix and a counter, so a restarted server is never mistaken for the
//! version a gate already holds). A gate asks with the version it holds and
//! its own id; the server answers at once when the feed moved on, else when
//! it moves or after `wait` seconds. Asking with a version is also the gate's
//! acknowledgement that it applied it, and a revoking request is answered
//! only after every gate seen in the last minute has acknowledged the new
//! version (or two seconds passed), so the gate refuses a revoked token on
//! the very next request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use laissez_core::Scope;
use laissez_core::admin::AUDIT_WRITE;
use serde::Deserialize;
use tokio::sync::{Notify, watch};

use crate::AppState;
use crate::auth::Authenticated;

/// The longest a poll waits for a change.
const MAX_WAIT: Duration = Duration::from_secs(30);
/// A gate not heard from for this long is no longer waited for.
const GATE_FORGOTTEN: Duration = Duration::from_secs(60);
/// The longest a revoking request waits for gates to apply it.
const APPLY_TIMEOUT: Duration = Duration::from_secs(2);

/// The feed's version and the gates following it.
pub struct RevocationFeed {
    boot: String,
    counter: watch::Sender<u64>,
    /// Gate id → (the counter it acknowledged, when it last asked).
    gates: Mutex<HashMap<String, (u64, Instant)>>,
    acknowledged: Notify,
    closing: watch::Sender<bool>,
}

impl Default for RevocationFeed {
    fn default() -> RevocationFeed {
        RevocationFeed {
            boot: laissez_token::random_base62(12).unwrap_or_else(|_| "boot".into()),
            counter: watch::Sender::new(0),
            gates: Mutex::new(HashMap::new()),
            acknowledged: Notify::new(),
            closing: watch::Sender::new(false),
        }
    }
}

impl RevocationFeed {
    fn version(&self, counter: u64) -> String {
        format!("{}-{counter}", self.boot)
    }

    /// The counter a version names, if it is of this start.
    fn counter_of(&self, version: &str) -> Option<u64> {
        let (boot, counter) = version.rsplit_once('-')?;
        (boot == self.boot).then(|| counter.parse().ok()).flatten()
    }

    /// Records that `gate` holds `version`.
    fn acknowledge(&self, gate: &str, version: Option<&str>) {
        let acked = version.and_then(|v| self.counter_of(v)).unwrap_or(0);
        if let Ok(mut gates) = self.gates.lock() {
            if gates.len() > 1000 {
                gates.retain(|_, (_, seen)| seen.elapsed() < GATE_FORGOTTEN);
            }
            gates.insert(gate.to_owned(), (acked, Instant::now()));
        }
        self.acknowledged.notify_waiters();
    }

    fn all_applied(&self, counter: u64) -> bool {
        self.gates.lock().map_or(true, |gates| {
            gates
                .values()
                .all(|(acked, seen)| *acked >= counter || seen.elapsed() >= GATE_FORGOTTEN)
        })
    }

    /// Announces a committed revocation and waits (at most two seconds)
    /// until every following gate has applied it.
    pub async fn published(&self) {
        let mut counter = 0;
        self.counter.send_modify(|c| {
            *c += 1;
            counter = *c;
        });
        let _ = tokio::time::timeout(APPLY_TIMEOUT, async {
            loop {
                let notified = self.acknowledged.notified();
                if self.all_applied(counter) {
                    return;
                }
                notified.await;
            }
        })
        .await;
    }

    /// Ends every waiting poll (the server is shutting down).
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Waits until the feed is past `version`, `wait` passes or the server
    /// shuts down; returns the current version.
    async fn changed_since(&self, version: Option<&str>, wait: Duration) -> String {
        let mut receiver = self.counter.subscribe();
        let mut closing = self.closing.subscribe();
        let held = version.and_then(|v| self.counter_of(v));
        if held == Some(*receiver.borrow_and_update()) && !*closing.borrow_and_update() {
            let _ = tokio::time::timeout(wait, async {
                tokio::select! {
                    _ = receiver.changed() => {}
                    _ = closing.changed() => {}
                }
            })
            .await;
        }
        let counter = *receiver.borrow();
        self.version(counter)
    }
}

/// The feed request.
#[derive(Debug, Default, Deserialize)]
pub struct FeedQuery {
    /// The version the gate holds (and has applied).
    after: Option<String>,
    /// Seconds to wait for a change (at most 30; default 0).
    wait: Option<u64>,
    /// The asking gate's id, to wait for its acknowledgement of revocations.
    gate: Option<String>,
}

/// `GET /oauth/revoked`: what gates must refuse, and the feed's version.
/// Only for gates (a credential allowed `laissez.audit.write`).
pub async fn revoked(
    State(state): State<AppState>,
    caller: Authenticated,
    Query(query): Query<FeedQuery>,
) -> Result<impl IntoResponse, crate::problem::ApiError> {
    caller
        .authorize(&state, AUDIT_WRITE, &Scope::root(), None)
        .await?;
    let feed = &state.feed;
    if let Some(gate) = query
        .gate
        .as_deref()
        .filter(|g| !g.is_empty() && g.len() <= 64)
    {
        // Keyed by the credential too: a gate is one credential's follower.
        feed.acknowledge(
            &format!("{}/{gate}", caller.credential.id),
            query.after.as_deref(),
        );
    }
    let wait = Duration::from_secs(query.wait.unwrap_or(0)).min(MAX_WAIT);
    let version = feed.changed_since(query.after.as_deref(), wait).await;
    // One snapshot, read after `version`: nothing revoked by then is missing.
    let revocations = state.store.revocations().await?;
    let grants: Vec<serde_json::Value> = revocations
        .grants
        .into_iter()
        .map(|(sub, client_id, before_ms)| {
            serde_json::json!({"sub": sub, "client_id": client_id,
            "issued_before_ms": before_ms, "issued_before": before_ms.div_euclid(1000)})
        })
        .collect();
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(serde_json::json!({
            "version": version,
            "revoked": revocations.access_tokens,
            "disconnected": grants,
            "deactivated": revocations.inactive_principals,
            "deleted_clients": revocations.deleted_clients,
            "ended_tasks": revocations.ended_tasks,
        })),
    ))
}
