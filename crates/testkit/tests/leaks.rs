//! The leak intake against a real server: GitHub's signed partner protocol,
//! reports from principals, public and private leaks, replays and forgeries,
//! hash-only checks, incidents, and owners told by a signed webhook and by
//! email through a real SMTP server (aiosmtpd from PyPI).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use laissez_testkit::TestServer;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::{EncodePublicKey, LineEnding};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A GitHub key pair and the key file in GitHub's published shape.
struct GithubSigner {
    key: SigningKey,
    key_id: String,
    _dir: tempfile::TempDir,
    file: std::path::PathBuf,
}

impl GithubSigner {
    fn new() -> GithubSigner {
        let key = SigningKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
        let pem = key
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        let key_id = "bcb53661c06b4728e59d897fb6165d5c9cda0fd9cdf9d09ead458168deb7518c".to_owned();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("github-keys.json");
        let document = json!({"public_keys": [
            {"key_identifier": key_id, "key": pem, "is_current": true}
        ]});
        std::fs::write(&file, document.to_string()).unwrap();
        GithubSigner {
            key,
            key_id,
            _dir: dir,
            file,
        }
    }

    fn sign(&self, body: &[u8]) -> String {
        let signature: Signature = self.key.sign(body);
        STANDARD.encode(signature.to_der().as_bytes())
    }
}

fn server_with(
    signer: &GithubSigner,
    notify: laissez_server::leaks::notify::NotifyConfig,
) -> TestServer {
    TestServer::start_with_options(laissez_server::run::Options {
        github_keys: Some(signer.file.display().to_string()),
        notify,
        ..Default::default()
    })
}

