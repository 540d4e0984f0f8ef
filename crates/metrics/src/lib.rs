//! Prometheus metrics for `laissez serve` and `laissez gate`, in the OpenMetrics
//! text format ([`Metrics::render`]), which Prometheus scrapes.
//!
//! One [`Metrics`] per process, shared behind an `Arc`: HTTP requests and
//! their latency per route template (never the raw path, so the label set
//! stays bounded) and status ([`track`], an axum middleware), and the
//! security events an operator alerts on, each a counter with a small,
//! fixed label set: credentials issued by kind, verifications by outcome,
//! revocations by what was revoked, DLP actions, leak incidents, store
//! errors, plus the audit write latency and the age of each gate's
//! revocation view. Gates add their refusals by reason and the upstream
//! errors they answered 502 for.
//!
//! [`track`] (and [`observe`], for a router that names its routes itself)
//! also writes the access log: one `laissez::access` event per request with
//! the method, route template, status, latency in milliseconds and, when a
//! handler put a [`Principal`] in the response's extensions, who called.
//! Never the raw path, the query string or a header: those carry ids,
//! tokens and secrets.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The media type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GateLabels {
    gate: String,
}

/// Latency buckets: 50 µs to about 3.3 s, doubling.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_05, 2.0, 17))
}

/// Every metric of one process.
pub struct Metrics {
    registry: Registry,
    requests: Family<HttpLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    issued: Family<KindLabels, Counter>,
    verified: Family<OutcomeLabels, Counter>,
    revoked: Family<KindLabels, Counter>,
    dlp: Family<OutcomeLabels, Counter>,
    leaks: Counter,
    store_errors: Counter,
    audit_write: Histogram,
    feed_age: Family<GateLabels, Gauge<f64, AtomicU64>>,
    feed_changed: Family<GateLabels, Gauge<f64, AtomicU64>>,
    refusals: Family<ReasonLabels, Counter>,
    upstream_errors: Counter,
}

/// Who made a request, for the access log: a handler that knows puts it in
/// its response's extensions. Only a principal id, never a credential.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal(pub String);

/// Where an authenticating extractor writes who called, for the access
/// log: [`track`] puts one in each request's extensions.
#[derive(Clone, Debug, Default)]
pub struct PrincipalSlot(Arc<std::sync::OnceLock<String>>);

impl PrincipalSlot {
    /// The request was made by principal `id` (the first one set stays).
    pub fn set(&self, id: &str) {
        let _ = self.0.set(id.to_owned());
    }
}

/// The route a request matched, for a router whose routes are not axum
/// routes (the gate's rules): put in the response's extensions, it takes
/// the place of [`MatchedPath`] in [`track`]. A template, never a raw path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route(pub String);

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// Every metric registered, at zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("laissez");
        let requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route template, method and status",
            requests.clone(),
        );
        let latency = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        registry.register(
            "http_request_duration_seconds",
            "Time from request to response head, by route template",
            latency.clone(),
        );
        let issued = Family::<KindLabels, Counter>::default();
        registry.register(
            "credentials_issued",
            "Credentials issued, by kind (api_token, access_token, refresh_token, task)",
            issued.clone(),
        );
        let verified = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "credential_verifications",
            "Credentials presented, by outcome (valid, invalid, refused)",
            verified.clone(),
        );
        let revoked = Family::<KindLabels, Counter>::default();
        registry.register(
            "revocations",
            "Credentials, grants and tasks revoked or ended, by kind",
            revoked.clone(),
        );
        let dlp = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "dlp_actions",
            "Data loss prevention actions at the gate, by action (redact, block)",
            dlp.clone(),
        );
        let leaks = Counter::default();
        registry.register("leak_incidents", "Leak incidents opened", leaks.clone());
        let store_errors = Counter::default();
        registry.register(
            "store_errors",
            "Store operations that failed",
            store_errors.clone(),
        );
        let audit_write = latency_histogram();
        registry.register(
            "audit_write_seconds",
            "Time to commit a change with its audit record",
            audit_write.clone(),
        );
        let feed_age = Family::<GateLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "feed_age_seconds",
            "Seconds since each gate last read the revocation feed",
            feed_age.clone(),
        );
        let feed_changed = Family::<GateLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "feed_changed_timestamp_seconds",
            "When each gate's revocation view last moved to a new version (Unix time)",
            feed_changed.clone(),
        );
        let refusals = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "gate_refusals",
            "Requests a gate refused, by reason (unauthenticated, deny, a problem type)",
            refusals.clone(),
        );
        let upstream_errors = Counter::default();
        registry.register(
            "gate_upstream_errors",
            "Requests a gate answered 502 for because the app did not answer",
            upstream_errors.clone(),
        );
        Metrics {
            registry,
            refusals,
            upstream_errors,
            requests,
            latency,
            issued,
            verified,
            revoked,
            dlp,
            leaks,
            store_errors,
            audit_write,
            feed_age,
            feed_changed,
        }
    }

    /// One HTTP request answered.
    pub fn http(&self, route: &str, method: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&HttpLabels {
                route: route.to_owned(),
                method: method.to_owned(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                route: route.to_owned(),
            })
            .observe(seconds);
    }

    /// A credential of `kind` issued.
    pub fn issued(&self, kind: &'static str) {
        self.issued
            .get_or_create(&KindLabels { kind: kind.into() })
            .inc();
    }

    /// A credential presented, with its `outcome`.
    pub fn verified(&self, outcome: &'static str) {
        self.verified
            .get_or_create(&OutcomeLabels {
                outcome: outcome.into(),
            })
            .inc();
    }

    /// Something of `kind` revoked.
    pub fn revoked(&self, kind: &'static str) {
        self.revoked
            .get_or_create(&KindLabels { kind: kind.into() })
            .inc();
    }

    /// A DLP action taken.
    pub fn dlp(&self, action: &'static str) {
        self.dlp
            .get_or_create(&OutcomeLabels {
                outcome: action.into(),
            })
            .inc();
    }

    /// A leak incident opened.
    pub fn leak_incident(&self) {
        self.leaks.inc();
    }

    /// A store operation failed.
    pub fn store_error(&self) {
        self.store_errors.inc();
    }

    /// A change committed with its audit record in `seconds`.
    pub fn audit_write(&self, seconds: f64) {
        self.audit_write.observe(seconds);
    }

    /// `gate` last read the revocation feed `seconds` ago.
    pub fn feed_age(&self, gate: &str, seconds: f64) {
        self.feed_age
            .get_or_create(&GateLabels {
                gate: gate.to_owned(),
            })
            .set(seconds);
    }

    /// `gate`'s revocation view last moved to a new version at `unix_seconds`.
    pub fn feed_changed(&self, gate: &str, unix_seconds: f64) {
        self.feed_changed
            .get_or_create(&GateLabels {
                gate: gate.to_owned(),
            })
            .set(unix_seconds);
    }

    /// A gate refused a request, for `reason`.
    pub fn refused(&self, reason: &'static str) {
        self.refusals
            .get_or_create(&ReasonLabels {
                reason: reason.into(),
            })
            .inc();
    }

    /// A gate's app did not answer.
    pub fn upstream_error(&self) {
        self.upstream_errors.inc();
    }

    /// Everything, in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// Axum middleware: counts, times and logs every request by its route
