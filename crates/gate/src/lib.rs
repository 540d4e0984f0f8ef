//! The Laissez gate: an identity-aware reverse proxy that turns any HTTP app
//! into an OAuth protected resource without changing the app.
//!
//! It publishes RFC 9728 metadata pointing agents at the authorization
//! server, answers requests without a valid token with `401` and a
//! `WWW-Authenticate: Bearer resource_metadata=…` challenge, answers tokens
//! with too little scope with `403 insufficient_scope` naming every scope the
//! operation needs, verifies access tokens locally (signature against the
//! issuer's JWKS, issuer, expiry, audience, revocation feed), never forwards
//! the agent's token, and streams requests and responses in both directions
//! (server-sent events and long responses included).

pub mod assertion;
pub mod binding;
pub mod browser;
pub mod config;
pub mod decide;
pub mod dlp;
pub mod facts;
pub mod listen;
pub mod markdown;
pub mod metadata;
pub mod ops;
pub mod proxy;
pub mod report;
pub mod respond;
pub mod upstream;
pub mod verify;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

pub use config::{GateConfig, Rule};
pub use verify::Verifier;

/// What every request handler shares.
#[derive(Clone)]
pub struct Gate {
    /// The configuration.
    pub config: Arc<GateConfig>,
    /// Token verification.
    pub verifier: Arc<Verifier>,
    /// The upstream client.
    pub client: proxy::UpstreamClient,
    /// Where decisions are reported, if anywhere.
    pub reporter: Option<Arc<report::AuditReporter>>,
    /// Signs the identity assertions the app receives.
    pub signer: Arc<assertion::AssertionSigner>,
    /// Browser sign-in, when enabled.
    pub browsers: Option<Arc<browser::Browsers>>,
    /// Body inspection, when enabled.
    pub dlp: Option<Arc<dlp::Dlp>>,
    /// DPoP proofs seen (replay) and this gate's nonces.
    pub dpop: Arc<laissez_dpop::Guard>,
    /// This gate's metrics (served by [`ops`]).
    pub metrics: Arc<laissez_metrics::Metrics>,
}

/// The public keys of the gate's identity assertions.
async fn assertion_keys(
    axum::extract::State(gate): axum::extract::State<Gate>,
) -> axum::Json<serde_json::Value> {
    axum::Json(gate.signer.jwks())
}

/// Why the gate could not start.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// The configuration is wrong.
    #[error("{0}")]
    Config(String),
    /// The authorization server could not be reached.
    #[error("cannot reach the authorization server: {0}")]
    Issuer(String),
    /// The listen address could not be bound.
    #[error("cannot listen on {0}: {1}")]
    Listen(String, std::io::Error),
}

impl Gate {
    /// Builds a gate: fetches the issuer's keys and starts following its revocation feed.
    pub async fn new(config: GateConfig) -> Result<Gate, GateError> {
        let config = Arc::new(config);
        let verifier = Arc::new(Verifier::new(&config).await?);
        // Read the feed once before serving, so no revoked token slips
        // through at start and the issuer knows this gate follows it.
        if !verifier.poll_revocations(0).await {
            return Err(GateError::Issuer(
                "cannot read the issuer's revocation feed; it is only for gates: give this gate a token with the laissez-gate role (--audit-token)".into(),
            ));
        }
        verifier.clone().follow_revocations();
        let reporter = match config.audit_token.clone() {
            Some(token) => Some(Arc::new(report::AuditReporter::start(
                &config.issuer,
                token,
                config.issuer_client()?,
            ))),
            None => None,
        };
        let signer = Arc::new(assertion::AssertionSigner::generate().map_err(GateError::Config)?);
        let browsers = if config.browser_login {
            let url = format!(
                "{}/.well-known/oauth-authorization-server",
                config.issuer.trim_end_matches('/')
            );
            let metadata: serde_json::Value = config
                .issuer_client()?
                .build()
                .map_err(|e| GateError::Issuer(e.to_string()))?
                .get(&url)
                .send()
                .await
                .map_err(|e| GateError::Issuer(e.to_string()))?
                .json()
                .await
                .map_err(|e| GateError::Issuer(e.to_string()))?;
            let scope = config.scopes_supported().join(" ");
            Some(Arc::new(
                browser::Browsers::register(
                    &config.app,
                    config.resource.as_str(),
                    &metadata,
                    &scope,
                    config
                        .feed_token
                        .as_deref()
                        .or(config.audit_token.as_deref()),
                    config.issuer_client()?,
                )
                .await?,
            ))
        } else {
            None
        };
        let metrics = Arc::new(laissez_metrics::Metrics::new());
        let dlp = if config.dlp.enabled() {
            Some(Arc::new(
                dlp::Dlp::new(config.dlp, &config.issuer, config.audit_token.clone())
                    .map_err(GateError::Config)?
                    .with_metrics(metrics.clone()),
            ))
        } else {
            None
        };
        Ok(Gate {
            config,
            verifier,
            client: proxy::client(),
            reporter,
            signer,
            browsers,
            dlp,
            dpop: Arc::new(
                laissez_dpop::Guard::random().map_err(|e| GateError::Config(e.to_string()))?,
            ),
            metrics,
        })
    }

    /// The gate's routes: metadata, then everything else proxied.
    pub fn router(self) -> Router {
        Router::new()
            .route(
                "/.well-known/oauth-protected-resource",
                get(metadata::document),
            )
            .route(
                "/.well-known/oauth-protected-resource/{*path}",
                get(metadata::document),
            )
            .route("/.well-known/laissez-gate/jwks.json", get(assertion_keys))
            .route("/.well-known/api-catalog", get(metadata::catalog))
            .route(browser::CALLBACK, get(browser::callback))
            .fallback(proxy::forward)
            .layer(axum::middleware::from_fn_with_state(
                self.clone(),
                ops::track,
            ))
            .with_state(self)
    }

    /// Serves [`ops`] (health, readiness, metrics) on `listener`, apart
    /// from the public listener, until `shutdown` completes.
    pub async fn serve_ops(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        listen::serve(
            listener,
            ops::router(self),
            listen::Limits::default(),
            shutdown,
        )
        .await
    }

    /// Serves on `listener` until `shutdown` completes.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        listen::serve(listener, self.router(), listen::Limits::default(), shutdown).await
    }

    /// Serves over TLS on `listener` until `shutdown` completes; tokens bound
    /// to a client certificate (`cnf.x5t#S256`) pass only on a connection
    /// that presented it.
    pub async fn serve_tls(
        self,
        listener: tokio::net::TcpListener,
        tls: laissez_tls::Tls,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let limits = listen::Limits::default();
        listen::serve_tls(listener, tls, self.router(), limits, shutdown).await
    }
}
