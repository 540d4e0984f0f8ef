//! `whoami`: what the presented credential is, for agents and scripts to
//! check what they hold.

use axum::Json;
use axum::extract::State;
use laissez_core::credential::Credential;
use laissez_core::principal::format_chain;
use laissez_core::{Policy, PrincipalRef};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::Authenticated;
use crate::problem::{ApiError, Problem};

/// Who the caller is.
#[derive(Debug, Serialize, ToSchema)]
pub struct WhoAmI {
    /// The credential's principal.
    pub principal: PrincipalRef,
    /// Its human owner (the principal itself for users).
    pub owner: PrincipalRef,
    /// The delegation chain, human first.
    pub chain: Vec<PrincipalRef>,
    /// The chain as text, e.g. `user:alice → agent:bot`.
    pub chain_text: String,
    /// The credential presented (never its secret).
    pub credential: Credential,
    /// The principal's own policies; the credential's restriction narrows them.
    pub policies: Vec<Policy>,
    /// When the credential is a task token: the task, whose grants bound
    /// every action (as `GET /v1/tasks/{id}` shows it).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub task: Option<serde_json::Value>,
}

/// Describes the presented credential. Any valid credential may call it.
#[utoipa::path(get, path = "/v1/whoami", tag = "meta",
    responses((status = 200, body = WhoAmI), (status = 401, body = Problem)))]
pub async fn whoami(
    State(state): State<AppState>,
    caller: Authenticated,
) -> Result<Json<WhoAmI>, ApiError> {
    let chain = caller.refs();
    let principal = caller.principal().reference();
    let policies = state.store.policies(Some(&principal.id)).await?;
    Ok(Json(WhoAmI {
        owner: chain[0].clone(),
        chain_text: format_chain(&chain),
        principal,
        chain,
        task: caller.task.as_ref().map(crate::tasks::api::view),
        credential: caller.credential,
        policies,
    }))
}
