//! The gate's operations surface, on its own listener: `/healthz`,
//! `/readyz` (keys held, revocation feed fresh, else 503 problem details)
//! and `/metrics` in OpenMetrics text that the Prometheus project's parser
//! reads, with requests per rule and status, verification outcomes,
//! refusals, DLP actions, upstream errors and the feed's age. The public
//! listener keeps every path for the app, `/metrics` included.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use laissez_gate::dlp::{DlpAction, DlpSettings};
use laissez_gate::{Gate, GateConfig, Rule};
use laissez_testkit::TestServer;
use reqwest::StatusCode;
use serde_json::Value;

/// Parses `text` with prometheus-client's OpenMetrics parser.
fn parse(text: &str) -> Value {
    laissez_testkit::python::parse_metrics(text)
}

/// The value of the sample `name` of `family` with `labels`, if any.
fn value(families: &Value, family: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    families[family]["samples"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == name && labels.iter().all(|(k, v)| s["labels"][*k] == *v))?["value"]
        .as_f64()
}

/// An app with its own `/metrics`, a page that leaks an AWS key, and the
/// rest answered plainly.
fn app() -> Router {
    Router::new()
        .route("/metrics", get(|| async { "the app's own metrics\n" }))
        .route(
            "/leaky",
            get(|| async { "key AKIAZ3MSJV4WWNKWW5XR in the page\n" }),
        )
        .fallback(|| async { "ok" })
}

/// A gate in front of `upstream` with its ops listener; (public URL, ops URL).
async fn gate(
    server: &TestServer,
    upstream: &str,
    configure: impl FnOnce(&mut GateConfig),
) -> (String, String) {
    let public = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ops = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public_url = format!("http://{}", public.local_addr().unwrap());
    let ops_url = format!("http://{}", ops.local_addr().unwrap());
    let mut config = GateConfig::new(
        "notes",
        public_url.parse().unwrap(),
        upstream.parse().unwrap(),
        &server.url,
    );
    config.default_scopes = vec!["notes.read".into()];
    config.rules = vec![Rule::parse("GET /notes notes.read").unwrap()];
    config.feed_token = Some(server.admin_token.clone());
    configure(&mut config);
    let gate = Gate::new(config).await.expect("start the gate");
    tokio::spawn(gate.clone().serve_ops(ops, std::future::pending()));
    tokio::spawn(gate.serve(public, std::future::pending()));
    (public_url, ops_url)
}

