//! The gate against a real app that reads requests the lenient way WSGI
//! apps do (Flask on werkzeug, served by Python's wsgiref): every spelling
//! of a ruled path is refused without the rule's scope, forged identity and
//! forwarding headers in any spelling never reach the app, JSON-RPC bodies
//! the gate cannot fully read never reach it either, and encoded bodies are
//! decoded (within a bound) before tool rules apply. Also the browser
//! sign-in's return target, its binding to the browser that started it,
//! the bound on pending sign-ins, and DLP against escaped tokens.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use laissez_gate::Rule;
use laissez_gate::dlp::{DlpAction, DlpSettings};
use laissez_testkit::python::{python, repo_root};
use laissez_testkit::{TestServer, free_port};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The Flask app, on a free port; its URL.
async fn flask_app() -> (Reaped, String) {
    let python = python();
    let port = free_port();
    let child = Reaped(
        Command::new(&python)
            .arg(repo_root().join("tests/interop/werkzeug_app.py"))
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the Flask app"),
    );
    let start = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the Flask app did not start on port {port}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (child, format!("http://127.0.0.1:{port}"))
}

/// Every request that reached the app, read from the app itself.
async fn seen(app_url: &str) -> Vec<Value> {
    reqwest::get(format!("{app_url}/__seen"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Sends one request exactly as written (clients normalise paths before
/// sending; an attacker does not); returns the status and body.
async fn raw(
    base: &str,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let address = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut request =
        format!("{method} {target} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body);
    stream.write_all(&bytes).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn gzip(body: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(body).unwrap();
    encoder.finish().unwrap()
}

struct Flask {
    _app: Reaped,
    app_url: String,
    gate_url: String,
    token: String,
    _server: TestServer,
}

async fn flask_behind_a_gate() -> Flask {
    let server = TestServer::start();
    let (app, app_url) = flask_app().await;
    let gate_url = laissez_testkit::gate::start_gate(&app_url, &server.url, |c| {
        c.rules = vec![
            Rule::parse("/admin notes.admin").unwrap(),
            Rule::parse("tool:write_note notes.write").unwrap(),
        ];
    })
    .await;
    let token =
        laissez_testkit::gate::client_credentials_token(&server.url, "notes.read", &gate_url).await;
    Flask {
        _app: app,
        app_url,
        gate_url,
        token,
        _server: server,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_spelling_of_a_ruled_path_needs_the_rules_scope() {
    let f = flask_behind_a_gate().await;
    let bearer = format!("Bearer {}", f.token);
    let auth = [("Authorization", bearer.as_str())];
    for (method, target, expected) in [
        ("GET", "/admin", 403),
        ("GET", "/%61dmin", 403),
        ("GET", "/%61%64%6D%69%6E/users", 403),
        ("GET", "//admin", 403),
        ("GET", "/./admin", 403),
        ("GET", "/x/../admin", 403),
        ("GET", "/x/%2e%2e/admin", 403),
        ("GET", "/admin/", 403),
        ("HEAD", "/admin", 403),
        ("get", "/admin", 403),
        ("GET", "/admin%2fx", 400),
        ("GET", "/admin%2Fx", 400),
        ("GET", "/%5Cadmin", 400),
        ("GET", "/%zzadmin", 400),
    ] {
        let (status, body) = raw(&f.gate_url, method, target, &auth, b"").await;
        assert_eq!(status, expected, "{method} {target}: {body}");
        if method != "HEAD" {
            assert!(body.contains("\"status\""), "problem details: {body}");
        }
    }
    let reached: Vec<Value> = seen(&f.app_url).await;
    assert!(
        reached
            .iter()
            .all(|r| !r["path"].as_str().unwrap_or_default().starts_with("/admin")),
        "the app's /admin was reached: {reached:?}"
    );

    // What is allowed goes on in the form it was authorised in.
    let (status, body) = raw(&f.gate_url, "GET", "/notes/%61bc/./x//y?q=%2F", &auth, b"").await;
    assert_eq!(status, 200, "{body}");
    let last = seen(&f.app_url).await.pop().unwrap();
    assert_eq!(last["path"], "/notes/abc/x/y");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_app_sees_only_headers_the_gate_wrote() {
    let f = flask_behind_a_gate().await;
    let bearer = format!("Bearer {}", f.token);
    let (status, body) = raw(
        &f.gate_url,
        "GET",
        "/whoami",
        &[
            ("Authorization", &bearer),
            ("X_Laissez_User", "usr_admin"),
            ("x-laissez_scope", "laissez.admin"),
            ("X-LAISSEZ-AGENT", "cli_evil"),
            ("X_Laissez_Assertion", "forged"),
            ("X-Forwarded-For", "6.6.6.6"),
            ("X_Forwarded_For", "6.6.6.6"),
            ("X-Forwarded-Host", "evil.example"),
            ("X-Forwarded-Proto", "https"),
            ("Forwarded", "for=6.6.6.6;host=evil.example"),
            ("X-Real-IP", "6.6.6.6"),
        ],
        b"",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let headers = seen(&f.app_url).await.pop().unwrap()["headers"].clone();
    let client_id = laissez_testkit::jwt_claims(&f.token)["client_id"].clone();
    assert_eq!(
        headers["HTTP_X_LAISSEZ_USER"],
        laissez_testkit::jwt_claims(&f.token)["sub"]
    );
    assert_eq!(headers["HTTP_X_LAISSEZ_CLIENT"], client_id);
    assert_eq!(headers["HTTP_X_LAISSEZ_SCOPE"], "notes.read");
    assert_eq!(
        headers["HTTP_X_LAISSEZ_AGENT"], "",
        "set, and empty: {headers}"
    );
    assert_eq!(headers["HTTP_X_LAISSEZ_ACCOUNTS"], "");
    assert!(headers["HTTP_X_LAISSEZ_ASSERTION"].as_str().unwrap().len() > 100);
    assert_eq!(headers["HTTP_X_FORWARDED_FOR"], "127.0.0.1");
    assert_eq!(
        headers["HTTP_X_FORWARDED_HOST"],
        f.gate_url.trim_start_matches("http://")
    );
    assert_eq!(headers["HTTP_X_FORWARDED_PROTO"], "http");
    assert!(
        headers["HTTP_FORWARDED"]
            .as_str()
            .unwrap()
            .starts_with("for=127.0.0.1;"),
        "{headers}"
    );
    assert!(headers.get("HTTP_X_REAL_IP").is_none(), "{headers}");
    assert!(headers.get("HTTP_AUTHORIZATION").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn json_rpc_the_gate_cannot_fully_read_never_reaches_the_app() {
    let f = flask_behind_a_gate().await;
    let bearer = format!("Bearer {}", f.token);
    let json = [
        ("Authorization", bearer.as_str()),
        ("Content-Type", "application/json"),
    ];
    let write = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"write_note","arguments":{}}}"#;
    let deep = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"write_note","arguments":{{"x":{}1{}}}}}}}"#,
        "[".repeat(300),
        "]".repeat(300)
    );
    let mut bom = b"\xef\xbb\xbf".to_vec();
    bom.extend_from_slice(write);
    let unreadable: Vec<(&str, Vec<u8>)> = vec![
        ("a BOM", bom),
        (
            "NaN",
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"write_note","arguments":{"x":NaN}}}"#.to_vec(),
        ),
        (
            "a lone surrogate",
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"write_note","arguments":{"x":"\ud800"}}}"#.to_vec(),
        ),
        ("deep nesting", deep.into_bytes()),
        (
            "duplicate names",
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_note","name":"write_note"}}"#.to_vec(),
        ),
    ];
    for (what, body) in &unreadable {
        let (status, answer) = raw(&f.gate_url, "POST", "/mcp", &json, body).await;
        assert_eq!(status, 400, "{what}: {answer}");
        assert!(answer.contains("bad-json-rpc"), "{what}: {answer}");
    }

    // Encoded: decoded before the rules apply, or refused.
    let gzipped = [
        ("Authorization", bearer.as_str()),
        ("Content-Type", "application/json"),
        ("Content-Encoding", "gzip"),
    ];
    let (status, answer) = raw(&f.gate_url, "POST", "/mcp", &gzipped, &gzip(write)).await;
    assert_eq!(
        status, 403,
        "a gzipped write_note needs notes.write: {answer}"
    );
    let compress = [
        ("Authorization", bearer.as_str()),
        ("Content-Encoding", "compress"),
    ];
    let (status, answer) = raw(&f.gate_url, "POST", "/mcp", &compress, write).await;
    assert_eq!(status, 415, "{answer}");
    let bomb = gzip(&vec![b' '; 16 << 20]);
    assert!(bomb.len() < 256 * 1024);
    let (status, answer) = raw(&f.gate_url, "POST", "/mcp", &gzipped, &bomb).await;
    assert_eq!(status, 413, "{answer}");

    assert!(
        seen(&f.app_url).await.is_empty(),
        "none of these reached the app"
    );

    // A readable call within scope passes, decoded, as it was judged.
    let read = br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"read_note","arguments":{}}}"#;
    let (status, answer) = raw(&f.gate_url, "POST", "/mcp", &gzipped, &gzip(read)).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("read_note"), "{answer}");
    let reached = seen(&f.app_url).await;
    assert_eq!(reached.len(), 1);
    assert_eq!(reached[0]["body"], String::from_utf8_lossy(read).as_ref());
    assert!(reached[0]["headers"].get("HTTP_CONTENT_ENCODING").is_none());
    assert_eq!(reached[0]["content_length"], read.len().to_string());
}

