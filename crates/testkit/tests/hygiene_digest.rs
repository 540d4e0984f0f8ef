//! Hygiene digests through the notification outbox: `POST /v1/hygiene/notify`
//! tells each person, in one signed webhook event, what they answer for that
//! needs care (their agents' credentials expiring soon or never used), tells
//! the people who can hand things over of a service whose owner left, tells
//! nobody inactive, and refuses bad thresholds, callers without the
//! settings permission, and servers with nowhere to send.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use laissez_testkit::TestServer;
use laissez_testkit::task::person_token;
use serde_json::{Value, json};

const SECRET: &str = "digest-webhook-secret-0123";

async fn create(server: &TestServer, body: Value) -> Value {
    let (status, created) = server.post("/v1/principals", body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created
}

/// The kinds of findings in `owner`'s digest, as `finding:principal`.
fn told(events: &[Value], owner: &str) -> Vec<String> {
    let mut told: Vec<String> = events
        .iter()
        .filter(|e| e["event"] == "hygiene.digest" && e["owner"]["name"] == owner)
        .flat_map(|e| e["findings"].as_array().cloned().unwrap_or_default())
        .map(|f| {
            format!(
                "{}:{}",
                f["finding"].as_str().unwrap(),
                f["principal"]["name"].as_str().unwrap()
            )
        })
        .collect();
    told.sort();
    told
}

#[tokio::test(flavor = "multi_thread")]
async fn each_person_hears_of_what_they_answer_for() {
    let hook = laissez_testkit::webhook::receiver(SECRET).await;
    let mut options = laissez_server::run::Options::default();
    options.notify.webhook = Some((hook.url.clone(), SECRET.into()));
    let server = TestServer::start_with_options(options);

    create(&server, json!({"kind": "user", "name": "alice"})).await;
    create(&server, json!({"kind": "user", "name": "bob"})).await;
    create(
        &server,
        json!({"kind": "agent", "name": "bot", "owner": "alice"}),
    )
    .await;
    create(
        &server,
        json!({"kind": "service", "name": "ci", "owner": "bob"}),
    )
    .await;
    // bot's token expires in two days and was never used.
    let (status, issued) = server
        .post("/v1/tokens", json!({"principal": "bot", "ttl": "2d"}))
        .await;
    assert!(status.is_success(), "{issued}");
    // bob leaves: ci has nobody but the stewards (the admin).
    let (status, body) = server
        .post("/v1/principals/bob/deactivate", json!({}))
        .await;
    assert!(status.is_success(), "{body}");

    let (status, queued) = server
        .post("/v1/hygiene/notify", json!({"expiring_days": 7}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    assert!(
        queued["people"]
            .as_array()
            .unwrap()
            .contains(&json!("alice")),
        "{queued}"
    );
    let start = Instant::now();
    loop {
        let seen = hook.bodies();
        if seen
            .iter()
            .filter(|e| e["event"] == "hygiene.digest")
            .count()
            == queued["digests"].as_u64().unwrap() as usize
        {
            assert_eq!(
                told(&seen, "alice"),
                ["expiring_soon:bot", "never_used:bot"],
                "{seen:?}"
            );
            assert!(
                told(&seen, "admin").contains(&"owner_inactive:ci".to_owned()),
                "{seen:?}"
            );
            assert!(told(&seen, "bob").is_empty(), "bob left: {seen:?}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "digests not delivered: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, audit) = server.get("/v1/audit?limit=1000").await;
    let record = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["action"] == "hygiene.notify")
        .cloned()
        .expect("the digest is audited");
    assert_eq!(record["detail"]["digests"], queued["digests"]);

    // Bad thresholds, and a caller without the settings permission.
    for body in [
        json!({"expiring_days": 0}),
        json!({"unused_days": 5000}),
        json!({"expiring": 3}),
    ] {
        let (status, problem) = server.post("/v1/hygiene/notify", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {problem}");
    }
    let alice = person_token(&server, "alice").await;
    let (status, _) = server
        .call(
            reqwest::Method::POST,
            "/v1/hygiene/notify",
            &alice,
            Some(&json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_webhook_or_smtp_there_is_nowhere_to_send() {
    let server = TestServer::start();
    let (status, problem) = server.post("/v1/hygiene/notify", json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("--leak-webhook"),
        "{problem}"
    );
}
