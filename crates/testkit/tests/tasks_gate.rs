//! A task's JWT at a gate in front of a real app: it passes only as
//! `Authorization: DPoP` with a fresh proof of the task's key (as a bearer
//! token, with another key's proof or a replayed proof it is refused, and
//! recorded as a possible theft); it stops at the very next request once
//! the task, or a task above it, completes; an app requiring DPoP nonces
//! hands one out and accepts the retry; an app requiring DPoP refuses
//! ordinary bearer tokens; and every decision in the audit log names the task.

use laissez_dpop::ProofKey;
use laissez_testkit::TestServer;
use laissez_testkit::task::{
    Agent, TOKEN_EXCHANGE, agent, audit_records, echo_gate, exchange_client, gate_call,
    gate_call_with_proof, gate_identity, token_request, unix_now,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

struct Setup {
    server: TestServer,
    bot: Agent,
    key: ProofKey,
    gate_url: String,
}

async fn setup(configure: impl FnOnce(&mut laissez_gate::GateConfig)) -> Setup {
    let server = TestServer::start();
    let bot = agent(
        &server,
        "alice",
        &["notes.read", "notes.write"],
        "bot",
        &["notes.read", "notes.write"],
    )
    .await;
    let gate_url = echo_gate(&server, &["notes.read", "notes.write"], configure).await;
    Setup {
        server,
        bot,
        key: ProofKey::generate().unwrap(),
        gate_url,
    }
}

impl Setup {
    /// A task for the app with notes.read: (its id, its JWT, its `lztt_`).
    async fn task(&self) -> (String, String, String) {
        let (status, body) = laissez_testkit::task::ask_task(
            &self.server,
            &self.bot.token,
            &self.key,
            &json!({"description": "read notes", "permissions": ["notes.read"],
                "resources": [self.gate_url]}),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let app = &body["access_tokens"][0];
        assert_eq!(app["scope"], "notes.read", "{body}");
        (
            body["task"]["id"].as_str().unwrap().to_owned(),
            app["access_token"].as_str().unwrap().to_owned(),
            body["token"].as_str().unwrap().to_owned(),
        )
    }

    fn url(&self) -> String {
        format!("{}/notes", self.gate_url.trim_end_matches('/'))
    }

    async fn complete(&self, id: &str) -> Value {
        let (status, body) = self
            .server
            .call(
                Method::POST,
                &format!("/v1/tasks/{id}/complete"),
                &self.bot.token,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_task_jwt_passes_the_gate_with_a_proof_of_its_key() {
    let s = setup(|_| {}).await;
    let (_, jwt, _) = s.task().await;
    let response = gate_call(&s.url(), "DPoP", &jwt, Some(&s.key), None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let seen: Value = response.json().await.unwrap();
    assert_eq!(seen["x-laissez-scope"], "notes.read", "{seen}");
    assert_eq!(seen["x-laissez-agent"], s.bot.id.as_str(), "{seen}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_app_sees_neither_the_task_jwt_nor_its_proof() {
    let s = setup(|_| {}).await;
    let (_, jwt, _) = s.task().await;
    let response = gate_call(&s.url(), "DPoP", &jwt, Some(&s.key), None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let seen: Value = response.json().await.unwrap();
    assert!(seen.get("authorization").is_none(), "{seen}");
    assert!(
        seen.get("dpop").is_none(),
        "the app got the DPoP proof: {seen}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_task_jwt_as_a_bearer_token_is_refused() {
    let s = setup(|_| {}).await;
    let (_, jwt, _) = s.task().await;
    let response = gate_call(&s.url(), "Bearer", &jwt, None, None).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // Not even with its proof alongside.
    let response = gate_call(&s.url(), "Bearer", &jwt, Some(&s.key), None).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_task_jwt_with_another_keys_proof_is_refused() {
    let s = setup(|_| {}).await;
    let (_, jwt, _) = s.task().await;
    let thief = ProofKey::generate().unwrap();
    let response = gate_call(&s.url(), "DPoP", &jwt, Some(&thief), None).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = gate_call(&s.url(), "DPoP", &jwt, None, None).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replayed_proof_is_refused_at_the_gate() {
    let s = setup(|_| {}).await;
    let (_, jwt, _) = s.task().await;
    let proof = s
        .key
        .proof("GET", &s.url(), Some(&jwt), None, unix_now())
        .unwrap();
    let first = gate_call_with_proof(&s.url(), "DPoP", &jwt, Some(&proof)).await;
    assert_eq!(first.status(), StatusCode::OK);
    let again = gate_call_with_proof(&s.url(), "DPoP", &jwt, Some(&proof)).await;
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_completed_task_is_refused_at_the_very_next_request() {
    let s = setup(|_| {}).await;
    let (id, jwt, _) = s.task().await;
    let before = gate_call(&s.url(), "DPoP", &jwt, Some(&s.key), None).await;
    assert_eq!(before.status(), StatusCode::OK);
    s.complete(&id).await;
    let after = gate_call(&s.url(), "DPoP", &jwt, Some(&s.key), None).await;
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
}

/// Gates are told while the completion's commit runs: with the store's
/// write lock held elsewhere (a slow disk), the gate already refuses the
/// task and a whole-state feed answer names it, but the completion answers
/// only once its commit went through.
#[tokio::test(flavor = "multi_thread")]
async fn a_completing_task_is_refused_at_the_gate_while_its_commit_waits() {
    let s = setup(|_| {}).await;
    let (id, jwt, _) = s.task().await;
    let before = gate_call(&s.url(), "DPoP", &jwt, Some(&s.key), None).await;
    assert_eq!(before.status(), StatusCode::OK);
    let feed_reader = gate_identity(&s.server, "feed-reader").await;
    let disk = rusqlite::Connection::open(s.server.store.path()).unwrap();
    disk.execute_batch("BEGIN IMMEDIATE").unwrap();
    let answered = std::sync::atomic::AtomicBool::new(false);
    let complete = async {
        let done = s.complete(&id).await;
        answered.store(true, std::sync::atomic::Ordering::SeqCst);
        done
    };
    let meanwhile = async {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        loop {
            let response = gate_call(&s.url(), "DPoP", &jwt, Some(&s.key), None).await;
            if response.status() == StatusCode::UNAUTHORIZED {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "never refused");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let (status, whole) = s
            .server
            .call(Method::GET, "/oauth/revoked", &feed_reader, None)
            .await;
        assert_eq!(status, StatusCode::OK, "{whole}");
        assert!(
            whole["ended_tasks"]
                .as_array()
                .unwrap()
                .contains(&json!(id)),
            "{whole}"
        );
        let waiting = !answered.load(std::sync::atomic::Ordering::SeqCst);
        disk.execute_batch("ROLLBACK").unwrap();
        waiting
    };
    let (done, waited) = tokio::join!(complete, meanwhile);
    assert!(waited, "the completion answered before its commit");
    assert_eq!(done["task"]["status"], "completed", "{done}");
    let after = gate_call(&s.url(), "DPoP", &jwt, Some(&s.key), None).await;
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread")]
async fn completing_a_parent_refuses_the_childs_jwt_at_once() {
    let s = setup(|_| {}).await;
    let (parent_id, _, parent_token) = s.task().await;
    // The child, for a sub-agent's key, through token exchange: the
    // request proves the parent's key and names the sub-agent's.
    let client = exchange_client(&s.server, "bot", "notes.read").await;
    let sub_key = ProofKey::generate().unwrap();
    let sub_jkt = sub_key.thumbprint();
    let (status, child) = token_request(
        &s.server,
        &client,
        Some(&s.key),
        &[
            ("grant_type", TOKEN_EXCHANGE),
            ("scope", "notes.read"),
            ("resource", &s.gate_url),
            ("subject_token", &parent_token),
            ("dpop_jkt", &sub_jkt),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{child}");
    let child_jwt = child["access_token"].as_str().unwrap();
    assert_eq!(
        laissez_testkit::jwt_claims(child_jwt)["task_chain"],
        json!([parent_id])
    );
    let before = gate_call(&s.url(), "DPoP", child_jwt, Some(&sub_key), None).await;
    assert_eq!(before.status(), StatusCode::OK);
    let done = s.complete(&parent_id).await;
    assert_eq!(done["ended"].as_array().unwrap().len(), 2, "{done}");
    let after = gate_call(&s.url(), "DPoP", child_jwt, Some(&sub_key), None).await;
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_app_requiring_nonces_hands_one_out_and_accepts_the_retry() {
    let s = setup(|c| c.dpop_nonce = true).await;
    let (_, jwt, _) = s.task().await;
    let refused = gate_call(&s.url(), "DPoP", &jwt, Some(&s.key), None).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let challenge = refused.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.contains("use_dpop_nonce"), "{challenge}");
    let nonce = refused.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    let retry = gate_call(&s.url(), "DPoP", &jwt, Some(&s.key), Some(&nonce)).await;
    assert_eq!(retry.status(), StatusCode::OK);
    let forged = gate_call(&s.url(), "DPoP", &jwt, Some(&s.key), Some("made-up")).await;
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_app_requiring_dpop_refuses_an_ordinary_bearer_token() {
    let s = setup(|c| c.require_dpop = true).await;
    let bearer =
        laissez_testkit::gate::client_credentials_token(&s.server.url, "notes.read", &s.gate_url)
            .await;
    let refused = gate_call(&s.url(), "Bearer", &bearer, None, None).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let challenge = refused.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("DPoP"), "{challenge}");
    // The task's DPoP-bound JWT still passes.
    let (_, jwt, _) = s.task().await;
    let passed = gate_call(&s.url(), "DPoP", &jwt, Some(&s.key), None).await;
    assert_eq!(passed.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_gates_decisions_in_the_audit_log_name_the_task() {
    let server = TestServer::start();
    let identity = gate_identity(&server, "echo-gate").await;
    let bot = agent(&server, "alice", &["notes.read"], "bot", &["notes.read"]).await;
    let gate_url = echo_gate(&server, &["notes.read"], |c| c.audit_token = Some(identity)).await;
    let s = Setup {
        server,
        bot,
        key: ProofKey::generate().unwrap(),
        gate_url,
    };
    let (id, jwt, _) = s.task().await;
    assert_eq!(
        gate_call(&s.url(), "DPoP", &jwt, Some(&s.key), None)
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        gate_call(&s.url(), "Bearer", &jwt, None, None)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let names_task = |r: &Value| r["detail"]["task"] == id.as_str();
    let allowed = audit_records(&s.server, "gate.allow", names_task).await;
    assert!(allowed.iter().any(names_task), "{allowed:?}");
    let refused = audit_records(&s.server, "gate.unauthenticated", |r| {
        names_task(r) && r["detail"]["possible_theft"] == true
    })
    .await;
    assert!(
        refused
            .iter()
            .any(|r| names_task(r) && r["detail"]["possible_theft"] == true),
        "{refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_limited_to_other_addresses_is_refused_at_the_gate() {
    let s = setup(|_| {}).await;
    let (status, body) = laissez_testkit::task::ask_task(
        &s.server,
        &s.bot.token,
        &s.key,
        &json!({"permissions": ["notes.read"], "resources": [s.gate_url],
            "allowed_ips": ["10.0.0.0/8"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let jwt = body["access_tokens"][0]["access_token"].as_str().unwrap();
    assert_eq!(
        laissez_testkit::jwt_claims(jwt)["allowed_ips"],
        json!(["10.0.0.0/8"])
    );
    let refused = gate_call(&s.url(), "DPoP", jwt, Some(&s.key), None).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
}
