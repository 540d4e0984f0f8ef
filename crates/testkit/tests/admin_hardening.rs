//! The admin API's hardening, over HTTP against a real server: nobody acts on
//! a principal that holds more than they do, narrow tokens do not reset their
//! person's sign-in secrets, concurrent rolls have one winner, listeners shed
//! slow clients, failed sign-ins keep their secrets out of the audit log.

use laissez_testkit::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn add(server: &TestServer, kind: &str, name: &str, owner: Option<&str>) -> Value {
    let mut body = json!({"kind": kind, "name": name});
    if let Some(owner) = owner {
        body["owner"] = json!(owner);
    }
    let (status, value) = server.post("/v1/principals", body).await;
    assert_eq!(status, StatusCode::CREATED, "{value}");
    value
}

async fn grant(server: &TestServer, principal: &str, role: &str, scope: &str) {
    let (status, value) = server
        .post(
            "/v1/policies",
            json!({"principal": principal, "role": role, "scope": scope}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{value}");
}

async fn token_as(server: &TestServer, caller: &str, body: Value) -> (StatusCode, Value) {
    server
        .call(Method::POST, "/v1/tokens", caller, Some(&body))
        .await
}

async fn token(server: &TestServer, body: Value) -> String {
    let (status, value) = server.post("/v1/tokens", body).await;
    assert_eq!(status, StatusCode::CREATED, "{value}");
    value["token"].as_str().unwrap().to_owned()
}

/// The name the bootstrap gave the first administrator.
async fn admin_name(server: &TestServer) -> String {
    let (_, me) = server
        .call(Method::GET, "/v1/whoami", &server.admin_token, None)
        .await;
    me["principal"]["name"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_cannot_act_on_an_administrator() {
    let server = TestServer::start();
    let admin = admin_name(&server).await;
    add(&server, "user", "olive", None).await;
    grant(&server, "olive", "laissez-operator", "/").await;
    add(&server, "user", "alice", None).await;
    let operator = token(&server, json!({"principal": "olive"})).await;

    // Every action on the administrator is refused…
    let (status, body) = token_as(&server, &operator, json!({"principal": admin})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let password = json!({"password": "correct horse battery staple"});
    let (status, body) = server
        .call(
            Method::PUT,
            &format!("/v1/principals/{admin}/password"),
            &operator,
            Some(&password),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = server
        .call(
            Method::PUT,
            &format!("/v1/principals/{admin}/email"),
            &operator,
            Some(&json!({"email": "olive@example.com"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = server
        .call(
            Method::POST,
            &format!("/v1/principals/{admin}/deactivate"),
            &operator,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (_, admin_tokens) = server
        .get(&format!("/v1/tokens?principal={admin}"))
        .await;
    let admin_token_id = admin_tokens[0]["id"].as_str().unwrap().to_owned();
    for action in ["roll", "revoke"] {
        let (status, body) = server
            .call(
                Method::POST,
                &format!("/v1/tokens/{admin_token_id}/{action}"),
                &operator,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{action}: {body}");
    }
    // …and changed nothing: the administrator's token still works.
    let (status, _) = server.get("/v1/whoami").await;
    assert_eq!(status, StatusCode::OK);
    let (_, me) = server
        .call(Method::GET, &format!("/v1/principals/{admin}"), &operator, None)
        .await;
    assert_eq!(me["status"], "active", "{me}");

    // The operator still manages people who hold no more than they do.
    let (status, body) = token_as(&server, &operator, json!({"principal": "alice"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = server
        .call(
            Method::PUT,
            "/v1/principals/alice/password",
            &operator,
            Some(&password),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = server
        .call(Method::POST, "/v1/principals/alice/deactivate", &operator, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // An administrator's token narrowed to the operator role is an operator.
    let narrowed = token(
        &server,
        json!({"principal": admin, "role": "laissez-operator"}),
    )
    .await;
    let (status, body) = token_as(&server, &narrowed, json!({"principal": admin})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    // The refusals are audited.
    let (_, records) = server.get("/v1/audit?limit=1000").await;
    let denied = records
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] == "denied" && r["detail"]["reason"] == "target holds more")
        .count();
    assert!(denied >= 6, "{records}");
}

/// Only someone who covers an administrator may deactivate one, and only an
/// administrator covers another; so with two, one may deactivate the other,
/// and the refusal of the last one (a pure rule, tested in laissez-core) is
/// the floor under that.
#[tokio::test(flavor = "multi_thread")]
async fn one_administrator_may_deactivate_another_but_not_itself() {
    let server = TestServer::start();
    let admin = admin_name(&server).await;
    add(&server, "user", "second", None).await;
    grant(&server, "second", "laissez-admin", "/").await;
    let second = token(&server, json!({"principal": "second"})).await;
    let (status, body) = server
        .call(Method::POST, "/v1/principals/second/deactivate", &second, None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = server
        .call(
            Method::POST,
            &format!("/v1/principals/{admin}/deactivate"),
            &second,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = server
        .call(
            Method::POST,
            &format!("/v1/principals/{admin}/activate"),
            &second,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_narrow_token_cannot_reset_its_persons_password_or_email() {
    let server = TestServer::start();
    add(&server, "user", "alice", None).await;
    grant(&server, "alice", "laissez-auditor", "/").await;
    let password = json!({"password": "correct horse battery staple"});
    let email = json!({"email": "alice@example.com"});
    let narrow = [
        json!({"principal": "alice", "scope": "acme"}),
        json!({"principal": "alice", "role": "laissez-auditor"}),
        json!({"principal": "alice", "allowed_ips": ["127.0.0.1"]}),
    ];
    for body in narrow {
        let secret = token(&server, body.clone()).await;
        for (path, value) in [("password", &password), ("email", &email)] {
            let (status, answer) = server
                .call(
                    Method::PUT,
                    &format!("/v1/principals/alice/{path}"),
                    &secret,
                    Some(value),
                )
                .await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{body} {path}: {answer}");
            assert!(answer["detail"].as_str().unwrap().contains("not narrowed"));
        }
    }
    // A full token of her own still may.
    let full = token(&server, json!({"principal": "alice"})).await;
    for (path, value) in [("password", &password), ("email", &email)] {
        let (status, answer) = server
            .call(
                Method::PUT,
                &format!("/v1/principals/alice/{path}"),
                &full,
                Some(value),
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{path}: {answer}");
    }
    // So does a narrow token carrying the explicit self-management permission.
    let (status, body) = server
        .post(
            "/v1/roles",
            json!({"name": "self-service", "permissions": ["laissez.self.manage"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    grant(&server, "alice", "self-service", "/").await;
    let explicit = token(&server, json!({"principal": "alice", "role": "self-service"})).await;
    let (status, answer) = server
        .call(
            Method::PUT,
            "/v1/principals/alice/password",
            &explicit,
            Some(&password),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{answer}");
    // A delegate acting for her (her agent) may not.
    add(&server, "agent", "bot", Some("alice")).await;
    let bot = token(&server, json!({"principal": "bot"})).await;
    let (status, answer) = server
        .call(
            Method::PUT,
            "/v1/principals/alice/password",
            &bot,
            Some(&password),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_rolls_of_one_token_have_exactly_one_winner() {
    let server = TestServer::start();
    add(&server, "user", "alice", None).await;
    let (status, issued) = server
        .post("/v1/tokens", json!({"principal": "alice"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = issued["id"].as_str().unwrap().to_owned();
    for round in 0..3 {
        let mut calls = Vec::new();
        for _ in 0..16 {
            let (url, token, client) = (
                format!("{}/v1/tokens/{id}/roll", server.url),
                server.admin_token.clone(),
                server.client().clone(),
            );
            calls.push(tokio::spawn(async move {
                let response = client.post(url).bearer_auth(token).send().await.unwrap();
                let status = response.status();
                let body: Value = response.json().await.unwrap_or(Value::Null);
                (status, body)
            }));
        }
        let mut winners = Vec::new();
        for call in calls {
            let (status, body) = call.await.unwrap();
            match status {
                StatusCode::OK => winners.push(body["token"].as_str().unwrap().to_owned()),
                StatusCode::CONFLICT => assert_eq!(body["status"], 409, "{body}"),
                other => panic!("round {round}: {other} {body}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        let (status, me) = server
            .call(Method::GET, "/v1/whoami", &winners[0], None)
            .await;
        assert_eq!(status, StatusCode::OK, "the winner's secret works: {me}");
    }
}

fn limited_server(max_connections: usize, header_read_timeout: u64) -> TestServer {
    TestServer::start_with_options(laissez_server::run::Options {
        limits: laissez_gate::listen::Limits {
            header_read_timeout: std::time::Duration::from_secs(header_read_timeout),
            idle_timeout: std::time::Duration::from_secs(60),
            max_connections,
        },
        ..Default::default()
    })
}

/// Opens a connection and sends half a request head, then nothing.
async fn slow_client(addr: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    stream
}

/// Whether the server closed `stream` (EOF or reset) within `wait`.
async fn closed_within(stream: &mut tokio::net::TcpStream, wait: std::time::Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 512];
    loop {
        match tokio::time::timeout(wait, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // A 408 or similar before closing is fine; keep reading.
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let server = limited_server(64, 1);
    let addr = server.url.trim_start_matches("http://").to_owned();
    let mut slow = slow_client(&addr).await;
    assert!(
        closed_within(&mut slow, std::time::Duration::from_secs(5)).await,
        "a slow-header connection must be closed after the header-read timeout"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn healthz_answers_under_a_slow_header_flood() {
    // Headers may take long here: only the cap can shed the flood.
    let server = limited_server(32, 60);
    let addr = server.url.trim_start_matches("http://").to_owned();
    let mut flood = Vec::new();
    for _ in 0..200 {
        flood.push(slow_client(&addr).await);
    }
    let started = std::time::Instant::now();
    let response = server
        .client()
        .get(format!("{}/healthz", server.url))
        .timeout(std::time::Duration::from_secs(3))
        .send()
        .await
        .expect("healthz answers");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    // The cap held: the oldest slow connections were shed to make room.
    let mut closed = 0;
    for stream in flood.iter_mut().take(100) {
        if closed_within(stream, std::time::Duration::from_millis(20)).await {
            closed += 1;
        }
    }
    assert!(closed >= 90, "only {closed} of the first 100 slow connections were shed");
}
