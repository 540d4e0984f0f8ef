//! Client ID Metadata Documents: an https `client_id` names the client's own
//! metadata, fetched (here through an explicit mapping to a local server,
//! since nothing here has public https), checked and cached.

use axum::Router;
use axum::routing::get;
use laissez_oauth::pkce::challenge_for;
use laissez_server::run::Options;
use laissez_testkit::TestServer;
use laissez_testkit::browser::Browser;
use reqwest::StatusCode;
use reqwest::header::LOCATION;
use serde_json::{Value, json};

const VERIFIER: &str = "a-verifier-that-is-long-enough-for-rfc-7636-section-4-1-xyz";
const CLIENT: &str = "https://agent.example/oauth/client.json";
const REDIRECT: &str = "http://127.0.0.1:7777/cb";

async fn documents() -> String {
    let app = Router::new()
        .route(
            "/oauth/client.json",
            get(|| async {
                (
                    [("cache-control", "max-age=60")],
                    axum::Json(json!({
                        "client_id": CLIENT,
                        "client_name": "Metadata Document Agent",
                        "client_uri": "https://agent.example",
                        "redirect_uris": ["http://127.0.0.1/cb"],
                        "grant_types": ["authorization_code"],
                        "token_endpoint_auth_method": "none",
                    })),
                )
            }),
        )
        .route(
            "/oauth/fetch-agent.json",
            get(|| async {
                axum::Json(json!({
                    "client_id": "https://agent.example/oauth/fetch-agent.json",
                    "client_name": "Fetch Agent",
                    "redirect_uris": ["http://127.0.0.1/callback"],
                    "grant_types": ["authorization_code", "refresh_token"],
                    "token_endpoint_auth_method": "none",
                }))
            }),
        )
        .route(
            "/oauth/liar.json",
            get(|| async { axum::Json(json!({"client_id": "https://elsewhere.example/c.json", "redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none"})) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

fn authorize_query(client_id: &str) -> Vec<(&'static str, String)> {
    vec![
        ("client_id", client_id.to_owned()),
        ("redirect_uri", REDIRECT.to_owned()),
        ("response_type", "code".to_owned()),
        ("state", "s1".to_owned()),
        ("code_challenge", challenge_for(VERIFIER)),
        ("code_challenge_method", "S256".to_owned()),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn an_https_client_id_is_resolved_from_its_metadata_document() {
    let local = documents().await;
    let server = TestServer::start_with_options(Options {
        issuer: None,
        metadata_document_mappings: vec![("https://agent.example/".into(), local)],
        ..Options::default()
    });
    server.add_person("alice", "correct horse battery").await;
    let (_, metadata) = server.get("/.well-known/oauth-authorization-server").await;
    assert_eq!(metadata["client_id_metadata_document_supported"], true);

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let query = authorize_query(CLIENT);
    let mut authorize = url::Url::parse(&format!("{}/oauth/authorize", server.url)).unwrap();
    authorize.query_pairs_mut().extend_pairs(&query);
    let mut browser = Browser::new(REDIRECT);
    let login = browser.open(authorize.as_str()).await;
    assert_eq!(login.status, StatusCode::OK);
    let page = browser
        .submit(
            &login,
            &[("username", "alice"), ("password", "correct horse battery")],
        )
        .await;
    assert!(page.body.contains("Metadata Document Agent"), "{page:?}");
    assert!(
        page.body.contains(
            "<strong>Verified domain:</strong> its description is published by <strong>agent.example</strong>"
        ),
        "the document's https host is the verified publisher: {page:?}"
    );
    let back = browser.submit(&page, &[("decision", "approve")]).await;
    let location = url::Url::parse(&back.url).unwrap();
    let code = location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let tokens: Value = http
        .post(format!("{}/oauth/token", server.url))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", CLIENT),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(tokens["access_token"].as_str().is_some(), "{tokens}");

    // A document claiming another client_id, an unmapped private URL and a
    // redirect URI the document does not list are all refused, never redirected.
    for (client_id, redirect) in [
        ("https://agent.example/oauth/liar.json", REDIRECT),
        ("https://127.0.0.1/oauth/client.json", REDIRECT),
        (CLIENT, "http://127.0.0.1:7777/elsewhere"),
    ] {
        let mut query = authorize_query(client_id);
        query[1].1 = redirect.to_owned();
        let response = http
            .get(format!("{}/oauth/authorize", server.url))
            .query(&query)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::BAD_REQUEST,
            "{client_id} {redirect}"
        );
        assert!(response.headers().get(LOCATION).is_none());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_agent_client_uses_its_metadata_document_instead_of_registering() {
    const DOCUMENT: &str = "https://agent.example/oauth/fetch-agent.json";
    let local = documents().await;
    let server = TestServer::start_with_options(Options {
        metadata_document_mappings: vec![("https://agent.example/".into(), local)],
        ..Options::default()
    });
    server.add_person("alice", "correct horse battery").await;
    server.grant_app_role("alice", &["notes.read"], "/").await;
    let app = Router::new().route("/echo", get(|| async { "hello" }));
    let (_, gate_url) = laissez_testkit::gate::front(app, &server.url, |_| {}).await;
    let temp = tempfile::tempdir().unwrap();
    let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = asked.clone();
    let agent = laissez_agent::Agent::new(
        temp.path().join("tokens.json"),
        Box::new(move |url: String| {
            seen.lock().unwrap().push(url.clone());
            Box::pin(async move {
                let back =
                    laissez_testkit::browser::approve(&url, "alice", "correct horse battery").await;
                assert_eq!(reqwest::get(back).await.unwrap().status(), StatusCode::OK);
            })
        }),
    )
    .unwrap()
    .with_metadata_document(DOCUMENT);
    let response = agent
        .fetch(reqwest::Method::GET, &format!("{gate_url}/echo"), None, &[])
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "hello");
    let consent = asked.lock().unwrap()[0].clone();
    let consent = url::Url::parse(&consent).unwrap();
    assert_eq!(
        consent
            .query_pairs()
            .find(|(k, _)| k == "client_id")
            .map(|(_, v)| v.into_owned())
            .as_deref(),
        Some(DOCUMENT),
        "the document URL is the client id"
    );
    // Nothing was registered dynamically.
    let (_, clients) = server.get("/v1/clients").await;
    assert_eq!(clients, json!([]), "{clients}");
}
