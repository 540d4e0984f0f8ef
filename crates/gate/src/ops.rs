//! The gate's operations surface, on a listener of its own
//! (`laissez gate --ops-listen ADDR`), never on the public one: the gate
//! fronts arbitrary apps, whose own `/healthz` and `/metrics` must keep
//! reaching them, and its metrics (who is refused, how often, how far
//! behind its revocation view is) are for the operator, not for every
//! client that can reach the app. Bind it to loopback or a private
//! interface that only the orchestrator and Prometheus reach.
//!
//! - `/healthz`: the gate runs (liveness).
//! - `/readyz`: it holds the issuer's keys and read the revocation feed
//!   less than [`crate::GateConfig::feed_max_age`] ago; otherwise `503`
//!   problem details (RFC 9457) naming what is wrong, so a load balancer
//!   stops sending it traffic it could not judge with a current view.
//! - `/metrics`: OpenMetrics text ([`laissez_metrics::Metrics::render`]).
//!
//! [`track`] counts, times and logs every request of the public listener
//! under its route label ([`crate::GateConfig::route_label`]).

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::Gate;
use crate::respond::problem;

/// The ops routes.
pub fn router(gate: Gate) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .with_state(gate)
}

/// What [`ready`] found.
#[derive(Debug, PartialEq)]
pub enum Readiness {
    /// Keys held, feed fresh: its age in seconds.
    Ready(f64),
    /// Not ready, and why.
    Unready(String),
}

impl Gate {
    /// Whether the gate can judge requests with a current view.
    pub fn readiness(&self) -> Readiness {
        if self.verifier.keys_loaded() == 0 {
            return Readiness::Unready("the gate holds none of the issuer's signing keys".into());
        }
        let bound = self.config.feed_max_age;
        match self.verifier.feed_age() {
            None => Readiness::Unready("the gate has not read the revocation feed yet".into()),
            Some(age) if age >= bound => Readiness::Unready(format!(
                "the revocation feed was last read {} s ago (the bound is {} s); is the issuer {} reachable?",
                age.as_secs(),
                bound.as_secs(),
                self.config.issuer
            )),
            Some(age) => Readiness::Ready(age.as_secs_f64()),
        }
    }

    /// The feed's age into the metrics (read at each scrape; a gate
    /// reads the feed once before it serves, so there is always one).
    fn refresh_gauges(&self) {
        if let Some(age) = self.verifier.feed_age() {
            self.metrics.feed_age(&self.config.app, age.as_secs_f64());
        }
        if let Some(at) = self.verifier.feed_changed_at()
            && let Ok(since_epoch) = at.duration_since(std::time::UNIX_EPOCH)
        {
            self.metrics
                .feed_changed(&self.config.app, since_epoch.as_secs_f64());
        }
    }
}

async fn ready(State(gate): State<Gate>) -> Response {
    match gate.readiness() {
        Readiness::Ready(age) => axum::Json(json!({
            "status": "ready",
            "checks": {"keys": "loaded", "feed": "fresh"},
            "feed_age_seconds": age,
        }))
        .into_response(),
        Readiness::Unready(why) => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "not-ready",
            "Not ready",
            &why,
            Value::Null,
        ),
    }
}

async fn metrics(State(gate): State<Gate>) -> Response {
    gate.refresh_gauges();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, laissez_metrics::CONTENT_TYPE)],
        gate.metrics.render(),
    )
        .into_response()
}

/// Middleware of the public listener: counts, times and logs each request
/// under the gate's own route or the rule it falls under.
pub async fn track(State(gate): State<Gate>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    // Methods are the client's to choose: only the standard ones are
    // labels, so the label set stays bounded.
    let method = match request.method().as_str() {
        known @ ("GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS") => known,
        _ => "other",
    }
    .to_owned();
    let route = match request.extensions().get::<MatchedPath>() {
        Some(matched) => matched.as_str().to_owned(),
        None => {
            match crate::facts::normalize_path(
                request.uri().path(),
                gate.config.allow_encoded_slash,
            ) {
                Ok(path) => {
                    let rule_method = if method == "HEAD" {
                        "GET"
                    } else {
                        method.as_str()
                    };
                    gate.config.route_label(rule_method, &path).to_owned()
                }
                Err(_) => "unreadable".to_owned(),
            }
        }
    };
    let response = next.run(request).await;
    laissez_metrics::observe(&gate.metrics, &route, &method, &response, started);
    response
}
