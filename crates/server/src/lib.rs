//! The Laissez HTTP server: the admin API behind the CLI, its OpenAPI
//! document, and the first start of a data folder.
//!
//! Requests are authenticated by [`auth::Authenticated`] and every admin
//! action is authorized by [`laissez_core::admin::authorize`], the same policy
//! engine users' own checks go through. Errors are RFC 9457 problem details
//! ([`problem`]).

pub mod api;
pub mod audit_stream;
pub mod auth;
pub mod bootstrap;
pub mod dpop;
pub mod embedded;
pub mod leaks;
pub mod oauth;
pub mod openapi;
pub mod problem;
pub mod run;
pub mod tasks;
pub mod web;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use laissez_store::Store;
use laissez_token::Namespace;

pub use bootstrap::{Bootstrapped, bootstrap};

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// Where state lives.
    pub store: Arc<dyn Store>,
    /// The token namespace (`lz` unless configured).
    pub namespace: Namespace,
    /// The authorization server's issuer URL, exactly as published.
    pub issuer: String,
    /// The access token signing keys.
    pub keys: Arc<oauth::keys::KeyRing>,
    /// Client ID Metadata Documents, fetched and cached.
    pub documents: Arc<oauth::cimd::MetadataDocuments>,
    /// Failed sign-in counters.
    pub throttle: Arc<web::throttle::LoginThrottle>,
    /// The revocation feed gates follow.
    pub feed: Arc<oauth::feed::RevocationFeed>,
    /// The organization's upstream OpenID Connect provider, if configured.
    pub federation: Option<Arc<web::federation::Federation>>,
    /// The leak intake's keys and notifier.
    pub leaks: Arc<leaks::LeakIntake>,
    /// Failed authentications, folded into few audit records.
    pub auth_failures: Arc<std::sync::Mutex<laissez_core::audit::FailureTally>>,
    /// Rate limits of dynamic client registration, and how long an unused client lives.
    pub registrations: Arc<oauth::register::RegistrationLimits>,
    /// DPoP proofs seen (replay) and the server's nonces.
    pub dpop: Arc<laissez_dpop::Guard>,
    /// The listener asks TLS client certificates (RFC 8705 is offered).
    pub mutual_tls: bool,
    /// Prometheus metrics of this process.
    pub metrics: Arc<laissez_metrics::Metrics>,
    /// Client assertions seen (RFC 7523: each `jti` is used once).
    pub assertions: Arc<laissez_dpop::ReplayCache>,
    /// Intent rules from `--intent-rules` (those kept in settings follow them).
    pub intents: Arc<laissez_core::task::IntentRules>,
    /// The audit stream sinks configured (`webhook`, `syslog`).
    pub audit_sinks: Vec<&'static str>,
    /// The last readiness probe, reused for a second.
    pub readiness: Arc<api::ops::ReadyProbe>,
}

impl AppState {
    /// State over `store` with the default namespace.
    pub fn new(store: Arc<dyn Store>, issuer: String, keys: Arc<oauth::keys::KeyRing>) -> AppState {
        AppState {
            store,
            namespace: Namespace::default(),
            issuer,
            keys,
            documents: Arc::new(oauth::cimd::MetadataDocuments::default()),
            throttle: Arc::new(web::throttle::LoginThrottle::default()),
            feed: Arc::default(),
            federation: None,
            leaks: Arc::default(),
            audit_sinks: Vec::new(),
            readiness: Arc::default(),
            auth_failures: Arc::new(std::sync::Mutex::new(
                laissez_core::audit::FailureTally::new(auth::FAILURE_INTERVAL, auth::FAILURE_KEYS),
            )),
            registrations: Arc::default(),
            // Without the OS random source no token can be minted either;
            // nothing can run, so stopping here is the honest answer.
            dpop: Arc::new(laissez_dpop::Guard::random().expect("the OS random source")),
            mutual_tls: false,
            metrics: Arc::default(),
            assertions: Arc::new(laissez_dpop::ReplayCache::new(
                oauth::client_auth::ASSERTIONS_REMEMBERED,
            )),
            intents: Arc::new(
                laissez_core::task::IntentRules::new(Vec::new())
                    .unwrap_or_else(|_| unreachable!("no rules are valid rules")),
            ),
        }
    }
}

/// The current time in Unix seconds.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A fresh identifier such as `tok_3kT9...`.
pub fn new_id(prefix: &str) -> Result<String, problem::ApiError> {
    let random = laissez_token::random_base62(20).map_err(|e| {
        problem::ApiError::Unavailable(format!("cannot generate an identifier: {e}"))
    })?;
    Ok(format!("{prefix}_{random}"))
}

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    let metrics = state.metrics.clone();
    api::routes()
        .merge(oauth::routes())
        .merge(web::console::routes())
        .merge(tasks::routes())
        .merge(leaks::routes())
        .merge(openapi::routes())
        .fallback(problem::not_found)
        .layer(axum::middleware::from_fn(problem::ensure_problem))
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            laissez_metrics::track,
        ))
        .layer(DefaultBodyLimit::max(problem::MAX_BODY_BYTES))
        .with_state(state)
}

/// Serves `router` on `listener` until `shutdown` completes, within the
/// default connection limits.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_within(
        listener,
        state,
        laissez_gate::listen::Limits::default(),
        shutdown,
    )
    .await
}

/// Serves `router` on `listener` until `shutdown` completes, with a
/// header-read timeout, an idle timeout and a connection cap
/// ([`laissez_gate::listen`]).
pub async fn serve_within(
    listener: tokio::net::TcpListener,
    state: AppState,
    limits: laissez_gate::listen::Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let feed = state.feed.clone();
    laissez_gate::listen::serve(listener, router(state), limits, async move {
        shutdown.await;
        // Long polls answer now instead of holding the shutdown up.
        feed.close();
    })
    .await
}

/// [`serve_within`] over TLS: every request on a connection whose client
/// presented a certificate carries it as a [`laissez_tls::ClientCertificate`]
/// extension (read it with `Option<Extension<ClientCertificate>>`).
pub async fn serve_tls_within(
    listener: tokio::net::TcpListener,
    tls: laissez_tls::Tls,
    state: AppState,
    limits: laissez_gate::listen::Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let feed = state.feed.clone();
    laissez_gate::listen::serve_tls(listener, tls, router(state), limits, async move {
        shutdown.await;
        feed.close();
    })
    .await
}
