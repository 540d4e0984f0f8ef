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
    let (_, admin_tokens) = server.get(&format!("/v1/tokens?principal={admin}")).await;
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
        .call(
            Method::GET,
            &format!("/v1/principals/{admin}"),
            &operator,
            None,
        )
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
        .call(
            Method::POST,
            "/v1/principals/alice/deactivate",
            &operator,
            None,
        )
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
        .call(
            Method::POST,
            "/v1/principals/second/deactivate",
            &second,
            None,
        )
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
    let explicit = token(
        &server,
        json!({"principal": "alice", "role": "self-service"}),
    )
    .await;
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

/// Sends `n` rolls of token `id` at once, authenticated by `caller`.
async fn rolls(server: &TestServer, id: &str, caller: &str, n: usize) -> Vec<(StatusCode, Value)> {
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(n));
    let mut calls = Vec::new();
    for _ in 0..n {
        let (url, token, client, barrier) = (
            format!("{}/v1/tokens/{id}/roll", server.url),
            caller.to_owned(),
            server.client().clone(),
            barrier.clone(),
        );
        calls.push(tokio::spawn(async move {
            barrier.wait().await;
            let response = client.post(url).bearer_auth(token).send().await.unwrap();
            let status = response.status();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            (status, body)
        }));
    }
    let mut answers = Vec::new();
    for call in calls {
        answers.push(call.await.unwrap());
    }
    answers
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_rolls_of_one_secret_have_exactly_one_winner() {
    let server = TestServer::start();
    add(&server, "user", "alice", None).await;
    let (status, issued) = server
        .post("/v1/tokens", json!({"principal": "alice"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = issued["id"].as_str().unwrap().to_owned();
    let mut secret = issued["token"].as_str().unwrap().to_owned();
    for round in 0..3 {
        // The token rolls itself from 16 places at once: one secret, one winner.
        let answers = rolls(&server, &id, &secret, 16).await;
        let mut winners = Vec::new();
        for (status, body) in answers {
            match status {
                StatusCode::OK => winners.push(body["token"].as_str().unwrap().to_owned()),
                // Lost the race after authenticating, or arrived once the
                // old secret was gone.
                StatusCode::CONFLICT | StatusCode::UNAUTHORIZED => {
                    assert!(body["status"].is_number(), "{body}")
                }
                other => panic!("round {round}: {other} {body}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        let (status, me) = server
            .call(Method::GET, "/v1/whoami", &winners[0], None)
            .await;
        assert_eq!(status, StatusCode::OK, "the winner's secret works: {me}");
        secret = winners.remove(0);
    }
    // An administrator's concurrent rolls never replace the same secret twice:
    // every roll that answered 200 replaced the secret the one before it made.
    let answers = rolls(&server, &id, &server.admin_token.clone(), 16).await;
    let won = answers.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    assert!(
        answers
            .iter()
            .all(|(s, _)| matches!(*s, StatusCode::OK | StatusCode::CONFLICT))
    );
    let (_, records) = server.get("/v1/audit?limit=1000").await;
    let replaced: Vec<String> = records
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == "token.roll" && r["target"] == id.as_str())
        .map(|r| r["detail"]["old_last4"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(replaced.len(), 3 + won);
    let mut unique = replaced.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        replaced.len(),
        "a secret was replaced twice: {replaced:?}"
    );
}

fn limited_server(max_connections: usize, header_read_timeout: u64) -> TestServer {
    limited_server_idle(max_connections, header_read_timeout, 60)
}

fn limited_server_idle(max_connections: usize, header_read_timeout: u64, idle: u64) -> TestServer {
    TestServer::start_with_options(laissez_server::run::Options {
        limits: laissez_gate::listen::Limits {
            header_read_timeout: std::time::Duration::from_secs(header_read_timeout),
            idle_timeout: std::time::Duration::from_secs(idle),
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
async fn a_request_whose_body_stalls_is_disconnected_after_the_idle_timeout() {
    use tokio::io::AsyncWriteExt;
    let server = limited_server_idle(64, 60, 2);
    let addr = server.url.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    // A complete head announcing a body that never comes.
    stream
        .write_all(
            b"POST /v1/principals HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"kind\"",
        )
        .await
        .unwrap();
    assert!(
        closed_within(&mut stream, std::time::Duration::from_secs(6)).await,
        "a connection on which nothing moves must be closed after the idle timeout"
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
    assert!(
        closed >= 90,
        "only {closed} of the first 100 slow connections were shed"
    );
}

/// A browser from `from` signing in on the account page; returns the
/// session cookie (`name=value`) if the sign-in worked, and the page shown.
async fn sign_in(
    server: &TestServer,
    from: &str,
    username: &str,
    password: &str,
) -> (Option<String>, String) {
    let client = reqwest::Client::builder()
        .local_address(Some(from.parse().unwrap()))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = client
        .get(format!("{}/account", server.url))
        .send()
        .await
        .unwrap();
    let login_cookie = page.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let body = page.text().await.unwrap();
    let csrf = hidden_value(&body, "csrf");
    let response = client
        .post(format!("{}/oauth/login", server.url))
        .header("cookie", login_cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", username),
            ("password", password),
        ])
        .send()
        .await
        .unwrap();
    let session = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("laissez_session="))
        .map(|v| v.split(';').next().unwrap().to_owned());
    (session, response.text().await.unwrap_or_default())
}

fn hidden_value(page: &str, name: &str) -> String {
    page.split(&format!("name=\"{name}\" value=\""))
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no hidden {name} in {page}"))
        .to_owned()
}

async fn account_page(server: &TestServer, cookie: &str) -> String {
    server
        .client()
        .get(format!("{}/account", server.url))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

const PASSWORD: &str = "correct horse battery staple";

#[tokio::test(flavor = "multi_thread")]
async fn wrong_passwords_from_one_network_do_not_lock_the_person_out_elsewhere() {
    let server = TestServer::start();
    server.add_person("alice", PASSWORD).await;
    for _ in 0..8 {
        let (session, _) = sign_in(&server, "127.0.0.1", "alice", "a wrong guess").await;
        assert!(session.is_none());
    }
    // The guessing network waits, even with the right password…
    let (session, page) = sign_in(&server, "127.0.0.9", "alice", PASSWORD).await;
    assert!(session.is_none(), "the attacker's /24 is slowed down");
    assert!(page.contains("Too many failed sign-ins"), "{page}");
    // …but alice, from another network, signs in at once.
    let (session, page) = sign_in(&server, "127.0.1.1", "alice", PASSWORD).await;
    assert!(session.is_some(), "alice is not locked out: {page}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_sign_in_never_records_a_name_that_is_no_user() {
    let server = TestServer::start();
    let alice = server.add_person("alice", PASSWORD).await;
    // A password typed into the user-name field.
    let (session, _) = sign_in(&server, "127.0.0.1", "Tr0ub4dor&3-secret", "x").await;
    assert!(session.is_none());
    let (session, _) = sign_in(&server, "127.0.0.1", "alice", "wrong password").await;
    assert!(session.is_none());
    let (_, records) = server.get("/v1/audit?limit=1000").await;
    let text = records.to_string();
    assert!(!text.contains("Tr0ub4dor"), "{text}");
    let failures: Vec<&Value> = records
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == "session.login" && r["outcome"] == "unauthenticated")
        .collect();
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert_eq!(failures[0]["target"], "");
    assert_eq!(failures[1]["target"], alice["id"]);
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn the_database_files_are_private_to_their_owner() {
    use std::os::unix::fs::PermissionsExt;
    let server = TestServer::start();
    // Write something so the WAL exists.
    add(&server, "user", "alice", None).await;
    let mut seen = 0;
    for name in ["laissez.db", "laissez.db-wal", "laissez.db-shm"] {
        let path = server.data_dir.join(name);
        if let Ok(meta) = std::fs::metadata(&path) {
            seen += 1;
            let mode = meta.permissions().mode() & 0o777;
            assert_eq!(mode & 0o077, 0, "{name} is {mode:o}");
        }
    }
    assert!(seen >= 2, "the database and its WAL exist");
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_are_capped_listed_and_ended_on_the_account_page() {
    let server = TestServer::start();
    server.add_person("alice", PASSWORD).await;
    let mut cookies = Vec::new();
    for _ in 0..(laissez_store::MAX_SESSIONS + 3) {
        let (session, page) = sign_in(&server, "127.0.0.1", "alice", PASSWORD).await;
        cookies.push(session.unwrap_or_else(|| panic!("signed in: {page}")));
    }
    // The oldest sessions ended; the newest are listed.
    let first = account_page(&server, &cookies[0]).await;
    assert!(
        first.contains("name=\"password\""),
        "the oldest session ended"
    );
    let latest = cookies.last().unwrap();
    let page = account_page(&server, latest).await;
    let listed = page.matches("action=\"/account/sessions/end\"").count();
    assert_eq!(listed, laissez_store::MAX_SESSIONS, "{page}");
    assert!(page.contains("(this browser)"));
    // End the second-newest session from the newest one.
    let victim = &cookies[cookies.len() - 2];
    assert!(
        account_page(&server, victim)
            .await
            .contains("Where you are signed in")
    );
    let victim_page = account_page(&server, victim).await;
    let victim_handle = victim_page
        .split("<code>")
        .skip(1)
        .find(|row| row.contains("(this browser)"))
        .and_then(|row| row.split("</code>").next())
        .unwrap()
        .to_owned();
    let csrf = hidden_value(&page, "csrf");
    let response = server
        .client()
        .post(format!("{}/account/sessions/end", server.url))
        .header("cookie", latest)
        .form(&[("csrf", csrf.as_str()), ("session", victim_handle.as_str())])
        .send()
        .await
        .unwrap();
    assert!(response.status().is_redirection() || response.status().is_success());
    assert!(
        account_page(&server, victim)
            .await
            .contains("name=\"password\""),
        "ended"
    );
    assert!(
        account_page(&server, latest)
            .await
            .contains("(this browser)")
    );
    // Another person's session cannot be ended from here.
    server.add_person("bob", PASSWORD).await;
    let (bob, _) = sign_in(&server, "127.0.0.1", "bob", PASSWORD).await;
    let bob = bob.unwrap();
    let bob_page = account_page(&server, &bob).await;
    let bob_handle = bob_page
        .split("<code>")
        .nth(1)
        .and_then(|row| row.split("</code>").next())
        .unwrap()
        .to_owned();
    let response = server
        .client()
        .post(format!("{}/account/sessions/end", server.url))
        .header("cookie", latest)
        .form(&[("csrf", csrf.as_str()), ("session", bob_handle.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(account_page(&server, &bob).await.contains("(this browser)"));
    let (_, records) = server.get("/v1/audit?limit=1000").await;
    assert!(
        records
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["action"] == "session.end")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_bad_tokens_adds_a_bounded_number_of_audit_records() {
    let server = TestServer::start();
    let count = |records: &Value| {
        records
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["outcome"] == "unauthenticated")
            .count()
    };
    let unknown =
        laissez_token::Token::generate(&Default::default(), laissez_token::Kind::User).unwrap();
    for _ in 0..300 {
        let (status, _) = server
            .call(Method::GET, "/v1/whoami", unknown.expose(), None)
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (_, records) = server.get("/v1/audit?limit=1000").await;
    assert_eq!(
        count(&records),
        1,
        "one record for the first failure of its kind"
    );
    // Another kind of failure is recorded at once too.
    let (status, _) = server
        .call(Method::GET, "/v1/whoami", "lzut_not-a-token", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, records) = server.get("/v1/audit?limit=1000").await;
    assert_eq!(count(&records), 2);
    assert!(
        !records.to_string().contains(unknown.expose()),
        "no secret in the log"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_gate_disconnects_clients_that_never_finish_their_headers() {
    let server = TestServer::start();
    let (_, gate) = laissez_testkit::gate::front(axum::Router::new(), &server.url, |_| {}).await;
    let addr = gate.trim_start_matches("http://").to_owned();
    let mut slow = slow_client(&addr).await;
    let limit = laissez_gate::listen::HEADER_READ_TIMEOUT + std::time::Duration::from_secs(3);
    assert!(
        closed_within(&mut slow, limit).await,
        "the gate must close a slow-header connection after its header-read timeout"
    );
    // A prompt client is still served.
    let response = server
        .client()
        .get(format!("{gate}/.well-known/oauth-protected-resource"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

/// Follows `Laissez-Next-Cursor` from `path`; returns every item and the pages seen.
async fn all_pages(server: &TestServer, path: &str, limit: usize) -> (Vec<Value>, usize) {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = match &cursor {
            Some(c) => format!("{}{path}{sep}limit={limit}&cursor={c}", server.url),
            None => format!("{}{path}{sep}limit={limit}", server.url),
        };
        let response = server
            .client()
            .get(url)
            .bearer_auth(&server.admin_token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let next = response
            .headers()
            .get("laissez-next-cursor")
            .map(|v| v.to_str().unwrap().to_owned());
        if next.is_some() {
            assert!(
                response.headers()["link"]
                    .to_str()
                    .unwrap()
                    .contains("rel=\"next\"")
            );
        }
        let page: Vec<Value> = response.json().await.unwrap();
        assert!(page.len() <= limit);
        items.extend(page);
        pages += 1;
        match next {
            Some(next) => cursor = Some(next),
            None => return (items, pages),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_admin_list_is_paged_with_a_cursor_and_a_maximum() {
    let server = TestServer::start();
    let mut tasks = Vec::new();
    for i in 0..120 {
        let (url, token, client) = (
            server.url.clone(),
            server.admin_token.clone(),
            server.client().clone(),
        );
        tasks.push(tokio::spawn(async move {
            let name = format!("user{i:03}");
            let response = client
                .post(format!("{url}/v1/principals"))
                .bearer_auth(&token)
                .json(&json!({"kind": "user", "name": name}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::CREATED);
            let response = client
                .post(format!("{url}/v1/tokens"))
                .bearer_auth(&token)
                .json(&json!({"principal": name}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::CREATED);
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let (principals, pages) = all_pages(&server, "/v1/principals", 50).await;
    assert_eq!(principals.len(), 121, "every principal once");
    assert_eq!(pages, 3);
    let mut ids: Vec<&str> = principals
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 121, "no principal twice");
    let (tokens, _) = all_pages(&server, "/v1/tokens", 50).await;
    assert_eq!(tokens.len(), 121);
    let (policies, _) = all_pages(&server, "/v1/policies", 1).await;
    assert_eq!(policies.len(), 1);
    for i in 0..25 {
        let (status, body) = server
            .post(
                "/v1/clients",
                json!({"client_name": format!("app{i}"), "redirect_uris": ["http://127.0.0.1:9/cb"],
                       "grant_types": ["authorization_code"], "token_endpoint_auth_method": "none"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (clients, pages) = all_pages(&server, "/v1/clients", 10).await;
    assert_eq!((clients.len(), pages), (25, 3));
    let mut client_ids: Vec<&str> = clients
        .iter()
        .map(|c| c["client_id"].as_str().unwrap())
        .collect();
    client_ids.sort();
    client_ids.dedup();
    assert_eq!(client_ids.len(), 25);
    let (records, pages) = all_pages(&server, "/v1/audit", 100).await;
    assert!(records.len() >= 241 && pages >= 3, "{}", records.len());
    let (incidents, _) = all_pages(&server, "/v1/leaks", 10).await;
    assert!(incidents.is_empty());
    // The default page is bounded, and so is what may be asked.
    let (status, page) = server.get("/v1/principals").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page.as_array().unwrap().len(), 100);
    for path in [
        "/v1/principals?limit=1001",
        "/v1/tokens?limit=0",
        "/v1/policies?cursor=not!base64",
        "/v1/clients?limit=5000",
        "/v1/leaks?limit=1001",
        "/v1/audit?limit=1001",
    ] {
        let (status, body) = server.get(path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(body["status"], 400, "{path}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_cannot_register_a_machine_client_for_a_more_powerful_principal() {
    let server = TestServer::start();
    add(&server, "user", "olive", None).await;
    grant(&server, "olive", "laissez-operator", "/").await;
    let operator = token(&server, json!({"principal": "olive"})).await;
    // A service that holds more than the operator: administration of everything.
    add(&server, "service", "root-svc", Some("admin")).await;
    grant(&server, "root-svc", "laissez-admin", "/").await;
    // And one that holds nothing the operator lacks.
    add(&server, "service", "plain-svc", Some("admin")).await;
    let register = |principal: &str| {
        json!({"client_name": "cron", "grant_types": ["client_credentials"],
            "scope": "notes.read", "principal": principal})
    };
    let (status, body) = server
        .call(
            Method::POST,
            "/v1/clients",
            &operator,
            Some(&register("root-svc")),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a client is a way to mint tokens as root-svc: {body}"
    );
    let (status, body) = server
        .call(
            Method::POST,
            "/v1/clients",
            &operator,
            Some(&register("plain-svc")),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}
