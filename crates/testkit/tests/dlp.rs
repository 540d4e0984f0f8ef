//! DLP in the gate: credentials in request and response bodies are blocked,
//! redacted or reported (and Laissez tokens revoked), streaming included;
//! an AI API's prompts and streamed completions are inspected, driven by the
//! official `openai` Python client against a local stand-in for an AI API.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::routing::post;
use laissez_gate::dlp::{DlpAction, DlpSettings};
use laissez_scan::stream::redaction;
use laissez_testkit::TestServer;
use laissez_testkit::gate::front;
use laissez_token::{Kind, Namespace, Token};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const GITHUB_TOKEN: &str = "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";
const AWS_KEY: &str = "AKIAZ3MSJV4WWNKWW5XR";

/// A client-credentials access token for the gate at `resource`.
async fn access_token(server: &TestServer, resource: &str) -> String {
    laissez_testkit::gate::client_credentials_token(&server.url, "notes.read", resource).await
}

/// A service owned by the admin, with `role` on everything if given; its token.
async fn service_token(server: &TestServer, name: &str, role: Option<&str>) -> String {
    server
        .post(
            "/v1/principals",
            json!({"kind": "service", "name": name, "owner": "admin"}),
        )
        .await;
    if let Some(role) = role {
        server
            .post(
                "/v1/policies",
                json!({"principal": name, "role": role, "scope": "/"}),
            )
            .await;
    }
    let (_, issued) = server.post("/v1/tokens", json!({"principal": name})).await;
    issued["token"].as_str().unwrap().to_owned()
}

/// An app that keeps every body it receives and answers with `answer`
/// (`{body}` replaced by what it received), in chunks of 7 bytes.
fn recording_app(received: Arc<Mutex<Vec<String>>>, answer: &'static str) -> Router {
    Router::new().route(
        "/notes",
        post(move |body: Bytes| {
            let received = received.clone();
            async move {
                let text = String::from_utf8_lossy(&body).into_owned();
                received.lock().unwrap().push(text.clone());
                let reply = answer.replace("{body}", &text).into_bytes();
                let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
                    reply.chunks(7).map(|c| Ok(c.to_vec())).collect();
                Body::from_stream(futures_util::stream::iter(chunks))
            }
        }),
    )
}

