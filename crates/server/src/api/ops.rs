//! The operations surface: `/readyz` for load balancers and orchestrators,
//! `/metrics` for Prometheus. Liveness (`/healthz`) is in [`super`].

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use laissez_core::Scope;
use laissez_core::admin::AUDIT_READ;
use serde_json::json;

use crate::AppState;
use crate::auth::Authenticated;
use crate::problem::ApiError;

/// How long the store may take to accept a write before the server is unready.
const WRITE_PROBE: Duration = Duration::from_secs(2);
/// How long a readiness answer is reused: `/readyz` is anonymous, and each
/// probe takes the store's write lock, so a flood of probes must not queue
/// writes behind them.
const PROBE_REUSE: Duration = Duration::from_secs(1);

/// The last readiness probe's answer, shared by the probes that come while
/// it is fresh (or while it runs: they wait for it instead of starting
/// their own).
#[derive(Default)]
pub struct ReadyProbe {
    last: tokio::sync::Mutex<Option<(std::time::Instant, Result<(), String>)>>,
}

impl ReadyProbe {
    /// The answer of `probe`, run at most once per [`PROBE_REUSE`].
    pub async fn check<F, Fut>(&self, probe: F) -> Result<(), String>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<(), String>>,
    {
        let mut last = self.last.lock().await;
        if let Some((at, answer)) = last.as_ref()
            && at.elapsed() < PROBE_REUSE
        {
            return answer.clone();
        }
        let answer = probe().await;
        *last = Some((std::time::Instant::now(), answer.clone()));
        answer
    }
}

/// Readiness: the store takes writes and the signing keys sign. Answers 200
/// with each check, or 503 problem details naming the one that failed.
#[utoipa::path(get, path = "/readyz", tag = "meta",
    responses((status = 200, description = "Ready"), (status = 503, body = crate::problem::Problem)))]
pub async fn ready(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let store = state.store.clone();
    state
        .readiness
        .check(|| async move {
            match tokio::time::timeout(WRITE_PROBE, store.check_writable()).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(format!("the store takes no writes: {e}")),
                Err(_) => Err(format!(
                    "the store did not take a write within {} s",
                    WRITE_PROBE.as_secs()
                )),
            }
        })
        .await
        .map_err(ApiError::Unavailable)?;
    state
        .keys
        .sign("readyz", &json!({"probe": true}))
        .map_err(|e| ApiError::Unavailable(format!("the signing keys cannot sign: {e}")))?;
    Ok(Json(
        json!({"status": "ready", "checks": {"store": "writable", "keys": "loaded"}}),
    ))
}

/// Prometheus metrics, for a scraper holding a credential allowed
/// `laissez.audit.read` (Prometheus sends it as `authorization: Bearer`).
#[utoipa::path(get, path = "/metrics", tag = "meta",
    responses((status = 200, description = "Prometheus text format"), (status = 401, body = crate::problem::Problem), (status = 403, body = crate::problem::Problem)))]
pub async fn metrics(
    State(state): State<AppState>,
    caller: Authenticated,
) -> Result<Response, ApiError> {
    caller
        .authorize(&state, AUDIT_READ, &Scope::root(), None)
        .await?;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, laissez_metrics::CONTENT_TYPE)],
        state.metrics.render(),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn a_flood_of_probes_runs_one() {
        let probe = Arc::new(ReadyProbe::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let mut waiting = Vec::new();
        for _ in 0..50 {
            let (probe, runs) = (probe.clone(), runs.clone());
            waiting.push(tokio::spawn(async move {
                probe
                    .check(|| async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        Err("the store takes no writes".to_owned())
                    })
                    .await
            }));
        }
        for answer in waiting {
            assert_eq!(
                answer.await.unwrap(),
                Err("the store takes no writes".to_owned())
            );
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }
}
