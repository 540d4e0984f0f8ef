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

async fn register(
    server: &TestServer,
    body: Value,
) -> (reqwest::StatusCode, reqwest::header::HeaderMap, Value) {
    let response = server
        .client()
        .post(format!("{}/oauth/register", server.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    (status, headers, response.json().await.unwrap())
}

async fn form(
    server: &TestServer,
    path: &str,
    basic: Option<(&str, &str)>,
    params: &[(&str, &str)],
) -> (reqwest::StatusCode, Value) {
    let mut request = server
        .client()
        .post(format!("{}{path}", server.url))
        .form(params);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn confidential(server: &TestServer, grants: &[&str], scope: &str) -> (String, String) {
    if grants.contains(&"client_credentials") {
        // Only an administrator registers a client that acts alone.
        let client =
            laissez_testkit::gate::service_client(&server.url, scope, "https://api.example.com")
                .await;
        return (client.client_id, client.secret);
    }
    let (status, _, client) = register(
        server,
        serde_json::json!({
            "client_name": "nightly-sync",
            "grant_types": grants,
            "token_endpoint_auth_method": "client_secret_basic",
            "redirect_uris": ["https://sync.example/cb"],
            "scope": scope,
        }),
    )
    .await;
    assert_eq!(status, 201, "{client}");
    let secret = client["client_secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("lzcs_"));
    (client["client_id"].as_str().unwrap().to_owned(), secret)
}

#[tokio::test(flavor = "multi_thread")]
async fn dynamic_registration_of_an_mcp_style_public_client() {
    let server = TestServer::start();
    let (status, headers, client) = register(
        &server,
        serde_json::json!({
            "client_name": "MCP Inspector",
            "redirect_uris": ["http://localhost:6274/oauth/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }),
    )
    .await;
    assert_eq!(status, 201, "{client}");
    assert_eq!(headers["cache-control"], "no-store");
    assert!(client["client_id"].as_str().unwrap().starts_with("cli_"));
    assert!(
        client.get("client_secret").is_none(),
        "public clients get no secret"
    );
    assert_eq!(client["token_endpoint_auth_method"], "none");
    assert_eq!(
        client["redirect_uris"][0],
        "http://localhost:6274/oauth/callback"
    );

    for (body, code) in [
        (
            serde_json::json!({"redirect_uris": ["http://evil.example/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            serde_json::json!({"redirect_uris": ["https://a.example/cb#x"]}),
            "invalid_redirect_uri",
        ),
        (
            serde_json::json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "none"}),
            "invalid_client_metadata",
        ),
        (
            serde_json::json!({"redirect_uris": "nope"}),
            "invalid_client_metadata",
        ),
    ] {
        let (status, _, error) = register(&server, body.clone()).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(error["error"], code, "{body} → {error}");
        assert!(error["error_description"].as_str().unwrap().len() > 10);
    }
    let (_, verification) = server.get("/v1/audit/verify").await;
    assert_eq!(verification["first_break"], Value::Null);
}

#[tokio::test(flavor = "multi_thread")]
async fn client_credentials_issue_rfc9068_tokens_for_one_resource() {
    let server = TestServer::start();
    let (id, secret) = confidential(
        &server,
        &["client_credentials"],
        "reports.read reports.write",
    )
    .await;
    let (status, token) = form(
        &server,
        "/oauth/token",
        Some((&id, &secret)),
        &[
            ("grant_type", "client_credentials"),
            ("scope", "reports.read"),
            ("resource", "https://API.example.com/"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{token}");
    assert_eq!(token["token_type"], "Bearer");
    assert_eq!(token["scope"], "reports.read");
    let expires_in = token["expires_in"].as_i64().unwrap();
    assert!(
        (60..=3600).contains(&expires_in),
        "access tokens live minutes"
    );
    let jwt = token["access_token"].as_str().unwrap();

    // Verify independently, from the published JWKS.
    let (_, _, jwks) = get(&server, "/oauth/jwks").await;
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks).unwrap();
    let header = jsonwebtoken::decode_header(jwt).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("kid published");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&["https://api.example.com"]);
    validation.set_issuer(&[server.url.as_str()]);
    let claims = jsonwebtoken::decode::<Value>(
        jwt,
        &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(),
        &validation,
    )
    .expect("valid for the normalized resource")
    .claims;
    assert!(
        claims["sub"].as_str().unwrap().starts_with("svc_"),
        "the token speaks for the service behind the client: {claims}"
    );
    assert_eq!(claims["client_id"], id.as_str());
    assert_eq!(claims["scope"], "reports.read");
    assert!(claims["jti"].as_str().is_some());
    validation.set_audience(&["https://other.example.com"]);
    assert!(
        jsonwebtoken::decode::<Value>(
            jwt,
            &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(),
            &validation
        )
        .is_err(),
        "a token for one resource is not valid for another"
    );

    // Introspection, revocation, introspection again.
    let (status, active) = form(
        &server,
        "/oauth/introspect",
        Some((&id, &secret)),
        &[("token", jwt)],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(active["active"], true);
    assert_eq!(active["aud"], "https://api.example.com");
    let (status, _) = form(
        &server,
        "/oauth/revoke",
        Some((&id, &secret)),
        &[("token", jwt)],
    )
    .await;
    assert_eq!(status, 200);
    let (_, inactive) = form(
        &server,
        "/oauth/introspect",
        Some((&id, &secret)),
        &[("token", jwt)],
    )
    .await;
    assert_eq!(inactive, serde_json::json!({"active": false}));
    let (_, garbage) = form(
        &server,
        "/oauth/introspect",
        Some((&id, &secret)),
        &[("token", "not-a-jwt")],
    )
    .await;
    assert_eq!(garbage, serde_json::json!({"active": false}));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_token_endpoint_refuses_what_it_must() {
    let server = TestServer::start();
    let (id, secret) = confidential(&server, &["client_credentials"], "reports.read").await;
    let (code_only, code_secret) = confidential(&server, &["authorization_code"], "").await;
    let mut wrong = secret.clone().into_bytes();
    wrong[10] = if wrong[10] == b'a' { b'b' } else { b'a' };
    let wrong = String::from_utf8(wrong).unwrap();
    let other =
        laissez_token::Token::generate(&Default::default(), laissez_token::Kind::ClientSecret)
            .unwrap();
    let cc = [("grant_type", "client_credentials")];
    type Case<'a> = (
        Option<(&'a str, &'a str)>,
        Vec<(&'a str, &'a str)>,
        u16,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (Some((&id, &wrong)), cc.to_vec(), 401, "invalid_client"),
        (
            Some((&id, other.expose())),
            cc.to_vec(),
            401,
            "invalid_client",
        ),
        (
            Some(("cli_nobody", &secret)),
            cc.to_vec(),
            401,
            "invalid_client",
        ),
        (
            None,
            vec![("grant_type", "client_credentials"), ("client_id", &id)],
            401,
            "invalid_client",
        ),
        (
            Some((&id, &secret)),
            vec![
                ("grant_type", "client_credentials"),
                ("scope", "reports.write"),
            ],
            400,
            "invalid_scope",
        ),
        (
            Some((&id, &secret)),
            vec![
                ("grant_type", "client_credentials"),
                ("resource", "not a url"),
            ],
            400,
            "invalid_target",
        ),
        (
            Some((&id, &secret)),
            vec![("grant_type", "password")],
            400,
            "unsupported_grant_type",
        ),
        (Some((&id, &secret)), vec![], 400, "invalid_request"),
        (
            Some((&id, &secret)),
            vec![
                ("grant_type", "client_credentials"),
                ("grant_type", "client_credentials"),
            ],
            400,
            "invalid_request",
        ),
        (
            Some((&code_only, &code_secret)),
            cc.to_vec(),
            400,
            "unauthorized_client",
        ),
    ];
    for (basic, params, status, code) in cases {
        let (got, error) = form(&server, "/oauth/token", basic, &params).await;
        assert_eq!(got, status, "{params:?} → {error}");
        assert_eq!(error["error"], code, "{params:?} → {error}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn administrators_preregister_clients() {
    let server = TestServer::start();
    let client = laissez_testkit::gate::service_client(
        &server.url,
        "billing.read",
        "https://billing.example",
    )
    .await;
    let (id, secret) = (client.client_id, client.secret);
    let (status, token) = form(
        &server,
        "/oauth/token",
        Some((&id, &secret)),
        &[
            ("grant_type", "client_credentials"),
            ("resource", "https://billing.example"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{token}");
    let (_, listed) = server.get("/v1/clients").await;
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["kind"], "preregistered");
    assert!(
        listed[0].get("client_secret").is_none(),
        "listing never shows secrets"
    );
    assert_eq!(
        listed[0]["owner_id"],
        server.get("/v1/whoami").await.1["principal"]["id"]
    );
    let (status, error) = server
        .post(
            "/v1/clients",
            serde_json::json!({"redirect_uris": ["http://evil.example/cb"]}),
        )
        .await;
    assert_eq!(status, 400, "{error}");
    // Without laissez.principals.write: refused.
    server
        .post(
            "/v1/principals",
            serde_json::json!({"kind": "user", "name": "bob"}),
        )
        .await;
    let (_, bob) = server
        .post("/v1/tokens", serde_json::json!({"principal": "bob"}))
        .await;
    let (status, _) = server
        .call(
            reqwest::Method::POST,
            "/v1/clients",
            bob["token"].as_str().unwrap(),
            Some(&serde_json::json!({"grant_types": ["client_credentials"]})),
        )
        .await;
    assert_eq!(status, 403);
}

#[tokio::test(flavor = "multi_thread")]
async fn clients_manage_their_registration_with_rfc7592() {
    let server = TestServer::start();
    let (status, _, client) = register(
        &server,
        serde_json::json!({"client_name": "agent", "redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none"}),
    )
    .await;
    assert_eq!(status, 201);
    let uri = client["registration_client_uri"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = client["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(uri.ends_with(client["client_id"].as_str().unwrap()));
    let http = server.client();
    let read = http.get(&uri).bearer_auth(&token).send().await.unwrap();
    assert_eq!(read.status(), 200);
    let current: Value = read.json().await.unwrap();
    assert_eq!(current["client_name"], "agent");
    assert!(current.get("registration_access_token").is_none());

    let mut updated = current.clone();
    updated["client_name"] = serde_json::json!("agent v2");
    updated["redirect_uris"] = serde_json::json!(["http://127.0.0.1/cb", "http://localhost/cb"]);
    updated
        .as_object_mut()
        .unwrap()
        .remove("registration_client_uri");
    let put = http
        .put(&uri)
        .bearer_auth(&token)
        .json(&updated)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let after: Value = http
        .get(&uri)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(after["client_name"], "agent v2");
    assert_eq!(after["redirect_uris"].as_array().unwrap().len(), 2);

    let other =
        laissez_token::Token::generate(&Default::default(), laissez_token::Kind::ClientSecret)
            .unwrap();
    assert_eq!(
        http.get(&uri)
            .bearer_auth(other.expose())
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(http.get(&uri).send().await.unwrap().status(), 401);
    let mut switched = updated.clone();
    switched["token_endpoint_auth_method"] = serde_json::json!("client_secret_basic");
    assert_eq!(
        http.put(&uri)
            .bearer_auth(&token)
            .json(&switched)
            .send()
            .await
            .unwrap()
            .status(),
        400
    );

    assert_eq!(
        http.delete(&uri)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        http.get(&uri)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        401,
        "gone"
    );
    let (status, error) = form(
        &server,
        "/oauth/token",
        None,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", client["client_id"].as_str().unwrap()),
            ("code", "x"),
            ("code_verifier", "y"),
        ],
    )
    .await;
    assert_eq!(status, 401, "{error}");
}