/// The `Set-Cookie` pairs (`name=value`) of a response.
fn cookies(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .map(str::to_owned)
        .collect()
}

fn cookie<'a>(pairs: &'a [String], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|p| p.starts_with(&format!("{name}=")))
        .map(String::as_str)
}

struct Browsers {
    server: TestServer,
    gate_url: String,
    http: reqwest::Client,
}

async fn browser_gate() -> Browsers {
    let server = TestServer::start();
    server.add_person("alice", "correct horse battery").await;
    server.grant_app_role("alice", &["wiki.read"], "/").await;
    let (_, gate_url) = laissez_testkit::gate::front(
        Router::new().fallback(|| async { "a page" }),
        &server.url,
        |c| {
            c.app = "wiki".into();
            c.default_scopes = vec!["wiki.read".into()];
            c.browser_login = true;
        },
    )
    .await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    Browsers {
        server,
        gate_url,
        http,
    }
}

impl Browsers {
    /// Starts a sign-in for `path` with `cookie`; the authorization URL and
    /// the cookies set.
    async fn start(&self, path: &str, cookie: Option<&str>) -> (String, Vec<String>) {
        let mut request = self
            .http
            .get(format!("{}{path}", self.gate_url))
            .header("accept", "text/html");
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        (location, cookies(&response))
    }

