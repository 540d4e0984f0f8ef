//! Forwarding: gather a request's facts, decide, then stream it to the app
//! and the answer back. The agent's token never reaches the app; the app
//! gets who is calling as `X-Laissez-*` headers instead, written by the gate
//! alone (see [`crate::upstream`]).

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::response::Response;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::json;

use crate::Gate;
use crate::decide::{Decision, Verified, decide};
use crate::dlp::{Direction, DlpAction, Exchange, InspectedBody, WHOLE_BODY_LIMIT};
use crate::facts::{Credential, RequestFacts, RpcCalls};
use crate::metadata::metadata_url;
use crate::respond::{bad_gateway, challenge, problem};
use crate::upstream::{Identity, rewrite, strip_hop_by_hop};

/// The HTTP client that talks to the app.
pub type UpstreamClient = Client<HttpConnector, Body>;

/// A keep-alive client for the app.
pub fn client() -> UpstreamClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Largest JSON-RPC body read when MCP tool rules apply.
pub const MAX_RPC_BODY: usize = 1 << 20;

fn too_large() -> Response {
    problem(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload-too-large",
        "Request body too large",
        &format!("JSON-RPC bodies through this gate are limited to {MAX_RPC_BODY} bytes"),
        serde_json::Value::Null,
    )
}

/// Authorizes and forwards one request.
pub async fn forward(State(gate): State<Gate>, request: Request) -> Response {
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    let (mut parts, body) = request.into_parts();
    let facts = RequestFacts::from_parts(&parts);
    let (calls, body) = if facts.method == "POST" && gate.config.has_tool_rules() {
        // MCP: read the (small) JSON-RPC body to see which tools it calls.
        let Ok(bytes) = axum::body::to_bytes(body, MAX_RPC_BODY).await else {
            return too_large();
        };
        (RpcCalls::parse(&bytes), Body::from(bytes))
    } else {
        (RpcCalls::default(), body)
    };
    let token = match (&facts.credential, &gate.browsers) {
        (Credential::Bearer(token), _) => Some(token.clone()),
        (Credential::Session(id), Some(browsers)) => browsers.access_token(id).await,
        _ => None,
    };
    let verified = match &token {
        Some(token) => gate.verifier.verify(token).await.map_err(|r| r.to_string()),
        None => Err(String::new()),
    };
    let verified = match (&token, &verified) {
        (None, _) => Verified::Missing,
        (Some(_), Ok(claims)) => Verified::Valid(claims),
        (Some(_), Err(why)) => Verified::Refused(why),
    };
    let now = unix_now();
    let decision = decide(&facts, &calls, verified, &gate.config, now);
    let claims = match verified {
        Verified::Valid(claims) => Some(claims),
        _ => None,
    };
    let report = |decision: &str, reason: Option<String>| {
        if let Some(reporter) = &gate.reporter {
            reporter.record(json!({
                "app": gate.config.app,
                "decision": decision,
                "method": facts.method,
                "path": facts.path,
                "user": claims.map(|c| c.sub.clone()),
                "client_id": claims.map(|c| c.client_id.clone()),
                "agent": claims.and_then(|c| c.act.as_ref().map(|a| a.sub.clone())),
                "scope": claims.map(|c| c.scope.clone()),
                "reason": reason,
                "client_ip": peer,
            }));
        }
    };
    let claims = match decision {
        Decision::Allow(forward) => forward.claims,
        Decision::SignIn { return_to } => match &gate.browsers {
            Some(browsers) => {
                return browsers.start(&gate, &return_to, &gate.config.scopes_supported());
            }
            None => return bad_gateway("browser sign-in is not configured"),
        },
        Decision::Refuse(problem) => {
            report("refuse", Some(problem.detail.clone()));
            return problem.response();
        }
        Decision::Challenge(refusal) => {
            tracing::info!(app = %gate.config.app, reason = %refusal.reason, "refused");
            report(refusal.decision(), Some(refusal.reason.clone()));
            let error = refusal.error.as_ref().map(|(c, d)| (*c, d.as_str()));
            return challenge(
                &metadata_url(&gate, &facts.path),
                refusal.status,
                error,
                &refusal.scopes,
            );
        }
    };
    tracing::info!(app = %gate.config.app, sub = %claims.sub, client = %claims.client_id, method = %facts.method, path = %facts.path, "allowed");
    report("allow", None);

    let upstream = gate.config.upstream.as_str().trim_end_matches('/');
    let Ok(uri) = format!("{upstream}{}", facts.path_and_query()).parse::<Uri>() else {
        return bad_gateway("cannot build the upstream URL");
    };
    parts.uri = uri;
    let app_origin = gate.config.upstream.origin().ascii_serialization();
    let assertion = gate.signer.sign(
        gate.config.resource.as_str().trim_end_matches('/'),
        &app_origin,
        claims,
        now,
    );
    rewrite(
        &mut parts.headers,
        Identity {
            claims,
            assertion: assertion.as_deref(),
        },
    );
    let mut request = Request::from_parts(parts, body);
    let exchange = || Exchange {
        app: gate.config.app.clone(),
        method: facts.method.clone(),
        path: facts.path.clone(),
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
        return crate::respond::blocked(blocked, Direction::Request);
    }
    match answer {
        Ok(response) => {
            let (mut parts, body) = response.into_parts();
            strip_hop_by_hop(&mut parts.headers);
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

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
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
            .map_err(|blocked| Box::new(crate::respond::blocked(&blocked, direction)))?;
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
