//! Approvals of task credentials: a task asked for a lifetime above the
//! organization's threshold, or for a sensitive permission, waits until the
//! owner of the agent (or someone allowed `laissez.tasks.write`) approves
//! it, possibly narrower, or denies it. The agent polls until then. Also
//! the organization's task rules and intent rules.

use axum::Json;
use axum::extract::{Path, Query, State};
use laissez_core::Scope;
use laissez_core::admin::{SETTINGS_WRITE, TASKS_READ, TASKS_WRITE};
use laissez_core::task::{IntentRule, IntentRules, TaskGrant, TaskRules, covered_by};
use laissez_store::task::{ApprovalRecord, Decision, TaskRecord};
use serde::Deserialize;
use serde_json::{Value, json};

use super::api::{view, visible_agents};
use crate::auth::Authenticated;
use crate::problem::{ApiError, ApiJson, json_or_default};
use crate::{AppState, now};

/// `GET /v1/approvals` query.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ApprovalsQuery {
    /// Decided ones too (default: pending only).
    #[serde(default)]
    pub all: bool,
    /// At most this many (default 100).
    pub limit: Option<usize>,
}

fn approval_view(task: &TaskRecord, approval: &ApprovalRecord) -> Value {
    json!({
        "id": task.id,
        "status": task.status(now()),
        "description": approval.description,
        "reasons": approval.reasons,
        "ttl": approval.ttl,
        "decided_by": approval.decided_by,
        "decided_at": approval.decided_at,
        "task": view(task),
    })
}

/// Lists approvals the caller may see (its own agents', or all with
/// `laissez.tasks.read`).
#[utoipa::path(get, path = "/v1/approvals", tag = "approvals", params(ApprovalsQuery),
    responses((status = 200, description = "Approvals")))]
pub async fn list(
    State(state): State<AppState>,
    caller: Authenticated,
    Query(query): Query<ApprovalsQuery>,
) -> Result<Json<Value>, ApiError> {
    let agents = visible_agents(&state, &caller, TASKS_READ).await?;
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let approvals = state.store.approvals(agents, !query.all, limit).await?;
    Ok(Json(json!(
        approvals
            .iter()
            .map(|(t, a)| approval_view(t, a))
            .collect::<Vec<_>>()
    )))
}

/// Shows one approval.
#[utoipa::path(get, path = "/v1/approvals/{id}", tag = "approvals", params(("id" = String, Path, description = "The approval (task) id")),
    responses((status = 200, description = "The approval"), (status = 404, body = crate::problem::Problem)))]
pub async fn show(
    State(state): State<AppState>,
    caller: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (task, approval) = visible_approval(&state, &caller, &id, TASKS_READ).await?;
    Ok(Json(approval_view(&task, &approval)))
}

async fn visible_approval(
    state: &AppState,
    caller: &Authenticated,
    id: &str,
    permission: &str,
) -> Result<(TaskRecord, ApprovalRecord), ApiError> {
    let missing = || {
        ApiError::NotFound(format!(
            "no approval '{}' you can see",
            id.chars().take(40).collect::<String>()
        ))
    };
    let (task, approval) = state.store.approval(id).await?.ok_or_else(missing)?;
    let agents = visible_agents(state, caller, permission).await?;
    if !agents.is_none_or(|a| a.contains(&task.agent_id)) {
        return Err(missing());
    }
    Ok((task, approval))
}

/// An approval's decision body.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    /// Approve only these grants (`permission@resource`, each within what
    /// was asked); default all asked.
    pub grants: Option<Vec<String>>,
    /// Why (kept in the audit record).
    #[serde(default)]
    pub reason: String,
}

/// Who may decide: a person, who is not the agent, and who owns the agent
/// or holds `laissez.tasks.write` and standing over the agent.
async fn may_decide(
    state: &AppState,
    caller: &Authenticated,
    task: &TaskRecord,
) -> Result<(), ApiError> {
    let me = caller.principal();
    if !me.kind.is_human() || caller.task.is_some() {
        return Err(ApiError::Forbidden(
            "only a person decides approvals: an agent or task cannot approve a task".into(),
        ));
    }
    let agent = state
        .store
        .principal(&task.agent_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("the agent of '{}' is gone", task.id)))?;
    if agent.owner_id.as_deref() == Some(me.id.as_str()) {
        return Ok(());
    }
    // Deciding for someone else's agent takes the permission and standing
    // over the agent: an operator cannot wave through what an agent holding
    // more than the operator asks for.
    caller
        .authorize(state, TASKS_WRITE, &Scope::root(), None)
        .await?;
    caller.may_act_on(state, &agent, "task.approve").await
}

