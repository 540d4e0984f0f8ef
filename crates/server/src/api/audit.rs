//! Reading and verifying the audit log.

use axum::Json;
use axum::extract::{Query, State};
use laissez_core::Scope;
use laissez_core::admin::AUDIT_READ;
use laissez_core::audit::{AuditRecord, Verification};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::AppState;
use crate::auth::Authenticated;
use crate::problem::{ApiError, Problem};

/// Most records one page returns.
pub const MAX_PAGE: usize = 1000;

/// A page of the log.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct Page {
    /// Records after this `seq` (0 for the start).
    #[serde(default)]
    pub after: i64,
    /// How many (at most 1000; default 100).
    pub limit: Option<usize>,
}

/// Audit records in order, a page at a time (page with `after` = last `seq`).
#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(Page),
    responses((status = 200, body = Vec<AuditRecord>), (status = 400, body = Problem), (status = 403, body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Authenticated,
    Query(page): Query<Page>,
) -> Result<Json<Vec<AuditRecord>>, ApiError> {
    let limit = page.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_PAGE || page.after < 0 {
        return Err(ApiError::BadRequest(format!(
            "limit must be 1 to {MAX_PAGE} and after must be 0 or more"
        )));
    }
    caller
        .authorize(&state, AUDIT_READ, &Scope::root(), None)
        .await?;
    Ok(Json(state.store.audit_records(page.after, limit).await?))
}

/// Walks the whole hash chain and names the first record that does not fit.
#[utoipa::path(get, path = "/v1/audit/verify", tag = "audit",
    responses((status = 200, body = Verification), (status = 403, body = Problem)))]
pub async fn verify(
    State(state): State<AppState>,
    caller: Authenticated,
) -> Result<Json<Verification>, ApiError> {
    caller
        .authorize(&state, AUDIT_READ, &Scope::root(), None)
        .await?;
    Ok(Json(state.store.verify_audit().await?))
}
