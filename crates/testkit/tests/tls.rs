//! Native TLS end to end, with certificates made here: the server over
//! HTTPS publishes an https issuer; a gate over TLS takes requests with and
//! without a client certificate, lets a token bound to a certificate
//! (`cnf.x5t#S256`) through only on a connection that presented it, and
//! fails the handshake of a certificate from another CA and of plain HTTP.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use laissez_testkit::gate::{client_credentials_token, serve_app};
use laissez_testkit::{TestServer, jwt_claims};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use reqwest::StatusCode;

/// A CA and what it signs.
struct Authority {
    certificate: rcgen::Certificate,
    key: KeyPair,
}

/// A certificate and its key, PEM.
struct Issued {
    cert: String,
    key: String,
    der: Vec<u8>,
}

impl Authority {
    fn new(name: &str) -> Authority {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let certificate = params.self_signed(&key).unwrap();
        Authority { certificate, key }
    }

    fn server(&self) -> Issued {
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(params, "localhost")
    }

    fn client(&self, name: &str) -> Issued {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params, name)
    }

    fn issue(&self, mut params: CertificateParams, name: &str) -> Issued {
        let key = KeyPair::generate().unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        let certificate = params
            .signed_by(&key, &self.certificate, &self.key)
            .unwrap();
        Issued {
            cert: certificate.pem(),
            key: key.serialize_pem(),
            der: certificate.der().to_vec(),
        }
    }
}

/// The TLS of a listener with a server certificate of `server_ca` and
/// client certificates of `client_ca`.
fn listener_tls(dir: &Path, server_ca: &Authority, client_ca: &Authority) -> laissez_tls::Tls {
    let server = server_ca.server();
    let files = laissez_tls::TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
        client_ca: Some(dir.join("client-ca.pem")),
        self_signed_clients: false,
    };
    std::fs::write(&files.cert, &server.cert).unwrap();
    std::fs::write(&files.key, &server.key).unwrap();
    std::fs::write(dir.join("client-ca.pem"), client_ca.certificate.pem()).unwrap();
    laissez_tls::Tls::load(&files).unwrap()
}

/// An HTTPS client trusting `server_ca`, presenting `identity` if any.
fn https_client(server_ca: &Authority, identity: Option<&Issued>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(
            reqwest::Certificate::from_pem(server_ca.certificate.pem().as_bytes()).unwrap(),
        );
    if let Some(issued) = identity {
        let pem = format!("{}{}", issued.key, issued.cert);
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

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
