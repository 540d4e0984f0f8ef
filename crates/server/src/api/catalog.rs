//! The API catalog (RFC 9727) at `/.well-known/api-catalog`: an RFC 9264
//! linkset that lets an agent find, from the authorization server alone,
//! every API it fronts: the server's own admin API (its OpenAPI document as
//! `service-desc`, its RFC 8414 metadata as `service-meta`) and each
//! registered protected resource, with its RFC 9728 metadata as
//! `service-meta` and `describedby`.
//!
//! Public, like the metadata documents it points to: an agent reads it
//! before it holds any credential. It names resources and their public
//! URLs, nothing more (no upstreams, no gate settings).

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::AppState;
use crate::problem::ApiError;

/// The media type of the catalog, with the RFC 9727 profile.
pub const CONTENT_TYPE: &str =
    "application/linkset+json; profile=\"https://www.rfc-editor.org/info/rfc9727\"";

/// The catalog: a linkset whose first context is the catalog itself (an
/// `item` per API), then one context per API.
#[utoipa::path(get, path = "/.well-known/api-catalog", tag = "meta",
    responses((status = 200, description = "RFC 9727 API catalog (application/linkset+json)")))]
pub async fn catalog(State(state): State<AppState>) -> Result<Response, ApiError> {
    let base = state.issuer.trim_end_matches('/');
    let server_api = format!("{base}/");
    let mut titles = vec!["Laissez admin API and OAuth authorization server".to_owned()];
    let mut apis = vec![json!({
        "anchor": server_api,
        "service-desc": [{"href": format!("{base}/openapi.json"), "type": "application/vnd.oai.openapi+json"}],
        "service-meta": [{"href": format!("{base}/.well-known/oauth-authorization-server"), "type": "application/json"}],
    })];
    let mut resources = state.store.resources().await?;
    resources.sort_by(|a, b| a.resource.cmp(&b.resource));
    for resource in resources {
        let Some(metadata) = protected_resource_metadata(&resource.resource) else {
            continue;
        };
        let link = json!([{"href": metadata, "type": "application/json"}]);
        titles.push(resource.name);
        apis.push(json!({
            "anchor": resource.resource,
            "service-meta": link,
            "describedby": link,
        }));
    }
    let items: Vec<Value> = apis
        .iter()
        .zip(&titles)
        .map(|(api, title)| json!({"href": api["anchor"], "title": title}))
        .collect();
    let mut linkset = vec![json!({
        "anchor": format!("{base}/.well-known/api-catalog"),
        "item": items,
    })];
    linkset.extend(apis);
    let mut response = axum::Json(json!({ "linkset": linkset })).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    Ok(response)
}

/// The RFC 9728 metadata URL of `resource`: the well-known path inserted
/// between its origin and its path.
pub fn protected_resource_metadata(resource: &str) -> Option<String> {
    let url = url::Url::parse(resource).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    let origin = url.origin().ascii_serialization();
    let path = url.path().trim_end_matches('/');
    Some(format!(
        "{origin}/.well-known/oauth-protected-resource{path}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_urls_insert_the_well_known_path_before_the_resource_path() {
        assert_eq!(
            protected_resource_metadata("https://wiki.example.com").as_deref(),
            Some("https://wiki.example.com/.well-known/oauth-protected-resource")
        );
        assert_eq!(
            protected_resource_metadata("https://apps.example.com:8443/wiki/").as_deref(),
            Some("https://apps.example.com:8443/.well-known/oauth-protected-resource/wiki")
        );
        assert_eq!(protected_resource_metadata("urn:x"), None);
    }
}
