//! The authorization server's discovery documents and keys, as MCP clients
//! and OAuth libraries read them.

use laissez_testkit::TestServer;
use serde_json::Value;

async fn get(
    server: &TestServer,
    path: &str,
) -> (reqwest::StatusCode, reqwest::header::HeaderMap, Value) {
    let response = server
        .client()
        .get(format!("{}{path}", server.url))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    (
        status,
        headers,
        response.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn both_discovery_documents_name_the_issuer_exactly() {
    let server = TestServer::start();
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let (status, _, doc) = get(&server, path).await;
        assert!(status.is_success(), "{path}");
        assert_eq!(
            doc["issuer"],
            server.url.as_str(),
            "issuer is byte-identical to the URL"
        );
        assert_eq!(
            doc["code_challenge_methods_supported"],
            serde_json::json!(["S256"])
        );
        assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
        assert_eq!(doc["client_id_metadata_document_supported"], true);
        assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
        for endpoint in [
            "authorization_endpoint",
            "token_endpoint",
            "jwks_uri",
            "registration_endpoint",
            "revocation_endpoint",
            "introspection_endpoint",
        ] {
            assert!(
                doc[endpoint].as_str().unwrap().starts_with(&server.url),
                "{endpoint}"
            );
        }
        assert!(doc["protected_resources"].is_array());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn jwks_publishes_p256_keys_that_survive_restart() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    let server = TestServer::start_in(&dir);
    let (_, _, doc) = get(&server, "/.well-known/oauth-authorization-server").await;
    let jwks_path = doc["jwks_uri"]
        .as_str()
        .unwrap()
        .trim_start_matches(&server.url)
        .to_owned();
    let (status, headers, jwks) = get(&server, &jwks_path).await;
    assert!(status.is_success());
    assert!(
        headers["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    let keys = jwks["keys"].as_array().unwrap().clone();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kty"], "EC");
    assert_eq!(keys[0]["crv"], "P-256");
    assert_eq!(keys[0]["alg"], "ES256");
    assert!(keys[0].get("d").is_none(), "never the private key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("signing-keys.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    server.stop();
    let again = TestServer::start_in(&dir);
    let (_, _, jwks_again) = get(&again, &jwks_path).await;
    assert_eq!(
        jwks_again["keys"][0]["kid"], keys[0]["kid"],
        "the same key after a restart"
    );
}
