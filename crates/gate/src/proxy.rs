//! Forwarding: gather a request's facts, decide, then stream it to the app
//! and the answer back. The agent's token never reaches the app; the app
//! gets who is calling as `X-Laissez-*` headers instead, written by the gate
//! alone (see [`crate::upstream`]).

use std::net::IpAddr;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{
    ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, Uri};
use axum::response::Response;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use laissez_oauth::access_token::AccessTokenClaims;
use serde_json::json;

use crate::Gate;
use crate::binding::{BindingRefusal, Proof, Scheme, client_address};
use crate::decide::{Decision, Verified, decide, reads_body};
use crate::dlp::{Direction, DlpAction, Exchange, InspectedBody, WHOLE_BODY_LIMIT};
use crate::facts::{BodyRefusal, Credential, MAX_RPC_BODY, RequestFacts, RpcCalls, decode_content};
use crate::metadata::metadata_url;
use crate::respond::{Problem, bad_gateway, challenge};
use crate::upstream::{Client, Identity, rewrite, strip_hop_by_hop};

/// The HTTP client that talks to the app.
pub type UpstreamClient = hyper_util::client::legacy::Client<HttpConnector, Body>;

/// A keep-alive client for the app.
pub fn client() -> UpstreamClient {
    hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http()
}

/// Authorizes and forwards one request: its facts, its JSON-RPC calls
/// when tool rules need them, its credential verified, one decision, then
/// the request as authorised (normalised path, decoded body, the gate's
/// headers) to the app.
pub async fn forward(State(gate): State<Gate>, request: Request) -> Response {
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    let certificate = request
        .extensions()
        .get::<laissez_tls::ClientCertificate>()
        .cloned();
    let (mut parts, body) = request.into_parts();
    let facts = match RequestFacts::from_parts(&parts, &gate.config) {
        Ok(facts) => facts,
        Err(problem) => return unreadable(&gate, &parts, peer, problem),
    };
    let (calls, body) = if reads_body(&facts, &gate.config) {
        match read_calls(&mut parts.headers, body).await {
            Ok(read) => read,
            Err(refusal) => return unreadable(&gate, &parts, peer, refusal.problem()),
        }
    } else {
        (RpcCalls::default(), body)
    };
    let thumbprint = certificate.as_ref().and_then(|c| c.thumbprint());
    let checked = verify(&gate, &facts, &parts.headers, peer, thumbprint).await;
    let verified = match &checked {
        None => Verified::Missing,
        Some(Ok((claims, Ok(())))) => Verified::Valid(claims),
        Some(Ok((claims, Err(refusal)))) => Verified::Unbound(claims, refusal),
        Some(Err(why)) => Verified::Refused(why),
    };
    let now = unix_now();
    let decision = decide(&facts, &calls, verified, &gate.config, now);
    let audit = Audit {
        gate: &gate,
        facts: &facts,
        verified,
        peer,
    };
    let principal = match verified {
        Verified::Valid(claims) | Verified::Unbound(claims, _) => {
            Some(laissez_metrics::Principal(claims.sub.clone()))
        }
        _ => None,
    };
    let Decision::Allow(allowed) = decision else {
        let mut response = refuse(&audit, &parts.headers, decision);
        if let Some(principal) = principal {
            response.extensions_mut().insert(principal);
        }
        return response;
    };
    audit.record("allow", None);
    if let Err(why) = authorise(&gate, &mut parts, &facts, allowed.claims, peer, now) {
        return bad_gateway(why);
    }
    let mut response = send(
        &gate,
        Request::from_parts(parts, body),
        audit.exchange(allowed.claims),
    )
    .await;
    if let Some(principal) = principal {
        response.extensions_mut().insert(principal);
    }
    response
}