/// Approves a pending task, possibly narrower than asked.
#[utoipa::path(post, path = "/v1/approvals/{id}/approve", tag = "approvals", params(("id" = String, Path, description = "The approval id")),
    request_body(content = DecisionBody, description = "Optional: narrower grants and a reason"),
    responses((status = 200, description = "Approved"), (status = 403, body = crate::problem::Problem), (status = 409, body = crate::problem::Problem)))]
pub async fn approve(
    State(state): State<AppState>,
    caller: Authenticated,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let body: DecisionBody = json_or_default(&body)?;
    let (task, _) = visible_approval(&state, &caller, &id, TASKS_WRITE).await?;
    may_decide(&state, &caller, &task).await?;
    let asked: Vec<TaskGrant> = task.grants.iter().filter_map(|g| g.parse().ok()).collect();
    let grants = match body.grants {
        None => task.grants.clone(),
        Some(given) => {
            let mut names = Vec::new();
            for text in &given {
                let grant: TaskGrant = text
                    .parse()
                    .map_err(|e: laissez_core::Error| ApiError::BadRequest(e.to_string()))?;
                if !covered_by(&grant, &asked) {
                    return Err(ApiError::BadRequest(format!(
                        "{grant} was not asked for: an approval can only narrow"
                    )));
                }
                names.push(grant.to_string());
            }
            if names.is_empty() {
                return Err(ApiError::BadRequest(
                    "approve at least one grant, or deny the task".into(),
                ));
            }
            names.sort();
            names.dedup();
            names
        }
    };
    let event = caller
        .event("task.approve", task.id.clone())
        .with_detail(json!({"task": task.id, "grants": grants, "reason": body.reason}));
    let decided = state
        .store
        .decide_approval(
            &id,
            Decision::Approve { grants },
            &caller.principal().id,
            event,
        )
        .await?;
    Ok(Json(view(&decided)))
}

/// Denies a pending task.
#[utoipa::path(post, path = "/v1/approvals/{id}/deny", tag = "approvals", params(("id" = String, Path, description = "The approval id")),
    request_body(content = DecisionBody, description = "Optional: a reason"),
    responses((status = 200, description = "Denied"), (status = 403, body = crate::problem::Problem), (status = 409, body = crate::problem::Problem)))]
pub async fn deny(
    State(state): State<AppState>,
    caller: Authenticated,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let body: DecisionBody = json_or_default(&body)?;
    let (task, _) = visible_approval(&state, &caller, &id, TASKS_WRITE).await?;
    may_decide(&state, &caller, &task).await?;
    let event = caller
        .event("task.deny", task.id.clone())
        .with_detail(json!({"task": task.id, "reason": body.reason}));
    let decided = state
        .store
        .decide_approval(&id, Decision::Deny, &caller.principal().id, event)
        .await?;
    Ok(Json(view(&decided)))
}

/// The task rules and intent rules in force (file rules first).
#[utoipa::path(get, path = "/v1/settings/tasks", tag = "settings", responses((status = 200, description = "Task rules and intent rules")))]
pub async fn show_rules(
    State(state): State<AppState>,
    _caller: Authenticated,
) -> Result<Json<Value>, ApiError> {
    let (rules, intents) = super::issue::rules(&state)
        .await
        .map_err(super::api::task_error)?;
    Ok(Json(json!({"rules": rules, "intents": intents.rules()})))
}

/// `PUT /v1/settings/tasks`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RulesBody {
    /// Lifetimes, approval threshold, sensitive permissions, depth.
    #[schema(value_type = Object)]
    pub rules: TaskRules,
    /// Intent rules kept in settings (after those of `--intent-rules`).
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub intents: Vec<IntentRule>,
}

/// Replaces the task rules and the intent rules kept in settings.
#[utoipa::path(put, path = "/v1/settings/tasks", tag = "settings", request_body = RulesBody,
    responses((status = 200, description = "Stored"), (status = 400, body = crate::problem::Problem), (status = 403, body = crate::problem::Problem)))]
pub async fn update_rules(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiJson(body): ApiJson<RulesBody>,
) -> Result<Json<Value>, ApiError> {
    body.rules.validate()?;
    IntentRules::new(body.intents.clone())?;
    caller
        .authorize(&state, SETTINGS_WRITE, &Scope::root(), None)
        .await?;
    let rules = serde_json::to_string(&body.rules).unwrap_or_default();
    let intents = serde_json::to_string(&body.intents).unwrap_or_default();
    let event = || {
        caller
            .event("settings.tasks.update", "settings")
            .with_detail(json!({"rules": body.rules, "intents": body.intents.len()}))
    };
    state
        .store
        .set_setting("task_rules", rules, event())
        .await?;
    state
        .store
        .set_setting("intent_rules", intents, event())
        .await?;
    Ok(Json(json!({"rules": body.rules, "intents": body.intents})))
}
