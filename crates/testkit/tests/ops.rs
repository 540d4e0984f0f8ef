//! The operations surface of `laissez serve`: `/readyz` says the store takes
//! writes and the keys sign; `/metrics` answers only a credential allowed
//! `laissez.audit.read`, in OpenMetrics text that the Prometheus project's
//! own parser (prometheus-client, PyPI) reads, with request counts and
//! latency per route template and the credentials issued and verified.

use laissez_testkit::TestServer;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Parses `text` with prometheus-client's OpenMetrics parser.
fn parse(text: &str) -> Value {
    laissez_testkit::python::parse_metrics(text)
}

fn sample<'a>(
    families: &'a Value,
    family: &str,
    name: &str,
    labels: &[(&str, &str)],
) -> Option<&'a Value> {
    families[family]["samples"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == name && labels.iter().all(|(k, v)| s["labels"][*k] == *v))
}

#[tokio::test(flavor = "multi_thread")]
async fn readiness_checks_the_store_and_the_keys() {
    let server = TestServer::start();
    let (status, body) = server.get("/readyz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ready");
    assert_eq!(body["checks"]["store"], "writable");
    assert_eq!(body["checks"]["keys"], "loaded");
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_are_for_auditors_and_parse_as_openmetrics() {
    let server = TestServer::start();
    // Something to count: a token issued and used, one refused.
    let (status, issued) = server
        .post("/v1/tokens", json!({"principal": "admin", "ttl": "1h"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    let token = issued["token"].as_str().unwrap();
    let (status, _) = server
        .call(reqwest::Method::GET, "/v1/whoami", token, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = server
        .call(
            reqwest::Method::GET,
            "/v1/principals/admin",
            "lzut_not-a-token",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Anonymous and unprivileged scrapers are refused.
    let anonymous = server
        .client()
        .get(format!("{}/metrics", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    server.add_person("pat", "correct horse battery").await;
    let (_, pat) = server
        .post("/v1/tokens", json!({"principal": "pat", "ttl": "1h"}))
        .await;
    let (status, _) = server
        .call(
            reqwest::Method::GET,
            "/metrics",
            pat["token"].as_str().unwrap(),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let response = server
        .client()
        .get(format!("{}/metrics", server.url))
        .bearer_auth(&server.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text"),
    );
    let families = parse(&response.text().await.unwrap());
    assert_eq!(
        families["laissez_http_requests"]["type"], "counter",
        "{families}"
    );
    let created = sample(
        &families,
        "laissez_http_requests",
        "laissez_http_requests_total",
        &[
            ("route", "/v1/tokens"),
            ("method", "POST"),
            ("status", "201"),
        ],
    )
    .unwrap_or_else(|| panic!("POST /v1/tokens counted: {families}"));
    assert!(created["value"].as_f64().unwrap() >= 2.0, "{created}");
    // The route template, never the raw path.
    assert!(
        sample(
            &families,
            "laissez_http_requests",
            "laissez_http_requests_total",
            &[("route", "/v1/principals/{id}")]
        )
        .is_some(),
        "{families}"
    );
    assert!(
        !families.to_string().contains("/v1/principals/admin"),
        "{families}"
    );
    assert_eq!(
        families["laissez_http_request_duration_seconds"]["type"],
        "histogram"
    );
    let issued = sample(
        &families,
        "laissez_credentials_issued",
        "laissez_credentials_issued_total",
        &[("kind", "api_token")],
    )
    .unwrap_or_else(|| panic!("{families}"));
    assert!(issued["value"].as_f64().unwrap() >= 2.0);
    // Every change committed with its audit record was timed.
    let audit_writes = sample(
        &families,
        "laissez_audit_write_seconds",
        "laissez_audit_write_seconds_count",
        &[],
    )
    .unwrap_or_else(|| panic!("{families}"));
    assert!(
        audit_writes["value"].as_f64().unwrap() >= 2.0,
        "{audit_writes}"
    );
    for outcome in ["valid", "refused"] {
        assert!(
            sample(
                &families,
                "laissez_credential_verifications",
                "laissez_credential_verifications_total",
                &[("outcome", outcome)]
            )
            .is_some(),
            "{outcome}: {families}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_catalog_lists_the_server_and_every_protected_resource() {
    let server = TestServer::start();
    let (status, body) = server
        .call(
            reqwest::Method::PUT,
            "/v1/resources",
            &server.admin_token,
            Some(&json!({
                "resource": "https://apps.example.com/wiki",
                "name": "Wiki",
                "scopes": {"wiki.read": "read the wiki"},
            })),
        )
        .await;
    assert!(status.is_success(), "{status} {body}");

    // Anonymous: agents read it before they hold anything.
    let response = server
        .client()
        .get(format!("{}/.well-known/api-catalog", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let media_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        media_type.starts_with("application/linkset+json")
            && media_type.contains("https://www.rfc-editor.org/info/rfc9727"),
        "{media_type}"
    );
    let catalog: Value = response.json().await.unwrap();
    let linkset = catalog["linkset"].as_array().expect("an RFC 9264 linkset");
    let base = server.url.trim_end_matches('/');
    assert_eq!(
        linkset[0]["anchor"],
        format!("{base}/.well-known/api-catalog")
    );
    let items: Vec<&str> = linkset[0]["item"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["href"].as_str().unwrap())
        .collect();
    assert!(
        items.contains(&"https://apps.example.com/wiki"),
        "{items:?}"
    );
    // Every context's links are arrays of target objects with an href.
    for context in linkset {
        assert!(context["anchor"].is_string(), "{context}");
        for (relation, targets) in context.as_object().unwrap() {
            if relation == "anchor" {
                continue;
            }
            for target in targets.as_array().unwrap() {
                assert!(target["href"].is_string(), "{relation}: {target}");
            }
        }
    }
    let own = linkset
        .iter()
        .find(|c| c["anchor"] == format!("{base}/"))
        .unwrap_or_else(|| panic!("the server's own API: {catalog}"));
    let openapi = own["service-desc"][0]["href"].as_str().unwrap();
    let (status, document) = server.get(openapi.strip_prefix(base).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(document["openapi"].is_string());
    let wiki = linkset
        .iter()
        .find(|c| c["anchor"] == "https://apps.example.com/wiki")
        .unwrap();
    assert_eq!(
        wiki["service-meta"][0]["href"],
        "https://apps.example.com/.well-known/oauth-protected-resource/wiki"
    );
    assert_eq!(wiki["describedby"], wiki["service-meta"]);
}
