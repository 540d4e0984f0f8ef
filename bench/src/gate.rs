//! Gate overhead: the same small request to an app directly and through the
//! gate with a valid access token (JWT signature, claims, revocation set),
//! side by side in one run; then the token endpoint under the client
//! credentials grant (each answer signs an ES256 JWT).

use axum::Router;
use axum::routing::get;
use hyper::{Method, StatusCode};
use laissez_testkit::TestServer;
use serde_json::Value;

use crate::load::{self, Call};
use crate::row;

async fn app() -> &'static str {
    "hello from the app\n"
}

/// Prints the gate rows of the table.
pub async fn run(server: &TestServer, n: usize) {
    let (app_url, gate_url) =
        laissez_testkit::gate::front(Router::new().route("/hello", get(app)), &server.url, |c| {
            c.app = "bench".into();
            c.default_scopes = vec!["bench.read".into()];
        })
        .await;
    let app_addr = app_url.trim_start_matches("http://").to_owned();
    let gate_addr = gate_url.trim_start_matches("http://").to_owned();

    let http = reqwest::Client::new();
    let resource = format!("http://{gate_addr}");
    // Only an administrator's client acts with no person present.
    let client = laissez_testkit::gate::service_client(&server.url, "bench.read", &resource).await;
    let (id, secret) = (client.client_id, client.secret);
    let token: Value = http
        .post(format!("{}/oauth/token", server.url))
        .basic_auth(&id, Some(&secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("resource", resource.as_str()),
        ])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    let jwt = token["access_token"]
        .as_str()
        .expect("access token")
        .to_owned();

    let direct = Call {
        method: Method::GET,
        path: "/hello".into(),
        token: None,
        body: None,
        expect: StatusCode::OK,
        basic: None,
        form: false,
    };
    let gated = Call {
        token: Some(jwt),
        ..direct.clone()
    };
    load::run(&app_addr, &direct, 1, 2_000).await;
    load::run(&gate_addr, &gated, 1, 2_000).await;
    let straight = load::run(&app_addr, &direct, 1, n).await;
    let through = load::run(&gate_addr, &gated, 1, n).await;
    row("app directly, 1 connection", &straight);
    row(
        "app through the gate (JWT verified once, then cached; expiry, audience, revocation per request), 1 connection",
        &through,
    );
    println!(
        "| gate overhead (p50 / p99 difference) | {} | {} | | |",
        crate::stats::ms(
            through
                .percentile(50.0)
                .saturating_sub(straight.percentile(50.0))
        ),
        crate::stats::ms(
            through
                .percentile(99.0)
                .saturating_sub(straight.percentile(99.0))
        )
    );
    row(
        "app through the gate, 8 connections",
        &load::run(&gate_addr, &gated, 8, n * 2).await,
    );

    use base64::Engine;
    let cc = Call {
        method: Method::POST,
        path: "/oauth/token".into(),
        token: None,
        body: Some(format!(
            "grant_type=client_credentials&resource={}",
            url::form_urlencoded::byte_serialize(resource.as_bytes()).collect::<String>()
        )),
        expect: StatusCode::OK,
        basic: Some(base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))),
        form: true,
    };
    let token_addr = server.url.trim_start_matches("http://").to_owned();
    let samples = load::run(&token_addr, &cc, 4, n / 2).await;
    row(
        "Laissez token endpoint, client credentials (ES256 JWT), 4 connections",
        &samples,
    );
    refresh_grant(server, n / 4).await;
}

/// Refresh grants, one connection: each answer's refresh token is the next request's.
async fn refresh_grant(server: &TestServer, n: usize) {
    use std::time::{Duration, Instant};
    server
        .post(
            "/v1/principals",
            serde_json::json!({"kind": "user", "name": "bench-user"}),
        )
        .await;
    server
        .call(
            Method::PUT,
            "/v1/principals/bench-user/password",
            &server.admin_token,
            Some(&serde_json::json!({"password": "bench password 123"})),
        )
        .await;
    let http = reqwest::Client::new();
    let (client_id, tokens) = laissez_testkit::browser::connect_public_client(
        &server.url,
        "bench-user",
        "bench password 123",
        None,
    )
    .await;
    let mut refresh = tokens["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();
    let mut latencies: Vec<Duration> = Vec::with_capacity(n);
    let start = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        let next: Value = http
            .post(format!("{}/oauth/token", server.url))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh.as_str()),
                ("client_id", client_id.as_str()),
            ])
            .send()
            .await
            .expect("refresh")
            .json()
            .await
            .expect("json");
        refresh = next["refresh_token"].as_str().expect("rotated").to_owned();
        latencies.push(t.elapsed());
    }
    let samples = crate::stats::Samples::new(latencies, start.elapsed());
    row(
        "Laissez token endpoint, refresh grant (rotation, durable), 1 connection",
        &samples,
    );
}
