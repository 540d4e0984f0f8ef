//! A gate in front of an app, for tests and benchmarks: the app (an axum
//! router, or any URL) on a free port, and a [`laissez_gate::Gate`] on
//! another, trusting a test server as its issuer.

use laissez_gate::{Gate, GateConfig};

/// Starts a gate in front of `upstream`, configured by `configure` from the
/// defaults (app `notes`, resource = the gate's own URL, `notes.read` needed
/// for every request); returns the gate's URL.
pub async fn start_gate(
    upstream: &str,
    issuer: &str,
    configure: impl FnOnce(&mut GateConfig),
) -> String {
    start_gate_with_handle(upstream, issuer, configure).await.0
}

/// As [`start_gate`], with the running gate itself as well.
pub async fn start_gate_with_handle(
    upstream: &str,
    issuer: &str,
    configure: impl FnOnce(&mut GateConfig),
) -> (String, Gate) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the gate");
    let gate_url = format!("http://{}", listener.local_addr().expect("addr"));
    let mut config = GateConfig::new(
        "notes",
        gate_url.parse().expect("gate url"),
        upstream.parse().expect("upstream url"),
        issuer,
    );
    config.default_scopes = vec!["notes.read".into()];
    configure(&mut config);
    // The revocation feed is only for gates: read it as the test server's admin
    // unless the test gave the gate a credential of its own.
    if config.audit_token.is_none() && config.feed_token.is_none() {
        config.feed_token = crate::admin_token_of(issuer);
    }
    let gate = Gate::new(config).await.expect("start the gate");
    tokio::spawn(gate.clone().serve(listener, std::future::pending()));
    (gate_url, gate)
}

/// Serves `app` on a free port; returns its URL.
pub async fn serve_app(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the app");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// Serves `app` and a gate in front of it; returns (app URL, gate URL).
pub async fn front(
    app: axum::Router,
    issuer: &str,
    configure: impl FnOnce(&mut GateConfig),
) -> (String, String) {
    let (app_url, gate_url, _) = front_with_handle(app, issuer, configure).await;
    (app_url, gate_url)
}

/// As [`front`], with the running gate itself as well (to read its state).
pub async fn front_with_handle(
    app: axum::Router,
    issuer: &str,
    configure: impl FnOnce(&mut GateConfig),
) -> (String, String, Gate) {
    let app_url = serve_app(app).await;
    let (gate_url, gate) = start_gate_with_handle(&app_url, issuer, configure).await;
    (app_url, gate_url, gate)
}

/// A client-credentials access token for `resource` with `scope`, from a
/// client an administrator registered for it at `server_url` (a test
/// server of this process): see [`service_client`].
pub async fn client_credentials_token(server_url: &str, scope: &str, resource: &str) -> String {
    service_client(server_url, scope, resource)
        .await
        .access_token(server_url, scope, resource)
        .await
}

impl ServiceClient {
    /// A client-credentials access token of this client for `resource`
    /// with `scope`, from the server at `server_url`.
    pub async fn access_token(&self, server_url: &str, scope: &str, resource: &str) -> String {
        let token: serde_json::Value = reqwest::Client::new()
            .post(format!("{server_url}/oauth/token"))
            .basic_auth(&self.client_id, Some(&self.secret))
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", scope),
                ("resource", resource),
            ])
            .send()
            .await
            .expect("token")
            .json()
            .await
            .expect("token answer");
        token["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no access_token: {token}"))
            .to_owned()
    }
}

/// A pre-registered client acting as a service.
pub struct ServiceClient {
    /// The client id.
    pub client_id: String,
    /// The client secret.
    pub secret: String,
    /// The name of the service it acts as.
    pub service: String,
}

/// Sets up, as the admin of the test server at `server_url`, everything a
/// client acting with no person present needs: `resource` registered with
/// the (space-separated) `scope`s, a role holding them granted to a new
/// service owned by the admin and to the admin (the chain's human), and a
/// pre-registered client-credentials client acting as that service.
pub async fn service_client(server_url: &str, scope: &str, resource: &str) -> ServiceClient {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let admin = crate::admin_token_of(server_url).expect("a test server of this process");
    let http = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, body: serde_json::Value| {
        http.request(method, format!("{server_url}{path}"))
            .bearer_auth(&admin)
            .json(&body)
            .send()
    };
    let scopes: Vec<&str> = scope.split_whitespace().collect();
    // The resource, with these scopes (kept with whatever it already had).
    let wanted = laissez_oauth::resource::Resource::parse(resource)
        .expect("a resource URL")
        .to_string();
    let listed: serde_json::Value = http
        .get(format!("{server_url}/v1/resources"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("list resources")
        .json()
        .await
        .expect("resources");
    let mut definition = listed
        .as_array()
        .and_then(|all| {
            all.iter()
                .find(|r| r["resource"] == wanted.as_str())
                .cloned()
        })
        .unwrap_or_else(|| serde_json::json!({"resource": wanted, "name": format!("app {n}")}));
    for s in &scopes {
        if definition["scopes"].get(*s).is_none() {
            definition["scopes"][*s] = serde_json::json!(format!("{s} (test)"));
        }
    }
    if let Some(object) = definition.as_object_mut() {
        object.retain(|k, _| {
            matches!(
                k.as_str(),
                "resource" | "name" | "scopes" | "default_scopes" | "gate"
            )
        });
    }
    let put = call(reqwest::Method::PUT, "/v1/resources", definition)
        .await
        .expect("put resource");
    assert!(
        put.status().is_success(),
        "resource: {}",
        put.text().await.unwrap_or_default()
    );
    let service = format!("acting-{n}");
    let created = call(
        reqwest::Method::POST,
        "/v1/principals",
        serde_json::json!({"kind": "service", "name": service, "owner": "admin"}),
    )
    .await
    .expect("create service");
    assert!(
        created.status().is_success(),
        "service: {}",
        created.text().await.unwrap_or_default()
    );
    if !scopes.is_empty() {
        for principal in [service.as_str(), "admin"] {
            crate::grant_app_role(server_url, principal, &scopes, "/").await;
        }
    }
    let client: serde_json::Value = call(
        reqwest::Method::POST,
        "/v1/clients",
        serde_json::json!({"client_name": format!("acting {n}"), "grant_types": ["client_credentials"],
            "scope": scope, "principal": service}),
    )
    .await
    .expect("register the client")
    .json()
    .await
    .expect("registration answer");
    ServiceClient {
        client_id: client["client_id"]
            .as_str()
            .unwrap_or_else(|| panic!("{client}"))
            .to_owned(),
        secret: client["client_secret"]
            .as_str()
            .unwrap_or_else(|| panic!("{client}"))
            .to_owned(),
        service,
    }
}
