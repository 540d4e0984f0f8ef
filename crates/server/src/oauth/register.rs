//! Dynamic client registration (RFC 7591) and its management (RFC 7592:
//! read, update, delete with the registration access token). Open, as MCP
//! clients expect: the registration itself grants nothing; a user still has
//! to consent before a client acts for them, and a self-registered client
//! can never use client credentials. Being open, it is bounded: requests per
//! network (/24, /64) and overall are rate limited, bodies and fields are
//! size-limited, and clients that never obtain a token expire. A gate
//! registering its own sign-in client says so with its credential (the
//! `laissez-gate` role): that client is owned by the gate's principal, is
//! not rate limited and does not expire while unused.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use laissez_core::admin::AUDIT_WRITE;
use laissez_core::audit::AuditEvent;
use laissez_core::credential::hash_secret;
use laissez_core::scope::Scope;
use laissez_oauth::client::{Client, ClientKind, RegistrationRequest};
use laissez_oauth::{ErrorCode, OAuthError};
use laissez_token::{Kind, Token};
use serde_json::json;

use super::response::{OAuthFailure, OAuthJson, no_store};
use crate::auth::Authenticated;
use crate::{AppState, new_id, now};

/// Largest registration body, bytes.
pub const MAX_REGISTRATION: usize = 16 * 1024;

/// Registers a client and returns its id (and secret, for confidential clients) once.
pub async fn register(State(state): State<AppState>, request: Request) -> Response {
    let address = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let (mut parts, body) = request.into_parts();
    // A credential, when sent, must be a gate's: never fall back to anonymous.
    let owner = if parts.headers.contains_key(header::AUTHORIZATION) {
        match registering_gate(&state, &mut parts).await {
            Ok(owner) => Some(owner),
            Err(refusal) => return refusal,
        }
    } else {
        None
    };
    if owner.is_none()
        && let Err(retry_after) = state.registrations.admit(address, Instant::now())
    {
        return too_many(retry_after);
    }
    let request = Request::from_parts(parts, body);
    let body = match axum::body::to_bytes(request.into_body(), MAX_REGISTRATION).await {
        Ok(body) => body,
        Err(_) => {
            return OAuthFailure(OAuthError::new(
                ErrorCode::InvalidClientMetadata,
                format!("the client metadata is larger than {MAX_REGISTRATION} bytes"),
            ))
            .into_response();
        }
    };
    // Clients registered and never used expire; sweep as new ones arrive.
    let before = now() - state.registrations.unused_ttl;
    if let Err(error) = state.store.expire_unused_clients(before).await {
        tracing::warn!(%error, "cannot expire unused clients");
    }
    match create(&state, &body, owner).await {
        Ok(response) => response,
        Err(failure) => failure.into_response(),
    }
}

