//! Leak defence figures: DLP overhead at the gate (the same 16 KiB request
//! and 16 KiB answer through a gate with DLP off and one redacting both
//! directions, side by side in one run), and the time from a leak report
//! arriving at the intake to the gate refusing the leaked grant's token.

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use hyper::{Method, StatusCode};
use laissez_gate::dlp::{DlpAction, DlpSettings};
use laissez_testkit::TestServer;
use serde_json::{Value, json};

use crate::load::{self, Call};
use crate::row;
use crate::stats::{Samples, ms};

/// An app answering 16 KiB of JSON-ish text to whatever it is sent.
async fn answer(_body: Bytes) -> String {
    body_16k("answer")
}

/// 16 KiB of text shaped like an API payload, with no credential in it.
fn body_16k(label: &str) -> String {
    let mut body = String::from("{\"items\": [");
    let mut i = 0;
    while body.len() < 16 * 1024 - 64 {
        body.push_str(&format!(
            "{{\"id\": {i}, \"{label}\": \"lorem ipsum dolor sit amet token_count={i} key=value\"}},\n"
        ));
        i += 1;
    }
    body.push_str("{}]}");
    body
}

/// Prints the DLP rows.
pub async fn dlp_overhead(server: &TestServer, n: usize) {
    let app = || Router::new().route("/echo", post(answer));
    let app_url = laissez_testkit::gate::serve_app(app()).await;
    let plain = laissez_testkit::gate::start_gate(&app_url, &server.url, |c| {
        c.default_scopes = vec!["bench.read".into()];
    })
    .await;
    let inspected = laissez_testkit::gate::start_gate(&app_url, &server.url, |c| {
        c.default_scopes = vec!["bench.read".into()];
        c.dlp = DlpSettings {
            request: DlpAction::Redact,
            response: DlpAction::Redact,
            ai_api: false,
        };
    })
    .await;
    let call = |token: String| Call {
        method: Method::POST,
        path: "/echo".into(),
        token: Some(token),
        body: Some(body_16k("request")),
        expect: StatusCode::OK,
        basic: None,
        form: false,
    };
    let token = |resource: String| async move {
        laissez_testkit::gate::client_credentials_token(&server.url, "bench.read", &resource).await
    };
    let off = call(token(plain.clone()).await);
    let on = call(token(inspected.clone()).await);
    let plain_addr = plain.trim_start_matches("http://").to_owned();
    let inspected_addr = inspected.trim_start_matches("http://").to_owned();
    load::run(&plain_addr, &off, 1, 1_000).await;
    load::run(&inspected_addr, &on, 1, 1_000).await;
    // Interleaved fifths, so drift on a noisy machine hits both alike.
    let mut without = Vec::new();
    let mut with = Vec::new();
    for _ in 0..5 {
        without.push(load::run(&plain_addr, &off, 1, n / 5).await);
        with.push(load::run(&inspected_addr, &on, 1, n / 5).await);
    }
    let without = Samples::merge(without);
    let with = Samples::merge(with);
    row(
        "16 KiB request + 16 KiB answer through the gate, DLP off, 1 connection",
        &without,
    );
    row(
        "16 KiB request + 16 KiB answer through the gate, DLP redact both ways, 1 connection",
        &with,
    );
    let p50 = with.percentile(50.0).as_secs_f64() / without.percentile(50.0).as_secs_f64() - 1.0;
    let p99 = with.percentile(99.0).as_secs_f64() / without.percentile(99.0).as_secs_f64() - 1.0;
    println!(
        "| DLP overhead (p50 / p99) | {:+.1}% | {:+.1}% | | |",
        p50 * 100.0,
        p99 * 100.0
    );
}

/// Prints the report-to-refusal row: each round connects a new OAuth client
/// for a user, leaks its refresh token to the intake, and asks the gate
/// with the grant's access token right after the intake answers.
pub async fn report_to_refusal(server: &TestServer, rounds: usize) {
    let app_url =
        laissez_testkit::gate::serve_app(Router::new().route("/echo", post(answer))).await;
    let gate = laissez_testkit::gate::start_gate(&app_url, &server.url, |c| {
        c.default_scopes = Vec::new();
    })
    .await;
    server
        .post("/v1/principals", json!({"kind": "user", "name": "leaky"}))
        .await;
    server
        .call(
            Method::PUT,
            "/v1/principals/leaky/password",
            &server.admin_token,
            Some(&json!({"password": "leaky password 123"})),
        )
        .await;
    let http = reqwest::Client::new();
    let mut latencies = Vec::with_capacity(rounds);
    let mut answers = Vec::with_capacity(rounds);
    let start = Instant::now();
    for _ in 0..rounds {
        let (access, refresh) = connect_app(server, &gate).await;
        let ok = http
            .post(format!("{gate}/echo"))
            .bearer_auth(&access)
            .body("hi")
            .send()
            .await
            .expect("gate");
        assert_eq!(
            ok.status(),
            StatusCode::OK,
            "the token works before the leak"
        );
        let report = json!([{"token": refresh, "type": "laissez-refresh-token", "url": "https://example.com/paste/1", "source": "paste"}]);
        let t = Instant::now();
        let verdicts: Value = http
            .post(format!("{}/v1/leaks", server.url))
            .bearer_auth(&server.admin_token)
            .json(&report)
            .send()
            .await
            .expect("intake")
            .json()
            .await
            .expect("json");
        let answered = t.elapsed();
        assert_eq!(verdicts[0]["action"], "revoked", "{verdicts}");
        let refused = http
            .post(format!("{gate}/echo"))
            .bearer_auth(&access)
            .body("hi")
            .send()
            .await
            .expect("gate");
        let elapsed = t.elapsed();
        assert_eq!(
            refused.status(),
            StatusCode::UNAUTHORIZED,
            "refused right after"
        );
        latencies.push(elapsed);
        answers.push(answered);
    }
    let wall = start.elapsed();
    row(
        "leak report received → gate refuses the leaked grant's token (intake answer + next gate request)",
        &Samples::new(latencies, wall),
    );
    let answers = Samples::new(answers, Duration::from_secs(1));
    println!(
        "| of which the intake's answer (revoked durably, every gate applied it) | {} | {} | | {} |",
        ms(answers.percentile(50.0)),
        ms(answers.percentile(99.0)),
        answers.len()
    );
}

/// A new client, the user's consent, and the grant's (access, refresh) tokens.
async fn connect_app(server: &TestServer, gate: &str) -> (String, String) {
    let (_, tokens) = laissez_testkit::browser::connect_public_client(
        &server.url,
        "leaky",
        "leaky password 123",
        Some(gate),
    )
    .await;
    (
        tokens["access_token"].as_str().expect("access").to_owned(),
        tokens["refresh_token"]
            .as_str()
            .expect("refresh")
            .to_owned(),
    )
}
