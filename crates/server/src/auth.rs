//! Who is calling: turns the bearer credential of a request into its
//! delegation chain, and authorizes admin actions for that chain.
//!
//! The order of checks matters for safety and speed: the token's checksum is
//! verified offline first (a mistyped or forged token never reaches the
//! store), then the SHA-256 of the secret is looked up by index and compared
//! in constant time, then the credential's state (revoked, expired), its
//! client IP ranges, and the status of every principal in its chain (a
//! deactivated owner suspends everything they own). Every failure is audited.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use laissez_core::audit::{AuditEvent, Outcome, Tallied};
use laissez_core::credential::{Credential, CredentialState, hash_secret};
use laissez_core::{Decision, Principal, PrincipalRef, Restriction, Scope, Status};
use subtle::ConstantTimeEq;

use crate::problem::ApiError;
use crate::{AppState, now};

/// Record last use at most this often per credential (seconds).
const TOUCH_INTERVAL: i64 = 60;
/// Failed authentications of one kind from one network are summarised per
/// this many seconds ([`laissez_core::audit::FailureTally`]).
pub const FAILURE_INTERVAL: i64 = 60;
/// Kinds of failure tracked apart per interval.
pub const FAILURE_KEYS: usize = 256;

/// Records the summaries of failed authentications whose interval ended,
/// every few seconds, until the server stops (then records what is left).
pub async fn flush_failures(
    state: crate::AppState,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let stopping = tokio::select! {
            _ = stopped.wait_for(|s| *s) => true,
            () = tokio::time::sleep(std::time::Duration::from_secs(5)) => false,
        };
        let records = match state.auth_failures.lock() {
            Ok(mut tally) if stopping => tally.drain(now()),
            Ok(mut tally) => tally.flush(now()),
            Err(_) => Vec::new(),
        };
        if !records.is_empty()
            && let Err(error) = state.store.append_audit_batch(records).await
        {
            tracing::warn!(%error, "cannot record failed authentications");
        }
        if stopping {
            return;
        }
    }
}

/// An authenticated caller.
#[derive(Clone, Debug)]
pub struct Authenticated {
    /// The credential presented.
    pub credential: Credential,
    /// Its delegation chain, human first.
    pub chain: Vec<Principal>,
    /// The client's address.
    pub client_ip: Option<IpAddr>,
    /// SHA-256 of the secret presented (never the secret).
    pub secret_hash: [u8; 32],
    /// The task, when the credential is a task token: its grants bound
    /// every action, and it is a link of the chain in audit records.
    pub task: Option<laissez_store::task::TaskRecord>,
    /// The request's DPoP proof, verified (and spent) with the credential
    /// (`Authorization: DPoP`); a handler that needs a proof uses this one.
    pub proof: Option<laissez_dpop::Verified>,
    /// The thumbprint (`x5t#S256`) of the TLS client certificate the
    /// connection presented, when it presented one.
    pub certificate: Option<String>,
}

impl Authenticated {
    /// The keys this request proved: its DPoP proof's and its connection's
    /// certificate.
    pub fn presented(&self) -> laissez_core::KeyBinding {
        laissez_core::KeyBinding {
            jkt: self.proof.as_ref().map(|p| p.jkt.clone()),
            x5t: self.certificate.clone(),
        }
    }

    /// The chain as references, for decisions and audit records.
    pub fn refs(&self) -> Vec<PrincipalRef> {
        self.chain.iter().map(Principal::reference).collect()
    }

    /// The principal the credential belongs to.
    pub fn principal(&self) -> &Principal {
        // The store never returns an empty chain for a credential.
        &self.chain[self.chain.len() - 1]
    }

    /// The credential's restriction, if it narrows anything.
    pub fn restriction(&self) -> Option<&Restriction> {
        let r = &self.credential.restriction;
        r.narrows().then_some(r)
    }

    /// The chain as audit records name it: with the task and the tasks
    /// above it, when the caller is a task.
    pub fn audit_refs(&self) -> Vec<PrincipalRef> {
        let mut refs = self.refs();
        if let Some(task) = &self.task {
            refs.extend(
                task.ancestors
                    .iter()
                    .chain(std::iter::once(&task.id))
                    .map(|id| crate::tasks::issue::task_ref(id)),
            );
        }
        refs
    }