fn too_many(retry_after: u64) -> Response {
    let mut response = OAuthFailure(OAuthError::invalid_request(
        "too many client registrations from this network or in total; try again later",
    ))
    .into_response();
    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    if let Ok(value) = HeaderValue::from_str(&retry_after.max(1).to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// The principal of a gate registering its own sign-in client, or the
/// refusal for a credential that is not a gate's.
async fn registering_gate(
    state: &AppState,
    parts: &mut axum::http::request::Parts,
) -> Result<String, Response> {
    let caller = Authenticated::from_request_parts(parts, state)
        .await
        .map_err(IntoResponse::into_response)?;
    caller
        .authorize(state, AUDIT_WRITE, &Scope::root(), None)
        .await
        .map_err(IntoResponse::into_response)?;
    Ok(caller.chain[0].id.clone())
}

async fn create(
    state: &AppState,
    body: &[u8],
    owner_id: Option<String>,
) -> Result<Response, OAuthFailure> {
    let metadata = RegistrationRequest::parse(body, ClientKind::Dynamic)?;
    let server_error = |e: String| OAuthFailure(OAuthError::new(ErrorCode::ServerError, e));
    let client_id = new_id("cli").map_err(|e| server_error(e.to_string()))?;
    let secret = if metadata.uses_secret() {
        Some(
            Token::generate(&state.namespace, Kind::ClientSecret)
                .map_err(|e| server_error(e.to_string()))?,
        )
    } else {
        None
    };
    let issued_at = now();
    // RFC 7592: the bearer credential for reading, updating and deleting this registration.
    let registration = Token::generate(&state.namespace, Kind::ClientSecret)
        .map_err(|e| server_error(e.to_string()))?;
    let client = Client {
        client_id: client_id.clone(),
        kind: ClientKind::Dynamic,
        metadata: metadata.clone(),
        owner_id,
        principal_id: None,
        created_at: issued_at,
    };
    let audit =
        AuditEvent::success(&[], "oauth.client.register", client_id.clone()).with_detail(json!({
            "client_name": metadata.client_name,
            "redirect_uris": metadata.redirect_uris,
            "grant_types": metadata.grant_types,
            "confidential": metadata.is_confidential(),
        }));
    state
        .store
        .create_client(
            client,
            secret.as_ref().map(|s| hash_secret(s.expose())),
            Some(hash_secret(registration.expose())),
            audit,
        )
        .await?;
    let mut body = serde_json::to_value(&metadata).unwrap_or_default();
    body["client_id"] = json!(client_id);
    body["client_id_issued_at"] = json!(issued_at);
    body["registration_access_token"] = json!(registration.expose());
    body["registration_client_uri"] = json!(format!(
        "{}/oauth/register/{client_id}",
        state.issuer.trim_end_matches('/')
    ));
    if let Some(secret) = &secret {
        body["client_secret"] = json!(secret.expose());
        body["client_secret_expires_at"] = json!(0);
    }
    Ok(no_store(StatusCode::CREATED, &body))
}

/// Authenticates an RFC 7592 request by its registration access token.
async fn registered(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    client_id: &str,
) -> Result<Client, Response> {
    use subtle::ConstantTimeEq;
    let refuse = || {
        let mut response = (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "invalid_token", "error_description": "send this client's registration_access_token as a Bearer token"})),
        )
            .into_response();
        response.headers_mut().insert(
            axum::http::header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Bearer error=\"invalid_token\""),
        );
        response
    };
    let presented = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| Token::parse(t).is_ok())
        .ok_or_else(refuse)?;
    let stored = state
        .store
        .registration_token(client_id)
        .await
        .map_err(|e| OAuthFailure::from(e).into_response())?;
    let client = state
        .store
        .client(client_id)
        .await
        .map_err(|e| OAuthFailure::from(e).into_response())?;
    match (stored, client) {
        (Some(stored), Some((client, _))) if bool::from(hash_secret(presented).ct_eq(&stored)) => {
            Ok(client)
        }
        _ => Err(refuse()),
    }
}

fn client_document(state: &AppState, client: &Client) -> serde_json::Value {
    let mut body = serde_json::to_value(&client.metadata).unwrap_or_default();
    body["client_id"] = json!(client.client_id);
    body["client_id_issued_at"] = json!(client.created_at);
    body["registration_client_uri"] = json!(format!(
        "{}/oauth/register/{}",
        state.issuer.trim_end_matches('/'),
        client.client_id
    ));
    body
}

/// RFC 7592 read.
pub async fn read(
    State(state): State<AppState>,
    axum::extract::Path(client_id): axum::extract::Path<String>,
    headers: axum::http::HeaderMap,
) -> Response {
    match registered(&state, &headers, &client_id).await {
        Ok(client) => no_store(StatusCode::OK, &client_document(&state, &client)),
        Err(response) => response,
    }
}