    async fn callback(&self, url: &str, cookie: Option<&str>) -> reqwest::Response {
        let mut request = self.http.get(url);
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        request.send().await.unwrap()
    }
}

fn state_of(authorize: &str) -> String {
    url::Url::parse(authorize)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sign_in_completes_only_in_the_browser_that_started_it_and_only_once() {
    let b = browser_gate().await;
    // The attacker starts a sign-in and approves it as themselves, then
    // sends the victim the callback link.
    let (authorize, attacker_cookies) = b.start("/wiki", None).await;
    let attacker = cookie(&attacker_cookies, "laissez_gate_signin")
        .expect("the sign-in is bound to the browser")
        .to_owned();
    let callback =
        laissez_testkit::browser::approve(&authorize, "alice", "correct horse battery").await;
    let (_, victim_cookies) = b.start("/wiki", None).await;
    let victim = cookie(&victim_cookies, "laissez_gate_signin")
        .unwrap()
        .to_owned();
    assert_ne!(attacker, victim);
    for cookie in [None, Some(victim.as_str())] {
        let landed = b.callback(&callback, cookie).await;
        assert_eq!(landed.status(), StatusCode::FORBIDDEN, "{cookie:?}");
        assert!(
            cookies(&landed)
                .iter()
                .all(|c| !c.starts_with("laissez_gate="))
        );
        assert_eq!(landed.headers()["content-type"], "application/problem+json");
    }
    // The state was used up by the first try: even the right browser is
    // refused now.
    assert_eq!(
        b.callback(&callback, Some(&attacker)).await.status(),
        StatusCode::FORBIDDEN
    );

    // The browser that started it signs in, once.
    let (authorize, started) = b.start("/wiki?page=2", None).await;
    let mine = cookie(&started, "laissez_gate_signin").unwrap().to_owned();
    // A second tab in the same browser keeps the same binding.
    let (_, second_tab) = b.start("/other", Some(&mine)).await;
    assert_eq!(
        cookie(&second_tab, "laissez_gate_signin"),
        Some(mine.as_str())
    );
    let callback =
        laissez_testkit::browser::approve(&authorize, "alice", "correct horse battery").await;
    let landed = b.callback(&callback, Some(&mine)).await;
    assert_eq!(landed.status(), StatusCode::SEE_OTHER);
    assert_eq!(landed.headers()["location"], "/wiki?page=2");
    let set = cookies(&landed);
    let session = cookie(&set, "laissez_gate").unwrap().to_owned();
    assert_eq!(
        cookie(&set, "laissez_gate_signin"),
        Some("laissez_gate_signin=")
    );
    assert_eq!(
        b.callback(&callback, Some(&mine)).await.status(),
        StatusCode::FORBIDDEN,
        "used once"
    );
    let page = b
        .http
        .get(format!("{}/wiki", b.gate_url))
        .header("accept", "text/html")
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    drop(b.server);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_return_target_stays_on_the_gate() {
    let b = browser_gate().await;
    // A backslash path (browsers read `/\evil` as `//evil`) never starts a sign-in.
    for target in [
        "/\\evil.example/",
        "/%5Cevil.example/",
        "/%2F%2Fevil.example/",
    ] {
        let (status, body) = raw(&b.gate_url, "GET", target, &[("Accept", "text/html")], b"").await;
        assert_eq!(status, 400, "{target}: {body}");
    }
    // What does start one comes back within the gate.
    let (authorize, started) = b.start("//evil.example/%09/x", None).await;
    let mine = cookie(&started, "laissez_gate_signin").unwrap().to_owned();
    let callback =
        laissez_testkit::browser::approve(&authorize, "alice", "correct horse battery").await;
    let landed = b.callback(&callback, Some(&mine)).await;
    assert_eq!(landed.status(), StatusCode::SEE_OTHER);
    assert_eq!(landed.headers()["location"], "/");
}

#[tokio::test(flavor = "multi_thread")]
async fn anonymous_sign_ins_cannot_grow_the_gate_without_bound() {
    let b = browser_gate().await;
    let (first, first_cookies) = b.start("/wiki", None).await;
    let first_cookie = cookie(&first_cookies, "laissez_gate_signin")
        .unwrap()
        .to_owned();
    let flood = laissez_gate::browser::MAX_PENDING + 20;
    let gate_url = Arc::new(b.gate_url.clone());
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let http = b.http.clone();
            let gate_url = gate_url.clone();
            tokio::spawn(async move {
                for _ in 0..flood.div_ceil(8) {
                    let response = http
                        .get(format!("{gate_url}/wiki"))
                        .header("accept", "text/html")
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status(), StatusCode::SEE_OTHER);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let (last, last_cookies) = b.start("/wiki", None).await;
    let last_cookie = cookie(&last_cookies, "laissez_gate_signin")
        .unwrap()
        .to_owned();
    let callback = |authorize: &str| {
        format!(
            "{}/.laissez/callback?code=not-a-code&state={}",
            b.gate_url,
            state_of(authorize)
        )
    };
    // The oldest was evicted; the newest is still pending (its made-up
    // code then fails at the authorization server).
    let oldest = b.callback(&callback(&first), Some(&first_cookie)).await;
    assert_eq!(oldest.status(), StatusCode::FORBIDDEN);
    let newest = b.callback(&callback(&last), Some(&last_cookie)).await;
    assert_eq!(newest.status(), StatusCode::BAD_GATEWAY);
}

const GITHUB_TOKEN: &str = "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";

#[tokio::test(flavor = "multi_thread")]
async fn dlp_sees_through_url_and_json_escapes() {
    let server = TestServer::start();
    let received = Arc::new(Mutex::new(Vec::<String>::new()));
    let app = {
        let received = received.clone();
        Router::new().route(
            "/notes",
            post(move |body: Bytes| {
                let received = received.clone();
                async move {
                    let text = String::from_utf8_lossy(&body).into_owned();
                    received.lock().unwrap().push(text.clone());
                    text
                }
            }),
        )
    };
    let (_, block_gate) = laissez_testkit::gate::front(app.clone(), &server.url, |c| {
        c.dlp = DlpSettings {
            request: DlpAction::Block,
            response: DlpAction::Off,
            ai_api: false,
        };
    })
    .await;
    let (_, redact_gate) = laissez_testkit::gate::front(app, &server.url, |c| {
        c.dlp = DlpSettings {
            request: DlpAction::Off,
            response: DlpAction::Redact,
            ai_api: false,
        };
    })
    .await;
    let all_url: String = GITHUB_TOKEN.bytes().map(|b| format!("%{b:02X}")).collect();
    let all_json: String = GITHUB_TOKEN
        .chars()
        .map(|c| format!("\\u{:04x}", c as u32))
        .collect();
    let forms = [
        GITHUB_TOKEN.replace('_', "%5F"),
        GITHUB_TOKEN.replace('_', "\\u005f"),
        GITHUB_TOKEN.replace('_', "%5Cu005F"),
        format!("ghp\\u005f{}", &all_url[12..]),
        all_url,
        all_json,
    ];
    let http = reqwest::Client::new();
    for gate in [&block_gate, &redact_gate] {
        let token =
            laissez_testkit::gate::client_credentials_token(&server.url, "notes.read", gate).await;
        for form in &forms {
            let body = format!("{{\"note\":\"{form}\"}}");
            let response = http
                .post(format!("{gate}/notes"))
                .bearer_auth(&token)
                .body(body.clone())
                .send()
                .await
                .unwrap();
            if gate == &block_gate {
                assert_eq!(response.status(), StatusCode::FORBIDDEN, "{form}");
                let problem: Value = response.json().await.unwrap();
                assert_eq!(problem["rule"], "github-token", "{form}");
            } else {
                assert_eq!(response.status(), StatusCode::OK, "{form}");
                let text = response.text().await.unwrap();
                assert_eq!(text.len(), body.len(), "redaction keeps the length");
                assert!(
                    text.starts_with("{\"note\":\"[REDACTED:github-token]"),
                    "{form}: {text}"
                );
            }
        }
    }
    let received = received.lock().unwrap();
    assert_eq!(
        received.len(),
        forms.len(),
        "only the redacting gate's requests reached the app"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn dlp_reads_compressed_bodies_as_the_app_and_the_client_would() {
    let server = TestServer::start();
    let received = Arc::new(Mutex::new(Vec::<Vec<u8>>::new()));
    // Answers with the token, gzipped whenever the request accepts gzip.
    let app = {
        let received = received.clone();
        Router::new().route(
            "/notes",
            post(move |headers: axum::http::HeaderMap, body: Bytes| {
                let received = received.clone();
                async move {
                    received.lock().unwrap().push(body.to_vec());
                    let answer = format!("{{\"token\":\"{GITHUB_TOKEN}\"}}\n");
                    let gzip_ok = headers
                        .get("accept-encoding")
                        .and_then(|v| v.to_str().ok())
                        .is_some_and(|v| v.contains("gzip"));
                    if gzip_ok {
                        axum::response::Response::builder()
                            .header("content-encoding", "gzip")
                            .body(axum::body::Body::from(gzip(answer.as_bytes())))
                            .unwrap()
                    } else {
                        axum::response::Response::new(axum::body::Body::from(answer))
                    }
                }
            }),
        )
    };
    let (_, gate) = laissez_testkit::gate::front(app, &server.url, |c| {
        c.dlp = DlpSettings {
            request: DlpAction::Block,
            response: DlpAction::Redact,
            ai_api: false,
        };
    })
    .await;
    let token =
        laissez_testkit::gate::client_credentials_token(&server.url, "notes.read", &gate).await;
    let http = reqwest::Client::new();
    let post = |body: Vec<u8>, encoding: &'static str| {
        http.post(format!("{gate}/notes"))
            .bearer_auth(&token)
            .header("content-encoding", encoding)
            .header("accept-encoding", "gzip, br")
            .body(body)
            .send()
    };
    let secret = format!("{{\"note\":\"{GITHUB_TOKEN}\"}}");
    let response = post(gzip(secret.as_bytes()), "gzip").await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["rule"], "github-token");
    assert!(
        received.lock().unwrap().is_empty(),
        "blocked before the app"
    );
    let response = post(b"{}".to_vec(), "compress").await.unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // A clean compressed request passes decoded; the answer comes
    // uncompressed, so its credential is redacted.
    let response = post(gzip(b"{\"note\":\"hello\"}"), "gzip").await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("content-encoding").is_none());
    let text = response.text().await.unwrap();
    assert!(!text.contains(GITHUB_TOKEN), "{text}");
    assert!(text.contains("[REDACTED:github-token]"), "{text}");
    assert_eq!(
        received.lock().unwrap().as_slice(),
        [b"{\"note\":\"hello\"}".to_vec()]
    );
}
