//! The HTTP contract a client relies on: `/openapi.json` is valid OpenAPI 3.1
//! (checked by `openapi-spec-validator` from PyPI, not by ourselves), names
//! every endpoint a client calls once, and every error answers RFC 9457
//! problem details: unknown methods, bad query strings and bad bodies too.

use laissez_testkit::{TestServer, python};
use reqwest::{Method, StatusCode, header};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn the_document_validates_with_openapi_spec_validator() {
    let server = TestServer::start();
    let (status, document) = server.get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(document["openapi"].as_str().map(|v| &v[..4]), Some("3.1."));
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("openapi.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&document).unwrap()).unwrap();
    let python = python::python();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .args([
                "-c",
                "import json, sys\nfrom openapi_spec_validator import validate\nfrom openapi_spec_validator.versions import consts\nspec = json.load(open(sys.argv[1]))\nvalidate(spec)\nprint('valid')",
            ])
            .arg(&path)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "openapi-spec-validator refused /openapi.json:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn operation_ids_are_unique_and_oauth_endpoints_are_described() {
    let server = TestServer::start();
    let (_, document) = server.get("/openapi.json").await;
    let paths = document["paths"].as_object().unwrap();
    let mut ids = Vec::new();
    for item in paths.values() {
        for method in ["get", "put", "post", "delete", "patch"] {
            if let Some(id) = item[method]["operationId"].as_str() {
                ids.push(id.to_owned());
            }
        }
    }
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "repeated operation ids: {ids:?}");
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
        "/oauth/authorize",
        "/oauth/token",
        "/oauth/register",
        "/oauth/register/{client_id}",
        "/oauth/revoke",
        "/oauth/introspect",
        "/oauth/jwks",
        "/oauth/revoked",
        "/v1/tokens/revoke",
    ] {
        assert!(paths.contains_key(path), "{path} is not in /openapi.json");
    }
    // Every path the discovery document advertises is in the API document.
    let (_, metadata) = server.get("/.well-known/oauth-authorization-server").await;
    for field in [
        "authorization_endpoint",
        "token_endpoint",
        "registration_endpoint",
        "revocation_endpoint",
        "introspection_endpoint",
        "jwks_uri",
    ] {
        let Some(url) = metadata[field].as_str() else {
            continue;
        };
        let path = url.strip_prefix(&server.url).unwrap_or(url);
        assert!(paths.contains_key(path), "{field} {path} is not described");
    }
}

/// Sends a raw request and returns status, content type and JSON body.
async fn raw(
    server: &TestServer,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: &'static str,
) -> (StatusCode, String, Value) {
    let mut request = server
        .client()
        .request(method, format!("{}{path}", server.url))
        .bearer_auth(&server.admin_token)
        .body(body);
    if let Some(content_type) = content_type {
        request = request.header(header::CONTENT_TYPE, content_type);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let media = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let bytes = response.bytes().await.unwrap();
    (
        status,
        media,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

type Case = (
    Method,
    &'static str,
    Option<&'static str>,
    &'static str,
    StatusCode,
    &'static str,
);

fn assert_problem(answer: &(StatusCode, String, Value), status: StatusCode, what: &str) {
    let (got, media, body) = answer;
    assert_eq!(*got, status, "{what}: {body}");
    assert_eq!(media, "application/problem+json", "{what}: {body}");
    assert_eq!(body["status"], status.as_u16(), "{what}: {body}");
    assert!(
        body["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("https://laissez.dev/problems/")),
        "{what}: {body}"
    );
    assert!(
        body["detail"].as_str().is_some_and(|d| d.len() > 10),
        "{what}: {body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_error_is_problem_details() {
    let server = TestServer::start();
    // (method, path, content type, body, status, what it is)
    let cases: [Case; 6] = [
        (
            Method::DELETE,
            "/v1/tokens",
            None,
            "",
            StatusCode::METHOD_NOT_ALLOWED,
            "an unknown method",
        ),
        (
            Method::PUT,
            "/healthz",
            None,
            "",
            StatusCode::METHOD_NOT_ALLOWED,
            "an unknown method on /healthz",
        ),
        (
            Method::GET,
            "/v1/tokens?principal=admin&colour=blue",
            None,
            "",
            StatusCode::BAD_REQUEST,
            "an unknown query parameter",
        ),
        (
            Method::GET,
            "/v1/audit?after=yesterday",
            None,
            "",
            StatusCode::BAD_REQUEST,
            "a query parameter of the wrong type",
        ),
        (
            Method::POST,
            "/v1/principals",
            Some("application/json"),
            "{\"kind\": ",
            StatusCode::BAD_REQUEST,
            "a truncated JSON body",
        ),
        (
            Method::POST,
            "/v1/principals",
            Some("text/plain"),
            "kind=user",
            StatusCode::BAD_REQUEST,
            "a body that is not JSON",
        ),
    ];
    for (method, path, content_type, body, status, what) in cases {
        let answer = raw(&server, method, path, content_type, body).await;
        assert_problem(&answer, status, what);
    }
    // A 405 still says which methods the endpoint answers.
    let response = server
        .client()
        .delete(format!("{}/v1/tokens", server.url))
        .send()
        .await
        .unwrap();
    let allow = response
        .headers()
        .get(header::ALLOW)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    let body: Value = response.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("DELETE"),
        "{body}"
    );
}
