//! Task credentials for tests: an agent owned by a person, with policies
//! and its `lzat_` token; asking for a task with a DPoP proof; calling the
//! admin API as a task (`Authorization: DPoP lztt_…` with a proof bound to
//! the token); and a gate in front of a tiny echo app registered as a
//! protected resource with scopes.

use laissez_dpop::ProofKey;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::TestServer;

/// An agent principal owned by a person, with its `lzat_` token.
pub struct Agent {
    /// The agent's name.
    pub name: String,
    /// Its principal id.
    pub id: String,
    /// Its owner's name.
    pub owner: String,
    /// Its `lzat_` token.
    pub token: String,
}

/// Creates the person `owner` (with a password, to sign in) holding
/// `owner_permissions` everywhere, and the agent `name` they own, holding
/// `agent_permissions` everywhere, with a token of its own.
pub async fn agent(
    server: &TestServer,
    owner: &str,
    owner_permissions: &[&str],
    name: &str,
    agent_permissions: &[&str],
) -> Agent {
    server.add_person(owner, PASSWORD).await;
    if !owner_permissions.is_empty() {
        server.grant_app_role(owner, owner_permissions, "/").await;
    }
    agent_of(server, owner, name, agent_permissions).await
}

/// Creates the agent `name` owned by the existing person `owner`, holding
/// `permissions` everywhere, with a token of its own.
pub async fn agent_of(server: &TestServer, owner: &str, name: &str, permissions: &[&str]) -> Agent {
    let (status, principal) = server
        .post(
            "/v1/principals",
            json!({"kind": "agent", "name": name, "owner": owner}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "agent: {principal}");
    if !permissions.is_empty() {
        server.grant_app_role(name, permissions, "/").await;
    }
    let (status, issued) = server.post("/v1/tokens", json!({"principal": name})).await;
    assert!(status.is_success(), "agent token: {issued}");
    Agent {
        name: name.to_owned(),
        id: principal["id"]
            .as_str()
            .unwrap_or_else(|| panic!("agent id: {principal}"))
            .to_owned(),
        owner: owner.to_owned(),
        token: issued["token"]
            .as_str()
            .unwrap_or_else(|| panic!("agent token: {issued}"))
            .to_owned(),
    }
}

/// A token for the existing person `name` (an `lzat_` of theirs).
pub async fn person_token(server: &TestServer, name: &str) -> String {
    let (status, issued) = server.post("/v1/tokens", json!({"principal": name})).await;
    assert!(status.is_success(), "token of {name}: {issued}");
    issued["token"]
        .as_str()
        .unwrap_or_else(|| panic!("token of {name}: {issued}"))
        .to_owned()
}

/// Asks `POST /v1/tasks` with `token` (an agent's `lzat_`, sent as
/// Bearer, or a task's `lztt_`, sent as DPoP) and a fresh proof by `key`.
pub async fn ask_task(
    server: &TestServer,
    token: &str,
    key: &ProofKey,
    body: &Value,
) -> (StatusCode, Value) {
    let response = send_signed(server, Method::POST, "/v1/tasks", token, key, Some(body)).await;
    answer(response).await
}

/// Calls the admin API as the task `token`: `Authorization: DPoP lztt_…`
/// with a fresh proof by `key` carrying `ath`.
pub async fn as_task(
    server: &TestServer,
    method: Method,
    path: &str,
    token: &str,
    key: &ProofKey,
) -> (StatusCode, Value) {
    answer(send_signed(server, method, path, token, key, None).await).await
}

/// Sends a request to the server signed with a fresh proof by `key`: a
/// `lztt_` token goes as `Authorization: DPoP` (the proof carries its
/// `ath`), any other token as Bearer (the proof binds what is asked for).
pub async fn send_signed(
    server: &TestServer,
    method: Method,
    path: &str,
    token: &str,
    key: &ProofKey,
    body: Option<&Value>,
) -> reqwest::Response {
    let url = format!("{}{path}", server.url);
    let task = token.starts_with("lztt_");
    let proof = key
        .proof(
            method.as_str(),
            &url,
            task.then_some(token),
            None,
            unix_now(),
        )
        .expect("a DPoP proof");
    send_with_proof(server, method, path, token, Some(&proof), body).await
}

/// Sends a request with exactly the proof given (or none), so tests can
/// send stale, replayed or misdirected proofs.
pub async fn send_with_proof(
    server: &TestServer,
    method: Method,
    path: &str,
    token: &str,
    proof: Option<&str>,
    body: Option<&Value>,
) -> reqwest::Response {
    let scheme = if token.starts_with("lztt_") {
        "DPoP"
    } else {
        "Bearer"
    };
    let mut request = server
        .client()
        .request(method, format!("{}{path}", server.url))
        .header("authorization", format!("{scheme} {token}"));
    if let Some(proof) = proof {
        request = request.header("dpop", proof);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    request.send().await.expect("request")
}

/// The status and JSON body of a response (`Value::Null` if not JSON).
pub async fn answer(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let bytes = response.bytes().await.expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Unix seconds now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Starts an echo app (it answers every request with the headers it got)
/// behind a gate needing `notes.read`, configured further by `configure`,
/// and registers the gate's URL as a protected resource defining `scopes`;
/// returns the gate's URL (the resource, as registered).
pub async fn echo_gate(
    server: &TestServer,
    scopes: &[&str],
    configure: impl FnOnce(&mut laissez_gate::GateConfig),
) -> String {
    let app = axum::Router::new().fallback(echo);
    let (_, gate_url) = crate::gate::front(app, &server.url, configure).await;
    let defined: serde_json::Map<String, Value> = scopes
        .iter()
        .map(|s| (s.to_string(), json!(format!("{s} (test)"))))
        .collect();
    let (status, body) = server
        .call(
            Method::PUT,
            "/v1/resources",
            &server.admin_token,
            Some(&json!({"resource": gate_url, "name": "echo", "scopes": defined})),
        )
        .await;
    assert!(status.is_success(), "register the echo app: {body}");
    gate_url
}

/// A token for a new service `name` holding the `laissez-gate` role, for a
/// gate to report its decisions to the audit log (`GateConfig.audit_token`).
pub async fn gate_identity(server: &TestServer, name: &str) -> String {
    let (status, body) = server
        .post(
            "/v1/principals",
            json!({"kind": "service", "name": name, "owner": "admin"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "gate service: {body}");
    let (status, body) = server
        .post(
            "/v1/policies",
            json!({"principal": name, "role": "laissez-gate", "scope": "/"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "gate policy: {body}");
    person_token(server, name).await
}

/// Calls `url` (at a gate) with `Authorization: {scheme} {token}` and a
/// fresh proof by `key` (when given) bound to `token`, optionally with a
/// server `nonce`.
pub async fn gate_call(
    url: &str,
    scheme: &str,
    token: &str,
    key: Option<&ProofKey>,
    nonce: Option<&str>,
) -> reqwest::Response {
    let proof = key.map(|key| {
        key.proof("GET", url, Some(token), nonce, unix_now())
            .expect("a DPoP proof")
    });
    gate_call_with_proof(url, scheme, token, proof.as_deref()).await
}

/// Calls `url` (at a gate) with exactly the proof given (or none).
pub async fn gate_call_with_proof(
    url: &str,
    scheme: &str,
    token: &str,
    proof: Option<&str>,
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .get(url)
        .header("authorization", format!("{scheme} {token}"));
    if let Some(proof) = proof {
        request = request.header("dpop", proof);
    }
    request.send().await.expect("gate request")
}

/// The audit records with `action`, newest first, waiting up to five
/// seconds for at least one that `wanted` accepts (gates report in batches).
pub async fn audit_records(
    server: &TestServer,
    action: &str,
    wanted: impl Fn(&Value) -> bool,
) -> Vec<Value> {
    let start = std::time::Instant::now();
    loop {
        let (_, records) = server.get("/v1/audit?limit=1000").await;
        let found: Vec<Value> = records
            .as_array()
            .map(|all| {
                all.iter()
                    .filter(|r| r["action"] == action)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        if found.iter().any(&wanted) || start.elapsed() > std::time::Duration::from_secs(5) {
            return found;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn echo(headers: axum::http::HeaderMap) -> axum::Json<Value> {
    let seen: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), json!(v.to_str().unwrap_or_default())))
        .collect();
    axum::Json(Value::Object(seen))
}

/// The password of the people [`agent`] creates.
pub const PASSWORD: &str = "correct horse battery staple";

/// A client an administrator registered to act as `principal` (an agent
/// or service) with `scope`, for token exchange: (client id, secret).
pub async fn exchange_client(
    server: &TestServer,
    principal: &str,
    scope: &str,
) -> (String, String) {
    let (status, client) = server
        .post(
            "/v1/clients",
            json!({"client_name": format!("{principal} tasks"), "grant_types": ["client_credentials"],
                "scope": scope, "principal": principal}),
        )
        .await;
    assert!(status.is_success(), "register the client: {client}");
    (
        client["client_id"].as_str().unwrap_or_default().to_owned(),
        client["client_secret"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

/// Posts `form` to `/oauth/token` as the client `(id, secret)`, with a
/// fresh proof by `key` when given.
pub async fn token_request(
    server: &TestServer,
    client: &(String, String),
    key: Option<&ProofKey>,
    form: &[(&str, &str)],
) -> (StatusCode, Value) {
    let url = format!("{}/oauth/token", server.url);
    let mut request = server
        .client()
        .post(&url)
        .basic_auth(&client.0, Some(&client.1))
        .form(form);
    if let Some(key) = key {
        let proof = key
            .proof("POST", &url, None, None, unix_now())
            .expect("a DPoP proof");
        request = request.header("dpop", proof);
    }
    answer(request.send().await.expect("token request")).await
}

/// The token exchange grant type (RFC 8693).
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
