//! Clients that authenticate with a TLS client certificate (RFC 8705): on a
//! server listening with TLS and a client CA, a `tls_client_auth` client
//! whose certificate carries its registered DNS name gets tokens bound to
//! that certificate (`cnf.x5t#S256`); the wrong name, another CA, no
//! certificate, or a secret are `invalid_client`; the metadata advertises
//! the methods and certificate-bound tokens.

use laissez_testkit::jwt_claims;
use laissez_testkit::pki::{Authority, TlsServer as Server, https_client};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A client-credentials request for the notes app, as `client_id`,
/// presenting `certificate` (and `secret`, when given).
async fn token(
    server: &Server,
    client_id: &str,
    certificate: Option<&laissez_testkit::pki::Issued>,
    secret: Option<&str>,
) -> (StatusCode, Value) {
    let mut form = vec![
        ("grant_type", "client_credentials"),
        ("client_id", client_id),
        ("scope", "notes.read"),
        ("resource", "https://notes.example"),
    ];
    if let Some(secret) = secret {
        form.push(("client_secret", secret));
    }
    let response = https_client(&server.server_ca, certificate)
        .post(format!("{}/oauth/token", server.url))
        .form(&form)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A service with notes.read and a `tls_client_auth` client for it, named
/// `agent.example`; returns the client id.
async fn setup(server: &Server) -> String {
    server
        .admin(
            reqwest::Method::POST,
            "/v1/principals",
            json!({"kind": "service", "name": "svc", "owner": "admin"}),
        )
        .await;
    server
        .admin(
            reqwest::Method::PUT,
            "/v1/resources",
            json!({"resource": "https://notes.example", "name": "notes", "scopes": {"notes.read": "Read notes"}}),
        )
        .await;
    server
        .admin(
            reqwest::Method::POST,
            "/v1/roles",
            json!({"name": "notes-reader", "permissions": ["notes.read"]}),
        )
        .await;
    // Every link of the chain (the owner, then the service) holds it.
    for principal in ["admin", "svc"] {
        server
            .admin(
                reqwest::Method::POST,
                "/v1/policies",
                json!({"principal": principal, "role": "notes-reader", "scope": "/"}),
            )
            .await;
    }
    let client = server
        .admin(
            reqwest::Method::POST,
            "/v1/clients",
            json!({"client_name": "svc over mTLS", "grant_types": ["client_credentials"],
                "scope": "notes.read", "principal": "svc",
                "token_endpoint_auth_method": "tls_client_auth",
                "tls_client_auth_san_dns": "agent.example",
                "tls_client_certificate_bound_access_tokens": true}),
        )
        .await;
    assert!(client.get("client_secret").is_none(), "{client}");
    client["client_id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_client_gets_tokens_bound_to_its_certificate() {
    let server = Server::start().await;
    let client_id = setup(&server).await;
    let metadata: Value = https_client(&server.server_ca, None)
        .get(format!(
            "{}/.well-known/oauth-authorization-server",
            server.url
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        metadata["tls_client_certificate_bound_access_tokens"], true,
        "{metadata}"
    );
    let methods = metadata["token_endpoint_auth_methods_supported"].to_string();
    assert!(
        methods.contains("\"tls_client_auth\"") && methods.contains("self_signed_tls_client_auth"),
        "{methods}"
    );

    let certificate = server.client_ca.client_for("agent", &["agent.example"]);
    let (status, body) = token(&server, &client_id, Some(&certificate), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["token_type"], "Bearer",
        "a certificate-bound token stays Bearer: {body}"
    );
    let claims = jwt_claims(body["access_token"].as_str().unwrap());
    assert_eq!(
        claims["cnf"]["x5t#S256"],
        laissez_tls::thumbprint(&certificate.der),
        "{claims}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_wrong_certificate_or_none_is_invalid_client() {
    let server = Server::start().await;
    let client_id = setup(&server).await;
    let other_ca = Authority::new("other CA");
    let cases = [
        ("no certificate", None),
        (
            "another name",
            Some(server.client_ca.client_for("agent", &["evil.example"])),
        ),
        (
            "a name that only ends the same",
            Some(server.client_ca.client_for("agent", &["xagent.example"])),
        ),
    ];
    for (what, certificate) in cases {
        let (status, body) = token(&server, &client_id, certificate.as_ref(), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
        assert_eq!(body["error"], "invalid_client", "{what}: {body}");
    }
    // A secret instead: refused, even with the right certificate.
    let right = server.client_ca.client_for("agent", &["agent.example"]);
    let (status, body) = token(&server, &client_id, Some(&right), Some("lzcs_x")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    // A certificate of another CA fails the handshake itself.
    let foreign = other_ca.client_for("agent", &["agent.example"]);
    let sent = https_client(&server.server_ca, Some(&foreign))
        .post(format!("{}/oauth/token", server.url))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id.as_str()),
        ])
        .send()
        .await;
    assert!(
        sent.is_err(),
        "another CA's certificate is refused in the handshake"
    );
}
