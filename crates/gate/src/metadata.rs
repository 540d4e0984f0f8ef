//! RFC 9728 protected resource metadata, at
//! `/.well-known/oauth-protected-resource` and at the path-inserted form
//! `/.well-known/oauth-protected-resource/<path>`, whose `resource` is the URL
//! the client connected to; and the app's API catalog (RFC 9727) at
//! `/.well-known/api-catalog`, an RFC 9264 linkset pointing at that
//! metadata and at the authorization server's own catalog.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::json;

use crate::Gate;

/// The resource URL for a path on this gate.
pub fn resource_for(gate: &Gate, path: Option<&str>) -> String {
    let base = gate.config.resource.as_str().trim_end_matches('/');
    match path.map(|p| p.trim_matches('/')).filter(|p| !p.is_empty()) {
        Some(path) => format!("{base}/{path}"),
        None => base.to_owned(),
    }
}

/// The metadata URL a client should read for a request path.
pub fn metadata_url(gate: &Gate, path: &str) -> String {
    let base = gate.config.resource.as_str().trim_end_matches('/');
    let path = path.trim_matches('/');
    if path.is_empty() {
        format!("{base}/.well-known/oauth-protected-resource")
    } else {
        format!("{base}/.well-known/oauth-protected-resource/{path}")
    }
}

/// Serves the metadata document.
pub async fn document(State(gate): State<Gate>, path: Option<Path<String>>) -> impl IntoResponse {
    let path = path.map(|Path(p)| p);
    let body = json!({
        "resource": resource_for(&gate, path.as_deref()),
        "authorization_servers": [gate.config.issuer],
        "scopes_supported": gate.config.scopes_supported(),
        "bearer_methods_supported": ["header"],
        "resource_name": gate.config.app,
        "dpop_signing_alg_values_supported": laissez_dpop::ALGORITHMS,
        "dpop_bound_access_tokens_required": gate.config.require_dpop,
    });
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        axum::Json(body),
    )
}

/// The media type of the API catalog, with the RFC 9727 profile.
pub const CATALOG_TYPE: &str =
    "application/linkset+json; profile=\"https://www.rfc-editor.org/info/rfc9727\"";

/// Serves the app's API catalog: the catalog names the app as its one
/// `item`; the app's context links its RFC 9728 metadata (`service-meta`,
/// `describedby`) and the issuer's catalog (`related`).
pub async fn catalog(State(gate): State<Gate>) -> impl IntoResponse {
    let resource = resource_for(&gate, None);
    let metadata = json!([{"href": metadata_url(&gate, ""), "type": "application/json"}]);
    let issuer = gate.config.issuer.trim_end_matches('/');
    let body = json!({"linkset": [
        {
            "anchor": format!("{resource}/.well-known/api-catalog"),
            "item": [{"href": resource, "title": gate.config.app}],
        },
        {
            "anchor": resource,
            "service-meta": metadata,
            "describedby": metadata,
            "related": [{"href": format!("{issuer}/.well-known/api-catalog"), "type": "application/linkset+json"}],
        },
    ]});
    (
        [
            (header::CONTENT_TYPE, CATALOG_TYPE),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        axum::Json(body),
    )
}
