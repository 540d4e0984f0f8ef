//! The OpenAPI 3.1 document served at `/openapi.json`: the admin API from its
//! handlers' types, and the OAuth and well-known endpoints, whose shapes the
//! RFCs define, from the table in [`OAUTH_PATHS`]. Every operation id is
//! `TAG_HANDLER`, unique across the document (a test checks it with a real
//! validator).

use std::collections::HashSet;

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::AppState;
use crate::api;

/// The admin API's description.
#[derive(OpenApi)]
#[openapi(
    info(title = "Laissez admin API", description = "Principals, credentials, policies and the audit log. Errors are RFC 9457 problem details."),
    paths(
        api::health,
        api::ops::ready,
        api::ops::metrics,
        api::catalog::catalog,
        api::whoami::whoami,
        api::principals::create, api::principals::list, api::principals::show,
        api::principals::deactivate, api::principals::activate, api::principals::transfer_owner, api::principals::set_password, api::principals::set_email,
        api::tokens::create, api::tokens::list, api::tokens::show, api::tokens::roll, api::tokens::revoke, api::tokens::revoke_by_secret,
        api::policies::create_role, api::policies::list_roles,
        api::policies::create, api::policies::list, api::policies::remove, api::policies::check,
        api::audit::list, api::audit::verify, api::audit::report,
        api::audit_streams::list, api::audit_streams::replay, api::digests::notify,
        api::settings::show, api::settings::update, api::settings::hygiene, api::settings::rotate_keys,
        api::connected::list, api::connected::disconnect, api::clients::register, api::clients::list, api::resources::put, api::resources::list,
        crate::leaks::report, crate::leaks::check, crate::leaks::list,
        crate::tasks::api::create, crate::tasks::api::list, crate::tasks::api::show,
        crate::tasks::api::collect, crate::tasks::api::complete,
        crate::tasks::approvals::list, crate::tasks::approvals::show,
        crate::tasks::approvals::approve, crate::tasks::approvals::deny,
        crate::tasks::approvals::show_rules, crate::tasks::approvals::update_rules,
    ),
    components(schemas(crate::problem::Problem)),
    modifiers(&BearerAuth, &OAuthEndpoints, &UniqueOperationIds),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A Laissez token, e.g. lzut_..."))
                    .build(),
            ),
        );
    }
}

/// Adds the OAuth authorization server's endpoints and discovery documents.
struct OAuthEndpoints;

impl Modify for OAuthEndpoints {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        // The table is a constant checked by the tests; a mistake in it must
        // not take the whole document down, so it is logged and skipped.
        match serde_json::from_str::<utoipa::openapi::Paths>(OAUTH_PATHS) {
            Ok(paths) => openapi.paths.merge(paths),
            Err(error) => tracing::error!(%error, "OAUTH_PATHS is not a valid paths object"),
        }
    }
}

/// Names every operation `TAG_HANDLER`: handlers in different modules share
/// names (`list`, `create`), and OpenAPI wants operation ids unique.
struct UniqueOperationIds;

impl Modify for UniqueOperationIds {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let mut seen = HashSet::new();
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                let tag = operation
                    .tags
                    .as_ref()
                    .and_then(|tags| tags.first())
                    .cloned()
                    .unwrap_or_else(|| "laissez".into());
                let name = operation.operation_id.clone().unwrap_or_default();
                let mut id = if name.starts_with(&format!("{tag}_")) {
                    name
                } else {
                    format!("{tag}_{name}")
                };
                while !seen.insert(id.clone()) {
                    id.push('_');
                }
                operation.operation_id = Some(id);
            }
        }
    }
}

/// Serves the document.
pub fn routes() -> Router<AppState> {
    Router::new().route("/openapi.json", get(|| async { Json(ApiDoc::openapi()) }))
}

