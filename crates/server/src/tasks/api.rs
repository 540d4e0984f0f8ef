//! The REST face of task credentials: ask for one (`POST /v1/tasks`, bound
//! to the DPoP key of the request's proof, or without a proof to the
//! connection's TLS client certificate, or to `dpop_jkt` for a sub-agent's
//! key), collect one its owner approved (`POST
//! /v1/tasks/{id}/token`, polled as in RFC 8628), list and show tasks, and
//! complete one (`POST /v1/tasks/{id}/complete`), which ends it and
//! everything derived from it at every gate before the answer.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use laissez_core::Scope;
use laissez_core::admin::{TASKS_READ, TASKS_WRITE};
use laissez_core::binding::{ChoiceError, KeyBinding};
use laissez_store::task::{Poll, TaskFilter, TaskRecord, TaskState};
use serde::Deserialize;
use serde_json::{Value, json};

use super::issue::{self, IssuedTask, Outcome, Requester, TaskAsk, TaskError};
use crate::auth::Authenticated;
use crate::problem::{ApiError, ApiJson};
use crate::{AppState, now};

/// `POST /v1/tasks`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskRequest {
    /// What the task is for.
    #[serde(default)]
    pub description: String,
    /// Permissions it needs (on every resource named).
    #[serde(default)]
    pub permissions: Vec<String>,
    /// Resources: app URLs or scope nodes.
    #[serde(default)]
    pub resources: Vec<String>,
    /// Lifetime: seconds, or a duration such as `10m`.
    #[schema(value_type = Option<String>)]
    pub ttl: Option<Value>,
    /// Client IP ranges it may be used from.
    #[serde(default)]
    pub allowed_ips: Vec<String>,
    /// Bind it to this key (RFC 7638 thumbprint) instead of the proof's: a
    /// sub-agent's key, when a task is narrowed for one.
    pub dpop_jkt: Option<String>,
}

/// Reads a lifetime: seconds, or a duration such as `10m`.
pub fn parse_ttl(value: Option<&Value>) -> Result<Option<i64>, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| ApiError::BadRequest("ttl must be a whole number of seconds".into())),
        Some(Value::String(text)) => laissez_core::Ttl::parse(text)
            .map(|t| Some(t.seconds()))
            .map_err(|e| ApiError::BadRequest(e.to_string())),
        Some(_) => Err(ApiError::BadRequest(
            "ttl is seconds or a duration such as \"10m\"".into(),
        )),
    }
}

/// Asks for a task credential, bound to the key of the request's DPoP proof
/// (or, without one, to the connection's TLS client certificate).
#[utoipa::path(post, path = "/v1/tasks", tag = "tasks", request_body = TaskRequest,
    params(("DPoP" = String, Header, description = "A DPoP proof (RFC 9449) of the key the task binds to")),
    responses((status = 201, description = "Issued: the lztt_ token, the app JWTs, what was granted and dropped"),
        (status = 202, description = "Waiting for the owner's approval"),
        (status = 400, body = crate::problem::Problem), (status = 401, body = crate::problem::Problem),
        (status = 403, body = crate::problem::Problem)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Authenticated,
    headers: HeaderMap,
    ApiJson(request): ApiJson<TaskRequest>,
) -> Result<Response, ApiError> {
    let proved = proved(&state, &caller, &headers, "/v1/tasks")?;
    if request
        .dpop_jkt
        .as_deref()
        .is_some_and(|jkt| !crate::dpop::is_thumbprint(jkt))
    {
        return Err(ApiError::BadRequest(
            "dpop_jkt must be an RFC 7638 SHA-256 thumbprint (43 base64url characters)".into(),
        ));
    }
    // The request itself proves a key, even when it binds a sub-agent's.
    if !proved.is_bound() {
        return Err(nothing_to_bind(&state));
    }
    let binding = KeyBinding::choose(&proved, request.dpop_jkt.as_deref(), false)
        .map_err(|_| nothing_to_bind(&state))?;
    let asked = TaskAsk {
        description: request.description,
        permissions: request.permissions,
        resources: request.resources,
        ttl: parse_ttl(request.ttl.as_ref())?,
        allowed_ips: request.allowed_ips,
        binding,
    };
    let requester = requester(&caller, None);
    match issue::ask(&state, &requester, None, &asked).await {
        Ok(Outcome::Issued(issued)) => {
            Ok((StatusCode::CREATED, Json(issued_json(&issued))).into_response())
        }
        Ok(Outcome::Pending {
            task,
            reasons,
            bounded,
            rule,
        }) => Ok((
            StatusCode::ACCEPTED,
            Json(json!({
                "status": "pending",
                "approval_id": task.id,
                "task": view(&task),
                "reasons": reasons,
                "interval": issue::POLL_INTERVAL,
                "expires_in": task.expires_at - now(),
                "granted": bounded.granted.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "dropped": issue::dropped_json(&bounded),
                "rule": rule,
            })),
        )
            .into_response()),
        Err(error) => Err(task_error(error)),
    }
}

