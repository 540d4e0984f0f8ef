//! The authorization holes an adversarial review found in the OAuth server,
//! the gate's token checks and the agent, each kept shut by a test against
//! the real server and gate over HTTP: who may act with no person present,
//! deactivations and deletions reaching every gate, truthful introspection,
//! the revocation feed only for gates, issuance audited, failed redemptions
//! changing nothing, disconnects by the millisecond, gate reports in the
//! gate's own name, trimmed leak reports, bounded registration, and agents
//! refusing metadata for another resource.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use laissez_testkit::TestServer;
use laissez_testkit::browser::approve;
use laissez_testkit::gate::{client_credentials_token, front, service_client};
use reqwest::StatusCode;
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";
const VERIFIER: &str = "hardening-verifier-hardening-verifier-hardening-verifier";
const REDIRECT: &str = "http://127.0.0.1:9/cb";

async fn app() -> axum::Router {
    axum::Router::new().fallback(|| async { "app ok" })
}

/// A server with alice (holding `notes.read`), and a gate (requiring
/// `notes.read`) in front of a small app.
async fn setup() -> (TestServer, String) {
    let server = TestServer::start();
    server.add_person("alice", PASSWORD).await;
    server.grant_app_role("alice", &["notes.read"], "/").await;
    let (_, gate) = front(app().await, &server.url, |_| {}).await;
    (server, gate)
}