/// The OAuth 2.1 authorization server (RFC 8414, 7591, 7592, 7009, 7662,
/// 7517), its sign-in and consent pages, and the revocation feed gates follow.
const OAUTH_PATHS: &str = r##"{
  "/.well-known/oauth-authorization-server": {"get": {
    "tags": ["oauth"], "operationId": "oauth_metadata", "security": [{}],
    "summary": "Authorization server metadata (RFC 8414)",
    "responses": {"200": {"description": "The metadata document", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
  "/.well-known/openid-configuration": {"get": {
    "tags": ["oauth"], "operationId": "oauth_openid_configuration", "security": [{}],
    "summary": "The same metadata at the OpenID Connect discovery address",
    "responses": {"200": {"description": "The metadata document", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
  "/oauth/jwks": {"get": {
    "tags": ["oauth"], "operationId": "oauth_jwks", "security": [{}],
    "summary": "The public keys access tokens are signed with (RFC 7517)",
    "responses": {"200": {"description": "A JWK set", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
  "/oauth/authorize": {"get": {
    "tags": ["oauth"], "operationId": "oauth_authorize", "security": [{}],
    "summary": "Authorization endpoint: sign-in and consent pages, then a redirect with a code (PKCE S256)",
    "parameters": [
      {"name": "response_type", "in": "query", "required": true, "schema": {"type": "string", "enum": ["code"]}},
      {"name": "client_id", "in": "query", "required": true, "schema": {"type": "string"}},
      {"name": "redirect_uri", "in": "query", "required": true, "schema": {"type": "string"}},
      {"name": "code_challenge", "in": "query", "required": true, "schema": {"type": "string"}},
      {"name": "code_challenge_method", "in": "query", "required": true, "schema": {"type": "string", "enum": ["S256"]}},
      {"name": "scope", "in": "query", "required": false, "schema": {"type": "string"}},
      {"name": "state", "in": "query", "required": false, "schema": {"type": "string"}},
      {"name": "resource", "in": "query", "required": false, "schema": {"type": "string"}}],
    "responses": {"200": {"description": "A sign-in or consent page", "content": {"text/html": {}}},
                  "302": {"description": "Back to the client with a code or an error"},
                  "400": {"description": "A request that cannot be sent back to the client", "content": {"text/html": {}}}}}},
  "/oauth/login": {"post": {
    "tags": ["oauth"], "operationId": "oauth_login", "security": [{}],
    "summary": "The sign-in form's target",
    "requestBody": {"required": true, "content": {"application/x-www-form-urlencoded": {"schema": {"type": "object"}}}},
    "responses": {"200": {"description": "The consent page, or the sign-in page again", "content": {"text/html": {}}},
                  "303": {"description": "On to the next page"}}}},
  "/oauth/consent": {"post": {
    "tags": ["oauth"], "operationId": "oauth_consent", "security": [{}],
    "summary": "The consent form's target",
    "requestBody": {"required": true, "content": {"application/x-www-form-urlencoded": {"schema": {"type": "object"}}}},
    "responses": {"302": {"description": "Back to the client with a code or access_denied"},
                  "400": {"description": "The form is not valid", "content": {"text/html": {}}}}}},
  "/oauth/federate": {"get": {
    "tags": ["oauth"], "operationId": "oauth_federate", "security": [{}],
    "summary": "Sign in through the organization's OpenID Connect provider",
    "responses": {"302": {"description": "To the provider"}}}},
  "/oauth/federate/callback": {"get": {
    "tags": ["oauth"], "operationId": "oauth_federate_callback", "security": [{}],
    "summary": "The provider's redirect back (RFC 9207 iss checked)",
    "parameters": [
      {"name": "code", "in": "query", "required": false, "schema": {"type": "string"}},
      {"name": "state", "in": "query", "required": false, "schema": {"type": "string"}},
      {"name": "iss", "in": "query", "required": false, "schema": {"type": "string"}}],
    "responses": {"303": {"description": "Signed in, on to where the person was going"},
                  "400": {"description": "Refused", "content": {"text/html": {}}}}}},
  "/oauth/token": {"post": {
    "tags": ["oauth"], "operationId": "oauth_token", "security": [{}],
    "summary": "Token endpoint: authorization_code (PKCE), refresh_token (rotating), client_credentials, token exchange for task credentials (RFC 8693), device_code polling of pending tasks; a DPoP header (RFC 9449) binds the tokens",
    "requestBody": {"required": true, "content": {"application/x-www-form-urlencoded": {"schema": {
      "type": "object", "required": ["grant_type"],
      "properties": {"grant_type": {"type": "string"}, "code": {"type": "string"}, "code_verifier": {"type": "string"},
                     "redirect_uri": {"type": "string"}, "refresh_token": {"type": "string"}, "client_id": {"type": "string"},
                     "client_secret": {"type": "string"}, "scope": {"type": "string"}, "resource": {"type": "string"},
                     "subject_token": {"type": "string"}, "subject_token_type": {"type": "string"}, "requested_token_type": {"type": "string"},
                     "audience": {"type": "string"}, "task_description": {"type": "string"}, "task_ttl": {"type": "integer"},
                     "device_code": {"type": "string"}}}}}},
    "responses": {"200": {"description": "Tokens", "content": {"application/json": {"schema": {"type": "object", "required": ["access_token", "token_type"], "properties": {"access_token": {"type": "string"}, "token_type": {"type": "string"}, "expires_in": {"type": "integer"}, "refresh_token": {"type": "string"}, "scope": {"type": "string"}}}}}},
                  "400": {"description": "An OAuth error (RFC 6749 section 5.2)", "content": {"application/json": {"schema": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}}}}}},
                  "401": {"description": "The client failed to authenticate", "content": {"application/json": {"schema": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}}}}}}}}},
  "/oauth/introspect": {"post": {
    "tags": ["oauth"], "operationId": "oauth_introspect",
    "summary": "Token introspection (RFC 7662)",
    "requestBody": {"required": true, "content": {"application/x-www-form-urlencoded": {"schema": {
      "type": "object", "required": ["token"], "properties": {"token": {"type": "string"}, "token_type_hint": {"type": "string"}}}}}},
    "responses": {"200": {"description": "Whether the token is active, and its claims", "content": {"application/json": {"schema": {"type": "object"}}}},
                  "401": {"description": "The caller may not introspect", "content": {"application/json": {"schema": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}}}}}}}}},
  "/oauth/revoke": {"post": {
    "tags": ["oauth"], "operationId": "oauth_revoke", "security": [{}],
    "summary": "Token revocation (RFC 7009)",
    "requestBody": {"required": true, "content": {"application/x-www-form-urlencoded": {"schema": {
      "type": "object", "required": ["token"], "properties": {"token": {"type": "string"}, "token_type_hint": {"type": "string"}}}}}},
    "responses": {"200": {"description": "Revoked (or never valid)"},
                  "400": {"description": "An OAuth error", "content": {"application/json": {"schema": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}}}}}}}}},
  "/oauth/register": {"post": {
    "tags": ["oauth"], "operationId": "oauth_register", "security": [{}],
    "summary": "Dynamic client registration (RFC 7591)",
    "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object"}}}},
    "responses": {"201": {"description": "The client, its registration access token and management URI", "content": {"application/json": {"schema": {"type": "object"}}}},
                  "400": {"description": "invalid_client_metadata or invalid_redirect_uri", "content": {"application/json": {"schema": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}}}}}}}}},
  "/oauth/register/{client_id}": {
    "parameters": [{"name": "client_id", "in": "path", "required": true, "schema": {"type": "string"}}],
    "get": {"tags": ["oauth"], "operationId": "oauth_register_read",
      "summary": "Read a registration (RFC 7592), with its registration access token",
      "responses": {"200": {"description": "The client", "content": {"application/json": {"schema": {"type": "object"}}}},
                    "401": {"description": "Wrong or missing registration access token"}}},
    "put": {"tags": ["oauth"], "operationId": "oauth_register_update",
      "summary": "Replace a registration (RFC 7592)",
      "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object"}}}},
      "responses": {"200": {"description": "The client", "content": {"application/json": {"schema": {"type": "object"}}}},
                    "401": {"description": "Wrong or missing registration access token"}}},
    "delete": {"tags": ["oauth"], "operationId": "oauth_register_delete",
      "summary": "Delete a registration (RFC 7592); its tokens stop working",
      "responses": {"204": {"description": "Deleted"},
                    "401": {"description": "Wrong or missing registration access token"}}}},
  "/oauth/revoked": {"get": {
    "tags": ["oauth"], "operationId": "oauth_revoked",
    "summary": "The revocation feed gates follow with long polls",
    "parameters": [{"name": "after", "in": "query", "required": false, "schema": {"type": "integer"}},
                   {"name": "wait", "in": "query", "required": false, "schema": {"type": "integer"}}],
    "responses": {"200": {"description": "Revocations after the given position", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
  "/account": {"get": {
    "tags": ["account"], "operationId": "account_connected", "security": [{}],
    "summary": "A person's connected applications (a page; signs in first)",
    "responses": {"200": {"description": "The page", "content": {"text/html": {}}},
                  "303": {"description": "To the sign-in page"}}}},
  "/account/disconnect": {"post": {
    "tags": ["account"], "operationId": "account_disconnect", "security": [{}],
    "summary": "End an application's access (the account page's form)",
    "requestBody": {"required": true, "content": {"application/x-www-form-urlencoded": {"schema": {"type": "object"}}}},
    "responses": {"303": {"description": "Back to the account page"}}}}
}"##;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oauth_table_is_a_paths_object() {
        let paths: utoipa::openapi::Paths =
            serde_json::from_str(OAUTH_PATHS).unwrap_or_else(|e| panic!("OAUTH_PATHS: {e}"));
        assert!(paths.paths.contains_key("/oauth/token"));
    }
}
