//! Issuing a task credential, shared by the REST face (`POST /v1/tasks`)
//! and OAuth token exchange (RFC 8693): parse what is asked (or propose it
//! from the description with the intent rules), bound it
//! ([`laissez_core::exchange::ExchangeBounds`]), decide whether a human must
//! approve it ([`laissez_core::task::approval`]), and either store it as
//! pending or issue it: an `lztt_` token and, for each app it may reach, a
//! short-lived RFC 9068 JWT bound to the same key, with the task id, a
//! nonce, the hash of its grants and the `act` chain. The issuance and its
//! audit record are one transaction.

use std::collections::BTreeSet;
use std::net::IpAddr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ipnet::IpNet;
use laissez_core::audit::AuditEvent;
use laissez_core::credential::hash_secret;
use laissez_core::exchange::{AppBound, Delegation, ExchangeBounds};
use laissez_core::task::{
    Approval, Bounded, IntentRules, TaskGrant, TaskResource, TaskRules, approval,
};
use laissez_core::{
    KeyBinding, Permission, PolicySet, Principal, PrincipalKind, PrincipalRef, Restriction, Scope,
};
use laissez_oauth::access_token::{AccessTokenClaims, Actor, Confirmation, TYP};
use laissez_oauth::protected::ProtectedResource;
use laissez_store::task::{ApprovalRecord, TaskRecord, TaskState, task_id};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::{AppState, now};

/// How long a request waiting for approval lives, seconds.
pub const APPROVAL_WINDOW: i64 = 900;
/// The least time between two polls of a pending task, seconds (RFC 8628 `interval`).
pub const POLL_INTERVAL: i64 = 5;
/// Most permissions, resources and IP ranges one request may name.
const MAX_ASKED: usize = 32;

/// Who asks.
#[derive(Clone, Debug)]
pub struct Requester {
    /// Its delegation chain, human first, the agent (or service) last.
    pub chain: Vec<Principal>,
    /// Its credential's own narrowing.
    pub restriction: Option<Restriction>,
    /// The task it narrows, when it asks with a task credential.
    pub parent: Option<TaskRecord>,
    /// The OAuth client it asks through.
    pub client_id: Option<String>,
    /// Its address.
    pub client_ip: Option<IpAddr>,
}

impl Requester {
    /// The agent (or service, or user) the task is for.
    pub fn agent(&self) -> Option<&Principal> {
        self.chain.last()
    }
}

/// The user a task acts for, from a delegated access token.
#[derive(Clone, Debug)]
pub struct Subject {
    /// The user.
    pub user: Principal,
    /// The delegated token's scopes.
    pub scopes: BTreeSet<String>,
    /// Its audience, as a task resource.
    pub audience: TaskResource,
}

/// What is asked.
#[derive(Clone, Debug, Default)]
pub struct TaskAsk {
    /// What the task is for, in words.
    pub description: String,
    /// Permissions (every one on every resource).
    pub permissions: Vec<String>,
    /// Resources: app URLs or scope nodes.
    pub resources: Vec<String>,
    /// Lifetime, seconds.
    pub ttl: Option<i64>,
    /// Client IP ranges the task may be used from.
    pub allowed_ips: Vec<String>,
    /// What it is bound to: a DPoP key, a TLS client certificate, or both.
    pub binding: KeyBinding,
}

/// Why nothing was issued.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// The request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// Every grant asked for was dropped.
    #[error("nothing asked for can be granted: {}", dropped_summary(.0))]
    NothingGranted(Bounded),
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] laissez_store::Error),
    /// Something else failed on the server.
    #[error("{0}")]
    Unavailable(String),
}

