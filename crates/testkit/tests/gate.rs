//! The gate in front of a real app: RFC 9728 discovery, 401 and 403
//! challenges, local token verification (audience, revocation), identity
//! headers instead of the token, and streamed responses.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use axum::Router;
use axum::body::Body;
use axum::http::HeaderMap;
use axum::routing::get;
use futures_util::StreamExt;
use laissez_gate::Rule;
use laissez_testkit::TestServer;
use laissez_testkit::gate::front;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn echo(headers: HeaderMap) -> axum::Json<Value> {
    let seen: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), json!(v.to_str().unwrap_or_default())))
        .collect();
    axum::Json(Value::Object(seen))
}

/// Sends event 0, then waits until the test has received it before sending
/// the rest: a gate that buffered the stream would never deliver event 0.
async fn events(
    axum::extract::State(received): axum::extract::State<Arc<Notify>>,
) -> axum::response::Response {
    let stream = futures_util::stream::iter(0..3).then(move |i| {
        let received = received.clone();
        async move {
            if i == 1 {
                received.notified().await;
            }
            Ok::<_, std::io::Error>(format!("data: event {i}\n\n"))
        }
    });
    axum::response::Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(stream))
        .unwrap()
}

struct Setup {
    app_url: String,
    received: Arc<Notify>,
    server: TestServer,
    gate_url: String,
    http: reqwest::Client,
}

async fn setup() -> Setup {
    let server = TestServer::start();
    let received = Arc::new(Notify::new());
    let app = Router::new()
        .route("/echo", get(echo).post(echo))
        .route("/events", get(events))
        .with_state(received.clone());
    let (app_url, gate_url) = front(app, &server.url, |c| {
        c.rules = vec![Rule::parse("POST /echo notes.write").unwrap()];
    })
    .await;
    Setup {
        app_url,
        received,
        server,
        gate_url,
        http: reqwest::Client::new(),
    }
}

impl Setup {
    /// A client-credentials token for `resource` with `scope`.
    async fn token(&self, scope: &str, resource: &str) -> String {
        laissez_testkit::gate::client_credentials_token(&self.server.url, scope, resource).await
    }

