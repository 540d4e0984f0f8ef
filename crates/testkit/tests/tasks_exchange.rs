//! Task credentials through OAuth token exchange (RFC 8693): a client an
//! administrator registered for the agent gets a DPoP-bound JWT naming the
//! task, its actor chain, the hash of its grants and a nonce, plus the task
//! token; without a proof, without a principal, with a subject token of
//! another client or another resource it is refused with the RFC's error;
//! it never gets more than the user delegated; revoking the task token
//! (RFC 7009) ends the task; and a task waiting for approval is polled with
//! the device-code grant (RFC 8628).

use base64::Engine;
use laissez_dpop::ProofKey;
use laissez_testkit::task::{
    Agent, TOKEN_EXCHANGE, agent, as_task, echo_gate, exchange_client, person_token, token_request,
    unix_now,
};
use laissez_testkit::{TestServer, jwt_claims};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

struct Setup {
    server: TestServer,
    bot: Agent,
    key: ProofKey,
    app: String,
    client: (String, String),
}

/// Alice and her agent bot both hold notes.read and notes.write; the echo
/// app defines both; bot has a client of its own.
async fn setup() -> Setup {
    let server = TestServer::start();
    let bot = agent(
        &server,
        "alice",
        &["notes.read", "notes.write"],
        "bot",
        &["notes.read", "notes.write"],
    )
    .await;
    let app = echo_gate(&server, &["notes.read", "notes.write"], |_| {}).await;
    let client = exchange_client(&server, "bot", "notes.read notes.write").await;
    Setup {
        server,
        bot,
        key: ProofKey::generate().unwrap(),
        app,
        client,
    }
}

impl Setup {
    async fn exchange(&self, extra: &[(&str, &str)]) -> (StatusCode, Value) {
        let mut form = vec![("grant_type", TOKEN_EXCHANGE), ("resource", &self.app)];
        form.extend_from_slice(extra);
        token_request(&self.server, &self.client, Some(&self.key), &form).await
    }

