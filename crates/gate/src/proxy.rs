//! Forwarding: authorize the request, then stream it to the app and the
//! answer back. The agent's token never reaches the app; the app gets who is
//! calling as `X-Laissez-*` headers instead (any such headers from the client
//! are dropped first, so they cannot be forged).

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HOST, WWW_AUTHENTICATE};
use axum::http::{HeaderName, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use laissez_oauth::OAuthScopes;
use serde_json::json;

use crate::Gate;
use crate::dlp::{
    Direction, DlpAction, Exchange, InspectedBody, WHOLE_BODY_LIMIT, blocked_problem,
};
use crate::metadata::metadata_url;

/// The HTTP client that talks to the app.
pub type UpstreamClient = Client<HttpConnector, Body>;

/// A keep-alive client for the app.
pub fn client() -> UpstreamClient {
    Client::builder(TokioExecutor::new()).build_http()
}

const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fn challenge(
    gate: &Gate,
    path: &str,
    status: StatusCode,
    error: Option<(&str, &str)>,
    scopes: &[String],
) -> Response {
    let mut value = format!("Bearer resource_metadata=\"{}\"", metadata_url(gate, path));
    if !scopes.is_empty() {
        value.push_str(&format!(", scope=\"{}\"", scopes.join(" ")));
    }
    if let Some((code, description)) = error {
        value.push_str(&format!(
            ", error=\"{code}\", error_description=\"{}\"",
            description.replace('"', "'")
        ));
    }
    let body = json!({
        "type": "https://laissez.dev/problems/gate",
        "title": if status == StatusCode::FORBIDDEN { "Insufficient scope" } else { "Not authenticated" },
        "status": status.as_u16(),
        "detail": error.map(|(_, d)| d.to_owned()).unwrap_or_else(|| "this app needs an access token from the Laissez authorization server; see the WWW-Authenticate header".into()),
    });
    let mut response = (status, axum::Json(body)).into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert(WWW_AUTHENTICATE, value);
    }
    headers.insert(
        "content-type",
        HeaderValue::from_static("application/problem+json"),
    );
    response
}

/// Largest JSON-RPC body read when MCP tool rules apply.
pub const MAX_RPC_BODY: usize = 1 << 20;

/// The names of the tools a JSON-RPC message (or batch) calls.
pub fn called_tools(body: &[u8]) -> Vec<String> {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Vec::new();
    };
    let messages = match value {
        serde_json::Value::Array(items) => items,
        one => vec![one],
    };
    messages
        .iter()
        .filter(|m| m["method"] == "tools/call")
        .filter_map(|m| m["params"]["name"].as_str().map(str::to_owned))
        .collect()
}

fn too_large() -> Response {
    let body = json!({"type": "https://laissez.dev/problems/payload-too-large", "title": "Request body too large", "status": 413,
        "detail": format!("JSON-RPC bodies through this gate are limited to {MAX_RPC_BODY} bytes")});
    (StatusCode::PAYLOAD_TOO_LARGE, axum::Json(body)).into_response()
}

fn bad_gateway(why: &str) -> Response {
    let body = json!({"type": "https://laissez.dev/problems/upstream", "title": "Bad gateway", "status": 502, "detail": why});
    (StatusCode::BAD_GATEWAY, axum::Json(body)).into_response()
}

