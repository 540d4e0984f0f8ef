//! The gates `laissez serve` runs itself: every protected resource whose
//! gate configuration names a `listen` address gets a gate in the server's
//! process, bound when the server starts (so a taken address fails the start
//! with one clear line) and stopped with it.
//!
//! Embedded gates report their decisions to the audit log like any gate,
//! with a credential of the service `serve-gates` (owned by the first admin,
//! holding `laissez-gate`), issued at each start in memory only; the previous
//! start's credential is revoked.

use laissez_core::audit::AuditEvent;
use laissez_core::credential::{Credential, hash_secret};
use laissez_core::{Name, Policy, Principal, PrincipalKind, Scope, Status};
use laissez_gate::GateConfig;
use laissez_store::Store;
use laissez_token::{Kind, Namespace, Token};
use tokio::net::TcpListener;

use crate::bootstrap::ADMIN_NAME;
use crate::{new_id, now};

/// The service whose credential embedded gates report with.
pub const GATES_SERVICE: &str = "serve-gates";

/// A gate bound and ready to serve.
pub struct EmbeddedGate {
    /// Its configuration.
    pub config: GateConfig,
    /// Its bound listener.
    pub listener: TcpListener,
}

/// Why an embedded gate could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// A stored gate configuration cannot be used.
    #[error("the gate of '{app}': {why}")]
    Config {
        /// The app.
        app: String,
        /// What is wrong.
        why: String,
    },
    /// The gate's address could not be bound.
    #[error("the gate of '{app}' cannot listen on {addr}: {source}")]
    Listen {
        /// The app.
        app: String,
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] laissez_store::Error),
    /// An identifier or token could not be generated.
    #[error("{0}")]
    Random(String),
}

/// Binds a gate for every resource configured to be served here.
pub async fn bind(store: &dyn Store, issuer: &str) -> Result<Vec<EmbeddedGate>, EmbeddedError> {
    let mut gates = Vec::new();
    for resource in store.resources().await? {
        let Some(listen) = resource.gate.as_ref().and_then(|g| g.listen.clone()) else {
            continue;
        };
        let config =
            GateConfig::from_resource(&resource, issuer).map_err(|why| EmbeddedError::Config {
                app: resource.name.clone(),
                why,
            })?;
        let listener =
            TcpListener::bind(&listen)
                .await
                .map_err(|source| EmbeddedError::Listen {
                    app: resource.name.clone(),
                    addr: listen.clone(),
                    source,
                })?;
        gates.push(EmbeddedGate { config, listener });
    }
    Ok(gates)
}

/// A fresh credential for embedded gates' audit reports (none if the first
/// admin, their owner, is gone or inactive).
pub async fn audit_credential(
    store: &dyn Store,
    namespace: &Namespace,
) -> Result<Option<String>, EmbeddedError> {
    let random = |e: crate::problem::ApiError| EmbeddedError::Random(e.to_string());
    let admin = match store.principal(ADMIN_NAME).await? {
        Some(admin) if admin.kind == PrincipalKind::User && admin.status == Status::Active => admin,
        _ => return Ok(None),
    };
    let service = match store.principal(GATES_SERVICE).await? {
        Some(service) => service,
        None => {
            let service = Principal {
                id: new_id("svc").map_err(random)?,
                kind: PrincipalKind::Service,
                name: Name::parse(GATES_SERVICE, "service name")
                    .unwrap_or_else(|_| unreachable!("valid name")),
                owner_id: Some(admin.id.clone()),
                parent_id: Some(admin.id.clone()),
                status: Status::Active,
                description: "The gates laissez serve runs itself".into(),
                created_at: now(),
            };
            let chain = [admin.reference(), service.reference()];
            store
                .create_principal(
                    service.clone(),
                    AuditEvent::success(&chain, "principal.create", service.id.clone()),
                )
                .await?;
            let policy = Policy {
                id: new_id("pol").map_err(random)?,
                principal_id: service.id.clone(),
                role: Name::parse(laissez_core::admin::GATE_ROLE, "role")
                    .unwrap_or_else(|_| unreachable!("valid name")),
                scope: Scope::root(),
                created_at: now(),
            };
            store
                .create_policy(
                    policy.clone(),
                    AuditEvent::success(&chain, "policy.create", policy.id.clone()),
                )
                .await?;
            service
        }
    };
    let chain = [admin.reference(), service.reference()];
    for old in store.credentials(Some(&service.id)).await? {
        if old.revoked_at.is_none() {
            store
                .revoke_credential(
                    &old.id,
                    now(),
                    AuditEvent::success(&chain, "token.revoke", old.id.clone()),
                )
                .await?;
        }
    }
    let lifetime = store.settings().await?.max_ttl;
    let token = Token::generate(namespace, Kind::Account)
        .map_err(|e| EmbeddedError::Random(e.to_string()))?;
    let credential = Credential::issued(
        new_id("tok").map_err(random)?,
        &token,
        &service.id,
        lifetime,
        now(),
        "Audit reports of the gates laissez serve runs",
    );
    let audit = AuditEvent::success(&chain, "token.create", credential.id.clone());
    store
        .create_credential(credential, hash_secret(token.expose()), audit)
        .await?;
    Ok(Some(token.expose().to_owned()))
}