    /// Whether a task caller's grants admit `permission` on `resource`
    /// (always, for other callers).
    fn task_admits(&self, permission: &str, resource: &Scope) -> bool {
        self.task.as_ref().is_none_or(|task| {
            task.grants.iter().any(|g| {
                g.parse::<laissez_core::task::TaskGrant>().is_ok_and(|grant| {
                    grant.permission.as_str() == permission
                        && matches!(&grant.resource, laissez_core::task::TaskResource::Node(scope) if scope.covers(resource))
                })
            })
        })
    }

    /// An audit event for a successful action by this caller.
    pub fn event(&self, action: &str, target: impl Into<String>) -> AuditEvent {
        AuditEvent::success(&self.audit_refs(), action, target)
            .from_ip(self.client_ip.map(|ip| ip.to_string()))
    }

    /// Whether policy allows the action, without auditing a denial (for
    /// choosing what to show rather than refusing).
    pub async fn may(
        &self,
        state: &AppState,
        permission: &str,
        resource: &Scope,
    ) -> Result<bool, ApiError> {
        if !self.task_admits(permission, resource) {
            return Ok(false);
        }
        let ids: Vec<String> = self.chain.iter().map(|p| p.id.clone()).collect();
        let policies = state.store.policy_set(&ids).await?;
        let refs = self.refs();
        Ok(laissez_core::admin::authorize(
            &policies,
            &refs,
            self.restriction(),
            permission,
            resource,
            None,
        )
        .is_allow())
    }

    /// Allows the action or answers 403 (and audits the denial).
    /// `target` is `(principal id, owner id)` for actions on one principal's credentials.
    pub async fn authorize(
        &self,
        state: &AppState,
        permission: &str,
        resource: &Scope,
        target: Option<(&str, Option<&str>)>,
    ) -> Result<Decision, ApiError> {
        let ids: Vec<String> = self.chain.iter().map(|p| p.id.clone()).collect();
        let policies = state.store.policy_set(&ids).await?;
        let refs = self.refs();
        let decision = if self.task_admits(permission, resource) {
            laissez_core::admin::authorize(
                &policies,
                &refs,
                self.restriction(),
                permission,
                resource,
                target,
            )
        } else {
            Decision::Deny {
                reason: laissez_core::DenyReason::OutsideRestriction,
            }
        };
        if let Decision::Deny { reason } = &decision {
            let mut event = self.event(
                "authorize",
                target.map(|t| t.0).unwrap_or(resource.as_key()),
            );
            event.outcome = Outcome::Denied;
            event.detail = serde_json::json!({"permission": permission, "resource": resource.to_string(), "reason": reason.to_string()});
            state.store.append_audit(event).await?;
            return Err(ApiError::Forbidden(format!(
                "{} may not use {permission} on '{resource}': {reason}",
                laissez_core::principal::format_chain(&refs)
            )));
        }
        Ok(decision)
    }
}

impl Authenticated {
    /// Refuses unless the caller may give `principal` a way to act: a
    /// token, or a client that mints tokens as it (`action` names which, for
    /// the audit record). That needs `laissez.tokens.write` over the
    /// principal and standing over it ([`Authenticated::may_act_on`]).
    pub async fn may_issue_for(
        &self,
        state: &AppState,
        principal: &Principal,
        action: &str,
    ) -> Result<(), ApiError> {
        self.authorize(
            state,
            laissez_core::admin::TOKENS_WRITE,
            &Scope::root(),
            Some((&principal.id, principal.owner_id.as_deref())),
        )
        .await?;
        self.may_act_on(state, principal, action).await
    }