/// The answer to a request the gate cannot read (a path it cannot
/// normalise, a body it cannot parse or decode), recorded like every other
/// decision, with the raw path (cut short) since there is no normalised one.
fn unreadable(gate: &Gate, parts: &Parts, peer: Option<IpAddr>, problem: Problem) -> Response {
    gate.metrics.refused(problem.kind);
    if let Some(reporter) = &gate.reporter {
        let path: String = parts.uri.path().chars().take(MAX_RECORDED_PATH).collect();
        reporter.record(json!({
            "app": gate.config.app,
            "decision": "refuse",
            "method": parts.method.as_str(),
            "path": path,
            "reason": problem.detail,
            "client_ip": peer.map(|ip| ip.to_string()),
        }));
    }
    problem.response()
}

/// Longest raw path written to the audit log.
const MAX_RECORDED_PATH: usize = 512;

/// What a verified token with its refusal for this request, if any.
type Checked = Result<(AccessTokenClaims, Result<(), BindingRefusal>), String>;

/// The credential's claims and whether this request may use them (its
/// DPoP proof, its address, its connection's client certificate
/// `thumbprint`): `None` without a credential, the refusal if the token is
/// invalid.
async fn verify(
    gate: &Gate,
    facts: &RequestFacts,
    headers: &HeaderMap,
    peer: Option<IpAddr>,
    thumbprint: Option<&str>,
) -> Option<Checked> {
    let (token, scheme, session) = match (&facts.credential, &gate.browsers) {
        (Credential::Bearer(token), _) => (token.clone(), Scheme::Bearer, false),
        (Credential::Dpop(token), _) => (token.clone(), Scheme::Dpop, false),
        (Credential::Session(id), Some(browsers)) => {
            (browsers.access_token(id).await?, Scheme::Bearer, true)
        }
        _ => return None,
    };
    let claims = match gate.verifier.verify(&token).await {
        Ok(claims) => claims,
        Err(refusal) => {
            gate.metrics.verified(match refusal {
                crate::verify::Refusal::Invalid(_) => "invalid",
                crate::verify::Refusal::Expired => "expired",
                crate::verify::Refusal::WrongAudience => "wrong_audience",
                crate::verify::Refusal::Revoked => "revoked",
            });
            return Some(Err(refusal.to_string()));
        }
    };
    let proof = match scheme {
        Scheme::Dpop => {
            let proofs: Vec<&str> = facts.dpop_proofs.iter().map(String::as_str).collect();
            let request = laissez_dpop::guard::Request {
                method: &facts.method,
                url: &facts.url,
                access_token: Some(&token),
                require_nonce: gate.config.dpop_nonce,
                now: unix_now(),
            };
            match (proofs.is_empty(), gate.dpop.check(&proofs, &request)) {
                (true, _) => Proof::Absent,
                (false, Ok(verified)) => Proof::Valid(verified),
                (false, Err(error)) => Proof::Invalid(error),
            }
        }
        Scheme::Bearer => Proof::Absent,
    };
    let client_ip = client_address(headers, peer, |ip| gate.config.trusts_proxy(Some(ip)));
    // A browser's session token never leaves the gate; DPoP is for agents.
    let require_dpop = gate.config.require_dpop && !session;
    let bound = crate::binding::check(&claims, scheme, &proof, require_dpop, client_ip, thumbprint);
    gate.metrics
        .verified(if bound.is_ok() { "valid" } else { "unbound" });
    Some(Ok((claims, bound)))
}

/// One request's decisions, for the audit log and DLP.
struct Audit<'a> {
    gate: &'a Gate,
    facts: &'a RequestFacts,
    verified: Verified<'a>,
    peer: Option<IpAddr>,
}

impl Audit<'_> {
    fn record(&self, decision: &str, reason: Option<String>) {
        let Some(reporter) = &self.gate.reporter else {
            return;
        };
        let (claims, binding) = match self.verified {
            Verified::Valid(claims) => (Some(claims), None),
            Verified::Unbound(claims, refusal) => (Some(claims), Some(refusal)),
            _ => (None, None),
        };
        reporter.record(json!({
            "app": self.gate.config.app,
            "decision": decision,
            "method": self.facts.method,
            "path": self.facts.path,
            "user": claims.map(|c| c.sub.clone()),
            "client_id": claims.map(|c| c.client_id.clone()),
            "agent": claims.and_then(|c| c.act.as_ref().map(|a| a.sub.clone())),
            "scope": claims.map(|c| c.scope.clone()),
            "task": claims.and_then(|c| c.task.clone()),
            "task_chain": claims.map(|c| c.task_chain.clone()).filter(|c| !c.is_empty()),
            "possible_theft": binding.is_some_and(|b| b.possible_theft).then_some(true),
            "reason": reason,
            "client_ip": self.peer.map(|ip| ip.to_string()),
        }));
    }

    fn exchange(&self, claims: &AccessTokenClaims) -> Exchange {
        Exchange {
            app: self.gate.config.app.clone(),
            method: self.facts.method.clone(),
            path: self.facts.path.clone(),
            user: Some(claims.sub.clone()),
            client_id: Some(claims.client_id.clone()),
        }
    }
}

