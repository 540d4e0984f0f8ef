//! Task credentials: a pass for one task, asked for by an agent (REST here,
//! OAuth token exchange in [`crate::oauth`]), bounded by everything along its
//! chain, bound to the agent's key, approved by a human when it is long or
//! sensitive, and ended with everything derived from it when the task
//! completes. Expired tasks leave the hot tables by [`prune`].

pub mod api;
pub mod approvals;
pub mod issue;

use axum::Router;
use axum::routing::{get, post};

use crate::AppState;

/// How long an expired task stays listed before it is pruned, seconds.
pub const RETENTION: i64 = 3600;

/// The routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/tasks", post(api::create).get(api::list))
        .route("/v1/tasks/{id}", get(api::show))
        .route("/v1/tasks/{id}/token", post(api::collect))
        .route("/v1/tasks/{id}/complete", post(api::complete))
        .route("/v1/approvals", get(approvals::list))
        .route("/v1/approvals/{id}", get(approvals::show))
        .route("/v1/approvals/{id}/approve", post(approvals::approve))
        .route("/v1/approvals/{id}/deny", post(approvals::deny))
        .route(
            "/v1/settings/tasks",
            get(approvals::show_rules).put(approvals::update_rules),
        )
}

/// Prunes expired tasks every minute until the server stops.
pub async fn prune(state: AppState, mut stopped: tokio::sync::watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = stopped.wait_for(|s| *s) => return,
            () = tokio::time::sleep(std::time::Duration::from_secs(60)) => {}
        }
        match state.store.prune_tasks(crate::now() - RETENTION).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(pruned = n, "pruned expired tasks"),
            Err(error) => tracing::warn!(%error, "cannot prune expired tasks"),
        }
    }
}