/// template ([`Route`] from the response, else [`MatchedPath`], else
/// `unmatched` for requests no route matched).
pub async fn track(
    State(metrics): State<Arc<Metrics>>,
    mut request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let slot = PrincipalSlot::default();
    request.extensions_mut().insert(slot.clone());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let mut response = next.run(request).await;
    if let Some(id) = slot.0.get()
        && response.extensions().get::<Principal>().is_none()
    {
        response.extensions_mut().insert(Principal(id.clone()));
    }
    let route = response
        .extensions()
        .get::<Route>()
        .map(|r| r.0.clone())
        .or(route)
        .unwrap_or_else(|| "unmatched".to_owned());
    observe(&metrics, &route, &method, &response, started);
    response
}

/// Counts and logs one answered request (what [`track`] does once it knows
/// the route).
pub fn observe(
    metrics: &Metrics,
    route: &str,
    method: &str,
    response: &Response,
    started: Instant,
) {
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    metrics.http(route, method, status, elapsed.as_secs_f64());
    let principal = response
        .extensions()
        .get::<Principal>()
        .map(|p| p.0.as_str());
    tracing::info!(
        target: "laissez::access",
        method,
        route,
        status,
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        principal,
        "request"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_in_the_text_format() {
        let m = Metrics::new();
        m.http("/v1/tokens", "POST", 201, 0.002);
        m.issued("api_token");
        m.verified("valid");
        m.revoked("api_token");
        m.dlp("redact");
        m.leak_incident();
        m.store_error();
        m.audit_write(0.0004);
        m.feed_age("gate-1", 1.5);
        m.feed_changed("gate-1", 1_700_000_000.25);
        m.refused("deny");
        m.upstream_error();
        let text = m.render();
        for line in [
            "laissez_http_requests_total{route=\"/v1/tokens\",method=\"POST\",status=\"201\"} 1",
            "laissez_credentials_issued_total{kind=\"api_token\"} 1",
            "laissez_credential_verifications_total{outcome=\"valid\"} 1",
            "laissez_revocations_total{kind=\"api_token\"} 1",
            "laissez_dlp_actions_total{outcome=\"redact\"} 1",
            "laissez_leak_incidents_total 1",
            "laissez_store_errors_total 1",
            "laissez_audit_write_seconds_count 1",
            "laissez_feed_age_seconds{gate=\"gate-1\"} 1.5",
            "laissez_feed_changed_timestamp_seconds{gate=\"gate-1\"} 1700000000.25",
            "laissez_gate_refusals_total{reason=\"deny\"} 1",
            "laissez_gate_upstream_errors_total 1",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