/// RFC 7592 update: the body is the complete new metadata, with `client_id`.
pub async fn update(
    State(state): State<AppState>,
    axum::extract::Path(client_id): axum::extract::Path<String>,
    headers: axum::http::HeaderMap,
    OAuthJson(document): OAuthJson<serde_json::Value>,
) -> Response {
    let mut client = match registered(&state, &headers, &client_id).await {
        Ok(client) => client,
        Err(response) => return response,
    };
    if document["client_id"] != client_id.as_str() {
        return OAuthFailure(OAuthError::invalid_request(
            "the body's client_id must be the client's",
        ))
        .into_response();
    }
    if document.get("client_secret").is_some()
        || document.get("registration_access_token").is_some()
    {
        return OAuthFailure(OAuthError::new(
            ErrorCode::InvalidClientMetadata,
            "secrets cannot be set by an update",
        ))
        .into_response();
    }
    let request: RegistrationRequest = match serde_json::from_value(document) {
        Ok(request) => request,
        Err(e) => {
            return OAuthFailure(OAuthError::new(
                ErrorCode::InvalidClientMetadata,
                e.to_string(),
            ))
            .into_response();
        }
    };
    let metadata = match request.validate(client.kind) {
        Ok(metadata) => metadata,
        Err(e) => return OAuthFailure(e).into_response(),
    };
    if metadata.is_confidential() != client.metadata.is_confidential()
        || metadata.uses_secret() != client.metadata.uses_secret()
    {
        return OAuthFailure(OAuthError::new(
            ErrorCode::InvalidClientMetadata,
            "a client cannot switch between public, secret and private_key_jwt authentication; register a new one",
        ))
        .into_response();
    }
    client.metadata = metadata;
    let audit = AuditEvent::success(&[], "oauth.client.update", client_id.clone());
    if let Err(e) = state.store.update_client(client.clone(), audit).await {
        return OAuthFailure::from(e).into_response();
    }
    no_store(StatusCode::OK, &client_document(&state, &client))
}

/// RFC 7592 delete: the client and every grant to it end.
pub async fn delete(
    State(state): State<AppState>,
    axum::extract::Path(client_id): axum::extract::Path<String>,
    headers: axum::http::HeaderMap,
) -> Response {
    if let Err(response) = registered(&state, &headers, &client_id).await {
        return response;
    }
    let audit = AuditEvent::success(&[], "oauth.client.delete", client_id.clone());
    match state.store.delete_client(&client_id, audit).await {
        Ok(()) => {
            state.feed.published().await;
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => OAuthFailure::from(e).into_response(),
    }
}

/// Rate limits of anonymous registration and the lifetime of clients that
/// are never used.
pub struct RegistrationLimits {
    /// Seconds after which a dynamically registered client that never
    /// obtained a token is deleted.
    pub unused_ttl: i64,
    per_network: Rate,
    overall: Rate,
    buckets: Mutex<(HashMap<String, Bucket>, Bucket)>,
}

/// Default lifetime of a registered client that is never used: a day.
pub const UNUSED_CLIENT_TTL: i64 = 86_400;

impl RegistrationLimits {
    /// The default rates, with unused self-registered clients living `seconds`.
    pub fn with_unused_ttl(seconds: i64) -> RegistrationLimits {
        RegistrationLimits {
            unused_ttl: seconds,
            ..RegistrationLimits::default()
        }
    }
}

impl Default for RegistrationLimits {
    fn default() -> RegistrationLimits {
        RegistrationLimits::new(
            UNUSED_CLIENT_TTL,
            // A network: 30 at once, then one every 10 s.
            Rate {
                burst: 30.0,
                per_second: 0.1,
            },
            // Everyone: 300 at once, then 10 a second.
            Rate {
                burst: 300.0,
                per_second: 10.0,
            },
        )
    }
}

/// A token bucket's shape.
#[derive(Clone, Copy, Debug)]
pub struct Rate {
    /// Requests allowed at once.
    pub burst: f64,
    /// Requests regained per second.
    pub per_second: f64,
}

/// A token bucket.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(rate: Rate, now: Instant) -> Bucket {
        Bucket {
            tokens: rate.burst,
            at: now,
        }
    }

    fn refill(&mut self, rate: Rate, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate.per_second).min(rate.burst);
        self.at = now;
    }

    /// Seconds until one token is back (0 when there is one now).
    fn wait(&self, rate: Rate) -> u64 {
        if self.tokens >= 1.0 || rate.per_second <= 0.0 {
            return 0;
        }
        ((1.0 - self.tokens) / rate.per_second).ceil() as u64
    }
}

