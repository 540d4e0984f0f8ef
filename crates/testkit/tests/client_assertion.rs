//! Clients that authenticate with a signed JWT (RFC 7523 §2.2,
//! `private_key_jwt`): an administrator registers an agent's client with its
//! public key and no secret; the agent gets client-credentials tokens and
//! task credentials by token exchange with a fresh assertion each time,
//! introspects and revokes with one; a replayed, expired, misaddressed or
//! foreign-signed assertion, a secret for a key client and an assertion for a
//! secret client are each refused with `invalid_client` and change nothing.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use laissez_dpop::ProofKey;
use laissez_testkit::task::{TOKEN_EXCHANGE, agent, answer, echo_gate, unix_now};
use laissez_testkit::{TestServer, jwt_claims};
use reqwest::StatusCode;
use serde_json::{Value, json};

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

struct Setup {
    server: TestServer,
    client_id: String,
    key: ProofKey,
    app: String,
}

/// Signs an assertion with `key` over `claims`.
fn sign(key: &ProofKey, claims: &Value) -> String {
    use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey};
    let secret = p256::SecretKey::from_pkcs8_pem(&key.to_pem()).expect("an EC key");
    let der = secret.to_pkcs8_der().expect("DER");
    let encoding = EncodingKey::from_ec_der(der.as_bytes());
    jsonwebtoken::encode(&Header::new(Algorithm::ES256), claims, &encoding).expect("sign")
}