    async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut request = self.http.get(format!("{}{path}", self.gate_url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn agents_without_a_token_are_told_where_to_get_one() {
    let s = setup().await;
    let response = s.get("/mcp", None).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    let metadata_url = format!("{}/.well-known/oauth-protected-resource/mcp", s.gate_url);
    assert!(
        challenge.contains(&format!("resource_metadata=\"{metadata_url}\"")),
        "{challenge}"
    );
    assert!(challenge.contains("scope=\"notes.read\""), "{challenge}");

    let metadata: Value = s
        .http
        .get(&metadata_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        metadata["resource"],
        format!("{}/mcp", s.gate_url),
        "resource is the URL the client connected to"
    );
    assert_eq!(metadata["authorization_servers"][0], s.server.url.as_str());
    let root: Value = s
        .http
        .get(format!(
            "{}/.well-known/oauth-protected-resource",
            s.gate_url
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(root["resource"], s.gate_url.as_str());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_app_sees_who_calls_but_never_the_token() {
    let s = setup().await;
    let token = s.token("notes.read", &format!("{}/mcp", s.gate_url)).await;
    let response = s
        .http
        .get(format!("{}/echo", s.gate_url))
        .bearer_auth(&token)
        .header("x-laissez-user", "forged-admin")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let seen: Value = response.json().await.unwrap();
    assert!(
        seen.get("authorization").is_none(),
        "the token is never forwarded: {seen}"
    );
    assert_ne!(
        seen["x-laissez-user"], "forged-admin",
        "identity headers cannot be forged"
    );
    assert!(
        seen["x-laissez-client"]
            .as_str()
            .unwrap()
            .starts_with("cli_")
    );
    assert_eq!(seen["x-laissez-scope"], "notes.read");

    // The signed assertion says the same, verifiable against the gate's JWKS.
    let assertion = seen["x-laissez-assertion"].as_str().unwrap();
    let jwks: jsonwebtoken::jwk::JwkSet = s
        .http
        .get(format!("{}/.well-known/laissez-gate/jwks.json", s.gate_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = jsonwebtoken::decode_header(assertion).unwrap();
    assert_eq!(header.typ.as_deref(), Some("laissez-assertion+jwt"));
    let key =
        jsonwebtoken::DecodingKey::from_jwk(jwks.find(&header.kid.unwrap()).unwrap()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&[s.app_url.as_str()]);
    validation.set_issuer(&[s.gate_url.as_str()]);
    let asserted = jsonwebtoken::decode::<Value>(assertion, &key, &validation)
        .unwrap()
        .claims;
    assert_eq!(asserted["client_id"], seen["x-laissez-client"]);
    assert_eq!(asserted["scope"], "notes.read");
    assert!(
        asserted["exp"].as_i64().unwrap() - asserted["iat"].as_i64().unwrap() <= 60,
        "short-lived"
    );

    // Too little scope: 403 naming every scope the operation needs.
    let response = s
        .http
        .post(format!("{}/echo", s.gate_url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Bearer "));
    assert!(
        challenge.contains("error=\"insufficient_scope\"")
            && challenge.contains("scope=\"notes.write\""),
        "{challenge}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_for_other_resources_bad_tokens_and_revoked_tokens_are_refused() {
    let s = setup().await;
    let other = s.token("notes.read", "https://elsewhere.example").await;
    let response = s.get("/echo", Some(&other)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    assert_eq!(
        s.get("/echo", Some("not.a.jwt")).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let admin = s.server.admin_token.clone();
    assert_eq!(
        s.get("/echo", Some(&admin)).await.status(),
        StatusCode::UNAUTHORIZED,
        "Laissez API tokens are not access tokens"
    );

    // Revoke through RFC 7009; the gate follows the revocation feed.
    let client =
        laissez_testkit::gate::service_client(&s.server.url, "notes.read", &s.gate_url).await;
    let (id, secret) = (client.client_id.as_str(), client.secret.as_str());
    let token: Value = s
        .http
        .post(format!("{}/oauth/token", s.server.url))
        .basic_auth(id, Some(secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("resource", &s.gate_url),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap();
    assert_eq!(s.get("/echo", Some(token)).await.status(), StatusCode::OK);
    let revoked = s
        .http
        .post(format!("{}/oauth/revoke", s.server.url))
        .basic_auth(id, Some(secret))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    // The issuer confirms a revocation only once the gate has applied it.
    assert_eq!(
        s.get("/echo", Some(token)).await.status(),
        StatusCode::UNAUTHORIZED,
        "the gate refuses a revoked token on the next request"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn server_sent_events_stream_through_without_buffering() {
    let s = setup().await;
    let token = s.token("notes.read", &s.gate_url).await;
    let response = s.get("/events", Some(&token)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut stream = response.bytes_stream();
    let first = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect(
            "event 0 must arrive while the app still holds the stream open: the gate buffered it",
        )
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&first).contains("event 0"));
    s.received.notify_one();
    let mut rest = Vec::new();
    while let Some(chunk) = stream.next().await {
        rest.extend_from_slice(&chunk.unwrap());
    }
    assert!(String::from_utf8_lossy(&rest).contains("event 2"));
}

#[tokio::test(flavor = "multi_thread")]
async fn every_gate_decision_lands_in_the_audit_log() {
    let server = TestServer::start();
    // The gate's own identity: a service with the laissez-gate role.
    server
        .post(
            "/v1/principals",
            json!({"kind": "service", "name": "notes-gate", "owner": "admin"}),
        )
        .await;
    let (status, _) = server
        .post(
            "/v1/policies",
            json!({"principal": "notes-gate", "role": "laissez-gate", "scope": "/"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, issued) = server
        .post("/v1/tokens", json!({"principal": "notes-gate"}))
        .await;
    let gate_token = issued["token"].as_str().unwrap().to_owned();

    let app = Router::new().route("/echo", get(echo).post(echo));
    let (_, gate_url) = front(app, &server.url, |c| {
        c.rules = vec![Rule::parse("POST /echo notes.write").unwrap()];
        c.audit_token = Some(gate_token);
    })
    .await;
    let s = Setup {
        app_url: String::new(),
        received: Arc::new(Notify::new()),
        server,
        gate_url,
        http: reqwest::Client::new(),
    };
    let token = s.token("notes.read", &s.gate_url).await;
    assert_eq!(s.get("/echo", Some(&token)).await.status(), StatusCode::OK);
    assert_eq!(
        s.get("/echo", None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let denied = s
        .http
        .post(format!("{}/echo", s.gate_url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);
    // What the gate cannot read is recorded too, and a request with an
    // absurd method or path never gets the batch it travels in refused.
    let unreadable = s
        .http
        .get(format!("{}/echo%2fx", s.gate_url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(unreadable.status(), StatusCode::BAD_REQUEST);
    let long_method = reqwest::Method::from_bytes("A".repeat(40).as_bytes()).unwrap();
    let long = s
        .http
        .request(long_method, format!("{}/{}", s.gate_url, "p".repeat(4000)))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    // No rule covers it: allowed, and the app answers that it has no such page.
    assert_eq!(long.status(), StatusCode::NOT_FOUND);

    let start = Instant::now();
    let gate_records = loop {
        let (_, records) = s.server.get("/v1/audit?limit=1000").await;
        let gate_records: Vec<Value> = records
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["action"].as_str().unwrap().starts_with("gate."))
            .cloned()
            .collect();
        if gate_records.len() == 5 || start.elapsed() > Duration::from_secs(5) {
            break gate_records;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let actions: Vec<&str> = gate_records
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "gate.allow",
            "gate.unauthenticated",
            "gate.deny",
            "gate.refuse",
            "gate.allow"
        ]
    );
    assert_eq!(gate_records[3]["target"], "notes GET /echo%2fx");
    assert_eq!(gate_records[0]["target"], "notes GET /echo");
    assert!(
        gate_records[0]["detail"]["client_id"]
            .as_str()
            .unwrap()
            .starts_with("cli_")
    );
    assert_eq!(gate_records[2]["outcome"], "denied");
    assert!(
        gate_records[2]["detail"]["reason"]
            .as_str()
            .unwrap()
            .contains("notes.write")
    );
    assert_eq!(gate_records[0]["detail"]["reporter"]["name"], "notes-gate");
    let (_, verification) = s.server.get("/v1/audit/verify").await;
    assert_eq!(verification["first_break"], Value::Null);
}

/// Signs `claims` with the authorization server's own key, read from its data
/// folder, to build tokens the server would never issue (already expired).
fn sign_with_server_key(server: &TestServer, claims: &Value) -> String {
    use base64::Engine;
    let keys: Value =
        serde_json::from_slice(&std::fs::read(server.data_dir.join("signing-keys.json")).unwrap())
            .unwrap();
    let key = &keys["keys"][0];
    let d = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(key["d"].as_str().unwrap())
        .unwrap();
    let secret = p256::SecretKey::from_slice(&d).unwrap();
    use p256::pkcs8::EncodePrivateKey;
    let der = secret.to_pkcs8_der().unwrap();
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
async fn expired_and_wrongly_typed_tokens_are_refused() {
    let s = setup().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let claims = |exp: i64| {
        json!({"iss": s.server.url, "sub": "usr_x", "aud": s.gate_url, "exp": exp, "iat": exp - 600,
               "jti": format!("at_{exp}"), "client_id": "cli_x", "scope": "notes.read"})
    };
    let valid = sign_with_server_key(&s.server, &claims(now + 300));
    assert_eq!(
        s.get("/echo", Some(&valid)).await.status(),
        StatusCode::OK,
        "the forging helper signs like the server"
    );
    let expired = sign_with_server_key(&s.server, &claims(now - 60));
    let response = s.get("/echo", Some(&expired)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("expired")
    );
    let mut wrong_issuer = claims(now + 300);
    wrong_issuer["iss"] = json!("https://someone-else.example");
    assert_eq!(
        s.get(
            "/echo",
            Some(&sign_with_server_key(&s.server, &wrong_issuer))
        )
        .await
        .status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn key_rotation_breaks_no_token_in_flight() {
    let s = setup().await;
    let before = s.token("notes.read", &s.gate_url).await;
    assert_eq!(s.get("/echo", Some(&before)).await.status(), StatusCode::OK);
    // Issued before the rotation, first presented after it.
    let unused = s.token("notes.read", &s.gate_url).await;
    let (status, rotated) = s.server.post("/v1/keys/rotate", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    assert_eq!(rotated["published"].as_array().unwrap().len(), 2);
    let after = s.token("notes.read", &s.gate_url).await;
    let kid = |t: &str| jsonwebtoken::decode_header(t).unwrap().kid.unwrap();
    assert_ne!(kid(&before), kid(&after));
    assert_eq!(kid(&after), rotated["signing_kid"].as_str().unwrap());
    assert_eq!(
        s.get("/echo", Some(&after)).await.status(),
        StatusCode::OK,
        "the gate picks up the new key"
    );
    assert_eq!(
        s.get("/echo", Some(&before)).await.status(),
        StatusCode::OK,
        "tokens in flight still work"
    );
    assert_eq!(
        s.get("/echo", Some(&unused)).await.status(),
        StatusCode::OK,
        "old-key tokens verify after the rotation"
    );
}

fn cookie_of(response: &reqwest::Response) -> String {
    response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn browsers_sign_in_and_carry_a_session_cookie() {
    let server = TestServer::start();
    let alice = server.add_person("alice", "correct horse battery").await;
    server.grant_app_role("alice", &["wiki.read"], "/").await;
    let app = Router::new().route("/echo", get(echo));
    let (_, gate_url) = front(app, &server.url, |c| {
        c.app = "wiki".into();
        c.default_scopes = vec!["wiki.read".into()];
        c.browser_login = true;
    })
    .await;

    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let html = |url: String| {
        browser
            .get(url)
            .header("accept", "text/html,application/xhtml+xml")
    };
    // An agent (no Accept: text/html) still gets the 401 challenge.
    assert_eq!(
        browser
            .get(format!("{gate_url}/echo"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );

    let first = html(format!("{gate_url}/echo?page=2"))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    // The sign-in is bound to this browser by a cookie it must bring back.
    let signin = cookie_of(&first);
    let to_login = first.headers()["location"].to_str().unwrap().to_owned();
    assert!(to_login.starts_with(&format!("{}/oauth/authorize", server.url)));
    let callback =
        laissez_testkit::browser::approve(&to_login, "alice", "correct horse battery").await;
    assert!(callback.starts_with(&format!("{gate_url}/.laissez/callback")));
    let landed = browser
        .get(&callback)
        .header("cookie", &signin)
        .send()
        .await
        .unwrap();
    assert_eq!(landed.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        landed.headers()["location"],
        "/echo?page=2",
        "back where the person was going"
    );
    let gate_cookie = cookie_of(&landed);
    assert!(gate_cookie.starts_with("laissez_gate="));

    let page = html(format!("{gate_url}/echo"))
        .header("cookie", format!("{gate_cookie}; theme=dark"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let seen: Value = page.json().await.unwrap();
    assert_eq!(seen["x-laissez-user"], alice["id"]);
    assert_eq!(
        seen["cookie"], "theme=dark",
        "the app never sees the gate's cookie"
    );
    assert!(seen.get("authorization").is_none());
    // A replayed callback does nothing.
    assert_eq!(
        browser.get(&callback).send().await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
}