fn dropped_summary(bounded: &Bounded) -> String {
    bounded
        .dropped
        .iter()
        .map(|d| format!("{} ({})", d.grant, d.reason))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The JWT form of a task for one app.
#[derive(Clone, Debug, Serialize)]
pub struct AppToken {
    /// The app (the JWT's audience).
    pub resource: String,
    /// The JWT.
    pub access_token: String,
    /// Its scopes.
    pub scope: String,
}

/// An issued task.
#[derive(Debug)]
pub struct IssuedTask {
    /// The task.
    pub task: TaskRecord,
    /// Its `lztt_` token (shown once).
    pub token: String,
    /// Its JWTs for apps.
    pub access_tokens: Vec<AppToken>,
    /// What was granted and dropped.
    pub bounded: Bounded,
    /// The intent rule that proposed the grants, when one did.
    pub rule: Option<String>,
}

/// What asking gave.
#[derive(Debug)]
pub enum Outcome {
    /// Issued now.
    Issued(IssuedTask),
    /// Waiting for a human.
    Pending {
        /// The pending task.
        task: TaskRecord,
        /// Why approval is needed.
        reasons: Vec<String>,
        /// What would be granted and what was dropped.
        bounded: Bounded,
        /// The intent rule that proposed the grants, when one did.
        rule: Option<String>,
    },
}

/// The organization's task rules and intent rules.
pub async fn rules(state: &AppState) -> Result<(TaskRules, IntentRules), TaskError> {
    Ok((task_rules(state).await?, intent_rules(state).await?))
}

/// The organization's task rules (lifetimes, approval, depth).
async fn task_rules(state: &AppState) -> Result<TaskRules, TaskError> {
    match state.store.setting("task_rules").await? {
        Some(text) => serde_json::from_str(&text)
            .map_err(|e| TaskError::Unavailable(format!("stored task rules: {e}"))),
        None => Ok(TaskRules::default()),
    }
}

/// The intent rules: those of the server's file, then the stored ones.
async fn intent_rules(state: &AppState) -> Result<IntentRules, TaskError> {
    let mut intents: Vec<laissez_core::task::IntentRule> = state.intents.rules().to_vec();
    if let Some(text) = state.store.setting("intent_rules").await? {
        let stored: Vec<laissez_core::task::IntentRule> = serde_json::from_str(&text)
            .map_err(|e| TaskError::Unavailable(format!("stored intent rules: {e}")))?;
        intents.extend(stored);
    }
    IntentRules::new(intents).map_err(|e| TaskError::Unavailable(format!("intent rules: {e}")))
}

/// Asks for a task credential.
pub async fn ask(
    state: &AppState,
    requester: &Requester,
    subject: Option<&Subject>,
    asked: &TaskAsk,
) -> Result<Outcome, TaskError> {
    let agent = requester
        .agent()
        .ok_or_else(|| TaskError::Forbidden("no principal asks".into()))?;
    let explicit = asked_grants(asked)?;
    // What the bounds and the answer need, read at once.
    let ids = bounding_ids(requester, subject);
    let (rules, resources, policies) = tokio::try_join!(
        task_rules(state),
        async { Ok::<_, TaskError>(state.store.resources().await?) },
        async { Ok::<_, TaskError>(state.store.policy_set(&ids).await?) },
    )?;
    // The intent rules are read (and compiled) only when they must propose.
    let (grants, rule) = match explicit {
        Some(grants) => (grants, None),
        None => {
            let proposal = intent_rules(state)
                .await?
                .propose(&asked.description)
                .map_err(|e| TaskError::BadRequest(e.to_string()))?;
            (proposal.grants, Some(proposal.rule))
        }
    };
    let depth = requester
        .parent
        .as_ref()
        .map_or(1, |p| p.ancestors.len() + 2);
    rules
        .check_depth(u8::try_from(depth).unwrap_or(u8::MAX))
        .map_err(|e| TaskError::BadRequest(e.to_string()))?;
    let bounded = bound(&resources, &policies, requester, subject, &grants);
    if bounded.granted.is_empty() {
        return Err(TaskError::NothingGranted(bounded));
    }
    let now = now();
    let lifetime = rules
        .lifetime(asked.ttl)
        .map_err(|e| TaskError::BadRequest(e.to_string()))?;
    let mut expires_at = now + lifetime;
    if let Some(parent) = &requester.parent {
        expires_at = expires_at.min(parent.expires_at);
    }
    let allowed_ips = allowed_ips(&asked.allowed_ips, requester.parent.as_ref())?;
    let seq = state.store.next_task_seq().await?;
    let tag = laissez_token::random_base62(laissez_store::task::TAG_LEN)
        .map_err(|e| TaskError::Unavailable(e.to_string()))?;
    let mut task = TaskRecord {
        id: task_id(seq, &tag),
        parent_id: requester.parent.as_ref().map(|p| p.id.clone()),
        ancestors: requester
            .parent
            .as_ref()
            .map(|p| {
                let mut above = p.ancestors.clone();
                above.push(p.id.clone());
                above
            })
            .unwrap_or_default(),
        agent_id: agent.id.clone(),
        subject_id: subject
            .map(|s| s.user.id.clone())
            .or_else(|| requester.parent.as_ref().and_then(|p| p.subject_id.clone())),
        client_id: requester.client_id.clone(),
        grants: sorted_names(&bounded.granted),
        allowed_ips,
        binding: asked.binding.clone(),
        state: TaskState::Active,
        issued_at: now,
        expires_at,
        ended_at: None,
    };
    let chain = audit_chain(requester, subject, &task);
    // A sub-task is narrower than its parent, which was approved if it had to be.
    let needs = match &requester.parent {
        Some(_) => Approval::NotNeeded,
        None => approval(&rules, lifetime, &bounded.granted),
    };
    if let Approval::Needed { reasons } = needs {
        task.state = TaskState::Pending;
        task.expires_at = now + APPROVAL_WINDOW;
        let record = ApprovalRecord {
            task_id: task.id.clone(),
            description: asked.description.clone(),
            reasons: reasons.clone(),
            ttl: lifetime,
            decided_by: None,
            decided_at: None,
            last_poll_ms: 0,
            notify: state
                .leaks
                .notifier
                .as_ref()
                .map(|n| n.channels())
                .unwrap_or_default(),
        };
        let audit = AuditEvent::success(&chain, "task.request", task.id.clone())
            .from_ip(requester.client_ip.map(|ip| ip.to_string()))
            .with_detail(json!({
                "task": task.id, "description": asked.description, "rule": rule,
                "granted": task.grants, "dropped": dropped_json(&bounded),
                "reasons": reasons, "ttl": lifetime,
            }));
        state
            .store
            .create_task(task.clone(), None, Some(record), audit)
            .await?;
        if let Some(notifier) = &state.leaks.notifier {
            notifier.wake();
        }
        return Ok(Outcome::Pending {
            task,
            reasons,
            bounded,
            rule,
        });
    }
    let (token, access_tokens) = credentials(state, &resources, &task, &bounded.granted)?;
    let audit = issuance(&chain, &task, requester.client_ip).with_detail(json!({
        "task": task.id, "description": asked.description, "rule": rule,
        "granted": task.grants, "dropped": dropped_json(&bounded),
        "parent": task.parent_id, "ancestors": task.ancestors,
        "sub": task.subject_id, "agent": task.agent_id, "client_id": task.client_id,
        "jkt": task.binding.jkt, "x5t#S256": task.binding.x5t, "allowed_ips": task.allowed_ips,
        "expires_at": task.expires_at,
        "apps": access_tokens.iter().map(|t| &t.resource).collect::<Vec<_>>(),
    }));
    state
        .store
        .create_task(task.clone(), Some(hash_secret(&token)), None, audit)
        .await?;
    Ok(Outcome::Issued(IssuedTask {
        task,
        token,
        access_tokens,
        bounded,
        rule,
    }))
}

/// Issues a task its owner approved, once, bounded again by what the chain
/// holds now (a policy removed while it waited narrows it).
pub async fn collect(
    state: &AppState,
    requester: &Requester,
    task: TaskRecord,
    ttl: i64,
) -> Result<IssuedTask, TaskError> {
    let asked: Vec<TaskGrant> = task.grants.iter().filter_map(|g| g.parse().ok()).collect();
    let subject = match task.subject_id.as_deref() {
        Some(id) if requester.chain.first().is_none_or(|p| p.id != id) => {
            state.store.principal(id).await?
        }
        _ => None,
    };
    let resources = state.store.resources().await?;
    let bounded = bound_chain(state, &resources, requester, subject.as_ref(), &asked).await?;
    if bounded.granted.is_empty() {
        return Err(TaskError::NothingGranted(bounded));
    }
    let now = now();
    let issued = TaskRecord {
        grants: sorted_names(&bounded.granted),
        state: TaskState::Active,
        issued_at: now,
        expires_at: now + ttl,
        ..task
    };
    let (token, access_tokens) = credentials(state, &resources, &issued, &bounded.granted)?;
    let chain = audit_chain(requester, None, &issued);
    let audit = issuance(&chain, &issued, requester.client_ip).with_detail(json!({
        "task": issued.id, "approved": true, "granted": issued.grants,
        "dropped": dropped_json(&bounded), "sub": issued.subject_id, "agent": issued.agent_id,
        "jkt": issued.binding.jkt, "x5t#S256": issued.binding.x5t, "expires_at": issued.expires_at,
    }));
    state
        .store
        .issue_approved_task(
            &issued.id,
            hash_secret(&token),
            issued.issued_at,
            issued.expires_at,
            audit,
        )
        .await?;
    Ok(IssuedTask {
        task: issued,
        token,
        access_tokens,
        bounded,
        rule: None,
    })
}

/// The grants asked: permissions × resources, or `None` when the intent
/// rules are to propose them from the description.
fn asked_grants(asked: &TaskAsk) -> Result<Option<Vec<TaskGrant>>, TaskError> {
    if asked.permissions.len() > MAX_ASKED || asked.resources.len() > MAX_ASKED {
        return Err(TaskError::BadRequest(format!(
            "name at most {MAX_ASKED} permissions and {MAX_ASKED} resources"
        )));
    }
    if asked.description.chars().count() > laissez_core::task::MAX_DESCRIPTION_CHARS {
        return Err(TaskError::BadRequest(format!(
            "the description is longer than {} characters",
            laissez_core::task::MAX_DESCRIPTION_CHARS
        )));
    }
    if asked.permissions.is_empty() {
        if asked.description.trim().is_empty() {
            return Err(TaskError::BadRequest(
                "name the permissions and resources the task needs, or describe the task for the intent rules".into(),
            ));
        }
        return Ok(None);
    }
    if asked.resources.is_empty() {
        return Err(TaskError::BadRequest(
            "name at least one resource (an app URL or a scope such as acme/apps/wiki)".into(),
        ));
    }
    let permissions = asked
        .permissions
        .iter()
        .map(|p| Permission::parse(p).map_err(|e| TaskError::BadRequest(e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    let resources = asked
        .resources
        .iter()
        .map(|r| TaskResource::parse(r).map_err(|e| TaskError::BadRequest(e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(TaskGrant::cross(&permissions, &resources)))
}

/// The principals whose policies bound a task: its chain and the user it
/// acts for.
fn bounding_ids(requester: &Requester, subject: Option<&Subject>) -> Vec<String> {
    let mut ids: Vec<String> = requester.chain.iter().map(|p| p.id.clone()).collect();
    if let Some(subject) = subject {
        ids.push(subject.user.id.clone());
    }
    ids
}

/// Bounds `asked` by `policies` (those of [`bounding_ids`]), the chain, the
/// delegation, the parent task and the registered apps.
fn bound(
    resources: &[ProtectedResource],
    policies: &PolicySet,
    requester: &Requester,
    subject: Option<&Subject>,
    asked: &[TaskGrant],
) -> Bounded {
    let apps = |url: &str| app_bound(resources, url);
    let chain: Vec<PrincipalRef> = requester.chain.iter().map(Principal::reference).collect();
    let user_ref = subject.map(|s| s.user.reference());
    let parent: Option<Vec<TaskGrant>> = requester
        .parent
        .as_ref()
        .map(|p| p.grants.iter().filter_map(|g| g.parse().ok()).collect());
    let bounds = ExchangeBounds {
        policies,
        chain: &chain,
        restriction: requester.restriction.as_ref(),
        delegation: match (subject, user_ref.as_ref()) {
            (Some(subject), Some(user)) => Some(Delegation {
                user,
                scopes: &subject.scopes,
                audience: &subject.audience,
            }),
            _ => None,
        },
        parent: parent.as_deref(),
        apps: &apps,
    };
    bounds.bound(asked)
}

/// Bounds by the chain (and the user acted for) alone, for collecting an
/// approved task: the delegated token was checked when it was asked for.
async fn bound_chain(
    state: &AppState,
    resources: &[ProtectedResource],
    requester: &Requester,
    user: Option<&Principal>,
    asked: &[TaskGrant],
) -> Result<Bounded, TaskError> {
    let mut chain = requester.chain.clone();
    if let Some(user) = user {
        chain.insert(0, user.clone());
    }
    let with_user = Requester {
        chain,
        ..requester.clone()
    };
    let policies = state
        .store
        .policy_set(&bounding_ids(&with_user, None))
        .await?;
    Ok(bound(resources, &policies, &with_user, None, asked))
}

/// An app as the bounds see it: only an exactly registered resource (a
/// path below it would not be narrower at its gate).
pub fn app_bound(resources: &[ProtectedResource], url: &str) -> Option<AppBound> {
    let resource = registered_app(resources, url)?;
    let scope = match resource.gate.as_ref().and_then(|g| g.account.as_deref()) {
        Some(account) => Scope::parse(account).ok()?,
        None => Scope::root(),
    };
    Some(AppBound {
        scope,
        defined: (!resource.scopes.is_empty()).then(|| resource.scopes.keys().cloned().collect()),
    })
}

/// The registered resource a normalised app URL names exactly.
pub fn registered_app<'a>(
    resources: &'a [ProtectedResource],
    url: &str,
) -> Option<&'a ProtectedResource> {
    resources
        .iter()
        .find(|r| TaskResource::parse(&r.resource).is_ok_and(|parsed| parsed.to_string() == url))
}

/// The task's IP ranges: what was asked, each within the parent's ranges.
fn allowed_ips(asked: &[String], parent: Option<&TaskRecord>) -> Result<Vec<String>, TaskError> {
    if asked.len() > MAX_ASKED {
        return Err(TaskError::BadRequest(format!(
            "name at most {MAX_ASKED} IP ranges"
        )));
    }
    let nets = asked
        .iter()
        .map(|text| {
            laissez_core::credential::parse_ip_range(text)
                .map_err(|e| TaskError::BadRequest(e.to_string()))
        })
        .collect::<Result<Vec<IpNet>, _>>()?;
    let parent_nets: Vec<IpNet> = parent
        .map(|p| {
            p.allowed_ips
                .iter()
                .filter_map(|n| n.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    if parent_nets.is_empty() {
        return Ok(nets.iter().map(ToString::to_string).collect());
    }
    if nets.is_empty() {
        return Ok(parent_nets.iter().map(ToString::to_string).collect());
    }
    if let Some(wider) = nets
        .iter()
        .find(|net| !parent_nets.iter().any(|p| p.contains(*net)))
    {
        return Err(TaskError::BadRequest(format!(
            "{wider} is outside the parent task's IP ranges"
        )));
    }
    Ok(nets.iter().map(ToString::to_string).collect())
}

fn sorted_names(grants: &[TaskGrant]) -> Vec<String> {
    let mut names: Vec<String> = grants.iter().map(ToString::to_string).collect();
    names.sort();
    names.dedup();
    names
}

/// What was dropped and why, for answers and audit records.
pub fn dropped_json(bounded: &Bounded) -> serde_json::Value {
    json!(
        bounded
            .dropped
            .iter()
            .map(|d| json!({"grant": d.grant.to_string(), "reason": d.reason}))
            .collect::<Vec<_>>()
    )
}

/// The chain an audit record names: the user acted for, the agent's
/// chain, then the tasks above and this one.
pub fn audit_chain(
    requester: &Requester,
    subject: Option<&Subject>,
    task: &TaskRecord,
) -> Vec<PrincipalRef> {
    let mut chain: Vec<PrincipalRef> = Vec::new();
    if let Some(subject) = subject
        && requester.chain.iter().all(|p| p.id != subject.user.id)
    {
        chain.push(subject.user.reference());
    }
    chain.extend(requester.chain.iter().map(Principal::reference));
    chain.extend(
        task.ancestors
            .iter()
            .chain(std::iter::once(&task.id))
            .map(|id| task_ref(id)),
    );
    chain
}

/// A task as a link of a chain.
pub fn task_ref(id: &str) -> PrincipalRef {
    PrincipalRef {
        id: id.to_owned(),
        kind: PrincipalKind::Task,
        name: id.to_owned(),
    }
}

fn issuance(chain: &[PrincipalRef], task: &TaskRecord, client_ip: Option<IpAddr>) -> AuditEvent {
    AuditEvent::success(chain, "task.issue", task.id.clone())
        .from_ip(client_ip.map(|ip| ip.to_string()))
}

/// base64url SHA-256 of the granted grants, newline-separated, sorted.
pub fn grants_hash(grants: &[String]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(grants.join("\n").as_bytes()))
}

/// A new `lztt_` token and the task's JWTs, one per app it may reach
/// (`resources` as read for the bounds, so both see the same apps).
fn credentials(
    state: &AppState,
    resources: &[ProtectedResource],
    task: &TaskRecord,
    granted: &[TaskGrant],
) -> Result<(String, Vec<AppToken>), TaskError> {
    let token = laissez_token::Token::generate(&state.namespace, laissez_token::Kind::Task)
        .map_err(|e| TaskError::Unavailable(e.to_string()))?;
    let mut apps: Vec<&str> = granted
        .iter()
        .filter_map(|g| match &g.resource {
            TaskResource::App(url) => Some(url.as_str()),
            TaskResource::Node(_) => None,
        })
        .collect();
    apps.sort();
    apps.dedup();
    let mut tokens = Vec::new();
    for url in apps {
        let Some(resource) = registered_app(resources, url) else {
            continue;
        };
        let scope: Vec<&str> = granted
            .iter()
            .filter(|g| matches!(&g.resource, TaskResource::App(u) if u == url))
            .map(|g| g.permission.as_str())
            .collect();
        let scope = scope.join(" ");
        let jwt = sign(state, task, &resource.resource, &scope)?;
        tokens.push(AppToken {
            resource: resource.resource.clone(),
            access_token: jwt,
            scope,
        });
    }
    Ok((token.expose().to_owned(), tokens))
}

/// The `act` chain: the agent for a task; for a sub-task, the holder of its
/// parent (named by the parent's id), then the actors before it.
fn actor(task: &TaskRecord) -> Actor {
    let mut act = Actor {
        sub: task.agent_id.clone(),
        act: None,
    };
    for parent in &task.ancestors {
        act = Actor {
            sub: parent.clone(),
            act: Some(Box::new(act)),
        };
    }
    act
}

/// Signs the JWT form of `task` for one app.
fn sign(
    state: &AppState,
    task: &TaskRecord,
    audience: &str,
    scope: &str,
) -> Result<String, TaskError> {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let claims = AccessTokenClaims {
        iss: state.issuer.clone(),
        sub: task
            .subject_id
            .clone()
            .unwrap_or_else(|| task.agent_id.clone()),
        aud: audience.to_owned(),
        exp: task.expires_at,
        iat: now_ms.div_euclid(1000),
        iat_ms: Some(now_ms),
        nbf: None,
        jti: task.id.clone(),
        client_id: task
            .client_id
            .clone()
            .unwrap_or_else(|| task.agent_id.clone()),
        scope: scope.to_owned(),
        accounts: Vec::new(),
        act: Some(actor(task)),
        cnf: Some(Confirmation {
            jkt: task.binding.jkt.clone(),
            x5t_s256: task.binding.x5t.clone(),
        }),
        task: Some(task.id.clone()),
        task_chain: task.ancestors.clone(),
        nonce: Some(
            laissez_token::random_base62(22).map_err(|e| TaskError::Unavailable(e.to_string()))?,
        ),
        grants_hash: Some(grants_hash(&task.grants)),
        allowed_ips: task.allowed_ips.clone(),
    };
    state
        .keys
        .sign(TYP, &claims)
        .map_err(|e| TaskError::Unavailable(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(ancestors: &[&str]) -> TaskRecord {
        TaskRecord {
            id: "tsk_3Ab3dE9".into(),
            parent_id: ancestors.last().map(|s| s.to_string()),
            ancestors: ancestors.iter().map(|s| s.to_string()).collect(),
            agent_id: "agt_bot".into(),
            subject_id: None,
            client_id: None,
            grants: Vec::new(),
            allowed_ips: vec!["10.0.0.0/8".into()],
            binding: KeyBinding::default(),
            state: TaskState::Active,
            issued_at: 0,
            expires_at: 100,
            ended_at: None,
        }
    }

    #[test]
    fn the_act_chain_names_the_agent_innermost() {
        assert_eq!(actor(&record(&[])).chain(), ["agt_bot"]);
        assert_eq!(
            actor(&record(&["tsk_1aaaaaa", "tsk_2bbbbbb"])).chain(),
            ["tsk_2bbbbbb", "tsk_1aaaaaa", "agt_bot"]
        );
    }

    #[test]
    fn a_sub_task_cannot_widen_its_parents_ip_ranges() {
        let parent = record(&[]);
        assert_eq!(
            allowed_ips(&[], Some(&parent)).unwrap(),
            vec!["10.0.0.0/8".to_string()]
        );
        assert_eq!(
            allowed_ips(&["10.1.0.0/16".into()], Some(&parent)).unwrap(),
            vec!["10.1.0.0/16".to_string()]
        );
        assert!(allowed_ips(&["0.0.0.0/0".into()], Some(&parent)).is_err());
        assert!(allowed_ips(&["not-an-ip".into()], None).is_err());
        assert!(allowed_ips(&[], None).unwrap().is_empty());
    }
}