    /// Refuses (403, audited) unless the caller holds every Laissez
    /// permission `target` holds ([`laissez_core::admin::standing`]): the
    /// rule for every action on one principal, on top of the action's own
    /// permission.
    pub async fn may_act_on(
        &self,
        state: &AppState,
        target: &Principal,
        action: &str,
    ) -> Result<(), ApiError> {
        let mut ids: Vec<String> = self.chain.iter().map(|p| p.id.clone()).collect();
        ids.push(target.id.clone());
        let policies = state.store.policy_set(&ids).await?;
        let refs = self.refs();
        let standing =
            laissez_core::admin::standing(&policies, &refs, self.restriction(), &target.id);
        let laissez_core::admin::Standing::Exceeded { missing } = standing else {
            return Ok(());
        };
        let held: Vec<String> = missing
            .iter()
            .map(|(p, s)| format!("{p} on '{s}'"))
            .collect();
        let mut event = self.event(action, target.id.clone());
        event.outcome = Outcome::Denied;
        event.detail = serde_json::json!({"reason": "target holds more", "missing": held});
        state.store.append_audit(event).await?;
        Err(ApiError::Forbidden(format!(
            "{} may not act on {} {}: it holds what you do not ({})",
            laissez_core::principal::format_chain(&refs),
            target.kind,
            target.name,
            held.join(", ")
        )))
    }

    /// How this credential stands for changing `target_id`'s own sign-in
    /// secrets and contact address ([`laissez_core::admin::SelfService`]).
    pub async fn self_service(
        &self,
        state: &AppState,
        target_id: &str,
    ) -> Result<laissez_core::admin::SelfService, ApiError> {
        let ids: Vec<String> = self.chain.iter().map(|p| p.id.clone()).collect();
        let policies = state.store.policy_set(&ids).await?;
        Ok(laissez_core::admin::SelfService::decide(
            &policies,
            &self.refs(),
            self.restriction(),
            !self.credential.allowed_ips.is_empty(),
            target_id,
        ))
    }
}

/// How a credential was presented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scheme {
    Bearer,
    Dpop,
}

/// Reads the credential and its scheme (`Bearer` or `DPoP`) from the
/// `Authorization` header.
fn credential_header(parts: &Parts) -> Result<(Scheme, &str), &'static str> {
    let value = parts.headers.get(AUTHORIZATION).ok_or(
        "send a Laissez token in the Authorization header: `Authorization: Bearer lz..._...`",
    )?;
    let value = value
        .to_str()
        .map_err(|_| "the Authorization header is not ASCII")?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or("the Authorization header must be `Bearer <token>`")?;
    let scheme = if scheme.eq_ignore_ascii_case("bearer") {
        Scheme::Bearer
    } else if scheme.eq_ignore_ascii_case("dpop") {
        Scheme::Dpop
    } else {
        return Err("the Authorization header must use the Bearer or DPoP scheme");
    };
    Ok((scheme, token.trim()))
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let client_ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        let certificate = parts
            .extensions
            .get::<laissez_tls::ClientCertificate>()
            .and_then(|c| c.thumbprint())
            .map(str::to_owned);
        match authenticate(parts, state, client_ip, certificate).await {
            Ok(caller) => {
                state.metrics.verified("valid");
                if let (Some(slot), Some(acting)) = (
                    parts.extensions.get::<laissez_metrics::PrincipalSlot>(),
                    caller.chain.last(),
                ) {
                    slot.set(&acting.id);
                }
                Ok(caller)
            }
            Err(Failure::Store(error)) => {
                state.metrics.store_error();
                Err(error.into())
            }
            Err(Failure::Refused { reason, detail }) => {
                state.metrics.verified("refused");
                let event = AuditEvent {
                    chain: Vec::new(),
                    action: "authenticate".into(),
                    target: detail.credential_id.clone().unwrap_or_default(),
                    outcome: Outcome::Unauthenticated,
                    client_ip: client_ip.map(|ip| ip.to_string()),
                    detail: serde_json::json!({"reason": reason, "prefix": detail.prefix}),
                };
                let key = format!(
                    "{}|{:?}|{reason}",
                    detail.prefix.as_deref().unwrap_or("-"),
                    crate::web::throttle::Network::of(client_ip)
                );
                let (tallied, mut records) = match state.auth_failures.lock() {
                    Ok(mut tally) => tally.note(&key, event, now()),
                    // A poisoned tally records every failure rather than none.
                    Err(_) => (Tallied::Record(event), Vec::new()),
                };
                if let Tallied::Record(event) = tallied {
                    records.push(event);
                }
                if !records.is_empty() {
                    state.store.append_audit_batch(records).await?;
                }
                Err(ApiError::Unauthenticated(reason))
            }
        }
    }
}