/// Authorizes and forwards one request.
pub async fn forward(State(gate): State<Gate>, mut request: Request) -> Response {
    let path = request.uri().path().to_owned();
    let method = request.method().as_str().to_owned();
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    let report = |decision: &str,
                  claims: Option<&laissez_oauth::access_token::AccessTokenClaims>,
                  reason: Option<String>| {
        if let Some(reporter) = &gate.reporter {
            reporter.record(json!({
                "app": gate.config.app,
                "decision": decision,
                "method": method,
                "path": path,
                "user": claims.map(|c| c.sub.clone()),
                "client_id": claims.map(|c| c.client_id.clone()),
                "agent": claims.and_then(|c| c.act.as_ref().map(|a| a.sub.clone())),
                "scope": claims.map(|c| c.scope.clone()),
                "reason": reason,
                "client_ip": peer,
            }));
        }
    };
    let mut required = gate.config.required_scopes(&method, &path).to_vec();
    if method == "POST" && gate.config.has_tool_rules() {
        // MCP: read the (small) JSON-RPC body to see which tools it calls.
        let (parts, body) = request.into_parts();
        let bytes = match axum::body::to_bytes(body, MAX_RPC_BODY).await {
            Ok(bytes) => bytes,
            Err(_) => return too_large(),
        };
        for tool in called_tools(&bytes) {
            if let Some(scopes) = gate.config.tool_scopes(&tool) {
                required.extend(scopes.iter().cloned());
            }
        }
        required.sort();
        required.dedup();
        request = Request::from_parts(parts, Body::from(bytes));
    }
    let token = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .map(str::to_owned);
    // People with browsers: their session's token, or off to sign in.
    let token = match (token, &gate.browsers) {
        (Some(token), _) => Some(token),
        (None, Some(browsers)) => {
            let session = match crate::browser::session_cookie(request.headers()) {
                Some(id) => browsers.access_token(&id).await,
                None => None,
            };
            if session.is_none() && crate::browser::wants_page(request.headers(), &method) {
                let return_to = request
                    .uri()
                    .path_and_query()
                    .map(|p| p.as_str().to_owned())
                    .unwrap_or_else(|| "/".into());
                return browsers.start(&gate, &return_to, &gate.config.scopes_supported());
            }
            session
        }
        (None, None) => None,
    };
    let Some(token) = token else {
        report("unauthenticated", None, Some("no bearer token".into()));
        return challenge(&gate, &path, StatusCode::UNAUTHORIZED, None, &required);
    };
    let claims = match gate.verifier.verify(&token).await {
        Ok(claims) => claims,
        Err(refusal) => {
            tracing::info!(app = %gate.config.app, %refusal, "refused");
            report("unauthenticated", None, Some(refusal.to_string()));
            return challenge(
                &gate,
                &path,
                StatusCode::UNAUTHORIZED,
                Some(("invalid_token", &refusal.to_string())),
                &required,
            );
        }
    };
    let held = OAuthScopes::parse(Some(&claims.scope)).unwrap_or_default();
    let needed = OAuthScopes::from_names(required.iter().map(String::as_str));
    // Both refusals are 403 insufficient_scope: asking the user again (with
    // more scopes, or choosing the account) is how a client gets further.
    let refusal = if !needed.is_subset(&held) {
        let missing = needed.difference(&held);
        Some((
            format!("missing scopes: {missing}"),
            format!("this operation needs: {needed}"),
        ))
    } else if !gate.config.account_allowed(&claims.accounts) {
        let account = gate.config.account.as_deref().unwrap_or_default();
        Some((
            format!("the grant does not include account {account}"),
            format!(
                "the user did not grant this application access to account {account}; ask again and choose it"
            ),
        ))
    } else {
        None
    };
    if let Some((reason, description)) = refusal {
        tracing::info!(app = %gate.config.app, sub = %claims.sub, client = %claims.client_id, %reason, "denied");
        report("deny", Some(&claims), Some(reason));
        return challenge(
            &gate,
            &path,
            StatusCode::FORBIDDEN,
            Some(("insufficient_scope", &description)),
            &required,
        );
    }
    tracing::info!(app = %gate.config.app, sub = %claims.sub, client = %claims.client_id, %method, %path, "allowed");
    report("allow", Some(&claims), None);

    let upstream = gate.config.upstream.as_str().trim_end_matches('/');
    let path_and_query = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let Ok(uri) = format!("{upstream}{path_and_query}").parse::<Uri>() else {
        return bad_gateway("cannot build the upstream URL");
    };
    *request.uri_mut() = uri;
    let original_host = request.headers().get(HOST).cloned();
    let headers = request.headers_mut();
    headers.remove(AUTHORIZATION);
    crate::browser::strip_cookie(headers);
    headers.remove(HOST);
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    let forged: Vec<HeaderName> = headers
        .keys()
        .filter(|k| k.as_str().starts_with("x-laissez-"))
        .cloned()
        .collect();
    for name in forged {
        headers.remove(name);
    }
    let mut set = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    set("x-laissez-user", &claims.sub);
    set("x-laissez-client", &claims.client_id);
    set("x-laissez-scope", &claims.scope);
    if !claims.accounts.is_empty() {
        set("x-laissez-accounts", &claims.accounts.join(" "));
    }
    if let Some(act) = &claims.act {
        set("x-laissez-agent", &act.sub);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let app_origin = gate.config.upstream.origin().ascii_serialization();
    if let Some(assertion) = gate.signer.sign(
        gate.config.resource.as_str().trim_end_matches('/'),
        &app_origin,
        &claims,
        now,
    ) {
        set("x-laissez-assertion", &assertion);
    }
    if let Some(host) = original_host.as_ref().and_then(|h| h.to_str().ok()) {
        set("x-forwarded-host", host);
    }
    let exchange = || Exchange {
        app: gate.config.app.clone(),
        method: method.clone(),
        path: path.clone(),
        user: Some(claims.sub.clone()),
        client_id: Some(claims.client_id.clone()),
    };
    let mut request_blocked = None;
    if let Some(dlp) = gate
        .dlp
        .as_ref()
        .filter(|d| d.settings.request != DlpAction::Off)
    {
        let inspector = dlp.inspector(Direction::Request, false, exchange(), gate.reporter.clone());
        request_blocked = Some(inspector.blocked());
        let (parts, body) = request.into_parts();
        match inspect(parts, body, inspector, Direction::Request).await {
            Ok((parts, body)) => request = Request::from_parts(parts, body),
            Err(response) => return *response,
        }
    }
    let answer = gate.client.request(request).await;
    // A request body cut off by a block: whatever the app made of it, the
    // client hears why.
    if let Some(blocked) = request_blocked.as_ref().and_then(|b| b.get()) {
        return blocked_problem(blocked, Direction::Request);
    }
    match answer {
        Ok(response) => {
            let (mut parts, body) = response.into_parts();
            for name in HOP_BY_HOP {
                parts.headers.remove(name);
            }
            let body = Body::new(body);
            match gate
                .dlp
                .as_ref()
                .filter(|d| d.settings.response != DlpAction::Off)
            {
                Some(dlp) => {
                    let event_stream = parts
                        .headers
                        .get(CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .is_some_and(|v| v.starts_with("text/event-stream"));
                    let inspector = dlp.inspector(
                        Direction::Response,
                        event_stream,
                        exchange(),
                        gate.reporter.clone(),
                    );
                    match inspect(parts, body, inspector, Direction::Response).await {
                        Ok((parts, body)) => Response::from_parts(parts, body),
                        Err(response) => *response,
                    }
                }
                None => Response::from_parts(parts, body),
            }
        }
        Err(e) => {
            tracing::warn!(app = %gate.config.app, error = %e, "upstream failed");
            bad_gateway("the app behind the gate did not answer")
        }
    }
}

/// The parts of a request or response.
trait BodyParts {
    fn headers_mut(&mut self) -> &mut axum::http::HeaderMap;
}

impl BodyParts for axum::http::request::Parts {
    fn headers_mut(&mut self) -> &mut axum::http::HeaderMap {
        &mut self.headers
    }
}

impl BodyParts for axum::http::response::Parts {
    fn headers_mut(&mut self) -> &mut axum::http::HeaderMap {
        &mut self.headers
    }
}

/// Runs a body through DLP: a small one whole (so a block stops it before
/// any of it passes), a large or unsized one as it streams (cut off at a
/// block). Returns the parts and body to send on, or the refusal.
async fn inspect<P: BodyParts>(
    mut parts: P,
    body: Body,
    mut inspector: crate::dlp::Inspector,
    direction: Direction,
) -> Result<(P, Body), Box<Response>> {
    let headers = parts.headers_mut();
    let length = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let event_stream = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let whole = inspector.action() == DlpAction::Block
        && !event_stream
        && length.is_some_and(|l| l <= WHOLE_BODY_LIMIT);
    if whole {
        let bytes = match axum::body::to_bytes(body, WHOLE_BODY_LIMIT).await {
            Ok(bytes) => bytes,
            Err(_) => return Err(Box::new(bad_gateway("the body did not arrive whole"))),
        };
        let out = inspector
            .whole(&bytes)
            .map_err(|blocked| Box::new(blocked_problem(&blocked, direction)))?;
        if let Ok(value) = HeaderValue::from_str(&out.len().to_string()) {
            headers.insert(CONTENT_LENGTH, value);
        }
        return Ok((parts, Body::from(out)));
    }
    // Redaction keeps lengths, except in event streams, whose events are
    // rewritten (they carry no length anyway).
    if event_stream {
        headers.remove(CONTENT_LENGTH);
    }
    let length = if event_stream {
        None
    } else {
        length.map(|l| l as u64)
    };
    Ok((
        parts,
        Body::new(InspectedBody::new(body, inspector, length)),
    ))
}

#[cfg(test)]
mod tests {
    use super::called_tools;

    #[test]
    fn finds_tool_calls_in_messages_and_batches() {
        assert_eq!(
            called_tools(
                br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"write_note"}}"#
            ),
            ["write_note"]
        );
        let batch = br#"[{"method":"tools/list"},{"method":"tools/call","params":{"name":"a"}},{"method":"tools/call","params":{"name":"b"}}]"#;
        assert_eq!(called_tools(batch), ["a", "b"]);
        assert!(called_tools(b"not json").is_empty());
        assert!(called_tools(br#"{"method":"tools/call"}"#).is_empty());
    }
}