/// The answer to a request not allowed through.
fn refuse(audit: &Audit<'_>, headers: &HeaderMap, decision: Decision<'_>) -> Response {
    let gate = audit.gate;
    match decision {
        // Not reached: `forward` sends allowed requests on.
        Decision::Allow(_) => bad_gateway("an allowed request was refused"),
        Decision::SignIn { return_to } => match &gate.browsers {
            Some(browsers) => {
                let scopes = gate.config.scopes_supported();
                browsers.start(gate, headers, &return_to, &scopes)
            }
            None => bad_gateway("browser sign-in is not configured"),
        },
        Decision::Refuse(problem) => {
            gate.metrics.refused(problem.kind);
            audit.record("refuse", Some(problem.detail.clone()));
            problem.response()
        }
        Decision::Challenge(refusal) => {
            tracing::info!(app = %gate.config.app, reason = %refusal.reason, "refused");
            gate.metrics.refused(refusal.decision());
            audit.record(refusal.decision(), Some(refusal.reason.clone()));
            let error = refusal.error.as_ref().map(|(c, d)| (*c, d.as_str()));
            let nonce = (refusal.dpop
                && (gate.config.dpop_nonce || error.is_some_and(|(c, _)| c == "use_dpop_nonce")))
            .then(|| gate.dpop.nonce(unix_now()));
            challenge(
                &metadata_url(gate, &audit.facts.path),
                refusal.status,
                error,
                &refusal.scopes,
                refusal.dpop,
                nonce,
            )
        }
    }
}

/// Makes `parts` exactly the request that was authorised: the method and
/// path as matched, the app's address, and the gate's headers.
fn authorise(
    gate: &Gate,
    parts: &mut axum::http::request::Parts,
    facts: &RequestFacts,
    claims: &AccessTokenClaims,
    peer: Option<IpAddr>,
    now: i64,
) -> Result<(), &'static str> {
    // Every decision is in the audit log already; a log line per allowed
    // request cost the gate about a sixth of its throughput (bench/run).
    tracing::debug!(app = %gate.config.app, sub = %claims.sub, client = %claims.client_id, method = %facts.method, path = %facts.path, "allowed");
    let upstream = gate.config.upstream.as_str().trim_end_matches('/');
    let (Ok(uri), Ok(method)) = (
        format!("{upstream}{}", facts.path_and_query()).parse::<Uri>(),
        Method::from_bytes(facts.method.as_bytes()),
    ) else {
        return Err("cannot build the upstream request");
    };
    parts.uri = uri;
    parts.method = method;
    let app_origin = gate.config.upstream.origin().ascii_serialization();
    let resource = gate.config.resource.as_str().trim_end_matches('/');
    let assertion = gate.signer.sign(resource, &app_origin, claims, now);
    let client = Client {
        peer,
        trusted_proxy: gate.config.trusts_proxy(peer),
        scheme: if gate.config.resource.scheme() == "https" {
            "https"
        } else {
            "http"
        },
    };
    let identity = Identity {
        claims,
        assertion: assertion.as_deref(),
    };
    rewrite(&mut parts.headers, identity, client);
    Ok(())
}

/// Reads a body for tool rules: whole (bounded), decoded, parsed strictly.
/// The body sent on is the decoded one the rules were applied to.
async fn read_calls(headers: &mut HeaderMap, body: Body) -> Result<(RpcCalls, Body), BodyRefusal> {
    let decoded = read_decoded(headers, body).await?;
    let calls = RpcCalls::parse(&decoded)?;
    Ok((calls, Body::from(decoded)))
}