/// Networks tracked at most (full buckets are forgotten first).
const MAX_NETWORKS: usize = 10_000;

impl RegistrationLimits {
    /// Limits with these rates; `unused_ttl` in seconds.
    pub fn new(unused_ttl: i64, per_network: Rate, overall: Rate) -> RegistrationLimits {
        let now = Instant::now();
        RegistrationLimits {
            unused_ttl,
            per_network,
            overall,
            buckets: Mutex::new((HashMap::new(), Bucket::full(overall, now))),
        }
    }

    /// Admits one registration from `address` at `now`, or says how many
    /// seconds to wait. Both the caller's network and the total must have
    /// room; a refused request takes nothing from either. An unknown address
    /// counts as one network of its own.
    pub fn admit(&self, address: Option<IpAddr>, now: Instant) -> Result<(), u64> {
        let Ok(mut guard) = self.buckets.lock() else {
            return Err(1);
        };
        let (networks, overall) = &mut *guard;
        if networks.len() >= MAX_NETWORKS {
            let rate = self.per_network;
            networks.retain(|_, b| {
                b.refill(rate, now);
                b.tokens < rate.burst
            });
            if networks.len() >= MAX_NETWORKS {
                return Err(overall.wait(self.overall).max(1));
            }
        }
        let key = address.map_or_else(|| "unknown".to_owned(), network_of);
        let network = networks
            .entry(key)
            .or_insert_with(|| Bucket::full(self.per_network, now));
        network.refill(self.per_network, now);
        overall.refill(self.overall, now);
        if network.tokens < 1.0 {
            return Err(network.wait(self.per_network));
        }
        if overall.tokens < 1.0 {
            return Err(overall.wait(self.overall));
        }
        network.tokens -= 1.0;
        overall.tokens -= 1.0;
        Ok(())
    }
}

/// The network an address is counted in: its /24 for IPv4 (IPv4-mapped
/// IPv6 included), its /64 for IPv6.
pub fn network_of(address: IpAddr) -> String {
    let address = match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    match address {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn networks_are_slash_24_and_slash_64() {
        for (a, b, same) in [
            ("192.0.2.1", "192.0.2.254", true),
            ("192.0.2.1", "192.0.3.1", false),
            ("::ffff:192.0.2.9", "192.0.2.1", true),
            ("2001:db8:1:2::1", "2001:db8:1:2:ffff::9", true),
            ("2001:db8:1:2::1", "2001:db8:1:3::1", false),
        ] {
            let (a, b): (IpAddr, IpAddr) = (a.parse().unwrap(), b.parse().unwrap());
            assert_eq!(network_of(a) == network_of(b), same, "{a} {b}");
        }
    }

    #[test]
    fn limits_per_network_and_overall() {
        let limits = RegistrationLimits::new(
            60,
            Rate {
                burst: 3.0,
                per_second: 1.0,
            },
            Rate {
                burst: 5.0,
                per_second: 1.0,
            },
        );
        let start = Instant::now();
        let one: IpAddr = "192.0.2.1".parse().unwrap();
        let neighbour: IpAddr = "192.0.2.200".parse().unwrap();
        let other: IpAddr = "198.51.100.1".parse().unwrap();
        for _ in 0..3 {
            assert!(limits.admit(Some(one), start).is_ok());
        }
        // The /24 is spent, whichever address in it asks.
        assert_eq!(limits.admit(Some(neighbour), start), Err(1));
        assert!(limits.admit(Some(other), start).is_ok());
        assert!(limits.admit(Some(other), start).is_ok());
        // Five in total: the overall bucket is spent for everyone.
        let third: IpAddr = "203.0.113.1".parse().unwrap();
        assert!(limits.admit(Some(third), start).is_err());
        // Time refills both.
        let later = start + Duration::from_secs(2);
        assert!(limits.admit(Some(one), later).is_ok());
        assert!(limits.admit(Some(third), later).is_ok());
    }
}