#[derive(Default)]
struct FailureDetail {
    credential_id: Option<String>,
    prefix: Option<String>,
}

enum Failure {
    Refused {
        reason: String,
        detail: FailureDetail,
    },
    Store(laissez_store::Error),
}

fn refused(reason: impl Into<String>, detail: FailureDetail) -> Failure {
    Failure::Refused {
        reason: reason.into(),
        detail,
    }
}

async fn authenticate(
    parts: &Parts,
    state: &AppState,
    client_ip: Option<IpAddr>,
    certificate: Option<String>,
) -> Result<Authenticated, Failure> {
    let (scheme, text) =
        credential_header(parts).map_err(|reason| refused(reason, FailureDetail::default()))?;
    let token = laissez_token::Token::parse(text).map_err(|e| {
        refused(
            format!("the bearer token is not a valid Laissez token: {e}"),
            FailureDetail::default(),
        )
    })?;
    let detail = || FailureDetail {
        credential_id: None,
        prefix: Some(token.prefix().to_owned()),
    };
    let hash = hash_secret(token.expose());
    // A proof sent with any credential is checked; a task token needs one.
    let proof = match scheme {
        Scheme::Dpop => Some(proven(parts, state, text, &detail)?),
        Scheme::Bearer => None,
    };
    if token.kind() == laissez_token::Kind::Task {
        let presented = Presented { proof, certificate };
        return authenticate_task(state, client_ip, hash, presented, detail()).await;
    }
    let proof_used = proof;
    let caller = state
        .store
        .caller(&hash)
        .await
        .map_err(Failure::Store)?
        .ok_or_else(|| {
            refused(
                "the token is not known to this server (deleted, rolled, or never issued here)",
                detail(),
            )
        })?;
    // The index lookup matched on the hash; compare again in constant time so
    // that no timing depends on how much of a hash matched.
    if !bool::from(caller.stored.secret_hash.ct_eq(&hash)) {
        return Err(refused("the token is not known to this server", detail()));
    }
    let credential = caller.stored.credential;
    let with_id = || FailureDetail {
        credential_id: Some(credential.id.clone()),
        prefix: Some(token.prefix().to_owned()),
    };
    let now = now();
    match credential.state(now) {
        CredentialState::Active => {}
        CredentialState::Revoked => {
            return Err(refused(
                format!("the token {} was revoked", credential.id),
                with_id(),
            ));
        }
        CredentialState::Expired => {
            return Err(refused(
                format!("the token {} has expired", credential.id),
                with_id(),
            ));
        }
    }
    // Deny by default: a token limited to IP ranges is refused when the
    // client's address is unknown.
    if !credential.allowed_ips.is_empty() && !client_ip.is_some_and(|ip| credential.allows_ip(ip)) {
        let from = client_ip.map_or_else(|| "an unknown address".to_owned(), |ip| ip.to_string());
        return Err(refused(
            format!("the token {} may not be used from {from}", credential.id),
            with_id(),
        ));
    }
    if let Some(inactive) = caller.chain.iter().find(|p| p.status == Status::Inactive) {
        return Err(refused(
            format!(
                "the token {} is suspended: {} {} is inactive",
                credential.id, inactive.kind, inactive.name
            ),
            with_id(),
        ));
    }
    if caller.chain.is_empty() {
        return Err(refused("the token's principal no longer exists", with_id()));
    }
    if credential
        .last_used_at
        .is_none_or(|at| now - at >= TOUCH_INTERVAL)
    {
        let store = state.store.clone();
        let id = credential.id.clone();
        tokio::spawn(async move {
            if let Err(error) = store.touch_credential(&id, now).await {
                tracing::warn!(%error, credential = %id, "cannot record last use");
            }
        });
    }
    Ok(Authenticated {
        credential,
        chain: caller.chain,
        client_ip,
        secret_hash: hash,
        task: None,
        proof: proof_used,
        certificate,
    })
}