/// What a request to the task endpoints proved: the DPoP proof verified with
/// its credential (or, with a Bearer credential, one sent alongside) and its
/// connection's TLS client certificate.
fn proved(
    state: &AppState,
    caller: &Authenticated,
    headers: &HeaderMap,
    path: &str,
) -> Result<KeyBinding, ApiError> {
    let jkt = match &caller.proof {
        Some(proof) => Some(proof.jkt.clone()),
        None => crate::dpop::optional(state, headers, "POST", path, None)
            .map_err(|e| crate::dpop::refusal(state, e))?
            .map(|proof| proof.jkt),
    };
    Ok(KeyBinding {
        jkt,
        x5t: caller.certificate.clone(),
    })
}

/// The refusal of a task request that proves no key (with a fresh nonce).
fn nothing_to_bind(state: &AppState) -> ApiError {
    ApiError::Dpop(
        "invalid_dpop_proof",
        ChoiceError::NothingToBind.to_string(),
        Some(state.dpop.nonce(now())),
    )
}

/// Who asks, from an authenticated caller (a task caller narrows its task).
pub fn requester(caller: &Authenticated, client_id: Option<String>) -> Requester {
    Requester {
        chain: caller.chain.clone(),
        restriction: caller.restriction().cloned(),
        parent: caller.task.clone(),
        client_id,
        client_ip: caller.client_ip,
    }
}

/// The answer for an issued task.
pub fn issued_json(issued: &IssuedTask) -> Value {
    json!({
        "task": view(&issued.task),
        "token": issued.token,
        "token_type": issued.task.binding.token_type(),
        "expires_in": issued.task.expires_at - now(),
        "access_tokens": issued.access_tokens,
        "granted": issued.task.grants,
        "dropped": issue::dropped_json(&issued.bounded),
        "rule": issued.rule,
    })
}

/// A task for people and programs.
pub fn view(task: &TaskRecord) -> Value {
    json!({
        "id": task.id,
        "status": task.status(now()),
        "agent": task.agent_id,
        "subject": task.subject_id,
        "client_id": task.client_id,
        "parent": task.parent_id,
        "ancestors": task.ancestors,
        "grants": task.grants,
        "allowed_ips": task.allowed_ips,
        "bound_to": task.binding.is_bound().then_some(&task.binding),
        "issued_at": task.issued_at,
        "expires_at": task.expires_at,
        "ended_at": task.ended_at,
    })
}

/// Maps a task failure to problem details.
pub fn task_error(error: TaskError) -> ApiError {
    match error {
        TaskError::BadRequest(why) => ApiError::BadRequest(why),
        error @ TaskError::NothingGranted(_) => ApiError::Forbidden(error.to_string()),
        TaskError::Forbidden(why) => ApiError::Forbidden(why),
        TaskError::Store(error) => error.into(),
        TaskError::Unavailable(why) => ApiError::Unavailable(why),
    }
}

/// Collects a task its owner approved; polled by the agent that asked, with
/// a proof of the key the task is bound to.
#[utoipa::path(post, path = "/v1/tasks/{id}/token", tag = "tasks", params(("id" = String, Path, description = "The task (approval) id")),
    responses((status = 200, description = "Issued"), (status = 400, body = crate::problem::Problem, description = "authorization_pending, slow_down, access_denied or expired_token"),
        (status = 404, body = crate::problem::Problem)))]
