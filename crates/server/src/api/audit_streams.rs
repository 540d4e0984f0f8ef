//! The audit streams' state (`GET /v1/audit/streams`: where each sink's
//! cursor is and how far behind the log it is) and replaying a sink from a
//! sequence number (`POST /v1/audit/streams/{sink}/replay`), which moves its
//! cursor back only: records are never skipped.

use axum::Json;
use axum::extract::{Path, State};
use laissez_core::Scope;
use laissez_core::admin::{AUDIT_READ, SETTINGS_WRITE};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::Authenticated;
use crate::problem::{ApiError, ApiJson, Problem};

/// One sink's state.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StreamState {
    /// `webhook` or `syslog`.
    pub sink: String,
    /// The `seq` of the last record it delivered.
    pub delivered_through: i64,
    /// The `seq` of the newest record.
    pub newest: i64,
    /// Records written but not delivered yet.
    pub behind: i64,
}

/// Where to replay from.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Replay {
    /// Deliver again every record with `seq` above this one.
    pub after: i64,
}

/// The configured audit streams and how far each has delivered.
#[utoipa::path(get, path = "/v1/audit/streams", tag = "audit",
    responses((status = 200, body = Vec<StreamState>), (status = 403, body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Authenticated,
) -> Result<Json<Vec<StreamState>>, ApiError> {
    caller
        .authorize(&state, AUDIT_READ, &Scope::root(), None)
        .await?;
    let newest = state.store.audit_last_seq().await?;
    let mut streams = Vec::new();
    for sink in &state.audit_sinks {
        let delivered_through = state.store.stream_cursor(sink).await?;
        streams.push(StreamState {
            sink: (*sink).to_owned(),
            delivered_through,
            newest,
            behind: (newest - delivered_through).max(0),
        });
    }
    Ok(Json(streams))
}

/// Delivers a sink's records again from a sequence number on: its cursor
/// moves back to `after` (never forward, which would skip records).
#[utoipa::path(post, path = "/v1/audit/streams/{sink}/replay", tag = "audit",
    params(("sink" = String, Path, description = "webhook or syslog")), request_body = Replay,
    responses((status = 200, body = StreamState), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn replay(
    State(state): State<AppState>,
    caller: Authenticated,
    Path(sink): Path<String>,
    ApiJson(replay): ApiJson<Replay>,
) -> Result<Json<StreamState>, ApiError> {
    caller
        .authorize(&state, SETTINGS_WRITE, &Scope::root(), None)
        .await?;
    let Some(sink) = state.audit_sinks.iter().find(|s| **s == sink) else {
        return Err(ApiError::NotFound(format!(
            "no audit stream '{}' (configured: {})",
            sink.chars().take(40).collect::<String>(),
            state.audit_sinks.join(", ")
        )));
    };
    let current = state.store.stream_cursor(sink).await?;
    let after =
        crate::audit_stream::replay_target(current, replay.after).map_err(ApiError::BadRequest)?;
    let event = caller
        .event("audit.stream.replay", *sink)
        .with_detail(serde_json::json!({"from": current, "after": after}));
    state
        .store
        .set_stream_cursor(sink, after, Some(event))
        .await?;
    let newest = state.store.audit_last_seq().await?;
    Ok(Json(StreamState {
        sink: (*sink).to_owned(),
        delivered_through: after,
        newest,
        behind: (newest - after).max(0),
    }))
}