async fn send(gate: &str, token: &str, body: impl Into<reqwest::Body>) -> (StatusCode, String) {
    let response = reqwest::Client::new()
        .post(format!("{gate}/notes"))
        .bearer_auth(token)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn block_refuses_with_the_rule_and_the_secret_masked_before_the_app_sees_it() {
    let server = TestServer::start();
    let received = Arc::new(Mutex::new(Vec::new()));
    let (_, gate) = front(recording_app(received.clone(), "ok"), &server.url, |c| {
        c.dlp = DlpSettings {
            request: DlpAction::Block,
            response: DlpAction::Block,
            ai_api: false,
        };
    })
    .await;
    let token = access_token(&server, &gate).await;

    let (status, body) = send(
        &gate,
        &token,
        format!("{{\"note\": \"token {GITHUB_TOKEN}\"}}"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let problem: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(problem["rule"], "github-token");
    assert_eq!(problem["secret"], "ghp_…m1IL");
    assert!(problem["detail"].as_str().unwrap().contains("GitHub token"));
    assert!(!body.contains(GITHUB_TOKEN));
    assert!(received.lock().unwrap().is_empty(), "the app never saw it");

    // A large streamed body is cut off at the credential.
    let mut large = "x".repeat(3 << 19);
    large.push_str(&format!("\nAKIA key {AWS_KEY}\n"));
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = large
        .into_bytes()
        .chunks(64 * 1024)
        .map(|c| Ok(c.to_vec()))
        .collect();
    let (status, body) = send(
        &gate,
        &token,
        reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("aws-access-key-id"));

    // Clean bodies pass untouched.
    let (status, body) = send(&gate, &token, "just a note").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));
}

#[tokio::test(flavor = "multi_thread")]
async fn redact_replaces_secrets_in_both_directions_even_split_across_chunks() {
    let server = TestServer::start();
    let received = Arc::new(Mutex::new(Vec::new()));
    let laissez = Token::generate(&Namespace::default(), Kind::Task).unwrap();
    // The app echoes what it got and adds an AWS key of its own, 7 bytes a chunk.
    let (_, gate) = front(
        recording_app(
            received.clone(),
            "you sent: {body}\nand here is AKIAZ3MSJV4WWNKWW5XR\n",
        ),
        &server.url,
        |c| {
            c.dlp = DlpSettings {
                request: DlpAction::Redact,
                response: DlpAction::Redact,
                ai_api: false,
            };
        },
    )
    .await;
    let token = access_token(&server, &gate).await;
    let (status, body) = send(&gate, &token, format!("task token {}", laissez.expose())).await;
    assert_eq!(status, StatusCode::OK);
    let masked = redaction("laissez-task-token", laissez.expose().len());
    assert!(masked.starts_with("[REDACTED:laissez-task-token]*"));
    assert_eq!(received.lock().unwrap()[0], format!("task token {masked}"));
    // The AWS key is shorter than its rule's name: the marker is generic.
    assert_eq!(
        body,
        format!("you sent: task token {masked}\nand here is [REDACTED]**********\n")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn report_lets_the_body_pass_and_revokes_the_laissez_token_in_it() {
    let server = TestServer::start();
    let audit_token = service_token(&server, "notes-gate", Some("laissez-gate")).await;
    let received = Arc::new(Mutex::new(Vec::new()));
    let (_, gate) = front(recording_app(received.clone(), "ok"), &server.url, |c| {
        c.audit_token = Some(audit_token);
        c.dlp = DlpSettings {
            request: DlpAction::Report,
            response: DlpAction::Off,
            ai_api: false,
        };
    })
    .await;
    let leaked = service_token(&server, "cron", None).await;
    let token = access_token(&server, &gate).await;

    let body = format!("please run with {leaked}");
    let (status, _) = send(&gate, &token, body.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(received.lock().unwrap()[0], body, "report changes nothing");

    // Reported to the intake and revoked (in the background, within seconds).
    let mut revoked = false;
    for _ in 0..100 {
        let (status, _) = server.call(Method::GET, "/v1/whoami", &leaked, None).await;
        if status == StatusCode::UNAUTHORIZED {
            revoked = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(revoked, "the leaked token was revoked");
    let (_, incidents) = server.get("/v1/leaks").await;
    assert_eq!(incidents[0]["source"], "gate-dlp");
    assert_eq!(incidents[0]["action"], "revoked");
    assert!(
        incidents[0]["url"]
            .as_str()
            .unwrap()
            .contains("notes request POST /notes")
    );
    // The gate's decision reaches the audit log with its next batch.
    let mut audited = false;
    for _ in 0..60 {
        let (_, audit) = server.get("/v1/audit?limit=100").await;
        if audit.to_string().contains("dlp.report") {
            audited = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(audited, "the DLP decision was audited");
}

/// A stand-in for an OpenAI-compatible API: it answers every prompt by
/// repeating it and adding a token of its own, streamed three characters a
/// delta when asked to stream.
fn ai_api(secret: String, prompts: Arc<Mutex<Vec<String>>>) -> Router {
    let chat_secret = secret.clone();
    let chat_prompts = prompts.clone();
    Router::new()
        .route(
            "/v1/chat/completions",
            post(move |body: axum::Json<Value>| {
                let secret = chat_secret.clone();
                let prompts = chat_prompts.clone();
                async move {
                    let prompt = body["messages"][0]["content"].as_str().unwrap_or_default().to_owned();
                    prompts.lock().unwrap().push(prompt.clone());
                    let answer = format!("You said: {prompt}. Use {secret} to deploy.");
                    if body["stream"] != json!(true) {
                        return axum::Json(json!({
                            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "stand-in",
                            "choices": [{"index": 0, "finish_reason": "stop",
                                "message": {"role": "assistant", "content": answer}}],
                        }))
                        .into_response_body();
                    }
                    let mut events = vec![json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "stand-in",
                        "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]})];
                    let chars: Vec<char> = answer.chars().collect();
                    for piece in chars.chunks(3) {
                        events.push(json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "stand-in",
                            "choices": [{"index": 0, "delta": {"content": piece.iter().collect::<String>()}, "finish_reason": null}]}));
                    }
                    events.push(json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "stand-in",
                        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}));
                    sse(events.iter().map(|e| format!("data: {e}\n\n")).chain(["data: [DONE]\n\n".to_owned()]))
                }
            }),
        )
        .route(
            "/v1/responses",
            post(move |body: axum::Json<Value>| {
                let secret = secret.clone();
                let prompts = prompts.clone();
                async move {
                    let prompt = body["input"].as_str().unwrap_or_default().to_owned();
                    prompts.lock().unwrap().push(prompt.clone());
                    let answer = format!("You said: {prompt}. Use {secret} to deploy.");
                    let done = json!({"id": "resp_1", "object": "response", "created_at": 1, "model": "stand-in", "status": "completed",
                        "output": [{"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                            "content": [{"type": "output_text", "text": answer, "annotations": []}]}]});
                    if body["stream"] != json!(true) {
                        return axum::Json(done).into_response_body();
                    }
                    let mut events = vec![json!({"type": "response.created", "sequence_number": 0,
                        "response": {"id": "resp_1", "object": "response", "created_at": 1, "model": "stand-in", "status": "in_progress", "output": []}})];
                    let chars: Vec<char> = answer.chars().collect();
                    for (n, piece) in chars.chunks(3).enumerate() {
                        events.push(json!({"type": "response.output_text.delta", "sequence_number": n + 1, "item_id": "msg_1",
                            "output_index": 0, "content_index": 0, "delta": piece.iter().collect::<String>()}));
                    }
                    events.push(json!({"type": "response.output_text.done", "sequence_number": 1000, "item_id": "msg_1",
                        "output_index": 0, "content_index": 0, "text": answer}));
                    events.push(json!({"type": "response.completed", "sequence_number": 1001, "response": done}));
                    sse(events.iter().map(|e| format!("event: {}\ndata: {e}\n\n", e["type"].as_str().unwrap())))
                }
            }),
        )
}

trait IntoResponseBody {
    fn into_response_body(self) -> axum::response::Response;
}

impl IntoResponseBody for axum::Json<Value> {
    fn into_response_body(self) -> axum::response::Response {
        axum::response::IntoResponse::into_response(self)
    }
}

fn sse(events: impl Iterator<Item = String>) -> axum::response::Response {
    let chunks: Vec<Result<String, std::io::Error>> = events.map(Ok).collect();
    axum::response::Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(futures_util::stream::iter(chunks)))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openai_client_never_sees_a_secret_in_prompts_or_streamed_completions() {
    let server = TestServer::start();
    let secret = Token::generate(&Namespace::default(), Kind::User).unwrap();
    let prompts = Arc::new(Mutex::new(Vec::new()));
    let (_, gate) = front(
        ai_api(secret.expose().to_owned(), prompts.clone()),
        &server.url,
        |c| {
            c.dlp = DlpSettings {
                request: DlpAction::Redact,
                response: DlpAction::Redact,
                ai_api: true,
            };
        },
    )
    .await;
    let token = access_token(&server, &gate).await;
    let script = laissez_testkit::python::repo_root().join("tests/interop/openai_client.py");
    let python = laissez_testkit::python::python();
    let base = format!("{gate}/v1");
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .arg(script)
            .arg(base)
            .arg(&token)
            .arg(format!("my github token is {GITHUB_TOKEN}"))
            .output()
    })
    .await
    .unwrap()
    .expect("run the openai client");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results: Value = serde_json::from_str(stdout.trim()).unwrap();
    let github = redaction("github-token", GITHUB_TOKEN.len());
    let expected = format!(
        "You said: my github token is {github}. Use {} to deploy.",
        redaction("laissez-user-token", secret.expose().len())
    );
    for mode in ["chat", "chat_stream", "responses", "responses_stream"] {
        assert_eq!(results[mode], expected, "{mode}: {results}");
    }
    // The prompts reached the AI API redacted.
    for prompt in prompts.lock().unwrap().iter() {
        assert_eq!(*prompt, format!("my github token is {github}"));
    }
    assert!(!stdout.contains(secret.expose()));
}