/// Reads a body whole (bounded) and undoes its `Content-Encoding`; the
/// headers then describe the decoded body.
async fn read_decoded(headers: &mut HeaderMap, body: Body) -> Result<Vec<u8>, BodyRefusal> {
    let bytes = axum::body::to_bytes(body, MAX_RPC_BODY)
        .await
        .map_err(|_| BodyRefusal::TooLarge)?;
    let decoded = decode_content(headers, &bytes)?;
    headers.remove(CONTENT_ENCODING);
    headers.remove(TRANSFER_ENCODING);
    headers.insert(CONTENT_LENGTH, HeaderValue::from(decoded.len()));
    Ok(decoded)
}

/// Whether a body is sent in an encoding other than `identity`.
fn encoded(headers: &HeaderMap) -> bool {
    headers
        .get_all(CONTENT_ENCODING)
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("unreadable").split(','))
        .any(|e| !e.trim().eq_ignore_ascii_case("identity") && !e.trim().is_empty())
}

/// Sends an authorised request to the app and the answer back, through DLP
/// in each direction it is on for.
async fn send(gate: &Gate, mut request: Request, exchange: Exchange) -> Response {
    let markdown = gate.config.markdown_for_agents && crate::markdown::wanted(request.headers());
    let mut request_blocked = None;
    if let Some(dlp) = gate
        .dlp
        .as_ref()
        .filter(|d| d.settings.request != DlpAction::Off)
    {
        let inspector = dlp.inspector(
            Direction::Request,
            false,
            exchange.clone(),
            gate.reporter.clone(),
        );
        request_blocked = Some(inspector.blocked());
        let (mut parts, mut body) = request.into_parts();
        if encoded(&parts.headers) {
            // DLP reads what the app will read: the body decoded.
            match read_decoded(&mut parts.headers, body).await {
                Ok(decoded) => body = Body::from(decoded),
                Err(refusal) => return refusal.problem().response(),
            }
        }
        match inspect(parts, body, inspector, Direction::Request).await {
            Ok((parts, body)) => request = Request::from_parts(parts, body),
            Err(response) => return *response,
        }
    }
    let response_dlp = gate
        .dlp
        .as_ref()
        .filter(|d| d.settings.response != DlpAction::Off);
    if response_dlp.is_some() || markdown {
        // An answer DLP reads (or the gate converts) must come as it is,
        // not compressed.
        request
            .headers_mut()
            .insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
    }
    let answer = gate.client.request(request).await;
    // A request body cut off by a block: whatever the app made of it, the
    // client hears why.
    if let Some(blocked) = request_blocked.as_ref().and_then(|b| b.get()) {
        return crate::respond::blocked(blocked, Direction::Request);
    }
    let response = match answer {
        Ok(response) => response,
        Err(e) => {
            tracing::warn!(app = %gate.config.app, error = %e, "upstream failed");
            gate.metrics.upstream_error();
            return bad_gateway("the app behind the gate did not answer");
        }
    };
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    let mut body = Body::new(body);
    if gate.config.markdown_for_agents {
        crate::markdown::vary(&mut parts.headers);
    }
    if markdown && crate::markdown::convertible(&parts.headers) && !encoded(&parts.headers) {
        body = match crate::markdown::convert(&mut parts.headers, body).await {
            Ok(body) => body,
            Err(response) => return response,
        };
    }
    let Some(dlp) = response_dlp else {
        return Response::from_parts(parts, body);
    };
    if encoded(&parts.headers) {
        return bad_gateway(
            "the app answered in a Content-Encoding the gate cannot inspect for credentials",
        );
    }
    let event_stream = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let inspector = dlp.inspector(
        Direction::Response,
        event_stream,
        exchange,
        gate.reporter.clone(),
    );
    match inspect(parts, body, inspector, Direction::Response).await {
        Ok((parts, body)) => Response::from_parts(parts, body),
        Err(response) => *response,
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