async fn through_gate(gate: &str, token: &str) -> StatusCode {
    reqwest::Client::new()
        .get(format!("{gate}/notes"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

async fn form(server: &TestServer, path: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let response = server
        .client()
        .post(format!("{}{path}", server.url))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A dynamically registered public client, with its registration access token.
async fn public_client(server: &TestServer) -> (String, String) {
    let client: Value = server
        .client()
        .post(format!("{}/oauth/register", server.url))
        .json(&json!({"redirect_uris": [REDIRECT], "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none", "scope": "notes.read"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (
        client["client_id"].as_str().unwrap().to_owned(),
        client["registration_access_token"]
            .as_str()
            .unwrap()
            .to_owned(),
    )
}

/// Alice approves `client_id` for `resource` (and a refresh token); returns the code.
async fn code_for(server: &TestServer, client_id: &str, resource: &str) -> String {
    code_for_scope(server, client_id, resource, "notes.read offline_access").await
}

/// Alice approves `client_id` for `resource` and `scope`; returns the code.
async fn code_for_scope(
    server: &TestServer,
    client_id: &str,
    resource: &str,
    scope: &str,
) -> String {
    let mut authorize = url::Url::parse(&format!("{}/oauth/authorize", server.url)).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", scope)
        .append_pair("state", "s")
        .append_pair("resource", resource)
        .append_pair(
            "code_challenge",
            &laissez_oauth::pkce::challenge_for(VERIFIER),
        )
        .append_pair("code_challenge_method", "S256");
    let back = approve(authorize.as_str(), "alice", PASSWORD).await;
    url::Url::parse(&back)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .expect("a code")
        .1
        .into_owned()
}

async fn exchange(
    server: &TestServer,
    client_id: &str,
    code: &str,
    resource: &str,
) -> (StatusCode, Value) {
    form(
        server,
        "/oauth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", client_id),
            ("resource", resource),
        ],
    )
    .await
}

/// A service with the laissez-gate role and its token.
async fn gate_credential(server: &TestServer) -> (String, String) {
    let (status, service) = server
        .post(
            "/v1/principals",
            json!({"kind": "service", "name": "notes-gate", "owner": "admin"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{service}");
    let (status, body) = server
        .post(
            "/v1/policies",
            json!({"principal": "notes-gate", "role": "laissez-gate", "scope": "/"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, token) = server
        .post("/v1/tokens", json!({"principal": "notes-gate"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{token}");
    (
        service["id"].as_str().unwrap().to_owned(),
        token["token"].as_str().unwrap().to_owned(),
    )
}

async fn audit(server: &TestServer) -> Vec<Value> {
    let (status, records) = server.get("/v1/audit?limit=1000").await;
    assert_eq!(status, StatusCode::OK, "{records}");
    records.as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn self_registered_clients_never_use_client_credentials() {
    let (server, gate) = setup().await;
    // Finding 1: anonymous registration with client_credentials is refused.
    let response = server
        .client()
        .post(format!("{}/oauth/register", server.url))
        .json(&json!({"grant_types": ["client_credentials"], "scope": "notes.read"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client_metadata", "{body}");

    // A self-registered confidential client cannot use the grant either.
    let client: Value = server
        .client()
        .post(format!("{}/oauth/register", server.url))
        .json(&json!({"redirect_uris": [REDIRECT]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (id, secret) = (
        client["client_id"].as_str().unwrap(),
        client["client_secret"].as_str().unwrap(),
    );
    let (status, body) = form(
        &server,
        "/oauth/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
            ("scope", "notes.read"),
            ("resource", &gate),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "unauthorized_client", "{body}");

    // An administrator's client_credentials client must name its principal.
    let (status, body) = server
        .post(
            "/v1/clients",
            json!({"client_name": "sync", "grant_types": ["client_credentials"], "scope": "notes.read"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = server
        .post(
            "/v1/clients",
            json!({"client_name": "sync", "grant_types": ["client_credentials"], "principal": "alice"}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a user is not a service: {body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn client_credentials_speak_for_their_principal_within_its_policies() {
    let (server, gate) = setup().await;
    let acting = service_client(&server.url, "notes.read", &gate).await;
    let (id, secret) = (acting.client_id.clone(), acting.secret.clone());
    let token = client_credentials_token(&server.url, "notes.read", &gate).await;
    let claims = laissez_testkit::jwt_claims(&token);
    assert!(
        claims["sub"].as_str().unwrap().starts_with("svc_"),
        "the token speaks for the service: {claims}"
    );
    assert_eq!(through_gate(&gate, &token).await, StatusCode::OK);

    let ask = |scope: &'static str, resource: String| {
        let (id, secret) = (id.clone(), secret.clone());
        let server = &server;
        async move {
            form(
                server,
                "/oauth/token",
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", &id),
                    ("client_secret", &secret),
                    ("scope", scope),
                    ("resource", &resource),
                ],
            )
            .await
        }
    };
    // Beyond its registration, or for a resource nobody registered: refused.
    let (status, body) = ask("notes.write", gate.clone()).await;
    assert_eq!(body["error"], "invalid_scope", "{status} {body}");
    let (status, body) = ask("notes.read", "https://elsewhere.example".into()).await;
    assert_eq!(body["error"], "invalid_target", "{status} {body}");

    // Registered for notes.write, defined by the resource, but no policy of the
    // service grants it: refused.
    let _ = service_client(&server.url, "notes.write", &gate).await;
    let (status, wide) = server
        .post(
            "/v1/clients",
            json!({"client_name": "wide", "grant_types": ["client_credentials"],
                "scope": "notes.read notes.write", "principal": acting.service}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{wide}");
    let (status, body) = form(
        &server,
        "/oauth/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", wide["client_id"].as_str().unwrap()),
            ("client_secret", wide["client_secret"].as_str().unwrap()),
            ("scope", "notes.write"),
            ("resource", &gate),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_scope", "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn deactivating_the_owner_stops_client_credentials_at_once() {
    let (server, gate) = setup().await;
    // Finding 14: a service owned by bob, with bob's and its own policies.
    let (status, bob) = server
        .post("/v1/principals", json!({"kind": "user", "name": "bob"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{bob}");
    let (status, body) = server
        .post(
            "/v1/principals",
            json!({"kind": "service", "name": "bob-sync", "owner": "bob"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = server
        .post(
            "/v1/roles",
            json!({"name": "notes-reader", "permissions": ["notes.read"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    for principal in ["bob", "bob-sync"] {
        let (status, body) = server
            .post(
                "/v1/policies",
                json!({"principal": principal, "role": "notes-reader", "scope": "/"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, body) = server
        .call(
            reqwest::Method::PUT,
            "/v1/resources",
            &server.admin_token,
            Some(
                &json!({"resource": gate, "name": "notes", "scopes": {"notes.read": "Read notes"}}),
            ),
        )
        .await;
    assert!(status.is_success(), "{body}");
    let (status, client) = server
        .post(
            "/v1/clients",
            json!({"client_name": "bob's sync", "grant_types": ["client_credentials"],
                "scope": "notes.read", "principal": "bob-sync"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{client}");
    let (id, secret) = (
        client["client_id"].as_str().unwrap().to_owned(),
        client["client_secret"].as_str().unwrap().to_owned(),
    );
    let mint = || async {
        form(
            &server,
            "/oauth/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", &secret),
                ("scope", "notes.read"),
                ("resource", &gate),
            ],
        )
        .await
    };
    let (status, tokens) = mint().await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let token = tokens["access_token"].as_str().unwrap().to_owned();
    assert_eq!(through_gate(&gate, &token).await, StatusCode::OK);

    let (status, body) = server
        .post("/v1/principals/bob/deactivate", json!({}))
        .await;
    assert!(status.is_success(), "{body}");
    assert_eq!(
        through_gate(&gate, &token).await,
        StatusCode::UNAUTHORIZED,
        "the owner's deactivation reaches the gate on the next request"
    );
    let (status, body) = mint().await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "no new token: {body}");
    assert_eq!(body["error"], "invalid_grant", "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_client_kills_its_tokens_at_the_gate() {
    let (server, gate) = setup().await;
    let (client_id, registration) = public_client(&server).await;
    let code = code_for(&server, &client_id, &gate).await;
    let (status, tokens) = exchange(&server, &client_id, &code, &gate).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let token = tokens["access_token"].as_str().unwrap();
    assert_eq!(through_gate(&gate, token).await, StatusCode::OK);
    let deleted = server
        .client()
        .delete(format!("{}/oauth/register/{client_id}", server.url))
        .bearer_auth(&registration)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(through_gate(&gate, token).await, StatusCode::UNAUTHORIZED);
    let (_, feed) = server.get("/oauth/revoked").await;
    assert!(
        feed["deleted_clients"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == client_id.as_str()),
        "{feed}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn introspection_tells_the_truth_and_only_to_gates_and_the_tokens_client() {
    let (server, gate) = setup().await;
    let (client_id, _) = public_client(&server).await;
    let code = code_for(&server, &client_id, &gate).await;
    let (_, tokens) = exchange(&server, &client_id, &code, &gate).await;
    let token = tokens["access_token"].as_str().unwrap().to_owned();

    // Finding 15: a stranger's confidential client learns nothing.
    let stranger: Value = server
        .client()
        .post(format!("{}/oauth/register", server.url))
        .json(&json!({"redirect_uris": [REDIRECT]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (status, body) = form(
        &server,
        "/oauth/introspect",
        &[
            ("token", &token),
            ("client_id", stranger["client_id"].as_str().unwrap()),
            ("client_secret", stranger["client_secret"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"active": false}), "another client's token");

    // Nobody at all: refused.
    let (status, _) = form(&server, "/oauth/introspect", &[("token", &token)]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A gate learns the truth.
    let (_, gate_token) = gate_credential(&server).await;
    let introspect = || async {
        let response = server
            .client()
            .post(format!("{}/oauth/introspect", server.url))
            .bearer_auth(&gate_token)
            .form(&[("token", token.as_str())])
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json::<Value>().await.unwrap())
    };
    let (status, body) = introspect().await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["active"], true, "{body}");
    // A token without the gate role cannot ask as a gate.
    let (status, user_token) = server
        .post("/v1/tokens", json!({"principal": "alice"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{user_token}");
    let refused = server
        .client()
        .post(format!("{}/oauth/introspect", server.url))
        .bearer_auth(user_token["token"].as_str().unwrap())
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    // The same checks as the gate: a deactivated user's token is inactive.
    let (status, body) = server
        .post("/v1/principals/alice/deactivate", json!({}))
        .await;
    assert!(status.is_success(), "{body}");
    let (_, body) = introspect().await;
    assert_eq!(body, json!({"active": false}));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_revocation_feed_is_only_for_gates_and_strangers_cannot_delay_it() {
    let (server, gate) = setup().await;
    // Finding 10: anonymous and wrongly privileged reads are refused.
    let anonymous = server
        .client()
        .get(format!("{}/oauth/revoked?gate=stranger&wait=0", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let (_, user_token) = server
        .post("/v1/tokens", json!({"principal": "alice"}))
        .await;
    let (status, _) = server
        .call(
            reqwest::Method::GET,
            "/oauth/revoked",
            user_token["token"].as_str().unwrap(),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, gate_token) = gate_credential(&server).await;
    let (status, feed) = server
        .call(reqwest::Method::GET, "/oauth/revoked", &gate_token, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{feed}");
    assert!(feed["deactivated"].is_array());

    // The stranger's poll above did not enrol a gate to wait for: a
    // revocation is confirmed as soon as the real gate applied it.
    let (client_id, _) = public_client(&server).await;
    let code = code_for(&server, &client_id, &gate).await;
    let (_, tokens) = exchange(&server, &client_id, &code, &gate).await;
    let token = tokens["access_token"].as_str().unwrap();
    assert_eq!(through_gate(&gate, token).await, StatusCode::OK);
    let started = Instant::now();
    let (status, body) = server
        .post(
            "/v1/connected-apps/disconnect",
            json!({"client_id": client_id, "user": "alice"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "the revocation waited {:?} for a gate that is not one",
        started.elapsed()
    );
    assert_eq!(through_gate(&gate, token).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_issued_access_token_is_an_audit_record() {
    let (server, gate) = setup().await;
    let (client_id, _) = public_client(&server).await;
    let code = code_for(&server, &client_id, &gate).await;
    let (_, first) = exchange(&server, &client_id, &code, &gate).await;
    let (status, second) = form(
        &server,
        "/oauth/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", first["refresh_token"].as_str().unwrap()),
            ("client_id", &client_id),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let alone = client_credentials_token(&server.url, "notes.read", &gate).await;
    let records = audit(&server).await;
    for (token, grant_type) in [
        (
            first["access_token"].as_str().unwrap(),
            "authorization_code",
        ),
        (second["access_token"].as_str().unwrap(), "refresh_token"),
        (alone.as_str(), "client_credentials"),
    ] {
        let claims = laissez_testkit::jwt_claims(token);
        let record = records
            .iter()
            .find(|r| r["action"] == "oauth.token.issue" && r["target"] == claims["jti"])
            .unwrap_or_else(|| panic!("no issuance record for {claims}"));
        let detail = &record["detail"];
        assert_eq!(detail["grant_type"], grant_type);
        assert_eq!(detail["sub"], claims["sub"]);
        assert_eq!(detail["client_id"], claims["client_id"]);
        assert_eq!(detail["aud"], claims["aud"]);
        assert_eq!(detail["scope"], claims["scope"]);
        assert_eq!(detail["exp"], claims["exp"]);
        assert_eq!(
            record["chain"].as_array().unwrap().last().unwrap()["id"],
            claims["sub"],
            "the chain ends with who the token speaks for"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_redemption_spends_nothing() {
    let (server, gate) = setup().await;
    let (client_id, _) = public_client(&server).await;
    let (other_id, _) = public_client(&server).await;
    let code = code_for(&server, &client_id, &gate).await;
    // Finding 16: another client, a wrong verifier, redirect URI or resource.
    for attempt in [
        vec![
            ("client_id", other_id.as_str()),
            ("code_verifier", VERIFIER),
            ("redirect_uri", REDIRECT),
            ("resource", gate.as_str()),
        ],
        vec![
            ("client_id", client_id.as_str()),
            (
                "code_verifier",
                "wrong-wrong-wrong-wrong-wrong-wrong-wrong-wrong-wrong",
            ),
            ("redirect_uri", REDIRECT),
            ("resource", gate.as_str()),
        ],
        vec![
            ("client_id", client_id.as_str()),
            ("code_verifier", VERIFIER),
            ("redirect_uri", "http://127.0.0.1:9/other"),
            ("resource", gate.as_str()),
        ],
        vec![
            ("client_id", client_id.as_str()),
            ("code_verifier", VERIFIER),
            ("redirect_uri", REDIRECT),
            ("resource", "https://elsewhere.example"),
        ],
    ] {
        let mut fields = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
        ];
        fields.extend(attempt);
        let (status, body) = form(&server, "/oauth/token", &fields).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    }
    let (status, tokens) = exchange(&server, &client_id, &code, &gate).await;
    assert_eq!(status, StatusCode::OK, "the code still works: {tokens}");
    let refresh = tokens["refresh_token"].as_str().unwrap();

    // The same for refresh tokens: another client, or a wider scope.
    for (client, scope) in [
        (other_id.as_str(), None),
        (client_id.as_str(), Some("notes.read notes.write")),
    ] {
        let mut fields = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", client),
        ];
        if let Some(scope) = scope {
            fields.push(("scope", scope));
        }
        let (status, body) = form(&server, "/oauth/token", &fields).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    }
    let rotate = |token: String| {
        let client_id = client_id.clone();
        let server = &server;
        async move {
            form(
                server,
                "/oauth/token",
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &token),
                    ("client_id", &client_id),
                ],
            )
            .await
        }
    };
    let (status, next) = rotate(refresh.to_owned()).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the refresh token still works: {next}"
    );
    // A real replay still revokes the family.
    let (status, _) = rotate(refresh.to_owned()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = rotate(next["refresh_token"].as_str().unwrap().to_owned()).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "the family died with the replay"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_grant_made_just_after_a_disconnect_lives() {
    let (server, gate) = setup().await;
    let (client_id, _) = public_client(&server).await;
    let code = code_for(&server, &client_id, &gate).await;
    let (_, old) = exchange(&server, &client_id, &code, &gate).await;
    // Finding 17: consent again in the same second as the disconnect.
    for _ in 0..5 {
        let (status, body) = server
            .post(
                "/v1/connected-apps/disconnect",
                json!({"client_id": client_id, "user": "alice"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let disconnected_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let code = code_for(&server, &client_id, &gate).await;
        let (status, fresh) = exchange(&server, &client_id, &code, &gate).await;
        assert_eq!(status, StatusCode::OK, "{fresh}");
        let token = fresh["access_token"].as_str().unwrap();
        assert_eq!(
            through_gate(&gate, token).await,
            StatusCode::OK,
            "a grant made after the disconnect lives"
        );
        let (status, body) = form(
            &server,
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", fresh["refresh_token"].as_str().unwrap()),
                ("client_id", &client_id),
            ],
        )
        .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "and so does its refresh token: {body}"
        );
        let iat = laissez_testkit::jwt_claims(token)["iat"].as_u64().unwrap();
        if iat == disconnected_at {
            break;
        }
    }
    assert_eq!(
        through_gate(&gate, old["access_token"].as_str().unwrap()).await,
        StatusCode::UNAUTHORIZED,
        "the token from before the disconnect stays dead"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn gate_reports_are_recorded_in_the_gates_name() {
    let (server, _gate) = setup().await;
    let (gate_id, gate_token) = gate_credential(&server).await;
    let (_, alice) = server.get("/v1/principals/alice").await;
    let alice_id = alice["id"].as_str().unwrap();
    // Finding 19: the gate says it verified alice; the record is the gate's.
    let (status, body) = server
        .call(
            reqwest::Method::POST,
            "/v1/audit/events",
            &gate_token,
            Some(
                &json!([{"app": "notes", "method": "GET", "path": "/x", "decision": "allow",
                "user": alice_id, "client_id": "cli_x", "scope": "notes.read"}]),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let records = audit(&server).await;
    let record = records
        .iter()
        .find(|r| r["action"] == "gate.allow")
        .expect("the gate's record");
    let chain = record["chain"].as_array().unwrap();
    assert_eq!(chain.last().unwrap()["id"], gate_id.as_str(), "{record}");
    assert!(
        chain.iter().all(|p| p["id"] != alice_id),
        "alice is not in the actor chain: {record}"
    );
    assert_eq!(record["detail"]["user"], alice_id);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reported_token_with_trailing_whitespace_is_revoked() {
    let (server, _gate) = setup().await;
    let (status, created) = server
        .post("/v1/tokens", json!({"principal": "alice"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let token = created["token"].as_str().unwrap();
    let (status, body) = server
        .post(
            "/v1/leaks",
            json!([{"token": format!("{token}\n"), "type": "laissez", "url": "https://paste.example/1"}]),
        )
        .await;
    assert!(status.is_success(), "{body}");
    assert_ne!(body[0]["label"], "false_positive", "{body}");
    let (status, _) = server
        .call(reqwest::Method::GET, "/v1/whoami", token, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the token was revoked");
}

#[tokio::test(flavor = "multi_thread")]
async fn anonymous_registration_is_bounded() {
    let server = TestServer::start();
    let register = |body: Value| {
        let http = server.client().clone();
        let url = format!("{}/oauth/register", server.url);
        async move { http.post(url).json(&body).send().await.unwrap() }
    };
    // Finding 11: oversized bodies and fields are refused.
    let many: Vec<String> = (0..17).map(|i| format!("http://127.0.0.1/cb{i}")).collect();
    let response =
        register(json!({"redirect_uris": many, "token_endpoint_auth_method": "none"})).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let huge = "x".repeat(20_000);
    let response = register(json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none", "software_statement": huge})).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    // And one network registers at most a burst, then waits.
    let mut refused = None;
    for i in 0..40 {
        let response =
            register(json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"}))
                .await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(response.headers().contains_key("retry-after"));
            refused = Some(i);
            break;
        }
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let refused = refused.expect("registration is rate limited");
    assert!(refused >= 20, "a burst is allowed ({refused})");
}

#[tokio::test(flavor = "multi_thread")]
async fn agents_refuse_metadata_naming_another_resource() {
    let (server, gate) = setup().await;
    // Finding 28: a malicious app names the gate's resource as its own.
    let fetched = Arc::new(Mutex::new(0usize));
    let counter = fetched.clone();
    let evil_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let evil = format!("http://{}", evil_listener.local_addr().unwrap());
    let metadata = json!({"resource": gate, "authorization_servers": [server.url]});
    let evil_app = axum::Router::new()
        .route(
            "/.well-known/oauth-protected-resource",
            axum::routing::get(move || {
                let metadata = metadata.clone();
                async move { axum::Json(metadata) }
            }),
        )
        .fallback(move |request: axum::extract::Request| {
            let counter = counter.clone();
            async move {
                if request.headers().contains_key("authorization") {
                    *counter.lock().unwrap() += 1;
                }
                (
                    StatusCode::UNAUTHORIZED,
                    [("www-authenticate", "Bearer scope=\"notes.read\"")],
                )
            }
        });
    tokio::spawn(async move { axum::serve(evil_listener, evil_app).await });
    let temp = tempfile::tempdir().unwrap();
    let asked = Arc::new(Mutex::new(0usize));
    let seen = asked.clone();
    let agent = laissez_agent::Agent::new(
        temp.path().join("tokens.json"),
        Box::new(move |_url: String| {
            *seen.lock().unwrap() += 1;
            Box::pin(async {})
        }),
    )
    .unwrap();
    let result = agent
        .fetch(reqwest::Method::GET, &format!("{evil}/mcp"), None, &[])
        .await;
    let error = result.expect_err("the agent refuses the metadata");
    assert!(error.to_string().contains("does not cover"), "{error}");
    assert_eq!(*asked.lock().unwrap(), 0, "no consent was asked");
    assert_eq!(*fetched.lock().unwrap(), 0, "no token reached the app");
}

#[tokio::test(flavor = "multi_thread")]
async fn consent_is_bounded_by_the_resources_registered_scopes() {
    let (server, gate) = setup().await;
    let (status, body) = server
        .call(
            reqwest::Method::PUT,
            "/v1/resources",
            &server.admin_token,
            Some(
                &json!({"resource": gate, "name": "notes", "scopes": {"notes.read": "Read notes"}}),
            ),
        )
        .await;
    assert!(status.is_success(), "{body}");
    let (client_id, _) = public_client(&server).await;
    let code = code_for_scope(&server, &client_id, &gate, "notes.read notes.admin").await;
    let (status, tokens) = exchange(&server, &client_id, &code, &gate).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let claims = laissez_testkit::jwt_claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(claims["scope"], "notes.read", "{claims}");
}

/// Registers with `credential` as Bearer; answers the status and body.
async fn register_as(server: &TestServer, credential: &str) -> (StatusCode, Value) {
    let response = server
        .client()
        .post(format!("{}/oauth/register", server.url))
        .bearer_auth(credential)
        .json(&json!({"redirect_uris": ["http://127.0.0.1:9/gate/cb"], "token_endpoint_auth_method": "client_secret_basic"}))
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn registration_readable(server: &TestServer, client_id: &str, token: &str) -> StatusCode {
    server
        .client()
        .get(format!("{}/oauth/register/{client_id}", server.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gates_own_sign_in_client_outlives_the_unused_client_sweep() {
    let server = TestServer::start_with_options(laissez_server::run::Options {
        unused_client_ttl: Some(0),
        ..Default::default()
    });
    let (_, gate_token) = gate_credential(&server).await;
    let (anonymous, anonymous_token) = public_client(&server).await;
    let (status, gate_client) = register_as(&server, &gate_token).await;
    assert_eq!(status, StatusCode::CREATED, "{gate_client}");
    let gate_client_id = gate_client["client_id"].as_str().unwrap();
    let gate_registration = gate_client["registration_access_token"].as_str().unwrap();
    // A credential that is not a gate's is refused, never taken as anonymous.
    let (status, _) = register_as(&server, "lzut_not-a-token").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    server.add_person("bob", PASSWORD).await;
    let (_, bob_token) = server.post("/v1/tokens", json!({"principal": "bob"})).await;
    let (status, _) = register_as(&server, bob_token["token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A registration a second later sweeps unused clients: the anonymous
    // one goes, the gate's own stays.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    public_client(&server).await;
    assert_eq!(
        registration_readable(&server, &anonymous, &anonymous_token).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        registration_readable(&server, gate_client_id, gate_registration).await,
        StatusCode::OK
    );
}

/// Refreshes `refresh` for `client_id`; answers the status and body.
async fn refresh_with(server: &TestServer, client_id: &str, refresh: &str) -> (StatusCode, Value) {
    form(
        server,
        "/oauth/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", client_id),
        ],
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_person_grants_only_the_scopes_their_policies_hold() {
    let server = TestServer::start();
    server.add_person("alice", PASSWORD).await;
    let (app_url, gate) = front(app().await, &server.url, |c| {
        c.rules = vec![laissez_gate::config::Rule::parse("/write notes.write").unwrap()];
    })
    .await;
    let (status, body) = server
        .call(
            reqwest::Method::PUT,
            "/v1/resources",
            &server.admin_token,
            Some(&json!({"resource": gate, "name": "notes",
                "scopes": {"notes.read": "Read notes", "notes.write": "Write notes"},
                "gate": {"upstream": app_url, "account": "acme"}})),
        )
        .await;
    assert!(status.is_success(), "{body}");
    // Alice reads notes in acme and may write them only elsewhere.
    let policy = server
        .grant_app_role("alice", &["notes.read"], "acme")
        .await;
    server
        .grant_app_role("alice", &["notes.write"], "globex")
        .await;
    let (client_id, _) = public_client(&server).await;
    // She approves everything the page offers: notes.write is not offered.
    let code = code_for_scope(
        &server,
        &client_id,
        &gate,
        "notes.read notes.write offline_access",
    )
    .await;
    let (status, tokens) = exchange(&server, &client_id, &code, &gate).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    let claims = laissez_testkit::jwt_claims(access);
    assert_eq!(claims["scope"], "notes.read offline_access", "{claims}");
    assert_eq!(through_gate(&gate, access).await, StatusCode::OK);
    let write = reqwest::Client::new()
        .get(format!("{gate}/write"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(write, StatusCode::FORBIDDEN);
    // A refresh while she holds it keeps notes.read.
    let refresh = tokens["refresh_token"].as_str().expect("a refresh token");
    let (status, fresh) = refresh_with(&server, &client_id, refresh).await;
    assert_eq!(status, StatusCode::OK, "{fresh}");
    assert_eq!(
        laissez_testkit::jwt_claims(fresh["access_token"].as_str().unwrap())["scope"],
        "notes.read offline_access"
    );
    // Her policy removed, the next refresh yields no notes.read.
    let (status, body) = server
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/policies/{policy}"),
            &server.admin_token,
            None,
        )
        .await;
    assert!(status.is_success(), "{body}");
    let (status, after) = refresh_with(
        &server,
        &client_id,
        fresh["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{after}");
    assert_eq!(after["error"], "invalid_scope", "{after}");
}

#[tokio::test(flavor = "multi_thread")]
async fn consent_fails_back_to_the_client_when_the_person_holds_nothing_asked() {
    let server = TestServer::start();
    server.add_person("alice", PASSWORD).await;
    let (_, gate) = front(app().await, &server.url, |_| {}).await;
    let (client_id, _) = public_client(&server).await;
    let mut authorize = url::Url::parse(&format!("{}/oauth/authorize", server.url)).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &client_id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", "notes.read")
        .append_pair("state", "s")
        .append_pair("resource", &gate)
        .append_pair(
            "code_challenge",
            &laissez_oauth::pkce::challenge_for(VERIFIER),
        )
        .append_pair("code_challenge_method", "S256");
    let mut browser = laissez_testkit::browser::Browser::new(REDIRECT);
    let login = browser.open(authorize.as_str()).await;
    let back = browser
        .submit(&login, &[("username", "alice"), ("password", PASSWORD)])
        .await;
    let url = url::Url::parse(&back.url).unwrap();
    let error = url
        .query_pairs()
        .find(|(k, _)| k == "error")
        .map(|(_, v)| v.into_owned());
    assert_eq!(error.as_deref(), Some("invalid_scope"), "{back:?}");
    assert!(url.query_pairs().all(|(k, _)| k != "code"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forged_consent_gets_only_what_the_person_holds_in_the_accounts_chosen() {
    let (server, gate) = setup().await;
    // A resource with no gate account: the accounts alice chooses decide.
    let (status, body) = server
        .call(
            reqwest::Method::PUT,
            "/v1/resources",
            &server.admin_token,
            Some(&json!({"resource": gate, "name": "notes",
                "scopes": {"notes.read": "Read notes", "notes.write": "Write notes"}})),
        )
        .await;
    assert!(status.is_success(), "{body}");
    server
        .grant_app_role("alice", &["notes.write"], "globex")
        .await;
    let (client_id, _) = public_client(&server).await;
    let mut authorize = url::Url::parse(&format!("{}/oauth/authorize", server.url)).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &client_id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", "notes.read notes.write")
        .append_pair("state", "s")
        .append_pair("resource", &gate)
        .append_pair(
            "code_challenge",
            &laissez_oauth::pkce::challenge_for(VERIFIER),
        )
        .append_pair("code_challenge_method", "S256");
    let mut browser = laissez_testkit::browser::Browser::new(REDIRECT);
    let login = browser.open(authorize.as_str()).await;
    let consent = browser
        .submit(&login, &[("username", "alice"), ("password", PASSWORD)])
        .await;
    // She holds notes.write in globex: offered (it is one of her accounts).
    assert!(
        consent.body.contains("value=\"notes.write\""),
        "{}",
        consent.body
    );
    // She keeps only `/`, where her policy grants notes.read alone (her
    // notes.write is in globex), and the form names notes.write anyway: the
    // code carries notes.read only.
    let back = browser
        .submit(
            &consent,
            &[
                ("grant_scope", "notes.read"),
                ("grant_scope", "notes.write"),
                ("grant_account", "/"),
                ("decision", "approve"),
            ],
        )
        .await;
    let code = url::Url::parse(&back.url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("a code: {back:?}"));
    let (status, tokens) = exchange(&server, &client_id, &code, &gate).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let claims = laissez_testkit::jwt_claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(claims["scope"], "notes.read", "{claims}");
    assert_eq!(claims["accounts"], json!(["/"]), "{claims}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_code_yields_only_what_the_person_still_holds_when_it_is_exchanged() {
    let server = TestServer::start();
    server.add_person("alice", PASSWORD).await;
    let (_, gate) = front(app().await, &server.url, |_| {}).await;
    let read = server.grant_app_role("alice", &["notes.read"], "/").await;
    server.grant_app_role("alice", &["notes.write"], "/").await;
    let (client_id, _) = public_client(&server).await;
    let code = code_for_scope(
        &server,
        &client_id,
        &gate,
        "notes.read notes.write offline_access",
    )
    .await;
    // Between consent and the exchange, notes.read is taken from her.
    let (status, body) = server
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/policies/{read}"),
            &server.admin_token,
            None,
        )
        .await;
    assert!(status.is_success(), "{body}");
    let (status, tokens) = exchange(&server, &client_id, &code, &gate).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let claims = laissez_testkit::jwt_claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(claims["scope"], "notes.write offline_access", "{claims}");
    // And the refresh grant carries no more than the token.
    let (status, fresh) = refresh_with(
        &server,
        &client_id,
        tokens["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{fresh}");
    assert_eq!(
        laissez_testkit::jwt_claims(fresh["access_token"].as_str().unwrap())["scope"],
        "notes.write offline_access"
    );
}

/// A gate following changes (`delta=1`) is sent only what was added when
/// only tokens were revoked since the version it holds (no store read),
/// and the whole state after any other change; a revocation still waits
/// for its acknowledgement, and a poll that is no gate's gets everything.
#[tokio::test(flavor = "multi_thread")]
async fn the_feed_sends_a_following_gate_additions_and_else_the_whole_state() {
    let (server, gate) = setup().await;
    let (_, gate_token) = gate_credential(&server).await;
    let poll = async |query: String| -> Value {
        let (status, body) = server
            .call(
                reqwest::Method::GET,
                &format!("/oauth/revoked?{query}"),
                &gate_token,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    };
    let follow = |after: &Value, wait: u8| {
        format!(
            "gate=probe&delta=1&wait={wait}&after={}",
            after.as_str().unwrap()
        )
    };
    let whole = poll("gate=probe&delta=1&wait=0".into()).await;
    assert!(whole.get("delta").is_none(), "{whole}");
    assert!(whole["deactivated"].is_array(), "{whole}");
    let held = whole["version"].clone();

    let (client_id, _) = public_client(&server).await;
    let code = code_for(&server, &client_id, &gate).await;
    let (_, tokens) = exchange(&server, &client_id, &code, &gate).await;
    let token = tokens["access_token"].as_str().unwrap().to_owned();
    let jti = laissez_testkit::jwt_claims(&token)["jti"].clone();
    // The revocation answers once the probe, as a gate, acknowledged it.
    let revoke = async {
        let (status, body) = form(
            &server,
            "/oauth/revoke",
            &[("token", &token), ("client_id", &client_id)],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    };
    let added = async {
        let added = poll(follow(&held, 5)).await;
        // Acknowledged with the next poll, as a gate does.
        poll(follow(&added["version"], 0)).await;
        added
    };
    let ((), added) = tokio::join!(revoke, added);
    assert_eq!(added["delta"], true, "{added}");
    assert_eq!(added["since"], held, "{added}");
    assert_eq!(added["revoked"], json!([jti]), "{added}");
    assert_eq!(added["ended_tasks"], json!([]), "{added}");
    assert!(added.get("deactivated").is_none(), "{added}");

    // A disconnection is no mere addition: the whole state follows.
    let disconnect = async {
        let (status, body) = server
            .post(
                "/v1/connected-apps/disconnect",
                json!({"client_id": client_id, "user": "alice"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    };
    let next = async {
        let next = poll(follow(&added["version"], 5)).await;
        poll(follow(&next["version"], 0)).await;
        next
    };
    let ((), next) = tokio::join!(disconnect, next);
    assert!(next.get("delta").is_none(), "{next}");
    assert!(
        next["disconnected"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["client_id"] == client_id.as_str()),
        "{next}"
    );
    assert!(next["revoked"].as_array().unwrap().contains(&jti), "{next}");
    // Nothing changed since (the wait ran out): the whole state again.
    let idle = poll(follow(&next["version"], 0)).await;
    assert!(idle.get("delta").is_none(), "{idle}");
    // No `gate`, or no `delta=1`: always the whole state.
    for query in [
        format!("delta=1&wait=0&after={}", next["version"].as_str().unwrap()),
        format!(
            "gate=probe&wait=0&after={}",
            next["version"].as_str().unwrap()
        ),
    ] {
        let answer = poll(query).await;
        assert!(answer.get("delta").is_none(), "{answer}");
    }
}
