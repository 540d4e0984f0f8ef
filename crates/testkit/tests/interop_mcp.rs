//! Interoperability with the official MCP Python SDK, which nobody here
//! wrote: an unmodified FastMCP server sits behind the Laissez gate, and an
//! unmodified MCP client discovers the authorization server from the gate's
//! 401 (RFC 9728, RFC 8414), registers itself (RFC 7591), sends its human
//! through sign-in and consent (driven over HTTP with a cookie jar), exchanges
//! the code with PKCE and `resource`, and calls tools; a tool that needs a
//! wider scope gets `403 insufficient_scope` and the SDK steps up.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use laissez_testkit::python::{python, repo_root};
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
async fn the_mcp_python_sdk_logs_in_through_the_gate_and_calls_tools() {
    let python = python();
    let interop = repo_root().join("tests/interop");
    let server = TestServer::start();
    server.add_person("alice", "correct horse battery").await;
    server
        .grant_app_role("alice", &["notes.read", "notes.write"], "/")
        .await;

    let mcp_port = free_port();
    let _mcp = Reaped(
        Command::new(&python)
            .arg(interop.join("mcp_notes_server.py"))
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

    let mut agent = Command::new(&python)
        .arg(interop.join("mcp_agent.py"))
        .args([&format!("{gate_url}/mcp"), "alice", "correct horse battery"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the MCP client");
    let stdout = agent.stdout.take().unwrap();
    let output = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    let status = agent.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut agent.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(
        status.success(),
        "the MCP client failed:\n{}\n{stderr}",
        output.join("\n")
    );
    let result: Value = serde_json::from_str(output.last().expect("a result line")).unwrap();
    assert_eq!(result["tools"], json!(["add", "read_note", "write_note"]));
    assert_eq!(result["add"], "42");
    assert_eq!(result["note"], "note groceries: remember the milk");
    assert_eq!(result["written"], "saved todo (8 characters)");
    // First the scope the gate's 401 named, then a step-up after its 403.
    assert_eq!(
        result["scopes_asked"],
        json!(["notes.read", "notes.read notes.write"])
    );

    // The consent is on the audit log, attributed to alice.
    let (_, records) = server.get("/v1/audit?limit=1000").await;
    let records = records.as_array().unwrap();
    assert!(
        records
            .iter()
            .any(|r| r["action"] == "oauth.client.register")
    );
    assert!(records.iter().any(|r| r["action"] == "oauth.consent"
        && r["outcome"] == "success"
        && r["chain"][0]["name"] == "alice"));
}
