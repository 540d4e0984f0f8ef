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
    let gate = Gate::new(config).await.expect("start the gate");
    tokio::spawn(gate.serve(listener, std::future::pending()));
    gate_url
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
    let app_url = serve_app(app).await;
    let gate_url = start_gate(&app_url, issuer, configure).await;
    (app_url, gate_url)
}

/// A client-credentials access token for `resource` with `scope`, from a
/// client registered for it at `server_url`.
pub async fn client_credentials_token(server_url: &str, scope: &str, resource: &str) -> String {
    let http = reqwest::Client::new();
    let client: serde_json::Value = http
        .post(format!("{server_url}/oauth/register"))
        .json(&serde_json::json!({"grant_types": ["client_credentials"], "scope": scope}))
        .send()
        .await
        .expect("register")
        .json()
        .await
        .expect("registration answer");
    let token: serde_json::Value = http
        .post(format!("{server_url}/oauth/token"))
        .basic_auth(
            client["client_id"].as_str().expect("client_id"),
            client["client_secret"].as_str(),
        )
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
        .expect("access_token")
        .to_owned()
}