/// Verifies the DPoP proof sent with `token` (`Authorization: DPoP`).
fn proven(
    parts: &Parts,
    state: &AppState,
    token: &str,
    detail: &dyn Fn() -> FailureDetail,
) -> Result<laissez_dpop::Verified, Failure> {
    let path = parts.uri.path();
    match crate::dpop::optional(
        state,
        &parts.headers,
        parts.method.as_str(),
        path,
        Some(token),
    ) {
        Ok(Some(verified)) => Ok(verified),
        Ok(None) => Err(refused(
            "`Authorization: DPoP` needs a DPoP header with a proof of the token's key",
            detail(),
        )),
        Err(error) => Err(refused(error.to_string(), detail())),
    }
}

/// What a request proved besides its credential.
struct Presented {
    proof: Option<laissez_dpop::Verified>,
    certificate: Option<String>,
}

/// Authenticates a task token: live (it and every task above it), its key
/// proven, from an allowed address, its agent's chain active.
async fn authenticate_task(
    state: &AppState,
    client_ip: Option<IpAddr>,
    hash: [u8; 32],
    presented: Presented,
    detail: FailureDetail,
) -> Result<Authenticated, Failure> {
    let Presented { proof, certificate } = presented;
    let now = now();
    let Some((task, live)) = state
        .store
        .task_by_token(hash, now)
        .await
        .map_err(Failure::Store)?
    else {
        return Err(refused(
            "the task token is not known to this server",
            detail,
        ));
    };
    let detail = FailureDetail {
        credential_id: Some(task.id.clone()),
        ..detail
    };
    if !live {
        return Err(refused(
            format!(
                "the task {} has ended or expired ({})",
                task.id,
                task.status(now)
            ),
            detail,
        ));
    }
    let proved = laissez_core::KeyBinding {
        jkt: proof.as_ref().map(|p| p.jkt.clone()),
        x5t: certificate.clone(),
    };
    if let Err(refusal) = task.binding.admits(&proved) {
        // A bound token without its key is what a thief holds.
        let event = AuditEvent {
            chain: vec![crate::tasks::issue::task_ref(&task.id)],
            action: "task.refuse".into(),
            target: task.id.clone(),
            outcome: Outcome::Denied,
            client_ip: client_ip.map(|ip| ip.to_string()),
            detail: serde_json::json!({"task": task.id, "agent": task.agent_id,
                "reason": refusal.to_string(), "possible_theft": true}),
        };
        state
            .store
            .append_audit(event)
            .await
            .map_err(Failure::Store)?;
        return Err(refused(
            format!("the task token {} is bound to its key: {refusal}", task.id),
            detail,
        ));
    }
    let allowed: Vec<ipnet::IpNet> = task
        .allowed_ips
        .iter()
        .filter_map(|n| n.parse().ok())
        .collect();
    let credential = Credential {
        id: task.id.clone(),
        kind: "tt".into(),
        prefix: String::new(),
        last4: String::new(),
        principal_id: task.agent_id.clone(),
        restriction: laissez_core::Restriction {
            role: None,
            scope: None,
            permissions: None,
        },
        allowed_ips: allowed,
        description: String::new(),
        created_at: task.issued_at,
        expires_at: Some(task.expires_at),
        last_used_at: None,
        revoked_at: None,
    };
    if !credential.allowed_ips.is_empty() && !client_ip.is_some_and(|ip| credential.allows_ip(ip)) {
        return Err(refused(
            format!("the task {} may not be used from this address", task.id),
            detail,
        ));
    }
    let mut chain = state
        .store
        .chain(&task.agent_id)
        .await
        .map_err(Failure::Store)?;
    if let Some(subject) = task.subject_id.as_deref()
        && chain.iter().all(|p| p.id != subject)
        && let Some(user) = state
            .store
            .principal(subject)
            .await
            .map_err(Failure::Store)?
    {
        chain.insert(0, user);
    }
    if chain.is_empty() || chain.iter().any(|p| p.status == Status::Inactive) {
        return Err(refused(
            format!(
                "the task {} is suspended: its agent or owner is inactive",
                task.id
            ),
            detail,
        ));
    }
    Ok(Authenticated {
        credential,
        chain,
        client_ip,
        secret_hash: hash,
        task: Some(task),
        proof,
        certificate,
    })
}
