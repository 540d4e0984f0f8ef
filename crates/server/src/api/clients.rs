//! Pre-registered OAuth clients: an administrator registers an application
//! (its secret, for confidential clients, is shown once) and lists them all,
//! dynamically registered ones included.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use laissez_core::admin::{PRINCIPALS_READ, PRINCIPALS_WRITE};
use laissez_core::credential::hash_secret;
use laissez_core::{PrincipalKind, Scope, Status};
use laissez_oauth::client::{Client, ClientKind, GrantType, RegistrationRequest};
use laissez_token::{Kind, Token};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::page::PageRequest;
use crate::auth::Authenticated;
use crate::problem::{ApiError, ApiJson, Problem};
use crate::{AppState, new_id, now};

/// A registered client as listed (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientView {
    /// The client id.
    pub client_id: String,
    /// `preregistered`, `dynamic` or `metadata_document`.
    pub kind: String,
    /// Its name.
    pub client_name: Option<String>,
    /// Whether it authenticates (with a secret or a key).
    pub confidential: bool,
    /// How: `none`, `client_secret_basic`, `client_secret_post` or `private_key_jwt`.
    pub token_endpoint_auth_method: String,
    /// Allowed redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Allowed grant types.
    pub grant_types: Vec<String>,
    /// Registered scopes.
    pub scope: Option<String>,
    /// Who registered it (pre-registered clients).
    pub owner_id: Option<String>,
    /// The service or agent it acts as with no person present (client credentials).
    pub principal_id: Option<String>,
    /// When.
    pub created_at: i64,
}

fn view(client: &Client) -> ClientView {
    ClientView {
        client_id: client.client_id.clone(),
        kind: client.kind.as_str().to_owned(),
        client_name: client.metadata.client_name.clone(),
        confidential: client.metadata.is_confidential(),
        token_endpoint_auth_method: serde_json::to_value(
            client.metadata.token_endpoint_auth_method,
        )
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default(),
        redirect_uris: client.metadata.redirect_uris.clone(),
        grant_types: client
            .metadata
            .grant_types
            .iter()
            .map(|g| {
                serde_json::to_value(g)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            })
            .collect(),
        scope: client.metadata.scope.clone(),
        owner_id: client.owner_id.clone(),
        principal_id: client.principal_id.clone(),
        created_at: client.created_at,
    }
}

/// An administrator's registration: RFC 7591 metadata, and for a client
/// that uses client credentials the service or agent it acts as.
#[derive(Debug, Deserialize)]
pub struct AdminRegistration {
    /// The client metadata.
    #[serde(flatten)]
    pub metadata: RegistrationRequest,
    /// The service or agent principal (name or id) a client-credentials
    /// client acts as; its policies bound every token the client obtains.
    pub principal: Option<String>,
}

/// Registers a client on an administrator's behalf. The body is RFC 7591
/// client metadata; the answer carries `client_secret` once for confidential clients.
#[utoipa::path(post, path = "/v1/clients", tag = "oauth", request_body = Object,
    responses((status = 201, body = Object), (status = 400, body = Problem), (status = 403, body = Problem)))]
pub async fn register(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiJson(request): ApiJson<AdminRegistration>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let metadata = request
        .metadata
        .validate(ClientKind::Preregistered)
        .map_err(|e| ApiError::BadRequest(e.description))?;
    caller
        .authorize(&state, PRINCIPALS_WRITE, &Scope::root(), None)
        .await?;
    // A client acting with no person present acts as a principal: the
    // caller must be allowed to give that principal a credential.
    let principal_id = match (
        metadata.allows(GrantType::ClientCredentials),
        request.principal.as_deref(),
    ) {
        (false, None) => None,
        (false, Some(_)) => {
            return Err(ApiError::BadRequest(
                "principal is only for clients that use the client_credentials grant".into(),
            ));
        }
        (true, None) => {
            return Err(ApiError::BadRequest(
                "a client_credentials client acts as a service or agent principal: name it (principal, or --principal)".into(),
            ));
        }
        (true, Some(key)) => {
            let principal = super::lookup_principal(&state, key).await?;
            if !matches!(
                principal.kind,
                PrincipalKind::Service | PrincipalKind::Agent
            ) || principal.status != Status::Active
            {
                return Err(ApiError::BadRequest(format!(
                    "'{key}' must be an active service or agent principal"
                )));
            }
            caller
                .may_issue_for(&state, &principal, "client.register")
                .await?;
            Some(principal.id)
        }
    };
    let secret = if metadata.uses_secret() {
        Some(
            Token::generate(&state.namespace, Kind::ClientSecret)
                .map_err(|e| ApiError::Unavailable(e.to_string()))?,
        )
    } else {
        None
    };
    let client = Client {
        client_id: new_id("cli")?,
        kind: ClientKind::Preregistered,
        metadata,
        owner_id: Some(caller.chain[0].id.clone()),
        principal_id,
        created_at: now(),
    };
    let event = caller
        .event("oauth.client.register", client.client_id.clone())
        .with_detail(
            serde_json::json!({"client_name": client.metadata.client_name, "preregistered": true,
                "principal": client.principal_id, "grant_types": client.metadata.grant_types}),
        );
    state
        .store
        .create_client(
            client.clone(),
            secret.as_ref().map(|s| hash_secret(s.expose())),
            None,
            event,
        )
        .await?;
    let mut body = serde_json::to_value(view(&client)).unwrap_or_default();
    if let Some(secret) = secret {
        body["client_secret"] = serde_json::json!(secret.expose());
    }
    Ok((StatusCode::CREATED, Json(body)))
}

/// Which page of clients.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListClients {
    /// Items per page (1 to 1000, default 100).
    pub limit: Option<usize>,
    /// Where the previous page ended (its `Laissez-Next-Cursor`).
    pub cursor: Option<String>,
}

/// Lists registered clients, oldest first, a page at a time.
#[utoipa::path(get, path = "/v1/clients", tag = "oauth", params(ListClients),
    responses((status = 200, body = Vec<ClientView>), (status = 400, body = Problem), (status = 403, body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Authenticated,
    axum::extract::Query(filter): axum::extract::Query<ListClients>,
) -> Result<axum::response::Response, ApiError> {
    let page = PageRequest::parse(filter.limit, filter.cursor.as_deref())?;
    caller
        .authorize(&state, PRINCIPALS_READ, &Scope::root(), None)
        .await?;
    // Paged in the store: anonymous registration can make this list long.
    let after = match &page.after {
        Some(key) => Some(super::page::parse_ascending(key).ok_or_else(|| {
            ApiError::BadRequest("cursor is not one this server gave out".into())
        })?),
        None => None,
    };
    let mut clients = state.store.clients_page(after, page.limit + 1).await?;
    let next = if clients.len() > page.limit {
        clients.truncate(page.limit);
        clients.last().map(|c| {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(super::page::ascending(c.created_at, &c.client_id))
        })
    } else {
        None
    };
    Ok(super::page::Page {
        items: clients.iter().map(view).collect::<Vec<_>>(),
        next,
    }
    .respond("/v1/clients", page.limit))
}