    /// An access token of alice's for `aud` with `scope`, as this server
    /// would issue it to `client_id`.
    async fn user_token(&self, client_id: &str, aud: &str, scope: &str) -> String {
        let (_, alice) = self.server.get("/v1/principals/alice").await;
        let now = unix_now();
        sign_with_server_key(
            &self.server,
            &json!({"iss": self.server.url, "sub": alice["id"], "aud": aud, "exp": now + 300,
                "iat": now, "jti": format!("at_test{now}"), "client_id": client_id, "scope": scope}),
        )
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_agents_client_gets_a_dpop_bound_task_jwt_and_the_task_token() {
    let s = setup().await;
    let (status, body) = s.exchange(&[("scope", "notes.read")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "DPoP");
    assert_eq!(body["scope"], "notes.read");
    let task_id = body["task_id"].as_str().unwrap();
    let claims = jwt_claims(body["access_token"].as_str().unwrap());
    assert_eq!(claims["cnf"]["jkt"], s.key.thumbprint());
    assert_eq!(claims["task"], task_id);
    assert_eq!(claims["act"]["sub"], s.bot.id.as_str());
    assert_eq!(claims["client_id"], s.client.0.as_str());
    assert!(!claims["grants_hash"].as_str().unwrap().is_empty());
    assert!(!claims["nonce"].as_str().unwrap().is_empty());
    let task_token = body["task_token"].as_str().unwrap();
    assert!(task_token.starts_with("lztt_"));
    let (status, me) = as_task(&s.server, Method::GET, "/v1/whoami", task_token, &s.key).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["credential"]["id"], task_id);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_exchange_without_a_proof_is_invalid_dpop_proof() {
    let s = setup().await;
    let (status, body) = token_request(
        &s.server,
        &s.client,
        None,
        &[
            ("grant_type", TOKEN_EXCHANGE),
            ("scope", "notes.read"),
            ("resource", &s.app),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_dpop_proof");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_without_a_principal_is_unauthorized_client() {
    let s = setup().await;
    let (status, client) = s
        .server
        .post(
            "/v1/clients",
            json!({"client_name": "web app", "grant_types": ["authorization_code"],
                "redirect_uris": ["https://app.example/callback"], "scope": "notes.read"}),
        )
        .await;
    assert!(status.is_success(), "{client}");
    let plain = (
        client["client_id"].as_str().unwrap().to_owned(),
        client["client_secret"].as_str().unwrap().to_owned(),
    );
    let (status, body) = token_request(
        &s.server,
        &plain,
        Some(&s.key),
        &[
            ("grant_type", TOKEN_EXCHANGE),
            ("scope", "notes.read"),
            ("resource", &s.app),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "unauthorized_client");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_subject_token_issued_to_another_client_is_invalid_grant() {
    let s = setup().await;
    let foreign = s.user_token("cli_someoneelse", &s.app, "notes.read").await;
    let (status, body) = s
        .exchange(&[("scope", "notes.read"), ("subject_token", &foreign)])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_subject_token_for_another_resource_is_invalid_target() {
    let s = setup().await;
    let elsewhere = s
        .user_token(&s.client.0, "https://other.example/", "notes.read")
        .await;
    let (status, body) = s
        .exchange(&[("scope", "notes.read"), ("subject_token", &elsewhere)])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_target");
}

#[tokio::test(flavor = "multi_thread")]
async fn asking_more_than_the_user_delegated_gets_only_what_was_delegated() {
    let s = setup().await;
    let delegated = s.user_token(&s.client.0, &s.app, "notes.read").await;
    let (status, body) = s
        .exchange(&[
            ("scope", "notes.read notes.write"),
            ("subject_token", &delegated),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "notes.read", "{body}");
    let dropped = &body["dropped"][0];
    assert!(
        dropped["grant"]
            .as_str()
            .unwrap()
            .starts_with("notes.write@"),
        "{body}"
    );
    assert_eq!(dropped["reason"], "not held by the delegated token");
    let (_, alice) = s.server.get("/v1/principals/alice").await;
    assert_eq!(
        jwt_claims(body["access_token"].as_str().unwrap())["sub"],
        alice["id"]
    );
    // Asking only for what was not delegated gets nothing at all.
    let (status, body) = s
        .exchange(&[("scope", "notes.write"), ("subject_token", &delegated)])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_scope");
}

#[tokio::test(flavor = "multi_thread")]
async fn revoking_the_task_token_ends_the_task() {
    let s = setup().await;
    let (_, body) = s.exchange(&[("scope", "notes.read")]).await;
    let task_token = body["task_token"].as_str().unwrap();
    let task_id = body["task_id"].as_str().unwrap();
    let revoked = s
        .server
        .client()
        .post(format!("{}/oauth/revoke", s.server.url))
        .basic_auth(&s.client.0, Some(&s.client.1))
        .form(&[("token", task_token)])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    let (status, _) = as_task(&s.server, Method::GET, "/v1/whoami", task_token, &s.key).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, shown) = s
        .server
        .call(
            Method::GET,
            &format!("/v1/tasks/{task_id}"),
            &s.bot.token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert_ne!(shown["status"], "active", "{shown}");
    assert!(shown["ended_at"].is_i64(), "{shown}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pending_exchange_is_polled_with_the_device_code_grant() {
    let s = setup().await;
    let (status, body) = s
        .exchange(&[("scope", "notes.read"), ("task_ttl", "7200")])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "authorization_pending");
    let code = body["device_code"].as_str().unwrap().to_owned();
    let poll = || async {
        token_request(
            &s.server,
            &s.client,
            Some(&s.key),
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("device_code", &code),
            ],
        )
        .await
    };
    let (_, waiting) = poll().await;
    assert_eq!(waiting["error"], "authorization_pending", "{waiting}");
    let (_, fast) = poll().await;
    assert_eq!(fast["error"], "slow_down", "{fast}");

    let alice = person_token(&s.server, "alice").await;
    let (status, decided) = s
        .server
        .call(
            Method::POST,
            &format!("/v1/approvals/{code}/approve"),
            &alice,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{decided}");
    let (status, issued) = poll().await;
    assert_eq!(status, StatusCode::OK, "{issued}");
    assert!(issued["task_token"].as_str().unwrap().starts_with("lztt_"));
    // The access token asked for: the JWT for the app, not the task token.
    assert_eq!(
        issued["issued_token_type"], "urn:ietf:params:oauth:token-type:access_token",
        "{issued}"
    );
    let claims = jwt_claims(issued["access_token"].as_str().unwrap());
    assert_eq!(claims["cnf"]["jkt"], s.key.thumbprint());
    assert_eq!(claims["task"], code.as_str());
    let (_, again) = poll().await;
    assert_eq!(again["error"], "expired_token", "{again}");
}

/// Signs `claims` with the authorization server's own key, read from its
/// data folder, as the server signs the access tokens it issues.
fn sign_with_server_key(server: &TestServer, claims: &Value) -> String {
    use p256::pkcs8::EncodePrivateKey;
    let keys: Value =
        serde_json::from_slice(&std::fs::read(server.data_dir.join("signing-keys.json")).unwrap())
            .unwrap();
    let key = &keys["keys"][0];
    let d = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(key["d"].as_str().unwrap())
        .unwrap();
    let der = p256::SecretKey::from_slice(&d)
        .unwrap()
        .to_pkcs8_der()
        .unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.typ = Some("at+jwt".into());
    header.kid = Some(key["kid"].as_str().unwrap().to_owned());
    jsonwebtoken::encode(
        &header,
        claims,
        &jsonwebtoken::EncodingKey::from_ec_der(der.as_bytes()),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sub_task_by_exchange_gets_no_more_than_its_parent() {
    let s = setup().await;
    let (_, parent) = s.exchange(&[("scope", "notes.read")]).await;
    let parent_token = parent["task_token"].as_str().unwrap();
    let (status, child) = s
        .exchange(&[
            ("scope", "notes.read notes.write"),
            ("subject_token", parent_token),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{child}");
    assert_eq!(child["scope"], "notes.read", "{child}");
    assert_eq!(child["dropped"][0]["reason"], "not held by the parent task");
    let claims = jwt_claims(child["access_token"].as_str().unwrap());
    assert_eq!(claims["task_chain"], json!([parent["task_id"]]));
    assert_eq!(claims["act"]["sub"], parent["task_id"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stolen_task_token_cannot_be_narrowed_without_its_key() {
    let s = setup().await;
    let (_, parent) = s.exchange(&[("scope", "notes.read")]).await;
    let parent_token = parent["task_token"].as_str().unwrap();
    // The thief holds the task token and even the agent's client secret,
    // but not the key the task is bound to.
    let thief = ProofKey::generate().unwrap();
    let mut form = vec![
        ("grant_type", TOKEN_EXCHANGE),
        ("resource", s.app.as_str()),
        ("scope", "notes.read"),
        ("subject_token", parent_token),
    ];
    let (status, body) = token_request(&s.server, &s.client, Some(&thief), &form).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant", "{body}");
    // With the parent's key, a sub-agent's key may be named for the child.
    let sub = ProofKey::generate().unwrap();
    let sub_jkt = sub.thumbprint();
    form.push(("dpop_jkt", &sub_jkt));
    let (status, child) = token_request(&s.server, &s.client, Some(&s.key), &form).await;
    assert_eq!(status, StatusCode::OK, "{child}");
    let claims = jwt_claims(child["access_token"].as_str().unwrap());
    assert_eq!(claims["cnf"]["jkt"], sub_jkt.as_str());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_exchanges_only_for_the_scopes_it_was_registered_for() {
    let s = setup().await;
    // The agent holds notes.write, but this client of it was registered for notes.read only.
    let narrow = exchange_client(&s.server, "bot", "notes.read").await;
    let form = [
        ("grant_type", TOKEN_EXCHANGE),
        ("resource", s.app.as_str()),
        ("scope", "notes.read notes.write"),
    ];
    let (status, body) = token_request(&s.server, &narrow, Some(&s.key), &form).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_scope", "{body}");
    let (status, body) = token_request(
        &s.server,
        &narrow,
        Some(&s.key),
        &[form[0], form[1], ("scope", "notes.read")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn introspection_says_a_completed_tasks_jwt_is_inactive() {
    let s = setup().await;
    let (_, body) = s.exchange(&[("scope", "notes.read")]).await;
    let jwt = body["access_token"].as_str().unwrap().to_owned();
    let introspect = || async {
        let response = s
            .server
            .client()
            .post(format!("{}/oauth/introspect", s.server.url))
            .basic_auth(&s.client.0, Some(&s.client.1))
            .form(&[("token", jwt.as_str())])
            .send()
            .await
            .unwrap();
        laissez_testkit::task::answer(response).await.1
    };
    let live = introspect().await;
    assert_eq!(live["active"], true, "{live}");
    assert_eq!(live["token_type"], "DPoP", "{live}");
    assert_eq!(live["cnf"]["jkt"], s.key.thumbprint(), "{live}");
    let task = body["task_id"].as_str().unwrap();
    let (status, done) = s
        .server
        .post(&format!("/v1/tasks/{task}/complete"), json!({}))
        .await;
    assert!(status.is_success(), "{done}");
    let ended = introspect().await;
    assert_eq!(
        ended["active"], false,
        "a completed task's JWT must introspect inactive: {ended}"
    );
}
