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

/// Readiness: the store takes writes and the signing keys sign. Answers 200
/// with each check, or 503 problem details naming the one that failed.
#[utoipa::path(get, path = "/readyz", tag = "meta",
    responses((status = 200, description = "Ready"), (status = 503, body = crate::problem::Problem)))]
pub async fn ready(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    match tokio::time::timeout(WRITE_PROBE, state.store.check_writable()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            return Err(ApiError::Unavailable(format!(
                "the store takes no writes: {e}"
            )));
        }
        Err(_) => {
            return Err(ApiError::Unavailable(format!(
                "the store did not take a write within {} s",
                WRITE_PROBE.as_secs()
            )));
        }
    }
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