async fn post_signed(
    server: &TestServer,
    key_id: &str,
    signature: &str,
    body: &[u8],
) -> (StatusCode, Value) {
    let response = server
        .client()
        .post(format!("{}/v1/leaks", server.url))
        .header("Content-Type", "application/json")
        .header("GITHUB-PUBLIC-KEY-IDENTIFIER", key_id)
        .header("GITHUB-PUBLIC-KEY-SIGNATURE", signature)
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A service owned by `owner` with a token; returns the token.
async fn service_token(server: &TestServer, name: &str, owner: &str) -> String {
    let (status, body) = server
        .post(
            "/v1/principals",
            json!({"kind": "service", "name": name, "owner": owner}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = server.post("/v1/tokens", json!({"principal": name})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["token"].as_str().unwrap().to_owned()
}

async fn works(server: &TestServer, token: &str) -> bool {
    server
        .call(Method::GET, "/v1/whoami", token, None)
        .await
        .0
        .is_success()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_github_reports_public_is_revoked_before_the_answer() {
    let signer = GithubSigner::new();
    let server = server_with(&signer, Default::default());
    server.add_person("alice", "correct horse battery").await;
    let leaked = service_token(&server, "ci-deploy", "alice").await;
    assert!(works(&server, &leaked).await);

    let fake = {
        // Right shape, wrong checksum: not a token of ours.
        let mut t = leaked.clone();
        let last = if t.ends_with('A') { "B" } else { "A" };
        t.replace_range(t.len() - 1.., last);
        t
    };
    let body = serde_json::to_vec(&json!([
        {"token": leaked, "type": "laissez_service_token", "url": "https://github.com/octo/repo/blob/abc/deploy.sh", "source": "commit"},
        {"token": fake, "type": "laissez_service_token", "url": "https://github.com/octo/repo/blob/abc/x", "source": "content"},
    ]))
    .unwrap();
    let signature = signer.sign(&body);
    let (status, verdicts) = post_signed(&server, &signer.key_id, &signature, &body).await;
    assert_eq!(status, StatusCode::OK, "{verdicts}");
    assert_eq!(verdicts[0]["label"], "true_positive");
    assert_eq!(verdicts[0]["action"], "revoked");
    assert_eq!(verdicts[1]["label"], "false_positive");
    // The answer names tokens by hash only.
    assert!(!verdicts.to_string().contains(&leaked));
    assert_eq!(verdicts[0]["token_hash"].as_str().unwrap().len(), 64);
    // Revoked durably before the answer: the very next request is refused.
    assert!(!works(&server, &leaked).await);

    // The incident says where it leaked and what was done.
    let (_, incidents) = server.get("/v1/leaks").await;
    let incident = &incidents[0];
    assert_eq!(
        incident["url"],
        "https://github.com/octo/repo/blob/abc/deploy.sh"
    );
    assert_eq!(incident["reporter"], "github");
    assert_eq!(incident["action"], "revoked");
    assert_eq!(incident["public"], true);
    assert_eq!(incidents.as_array().unwrap().len(), 1);
    let (_, audit) = server.get("/v1/audit?limit=50").await;
    assert!(audit.to_string().contains("leak.report"), "{audit}");

    // A replay of the same signed report is refused and changes nothing.
    let (status, problem) = post_signed(&server, &signer.key_id, &signature, &body).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(server.get("/v1/leaks").await.1.as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_unsigned_and_malformed_reports_are_refused_and_change_nothing() {
    let signer = GithubSigner::new();
    let server = server_with(&signer, Default::default());
    server.add_person("alice", "correct horse battery").await;
    let token = service_token(&server, "ci", "alice").await;
    let body = serde_json::to_vec(
        &json!([{"token": token, "type": "t", "url": "u", "source": "content"}]),
    )
    .unwrap();

    // Signed by another key under the trusted id.
    let other = GithubSigner::new();
    let (status, problem) = post_signed(&server, &signer.key_id, &other.sign(&body), &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{problem}");
    assert_eq!(problem["status"], 401);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("does not match")
    );
    // A body changed after signing.
    let signature = signer.sign(&body);
    let mut changed = body.clone();
    changed.extend_from_slice(b" ");
    assert_eq!(
        post_signed(&server, &signer.key_id, &signature, &changed)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    // An unknown key id, a signature that is not DER, no signature at all.
    assert_eq!(
        post_signed(&server, "nope", &signature, &body).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        post_signed(&server, &signer.key_id, "bm90IGRlcg==", &body)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    let unsigned = server
        .client()
        .post(format!("{}/v1/leaks", server.url))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);
    // Signed, but not the protocol's shape.
    let junk = br#"{"token": "x"}"#;
    let (status, problem) = post_signed(&server, &signer.key_id, &signer.sign(junk), junk).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");

    assert!(works(&server, &token).await, "nothing was revoked");
    assert!(
        server
            .get("/v1/leaks")
            .await
            .1
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn principals_report_private_leaks_which_are_flagged_unless_policy_revokes_them() {
    let signer = GithubSigner::new();
    let server = server_with(&signer, Default::default());
    server.add_person("alice", "correct horse battery").await;
    // A CI scanner run by the admin, holding only the reporter role.
    let scanner = service_token(&server, "scanner", "admin").await;
    let leaked = service_token(&server, "billing", "alice").await;
    let private = json!([{"token": leaked, "type": "laissez-user-token", "url": "src/billing.py:3", "source": "laissez-scan", "public": false}]);

    // Without the permission: 403, nothing recorded.
    let (status, _) = server
        .call(Method::POST, "/v1/leaks", &scanner, Some(&private))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = server
        .post(
            "/v1/policies",
            json!({"principal": "scanner", "role": "laissez-leak-reporter", "scope": "/"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // Private: flagged, still working, owner told (no channel configured here).
    let (status, verdicts) = server
        .call(Method::POST, "/v1/leaks", &scanner, Some(&private))
        .await;
    assert_eq!(status, StatusCode::OK, "{verdicts}");
    assert_eq!(verdicts[0]["action"], "flagged");
    assert!(works(&server, &leaked).await);

    // The hash-only check says it is live.
    let hash = verdicts[0]["token_hash"].as_str().unwrap().to_owned();
    let unknown = "0".repeat(64);
    let check = json!({"token_hashes": [hash, unknown]});
    let (status, answer) = server
        .call(Method::POST, "/v1/leaks/check", &scanner, Some(&check))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["results"][0]["status"], "live");
    assert_eq!(answer["results"][1]["status"], "unknown");
    let bad = json!({"token_hashes": ["lzut_not_a_hash"]});
    let (status, problem) = server
        .call(Method::POST, "/v1/leaks/check", &scanner, Some(&bad))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");

    // The organization revokes private leaks too.
    let (_, mut settings) = server.get("/v1/settings").await;
    settings["revoke_private_leaks"] = json!(true);
    let (status, _) = server
        .call(
            Method::PUT,
            "/v1/settings",
            &server.admin_token,
            Some(&settings),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, verdicts) = server
        .call(Method::POST, "/v1/leaks", &scanner, Some(&private))
        .await;
    assert_eq!(verdicts[0]["action"], "revoked");
    assert!(!works(&server, &leaked).await);
    let (_, answer) = server
        .call(Method::POST, "/v1/leaks/check", &scanner, Some(&check))
        .await;
    assert_eq!(answer["results"][0]["status"], "revoked");

    let (_, incidents) = server.get("/v1/leaks").await;
    let actions: Vec<&str> = incidents
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions.len(), 2);
    assert!(actions.contains(&"flagged") && actions.contains(&"revoked"));
    assert_eq!(incidents[0]["reporter"], "user:admin → service:scanner");
}

/// The aiosmtpd sink: a child printing one JSON line per message.
struct SmtpSink {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    port: u16,
}

impl SmtpSink {
    fn start() -> SmtpSink {
        let python = laissez_testkit::python::python();
        let script = laissez_testkit::python::repo_root().join("tests/interop/smtp_sink.py");
        let mut child = Command::new(python)
            .arg(script)
            .arg("0")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the aiosmtpd sink");
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let first = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("aiosmtpd started");
        let port = first
            .strip_prefix("listening ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected sink output: {first}"));
        SmtpSink {
            child,
            lines: rx,
            port,
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        if let Some(mut stdin) = self.child.stdin.take() {
            let _ = stdin.write_all(b"");
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn owners_are_told_by_a_signed_webhook_and_by_email_through_smtp() {
    // A webhook receiver that keeps what it gets.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, Vec<u8>)>();
    let receiver = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let tx = tx.clone();
                async move {
                    let signature = headers
                        .get("laissez-signature")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    let _ = tx.send((signature, body.to_vec()));
                    "ok"
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, receiver).await });
    let smtp = SmtpSink::start();

    let secret = "whsec-0123456789abcdef";
    let signer = GithubSigner::new();
    let server = server_with(
        &signer,
        laissez_server::leaks::notify::NotifyConfig {
            webhook: Some((hook, secret.into())),
            smtp: Some((
                format!("smtp://127.0.0.1:{}", smtp.port),
                "Laissez <laissez@example.com>".into(),
            )),
            issuer: String::new(),
        },
    );
    server.add_person("alice", "correct horse battery").await;
    let (status, _) = server
        .call(
            Method::PUT,
            "/v1/principals/alice/email",
            &server.admin_token,
            Some(&json!({"email": "alice@example.com"})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, problem) = server
        .call(
            Method::PUT,
            "/v1/principals/alice/email",
            &server.admin_token,
            Some(&json!({"email": "not an address"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    let leaked = service_token(&server, "nightly", "alice").await;

    let body = serde_json::to_vec(&json!([
        {"token": leaked, "type": "laissez", "url": "https://gist.github.com/x/1", "source": "gist"}
    ]))
    .unwrap();
    let (status, verdicts) = post_signed(&server, &signer.key_id, &signer.sign(&body), &body).await;
    assert_eq!(status, StatusCode::OK);
    let incident_id = verdicts[0]["incident"].as_str().unwrap().to_owned();

    // The webhook: signed with the shared secret over "t.body".
    let (signature, payload) = tokio::time::timeout(Duration::from_secs(15), rx.recv())
        .await
        .expect("webhook delivered")
        .unwrap();
    let timestamp: i64 = signature
        .split(',')
        .find_map(|p| p.strip_prefix("t="))
        .and_then(|t| t.parse().ok())
        .expect("t= in the signature");
    assert_eq!(
        signature,
        laissez_server::leaks::notify::signature(secret, timestamp, &payload)
    );
    let event: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(event["event"], "leak.incident");
    assert_eq!(event["incident"]["id"], incident_id.as_str());
    assert_eq!(event["incident"]["action"], "revoked");
    assert_eq!(event["owner"]["name"], "alice");
    assert!(!String::from_utf8_lossy(&payload).contains(&leaked));

    // The email, through a real SMTP server.
    let line = smtp
        .lines
        .recv_timeout(Duration::from_secs(15))
        .expect("mail delivered");
    let mail: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(mail["to"][0], "alice@example.com");
    assert_eq!(mail["from"], "laissez@example.com");
    assert!(mail["subject"].as_str().unwrap().contains("leaked"));
    // A well-formed MIME message: version, media type with its charset, and
    // an id naming the incident (the same on every retry).
    let headers = &mail["headers"];
    assert_eq!(headers["mime-version"], "1.0", "{headers}");
    let content_type = headers["content-type"]
        .as_str()
        .unwrap_or("")
        .to_ascii_lowercase()
        .replace('"', "");
    assert!(
        content_type.starts_with("text/plain") && content_type.contains("charset=utf-8"),
        "{headers}"
    );
    let message_id = headers["message-id"].as_str().unwrap_or("");
    assert!(
        message_id.starts_with('<')
            && message_id.ends_with("@example.com>")
            && message_id.contains(&incident_id),
        "{headers}"
    );
    let text = mail["body"].as_str().unwrap();
    assert!(text.contains("https://gist.github.com/x/1"), "{text}");
    assert!(text.contains("has been revoked"), "{text}");
    assert!(text.contains(&incident_id), "{text}");
    assert!(!text.contains(&leaked), "the mail never holds the token");
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_come_from_a_url_and_rotate_and_a_failed_webhook_is_retried() {
    // GitHub's key document served over HTTP; it can change under the server.
    let first = GithubSigner::new();
    let document = Arc::new(Mutex::new(std::fs::read_to_string(&first.file).unwrap()));
    // A webhook receiver that fails its first delivery.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(u16, Vec<u8>)>();
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let served = document.clone();
    let app = axum::Router::new()
        .route(
            "/keys",
            axum::routing::get(move || {
                let served = served.clone();
                async move { served.lock().unwrap().clone() }
            }),
        )
        .route(
            "/hook",
            axum::routing::post(move |body: axum::body::Bytes| {
                let tx = tx.clone();
                let calls = calls.clone();
                async move {
                    let status = if calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                        500
                    } else {
                        200
                    };
                    let _ = tx.send((status, body.to_vec()));
                    axum::http::StatusCode::from_u16(status).unwrap()
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let server = TestServer::start_with_options(laissez_server::run::Options {
        github_keys: Some(format!("{base}/keys")),
        notify: laissez_server::leaks::notify::NotifyConfig {
            webhook: Some((format!("{base}/hook"), "whsec-0123456789abcdef".into())),
            smtp: None,
            issuer: String::new(),
        },
        ..Default::default()
    });
    server.add_person("alice", "correct horse battery").await;
    let leaked = service_token(&server, "rotating", "alice").await;

    // GitHub rotates its key: the new one is published, the server fetches it
    // when a report names it.
    let mut second = GithubSigner::new();
    second.key_id = "f9525bf080f75b3506ca1ead061add62b8633a346606dc5fe544e29231c6ee0d".into();
    let pem =
        p256::pkcs8::EncodePublicKey::to_public_key_pem(second.key.verifying_key(), LineEnding::LF)
            .unwrap();
    *document.lock().unwrap() =
        json!({"public_keys": [{"key_identifier": second.key_id, "key": pem, "is_current": true}]})
            .to_string();
    let body = serde_json::to_vec(&json!([{"token": leaked, "type": "laissez", "url": "https://github.com/o/r/blob/1/x", "source": "content"}])).unwrap();
    let (status, verdicts) = post_signed(&server, &second.key_id, &second.sign(&body), &body).await;
    assert_eq!(status, StatusCode::OK, "{verdicts}");
    assert_eq!(verdicts[0]["action"], "revoked");
    // The retired key no longer verifies.
    let other = serde_json::to_vec(&json!([{"token": "lzut_x", "type": "t", "url": "u"}])).unwrap();
    let (status, _) = post_signed(&server, &first.key_id, &first.sign(&other), &other).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // The webhook fails once, and the same notification is delivered again.
    let (status, failed) = tokio::time::timeout(Duration::from_secs(15), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, 500);
    let (status, retried) = tokio::time::timeout(Duration::from_secs(15), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, 200);
    let (failed, retried): (Value, Value) = (
        serde_json::from_slice(&failed).unwrap(),
        serde_json::from_slice(&retried).unwrap(),
    );
    assert_eq!(failed["incident"], retried["incident"]);
    assert_eq!(retried["incident"]["action"], "revoked");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_leaked_client_secret_stops_working_and_takes_its_tokens_with_it() {
    let server = TestServer::start();
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
    let (_, gate) = laissez_testkit::gate::front(app, &server.url, |c| {
        c.default_scopes = Vec::new();
    })
    .await;
    let http = reqwest::Client::new();
    let client = laissez_testkit::gate::service_client(&server.url, "notes.read", &gate).await;
    let (id, secret) = (client.client_id, client.secret);
    let token_request = |secret: String| {
        http.post(format!("{}/oauth/token", server.url))
            .basic_auth(&id, Some(secret))
    };
    let answer: Value = token_request(secret.clone())
        .form(&[
            ("grant_type", "client_credentials"),
            ("resource", gate.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = answer["access_token"].as_str().unwrap().to_owned();
    let get = |token: String| {
        let request = http.get(format!("{gate}/")).bearer_auth(token);
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(get(access.clone()).await, StatusCode::OK);

    let report = json!([{"token": secret, "type": "laissez-client-secret", "url": "https://paste.example/1", "source": "paste"}]);
    let (status, verdicts) = server.post("/v1/leaks", report).await;
    assert_eq!(status, StatusCode::OK, "{verdicts}");
    assert_eq!(verdicts[0]["action"], "revoked");

    // Tokens minted with it are refused at once; the secret no longer
    // authenticates, and the client does not fall back to being public.
    assert_eq!(get(access).await, StatusCode::UNAUTHORIZED);
    let with_secret = token_request(secret.clone())
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(with_secret.status(), StatusCode::UNAUTHORIZED);
    let without = http
        .post(format!("{}/oauth/token", server.url))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(without.status(), StatusCode::UNAUTHORIZED);
    let problem: Value = without.json().await.unwrap();
    assert!(
        problem["error_description"]
            .as_str()
            .unwrap()
            .contains("revoked"),
        "{problem}"
    );
}
