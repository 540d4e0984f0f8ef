//! Interoperability with `openid-client` (npm), a generic OAuth client
//! nobody here wrote: discovery, dynamic registration, authorization code
//! with PKCE and a resource indicator, RFC 9207 `iss` validation, refresh
//! rotation with reuse refusal, revocation and client credentials.

use std::process::Command;

use laissez_testkit::TestServer;
use laissez_testkit::node::interop_dir;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn openid_client_completes_every_grant() {
    let dir = interop_dir();
    let server = TestServer::start();
    server.add_person("alice", "correct horse battery").await;
    server.grant_app_role("alice", &["notes.read"], "/").await;
    let machine =
        laissez_testkit::gate::service_client(&server.url, "reports.read", "https://notes.example")
            .await;
    // The resource defines the scopes the user grants too.
    let (status, body) = server
        .call(
            reqwest::Method::PUT,
            "/v1/resources",
            &server.admin_token,
            Some(
                &serde_json::json!({"resource": "https://notes.example", "name": "notes",
                "scopes": {"notes.read": "Read notes", "reports.read": "Read reports"}}),
            ),
        )
        .await;
    assert!(status.is_success(), "{body}");
    let url = server.url.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(dir.join("openid_client_agent.mjs"))
            .args([url.as_str(), "alice", "correct horse battery"])
            .args([machine.client_id.as_str(), machine.secret.as_str()])
            .output()
            .expect("run node")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "openid-client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let observed: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(observed["issuer"], server.url.as_str());
    assert_eq!(observed["scope"], "notes.read offline_access");
    for check in [
        "has_refresh",
        "rotated",
        "reuse_refused",
        "revoked",
        "forged_iss_refused",
        "self_registered_client_credentials_refused",
        "client_credentials",
    ] {
        assert_eq!(observed[check], true, "{check}: {observed}");
    }
}