impl Setup {
    /// Alice's agent bot holds notes.read; its client registered bot's key.
    async fn new() -> Setup {
        let server = TestServer::start();
        agent(&server, "alice", &["notes.read"], "bot", &["notes.read"]).await;
        let app = echo_gate(&server, &["notes.read"], |_| {}).await;
        let key = ProofKey::generate().expect("key");
        let (status, client) = server
            .post(
                "/v1/clients",
                json!({"client_name": "bot tasks", "grant_types": ["client_credentials"],
                    "scope": "notes.read", "principal": "bot",
                    "token_endpoint_auth_method": "private_key_jwt",
                    "jwks": {"keys": [key.public_jwk()]}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{client}");
        assert!(
            client.get("client_secret").is_none(),
            "a key client gets no secret: {client}"
        );
        Setup {
            client_id: client["client_id"].as_str().expect("client_id").to_owned(),
            server,
            key,
            app,
        }
    }

    fn claims(&self, aud: &str) -> Value {
        let now = unix_now();
        json!({"iss": self.client_id, "sub": self.client_id, "aud": aud,
            "exp": now + 60, "iat": now, "jti": format!("j{}", rand_suffix())})
    }

    fn assertion(&self) -> String {
        sign(&self.key, &self.claims(&self.server.url))
    }

    /// Posts `form` with `assertion` to `path`.
    async fn post(
        &self,
        path: &str,
        assertion: &str,
        form: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let mut form = form.to_vec();
        form.push(("client_assertion_type", ASSERTION_TYPE));
        form.push(("client_assertion", assertion));
        let response = self
            .server
            .client()
            .post(format!("{}{path}", self.server.url))
            .form(&form)
            .send()
            .await
            .expect("request");
        answer(response).await
    }

    async fn client_credentials(&self, assertion: &str) -> (StatusCode, Value) {
        self.post(
            "/oauth/token",
            assertion,
            &[
                ("grant_type", "client_credentials"),
                ("scope", "notes.read"),
                ("resource", &self.app),
            ],
        )
        .await
    }
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn metadata_advertises_private_key_jwt() {
    let server = TestServer::start();
    let (_, metadata) = server.get("/.well-known/oauth-authorization-server").await;
    for endpoint in ["token", "revocation", "introspection"] {
        let methods = &metadata[format!("{endpoint}_endpoint_auth_methods_supported")];
        assert!(
            methods
                .as_array()
                .unwrap()
                .contains(&json!("private_key_jwt")),
            "{endpoint}: {methods}"
        );
        let algs = &metadata[format!("{endpoint}_endpoint_auth_signing_alg_values_supported")];
        assert!(algs.as_array().unwrap().contains(&json!("ES256")), "{algs}");
        assert!(
            !algs.as_array().unwrap().contains(&json!("HS256")),
            "{algs}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_assertion_gets_a_token_once() {
    let s = Setup::new().await;
    let assertion = s.assertion();
    let (status, body) = s.client_credentials(&assertion).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let claims = jwt_claims(body["access_token"].as_str().unwrap());
    assert_eq!(claims["client_id"], s.client_id);
    // The same assertion again: refused, and no token.
    let (status, body) = s.client_credentials(&assertion).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "invalid_client");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("used before"),
        "{body}"
    );
    // The token endpoint's own URL is an accepted audience too.
    let at_token = sign(&s.key, &s.claims(&format!("{}/oauth/token", s.server.url)));
    assert_eq!(s.client_credentials(&at_token).await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_assertions_are_refused_as_invalid_client() {
    let s = Setup::new().await;
    let other = ProofKey::generate().unwrap();
    let now = unix_now();
    let with = |change: &dyn Fn(&mut Value)| {
        let mut claims = s.claims(&s.server.url);
        change(&mut claims);
        sign(&s.key, &claims)
    };
    let cases = [
        (
            "signed by another key",
            sign(&other, &s.claims(&s.server.url)),
        ),
        (
            "another audience",
            sign(&s.key, &s.claims("https://evil.example")),
        ),
        ("expired", with(&|c| c["exp"] = json!(now - 120))),
        ("ten years", with(&|c| c["exp"] = json!(now + 315_360_000))),
        ("another issuer", with(&|c| c["iss"] = json!("cli_someone"))),
        (
            "no jti",
            with(&|c| {
                c.as_object_mut().unwrap().remove("jti");
            }),
        ),
        ("garbage", "not.a.jwt".to_owned()),
    ];
    for (what, assertion) in cases {
        let (status, body) = s.client_credentials(&assertion).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
        assert_eq!(body["error"], "invalid_client", "{what}: {body}");
    }
    // A wrong assertion type, a secret beside the assertion, a client_id
    // that is not the assertion's subject.
    let good = s.assertion();
    let response = s
        .server
        .client()
        .post(format!("{}/oauth/token", s.server.url))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", "jwt"),
            ("client_assertion", &good),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(answer(response).await.1["error"], "invalid_client");
    let (status, body) = s
        .post(
            "/oauth/token",
            &good,
            &[("grant_type", "client_credentials"), ("client_secret", "x")],
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request")),
        "{body}"
    );
    let (_, body) = s
        .post(
            "/oauth/token",
            &good,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "cli_other"),
            ],
        )
        .await;
    assert_eq!(body["error"], "invalid_client", "{body}");
    // None of these used up the good assertion.
    assert_eq!(s.client_credentials(&good).await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_client_cannot_use_a_secret_and_a_secret_client_cannot_use_a_key() {
    let s = Setup::new().await;
    let response = s
        .server
        .client()
        .post(format!("{}/oauth/token", s.server.url))
        .basic_auth(&s.client_id, Some("lzcs_whatever"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let (status, body) = answer(response).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("private_key_jwt"),
        "{body}"
    );

    let (_, secret_client) = s
        .server
        .post(
            "/v1/clients",
            json!({"client_name": "secret", "grant_types": ["client_credentials"], "scope": "notes.read", "principal": "bot"}),
        )
        .await;
    let id = secret_client["client_id"].as_str().unwrap();
    let now = unix_now();
    let assertion = sign(
        &s.key,
        &json!({"iss": id, "sub": id, "aud": s.server.url, "exp": now + 60, "jti": "x"}),
    );
    let (status, body) = s.client_credentials(&assertion).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("did not register private_key_jwt"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_gets_a_task_credential_by_exchange_with_an_assertion() {
    let s = Setup::new().await;
    let dpop = ProofKey::generate().unwrap();
    let url = format!("{}/oauth/token", s.server.url);
    let proof = dpop.proof("POST", &url, None, None, unix_now()).unwrap();
    let assertion = s.assertion();
    let response = s
        .server
        .client()
        .post(&url)
        .header("dpop", proof)
        .form(&[
            ("grant_type", TOKEN_EXCHANGE),
            ("resource", &s.app),
            ("scope", "notes.read"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", &assertion),
        ])
        .send()
        .await
        .unwrap();
    let (status, body) = answer(response).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "DPoP");
    let claims = jwt_claims(body["access_token"].as_str().unwrap());
    assert_eq!(claims["cnf"]["jkt"], dpop.thumbprint());
    assert!(claims["task"].is_string(), "{claims}");

    // Introspection and revocation accept assertions addressed to them.
    let task_jwt = body["access_token"].as_str().unwrap().to_owned();
    let at = |path: &str| sign(&s.key, &s.claims(&format!("{}{path}", s.server.url)));
    let (status, info) = s
        .post(
            "/oauth/introspect",
            &at("/oauth/introspect"),
            &[("token", &task_jwt)],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{info}");
    assert_eq!(info["active"], true, "{info}");
    // A DPoP-bound token introspects as DPoP with its confirmation (RFC 9449 §6.2).
    assert_eq!(info["token_type"], "DPoP", "{info}");
    assert_eq!(info["cnf"]["jkt"], dpop.thumbprint(), "{info}");
    assert_eq!(info["task"], claims["task"], "{info}");
    let (status, _) = s
        .post(
            "/oauth/revoke",
            &at("/oauth/revoke"),
            &[("token", body["task_token"].as_str().unwrap())],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, info) = s
        .post(
            "/oauth/introspect",
            &at("/oauth/introspect"),
            &[("token", &task_jwt)],
        )
        .await;
    assert_eq!(
        info["active"], false,
        "a revoked task's JWT is inactive: {info}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn registrations_with_unusable_keys_are_refused() {
    let server = TestServer::start();
    let key = ProofKey::generate().unwrap();
    let mut private = key.public_jwk();
    private["d"] = json!("AAAA");
    let cases = [
        json!({"token_endpoint_auth_method": "private_key_jwt"}),
        json!({"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "https://keys.example/jwks"}),
        json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [private]}}),
        json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}}),
        json!({"token_endpoint_auth_method": "client_secret_basic", "jwks": {"keys": [key.public_jwk()]}}),
    ];
    for mut case in cases {
        case["client_name"] = json!("x");
        case["redirect_uris"] = json!(["http://127.0.0.1/cb"]);
        let (status, body) = server.post("/v1/clients", case.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{case}: {body}");
        let response = server
            .client()
            .post(format!("{}/oauth/register", server.url))
            .json(&case)
            .send()
            .await
            .unwrap();
        let (status, body) = answer(response).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{case}: {body}");
        assert_eq!(body["error"], "invalid_client_metadata", "{body}");
    }
    // Dynamic registration with a key: no secret, and it cannot switch to one.
    let document = json!({"client_name": "x", "redirect_uris": ["http://127.0.0.1/cb"],
        "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [key.public_jwk()]}});
    let response = server
        .client()
        .post(format!("{}/oauth/register", server.url))
        .json(&document)
        .send()
        .await
        .unwrap();
    let (status, registered) = answer(response).await;
    assert_eq!(status, StatusCode::CREATED, "{registered}");
    assert!(registered.get("client_secret").is_none());
    assert_eq!(registered["jwks"]["keys"][0], key.public_jwk());
    let mut update = document.clone();
    update["client_id"] = registered["client_id"].clone();
    update["token_endpoint_auth_method"] = json!("client_secret_basic");
    update.as_object_mut().unwrap().remove("jwks");
    let response = server
        .client()
        .put(registered["registration_client_uri"].as_str().unwrap())
        .bearer_auth(registered["registration_access_token"].as_str().unwrap())
        .json(&update)
        .send()
        .await
        .unwrap();
    let (status, body) = answer(response).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}