pub async fn collect(
    State(state): State<AppState>,
    caller: Authenticated,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (task, approval) = state
        .store
        .approval(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no approval '{id}'")))?;
    if caller.principal().id != task.agent_id {
        return Err(ApiError::NotFound(format!("no approval '{id}'")));
    }
    let proved = proved(&state, &caller, &headers, &format!("/v1/tasks/{id}/token"))?;
    if let Err(refusal) = task.binding.admits(&proved) {
        return Err(ApiError::Forbidden(format!(
            "this is not the key this task was asked for with: {refusal}"
        )));
    }
    match state
        .store
        .poll_approval(&id, issue::POLL_INTERVAL * 1000)
        .await?
    {
        Poll::Pending => Err(polling(
            "authorization_pending",
            "the owner has not decided yet; ask again after the interval",
        )),
        Poll::SlowDown => Err(polling(
            "slow_down",
            "polled faster than the interval; wait 5 seconds more between polls",
        )),
        Poll::Denied => Err(polling("access_denied", "the owner refused this task")),
        Poll::Over(task) => Err(polling(
            "expired_token",
            &format!("the request is over ({}); ask again", task.status(now())),
        )),
        Poll::Approved(task) => {
            let requester = requester(&caller, task.client_id.clone());
            let issued = issue::collect(&state, &requester, task, approval.ttl)
                .await
                .map_err(task_error)?;
            Ok((StatusCode::OK, Json(issued_json(&issued))).into_response())
        }
    }
}

fn polling(error: &'static str, description: &str) -> ApiError {
    ApiError::Polling(error, description.to_owned())
}

/// `GET /v1/tasks` query.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only tasks in this state (`pending`, `active`, `completed`, `revoked`, `denied`, `lapsed`).
    pub state: Option<String>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<usize>,
    /// The page after this task id.
    pub cursor: Option<String>,
}

/// Which agents' tasks the caller sees: all with `laissez.tasks.read`,
/// else its own principal's and those of the principals it owns.
pub async fn visible_agents(
    state: &AppState,
    caller: &Authenticated,
    permission: &str,
) -> Result<Option<Vec<String>>, ApiError> {
    if caller.task.is_none() && caller.may(state, permission, &Scope::root()).await? {
        return Ok(None);
    }
    let me = caller.principal();
    let mut agents = vec![me.id.clone()];
    if me.kind.is_human() && caller.task.is_none() {
        agents.extend(
            state
                .store
                .principals()
                .await?
                .into_iter()
                .filter(|p| p.owner_id.as_deref() == Some(me.id.as_str()))
                .map(|p| p.id),
        );
    }
    Ok(Some(agents))
}

/// Lists tasks, newest first (the caller's own agents', or all with `laissez.tasks.read`).
#[utoipa::path(get, path = "/v1/tasks", tag = "tasks", params(ListQuery),
    responses((status = 200, description = "Tasks; the next page's cursor in `Laissez-Next-Cursor`"), (status = 400, body = crate::problem::Problem)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Authenticated,
    Query(query): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let filter_state = match query.state.as_deref() {
        None => None,
        Some(text) => Some(parse_state(text)?),
    };
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let agents = visible_agents(&state, &caller, TASKS_READ).await?;
    let tasks = state
        .store
        .tasks(TaskFilter {
            agents,
            state: filter_state,
            before: query.cursor.clone(),
            limit,
        })
        .await?;
    let tasks: Vec<&TaskRecord> = tasks
        .iter()
        .filter(|t| caller.task.as_ref().is_none_or(|mine| within(mine, t)))
        .collect();
    let mut response =
        Json(json!(tasks.iter().map(|t| view(t)).collect::<Vec<_>>())).into_response();
    if tasks.len() == limit
        && let Some(last) = tasks.last()
        && let Ok(value) = last.id.parse()
    {
        response.headers_mut().insert("laissez-next-cursor", value);
    }
    Ok(response)
}

