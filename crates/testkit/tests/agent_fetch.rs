//! The agent client (`laissez fetch`'s library) against a gated app: it
//! follows the 401 through discovery and registration, sends its human to
//! consent (here a simulated browser), receives the code on its loopback
//! listener, caches tokens in a 0600 file, reuses and refreshes them, and
//! steps up after `403 insufficient_scope` asking for the union of scopes.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::get;
use laissez_agent::Agent;
use laissez_gate::Rule;
use laissez_testkit::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::json;

const PASSWORD: &str = "correct horse battery";

/// Plays alice's browser: sign in, approve, and follow the redirect to the agent.
async fn human(url: String, _issuer: String) {
    let back = laissez_testkit::browser::approve(&url, "alice", PASSWORD).await;
    // The browser lands on the agent's loopback listener.
    assert_eq!(reqwest::get(back).await.unwrap().status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_follows_the_challenge_caches_refreshes_and_steps_up() {
    let server = TestServer::start();
    server.add_person("alice", PASSWORD).await;
    server
        .grant_app_role("alice", &["notes.read", "notes.write"], "/")
        .await;
    let app = Router::new().route(
        "/echo",
        get(|| async { "read ok" }).post(|| async { "write ok" }),
    );
    let (_, gate_url) = laissez_testkit::gate::front(app, &server.url, |c| {
        c.rules = vec![Rule::parse("POST /echo notes.read,notes.write").unwrap()];
    })
    .await;

    let temp = tempfile::tempdir().unwrap();
    let cache_path = temp.path().join("tokens.json");
    let asked: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = asked.clone();
    let issuer = server.url.clone();
    let agent = Agent::new(
        cache_path.clone(),
        Box::new(move |url: String| {
            seen.lock().unwrap().push(url.clone());
            Box::pin(human(url, issuer.clone()))
        }),
    )
    .unwrap();
    let echo = format!("{gate_url}/echo");

    let response = agent.fetch(Method::GET, &echo, None, &[]).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "read ok");
    assert_eq!(asked.lock().unwrap().len(), 1);
    let first = url::Url::parse(&asked.lock().unwrap()[0]).unwrap();
    let param = |u: &url::Url, k: &str| {
        u.query_pairs()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.into_owned())
    };
    // offline_access too, since the server offers it: the agent refreshes.
    assert_eq!(
        param(&first, "scope").as_deref(),
        Some("notes.read offline_access")
    );
    assert_eq!(
        param(&first, "resource").as_deref(),
        Some(echo.as_str()),
        "the resource is the URL connected to"
    );
    assert_eq!(
        param(&first, "code_challenge_method").as_deref(),
        Some("S256")
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&cache_path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    // Cached: no second consent.
    let response = agent.fetch(Method::GET, &echo, None, &[]).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(asked.lock().unwrap().len(), 1);

    // An expired access token is refreshed without asking the human.
    let mut cache: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cache_path).unwrap()).unwrap();
    for tokens in cache["tokens"].as_object_mut().unwrap().values_mut() {
        tokens["expires_at"] = json!(0);
    }
    std::fs::write(&cache_path, serde_json::to_vec(&cache).unwrap()).unwrap();
    let agent = Agent::new(cache_path.clone(), {
        let seen = asked.clone();
        let issuer = server.url.clone();
        Box::new(move |url: String| {
            seen.lock().unwrap().push(url.clone());
            Box::pin(human(url, issuer.clone()))
        })
    })
    .unwrap();
    let response = agent.fetch(Method::GET, &echo, None, &[]).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        asked.lock().unwrap().len(),
        1,
        "refreshed, not re-consented"
    );

    // A write needs notes.write: 403, then a step-up asking for the union.
    let response = agent
        .fetch(Method::POST, &echo, Some(b"x"), &[])
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "write ok");
    let asked = asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 2);
    let second = url::Url::parse(&asked[1]).unwrap();
    assert_eq!(
        param(&second, "scope").as_deref(),
        Some("notes.read notes.write offline_access")
    );
}