#[tokio::test(flavor = "multi_thread")]
async fn gate_metrics_count_what_operators_alert_on_and_parse_as_openmetrics() {
    let server = TestServer::start();
    let app_url = laissez_testkit::gate::serve_app(app()).await;
    let (public, ops) = gate(&server, &app_url, |c| {
        c.dlp = DlpSettings {
            request: DlpAction::Off,
            response: DlpAction::Redact,
            ai_api: false,
        };
    })
    .await;
    let http = reqwest::Client::new();
    let token =
        laissez_testkit::gate::client_credentials_token(&server.url, "notes.read", &public).await;

    // Allowed, twice, under the rule; the app's own /metrics is the app's.
    for _ in 0..2 {
        let response = http
            .get(format!("{public}/notes/42?secret=value"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let own = http
        .get(format!("{public}/metrics"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(own.text().await.unwrap(), "the app's own metrics\n");
    // Refused without a token, and with a bad one.
    let anonymous = http.get(format!("{public}/notes")).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let bad = http
        .get(format!("{public}/notes"))
        .bearer_auth("not.a.jwt")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    // A leaked key redacted on the way out.
    let leaky = http
        .get(format!("{public}/leaky"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(!leaky.text().await.unwrap().contains("AKIAZ3MSJV4WWNKWW5XR"));

    // Health and readiness on the ops listener only.
    let health = http.get(format!("{ops}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let ready: Value = http
        .get(format!("{ops}/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["checks"]["feed"], "fresh");

    let response = http.get(format!("{ops}/metrics")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = response.text().await.unwrap();
    assert!(!text.contains(&token), "no token in the metrics");
    assert!(!text.contains("/notes/42"), "no raw path: {text}");
    let families = parse(&text);
    let requests = |labels: &[(&str, &str)]| {
        value(
            &families,
            "laissez_http_requests",
            "laissez_http_requests_total",
            labels,
        )
    };
    assert_eq!(
        requests(&[("route", "/notes"), ("method", "GET"), ("status", "200")]),
        Some(2.0),
        "{families}"
    );
    assert_eq!(
        requests(&[("route", "/notes"), ("status", "401")]),
        Some(2.0),
        "{families}"
    );
    assert!(requests(&[("route", "/*"), ("status", "200")]).is_some());
    assert_eq!(
        families["laissez_http_request_duration_seconds"]["type"],
        "histogram"
    );
    let verifications = |outcome| {
        value(
            &families,
            "laissez_credential_verifications",
            "laissez_credential_verifications_total",
            &[("outcome", outcome)],
        )
    };
    assert!(verifications("valid").unwrap_or(0.0) >= 4.0, "{families}");
    assert_eq!(verifications("invalid"), Some(1.0), "{families}");
    assert_eq!(
        value(
            &families,
            "laissez_gate_refusals",
            "laissez_gate_refusals_total",
            &[("reason", "unauthenticated")]
        ),
        Some(2.0),
        "{families}"
    );
    assert_eq!(
        value(
            &families,
            "laissez_dlp_actions",
            "laissez_dlp_actions_total",
            &[("outcome", "redact")]
        ),
        Some(1.0),
        "{families}"
    );
    let age = value(
        &families,
        "laissez_feed_age_seconds",
        "laissez_feed_age_seconds",
        &[("gate", "notes")],
    )
    .unwrap_or_else(|| panic!("{families}"));
    assert!((0.0..90.0).contains(&age), "{age}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_app_that_does_not_answer_is_a_502_counted_as_an_upstream_error() {
    let server = TestServer::start();
    // An address nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let (public, ops) = gate(&server, &upstream, |_| {}).await;
    let token =
        laissez_testkit::gate::client_credentials_token(&server.url, "notes.read", &public).await;
    let http = reqwest::Client::new();
    let response = http
        .get(format!("{public}/notes"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let families = metrics(&http, &ops).await;
    assert_eq!(
        value(
            &families,
            "laissez_gate_upstream_errors",
            "laissez_gate_upstream_errors_total",
            &[]
        ),
        Some(1.0),
        "{families}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn readiness_fails_when_the_feed_goes_stale() {
    let server = TestServer::start();
    let app_url = laissez_testkit::gate::serve_app(app()).await;
    let (_, ops) = gate(&server, &app_url, |c| {
        c.feed_max_age = Duration::from_secs(3);
    })
    .await;
    let http = reqwest::Client::new();
    // Fresh across several long polls (each a third of the bound).
    for _ in 0..4 {
        let ready = http.get(format!("{ops}/readyz")).send().await.unwrap();
        assert_eq!(ready.status(), StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    server.stop();
    let mut unready = None;
    for _ in 0..100 {
        let response = http.get(format!("{ops}/readyz")).send().await.unwrap();
        if response.status() == StatusCode::SERVICE_UNAVAILABLE {
            unready = Some(response);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let unready = unready.expect("unready within 10 s of the issuer stopping");
    assert_eq!(
        unready.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = unready.json().await.unwrap();
    assert_eq!(problem["status"], 503);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("revocation feed"),
        "{problem}"
    );
    // Alive all the same.
    let health = http.get(format!("{ops}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}

/// An app serving one HTML page (with a leaked AWS key in it) and JSON.
fn html_app() -> Router {
    Router::new()
        .route(
            "/page",
            get(|| async {
                (
                    [("content-type", "text/html; charset=utf-8"), ("etag", "\"v1\"")],
                    "<html><head><title>Notes</title><style>p{color:red}</style><script>alert(1)</script></head>\
                     <body><h1>Release notes</h1><p>Read the <a href=\"/docs\">docs</a> first.</p>\
                     <ul><li>fast</li><li>small</li></ul><p>key AKIAZ3MSJV4WWNKWW5XR</p></body></html>",
                )
            }),
        )
        .route(
            "/data",
            get(|| async { ([("content-type", "application/json")], "{\"a\":1}") }),
        )
}

#[tokio::test(flavor = "multi_thread")]
async fn agents_that_ask_for_markdown_get_the_page_as_markdown_through_dlp() {
    let server = TestServer::start();
    let app_url = laissez_testkit::gate::serve_app(html_app()).await;
    let (public, _) = gate(&server, &app_url, |c| {
        c.markdown_for_agents = true;
        c.dlp = DlpSettings {
            request: DlpAction::Off,
            response: DlpAction::Redact,
            ai_api: false,
        };
    })
    .await;
    let token =
        laissez_testkit::gate::client_credentials_token(&server.url, "notes.read", &public).await;
    let http = reqwest::Client::new();
    let get = |path: &str, accept: &str| {
        http.get(format!("{public}{path}"))
            .bearer_auth(&token)
            .header("accept", accept)
            .send()
    };

    let response = get("/page", "text/markdown, text/html;q=0.5")
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/markdown; charset=utf-8");
    assert!(
        headers
            .get_all("vary")
            .iter()
            .any(|v| v.to_str().unwrap().contains("Accept")),
        "{headers:?}"
    );
    assert!(
        headers.get("etag").is_none(),
        "the HTML's validator is gone"
    );
    let markdown = response.text().await.unwrap();
    assert!(markdown.contains("# Release notes"), "{markdown}");
    assert!(markdown.contains("[docs](/docs)"), "{markdown}");
    assert!(
        markdown.contains("fast") && markdown.contains("small"),
        "{markdown}"
    );
    assert!(!markdown.contains('<'), "no HTML left: {markdown}");
    assert!(!markdown.contains("alert(1)") && !markdown.contains("color:red"));
    assert!(
        !markdown.contains("AKIAZ3MSJV4WWNKWW5XR"),
        "DLP read the Markdown: {markdown}"
    );
    assert!(markdown.contains("[REDACTED]"), "{markdown}");

    // Browsers still get HTML (varying on Accept), other types pass as they are.
    let html = get("/page", "text/html").await.unwrap();
    assert!(
        html.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(html.headers().get_all("vary").iter().any(|v| v == "Accept"));
    assert!(
        html.text()
            .await
            .unwrap()
            .contains("<h1>Release notes</h1>")
    );
    let data = get("/data", "text/markdown").await.unwrap();
    assert_eq!(data.headers()["content-type"], "application/json");
    assert_eq!(data.text().await.unwrap(), "{\"a\":1}");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_option_markdown_requests_get_html() {
    let server = TestServer::start();
    let app_url = laissez_testkit::gate::serve_app(html_app()).await;
    let (public, _) = gate(&server, &app_url, |_| {}).await;
    let token =
        laissez_testkit::gate::client_credentials_token(&server.url, "notes.read", &public).await;
    let response = reqwest::Client::new()
        .get(format!("{public}/page"))
        .bearer_auth(&token)
        .header("accept", "text/markdown")
        .send()
        .await
        .unwrap();
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn each_gate_publishes_an_api_catalog_for_its_app() {
    let server = TestServer::start();
    let app_url = laissez_testkit::gate::serve_app(app()).await;
    let (public, _) = gate(&server, &app_url, |_| {}).await;
    let response = reqwest::get(format!("{public}/.well-known/api-catalog"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/linkset+json"),
    );
    let catalog: Value = response.json().await.unwrap();
    let linkset = catalog["linkset"].as_array().expect("a linkset");
    assert_eq!(
        linkset[0]["anchor"],
        format!("{public}/.well-known/api-catalog")
    );
    assert_eq!(linkset[0]["item"][0]["href"], public.as_str());
    let app = &linkset[1];
    assert_eq!(app["anchor"], public.as_str());
    let meta = app["service-meta"][0]["href"].as_str().unwrap();
    assert_eq!(app["describedby"][0]["href"], meta);
    // The link leads to the app's RFC 9728 metadata.
    let metadata: Value = reqwest::get(meta).await.unwrap().json().await.unwrap();
    assert_eq!(metadata["resource"], public.as_str());
    assert_eq!(metadata["authorization_servers"][0], server.url.as_str());
}

/// The gate's metrics, parsed.
async fn metrics(http: &reqwest::Client, ops: &str) -> Value {
    let text = http
        .get(format!("{ops}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    parse(&text)
}

/// The metrics' timestamp of the last change to the gate's revocation view.
async fn feed_changed(http: &reqwest::Client, ops: &str) -> Option<f64> {
    value(
        &metrics(http, ops).await,
        "laissez_feed_changed_timestamp_seconds",
        "laissez_feed_changed_timestamp_seconds",
        &[("gate", "notes")],
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_metrics_say_when_a_revocation_reached_the_gates_view() {
    let server = TestServer::start();
    let app_url = laissez_testkit::gate::serve_app(app()).await;
    let (public, ops) = gate(&server, &app_url, |_| {}).await;
    let client = laissez_testkit::gate::service_client(&server.url, "notes.read", &public).await;
    let http = reqwest::Client::new();
    let token = client
        .access_token(&server.url, "notes.read", &public)
        .await;
    let notes = || {
        http.get(format!("{public}/notes"))
            .bearer_auth(&token)
            .send()
    };
    assert_eq!(notes().await.unwrap().status(), StatusCode::OK);
    let first = feed_changed(&http, &ops)
        .await
        .expect("the gate's first read of the feed is a change");
    tokio::time::sleep(Duration::from_millis(20)).await;
    let asked = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let revoked = http
        .post(format!("{}/oauth/revoke", server.url))
        .basic_auth(&client.client_id, Some(&client.secret))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    let answered = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    // The revocation is answered once every gate applied it: the view moved
    // between the request and its answer, and the token is refused.
    let changed = feed_changed(&http, &ops).await.unwrap();
    assert!(changed > first, "{changed} after {first}");
    assert!(
        (asked..=answered).contains(&changed),
        "{changed} between {asked} and {answered}"
    );
    assert_eq!(notes().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    // A poll that brings nothing new leaves it where it was.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(feed_changed(&http, &ops).await, Some(changed));
}
