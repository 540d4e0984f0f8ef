//! Native TLS end to end, with certificates made here: the server over
//! HTTPS publishes an https issuer; a gate over TLS takes requests with and
//! without a client certificate, lets a token bound to a certificate
//! (`cnf.x5t#S256`) through only on a connection that presented it, and
//! fails the handshake of a certificate from another CA and of plain HTTP.

use laissez_testkit::gate::{client_credentials_token, serve_app};
use laissez_testkit::pki::{Authority, https_client, listener_tls};
use laissez_testkit::{TestServer, jwt_claims};
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread")]
async fn the_server_serves_https_and_publishes_an_https_issuer() {
    let temp = tempfile::tempdir().unwrap();
    let server_ca = Authority::new("server CA");
    let client_ca = Authority::new("client CA");
    let tls = listener_tls(temp.path(), &server_ca, &client_ca);
    let options = laissez_server::run::Options {
        tls: Some(tls.clone()),
        ..Default::default()
    };
    let started = laissez_server::run::start(&temp.path().join("data"), "127.0.0.1:0", &options)
        .await
        .unwrap();
    let addr = started.addr;
    assert_eq!(started.issuer, format!("https://{addr}"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(started.serve(async move {
        let _ = stopped.await;
    }));

    let metadata: serde_json::Value = https_client(&server_ca, None)
        .get(format!(
            "https://{addr}/.well-known/oauth-authorization-server"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["issuer"], format!("https://{addr}"));
    let with_certificate = https_client(&server_ca, Some(&client_ca.client("agent")))
        .get(format!(
            "https://{addr}/.well-known/oauth-authorization-server"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(with_certificate.status(), StatusCode::OK);
    assert!(
        reqwest::get(format!(
            "http://{addr}/.well-known/oauth-authorization-server"
        ))
        .await
        .is_err(),
        "plain HTTP to the TLS port fails"
    );

    // Graceful shutdown still ends the server.
    let _ = stop.send(());
    tokio::time::timeout(std::time::Duration::from_secs(15), serving)
        .await
        .expect("the server stops")
        .unwrap()
        .unwrap();

    let http_issuer = laissez_server::run::Options {
        issuer: Some("http://127.0.0.1:1".into()),
        tls: Some(tls),
        ..Default::default()
    };
    let refused =
        laissez_server::run::start(&temp.path().join("data2"), "127.0.0.1:0", &http_issuer).await;
    assert!(matches!(
        refused,
        Err(laissez_server::run::StartError::IssuerNotHttps(_))
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_bound_token_passes_the_gate_only_with_its_certificate() {
    let server = TestServer::start();
    let temp = tempfile::tempdir().unwrap();
    let server_ca = Authority::new("server CA");
    let client_ca = Authority::new("client CA");
    let tls = listener_tls(temp.path(), &server_ca, &client_ca);

    let app = axum::Router::new().fallback(|| async { "hello from the app" });
    let app_url = serve_app(app).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gate_url = format!("https://{}", listener.local_addr().unwrap());
    let mut config = laissez_gate::GateConfig::new(
        "notes",
        gate_url.parse().unwrap(),
        app_url.parse().unwrap(),
        &server.url,
    );
    config.default_scopes = vec!["notes.read".into()];
    config.feed_token = Some(server.admin_token.clone());
    let gate = laissez_gate::Gate::new(config).await.unwrap();
    tokio::spawn(gate.serve_tls(listener, tls, std::future::pending()));

    // An ordinary token, and the same claims bound to the agent's
    // certificate, signed with the server's keys.
    let unbound = client_credentials_token(&server.url, "notes.read", &gate_url).await;
    let agent = client_ca.client("agent");
    let thumbprint = laissez_tls::thumbprint(&agent.der);
    let mut claims = jwt_claims(&unbound);
    claims["cnf"] = serde_json::json!({ "x5t#S256": thumbprint });
    let keys = laissez_server::oauth::keys::KeyRing::open(&server.data_dir, laissez_server::now())
        .unwrap();
    let bound = keys.sign("at+jwt", &claims).unwrap();

    let get = |client: reqwest::Client, token: String| {
        let url = format!("{gate_url}/notes");
        async move { client.get(url).bearer_auth(token).send().await }
    };
    let anonymous = https_client(&server_ca, None);
    let with_agent = https_client(&server_ca, Some(&agent));
    let with_colleague = https_client(&server_ca, Some(&client_ca.client("colleague")));

    // HTTPS without a client certificate.
    let answer = get(anonymous.clone(), unbound.clone()).await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(answer.text().await.unwrap(), "hello from the app");
    let answer = get(with_agent.clone(), unbound).await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);

    // The bound token with its certificate, without one, with another.
    let answer = get(with_agent, bound.clone()).await.unwrap();
    assert_eq!(
        answer.status(),
        StatusCode::OK,
        "the certificate the token is bound to"
    );
    for (who, client) in [("no", anonymous), ("another", with_colleague)] {
        let answer = get(client, bound.clone()).await.unwrap();
        assert_eq!(
            answer.status(),
            StatusCode::UNAUTHORIZED,
            "{who} certificate"
        );
        let challenge = answer
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(challenge.contains("invalid_token"), "{challenge}");
    }

    // A certificate of another CA fails the handshake; so does plain HTTP.
    let stranger = Authority::new("another CA").client("agent");
    assert!(
        get(https_client(&server_ca, Some(&stranger)), bound.clone())
            .await
            .is_err()
    );
    let plain = gate_url.replace("https://", "http://");
    assert!(reqwest::get(format!("{plain}/notes")).await.is_err());
}