/// Whether `task` is `mine` or derived from it.
fn within(mine: &TaskRecord, task: &TaskRecord) -> bool {
    task.id == mine.id || task.ancestors.contains(&mine.id)
}

fn parse_state(text: &str) -> Result<TaskState, ApiError> {
    Ok(match text {
        "pending" => TaskState::Pending,
        "active" => TaskState::Active,
        "completed" => TaskState::Completed,
        "revoked" => TaskState::Revoked,
        "denied" => TaskState::Denied,
        "lapsed" => TaskState::Lapsed,
        other => {
            return Err(ApiError::BadRequest(format!(
                "unknown state '{}': use pending, active, completed, revoked, denied or lapsed",
                other.chars().take(20).collect::<String>()
            )));
        }
    })
}

/// A task the caller may see, or 404 (never saying whether it exists).
pub async fn visible_task(
    state: &AppState,
    caller: &Authenticated,
    id: &str,
    permission: &str,
) -> Result<TaskRecord, ApiError> {
    let missing = || {
        ApiError::NotFound(format!(
            "no task '{}' you can see",
            id.chars().take(40).collect::<String>()
        ))
    };
    let task = state.store.task(id).await?.ok_or_else(missing)?;
    let agents = visible_agents(state, caller, permission).await?;
    let seen = agents.is_none_or(|a| a.contains(&task.agent_id))
        && caller.task.as_ref().is_none_or(|mine| within(mine, &task));
    if !seen {
        return Err(missing());
    }
    Ok(task)
}

/// Shows one task.
#[utoipa::path(get, path = "/v1/tasks/{id}", tag = "tasks", params(("id" = String, Path, description = "The task id")),
    responses((status = 200, description = "The task"), (status = 404, body = crate::problem::Problem)))]
pub async fn show(
    State(state): State<AppState>,
    caller: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let task = visible_task(&state, &caller, &id, TASKS_READ).await?;
    let mut body = view(&task);
    if let Some((_, approval)) = state.store.approval(&id).await? {
        body["approval"] = json!(approval);
    }
    Ok(Json(body))
}

/// Completes a task: it and everything derived from it end now, at every
/// gate, before the answer. Completing an ended task changes nothing.
#[utoipa::path(post, path = "/v1/tasks/{id}/complete", tag = "tasks", params(("id" = String, Path, description = "The task id")),
    responses((status = 200, description = "Ended (or already ended)"), (status = 404, body = crate::problem::Problem)))]
pub async fn complete(
    State(state): State<AppState>,
    caller: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let task = visible_task(&state, &caller, &id, TASKS_WRITE).await?;
    let event = caller
        .event("task.complete", task.id.clone())
        .with_detail(json!({"task": task.id, "ancestors": task.ancestors}));
    let (already, ended, task) = end(&state, task, TaskState::Completed, event).await?;
    Ok(Json(json!({
        "task": view(&task),
        "already_ended": already,
        "ended": ended,
    })))
}

/// Ends a task and what derives from it, and waits until gates applied it;
/// then reads the task again, as it is now.
pub async fn end(
    state: &AppState,
    task: TaskRecord,
    how: TaskState,
    event: laissez_core::audit::AuditEvent,
) -> Result<(bool, Vec<String>, TaskRecord), ApiError> {
    let (already, ended) = end_task(state, &task, how, event).await?;
    Ok((
        already,
        ended,
        state.store.task(&task.id).await?.unwrap_or(task),
    ))
}

/// Ends `task` and what derives from it in the store. Gates are told while
/// the commit runs (the task's own id is enough: a derived token names its
/// whole chain), unless it had already ended.
pub async fn end_task(
    state: &AppState,
    task: &TaskRecord,
    how: TaskState,
    event: laissez_core::audit::AuditEvent,
) -> Result<(bool, Vec<String>), laissez_store::Error> {
    let store = state.store.clone();
    let id = task.id.clone();
    let commit = async move { store.end_task(&id, how, event).await };
    if task.state.has_ended() {
        return commit.await;
    }
    let added = crate::oauth::feed::Added {
        ended_tasks: vec![task.id.clone()],
        revoked: Vec::new(),
    };
    state.feed.added_while(added, commit).await
}
