//! Secrets appear exactly once: in the create or roll response. This test
//! captures every log line the server writes (at TRACE), then searches the
//! data folder (database, WAL, every file), the logs and the audit export for
//! each plaintext token it ever issued.

use std::io::Write;
use std::sync::{Arc, Mutex};

use laissez_testkit::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread")]
async fn no_plaintext_secret_in_data_logs_or_audit() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let temp = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(&temp.path().join("data"));
    let mut secrets = vec![server.admin_token.clone()];
    server
        .post("/v1/principals", json!({"kind": "user", "name": "alice"}))
        .await;
    server
        .post(
            "/v1/principals",
            json!({"kind": "agent", "name": "bot", "owner": "alice"}),
        )
        .await;
    for principal in ["alice", "bot", "admin"] {
        let (status, issued) = server
            .post("/v1/tokens", json!({"principal": principal}))
            .await;
        assert_eq!(status, StatusCode::CREATED);
        let secret = issued["token"].as_str().unwrap().to_owned();
        // Use it, successfully and not.
        assert_eq!(
            server
                .call(Method::GET, "/v1/whoami", &secret, None)
                .await
                .0,
            StatusCode::OK
        );
        server.call(Method::GET, "/v1/audit", &secret, None).await;
        let (status, rolled) = server
            .post(
                &format!("/v1/tokens/{}/roll", issued["id"].as_str().unwrap()),
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        // The old secret, now dead, is refused (and that failure is audited).
        assert_eq!(
            server
                .call(Method::GET, "/v1/whoami", &secret, None)
                .await
                .0,
            StatusCode::UNAUTHORIZED
        );
        secrets.push(secret);
        secrets.push(rolled["token"].as_str().unwrap().to_owned());
    }
    // A secret sent as a malformed body field must not be echoed to logs either.
    server
        .post("/v1/tokens", json!({"principal": secrets[1].clone()}))
        .await;

    let mut audit = Vec::new();
    let mut after = 0;
    loop {
        let (_, page) = server
            .get(&format!("/v1/audit?after={after}&limit=1000"))
            .await;
        let page = page.as_array().unwrap().clone();
        if page.is_empty() {
            break;
        }
        for record in &page {
            audit.extend_from_slice(record.to_string().as_bytes());
            audit.push(b'\n');
            after = record["seq"].as_i64().unwrap();
        }
    }
    assert!(audit.len() > 1000, "the audit export has content");
    let data_dir = server.data_dir.clone();
    server.stop();
    let files = files_under(&data_dir);
    assert!(files.iter().any(|f| f.ends_with("laissez.db")));
    let logs = logs.0.lock().unwrap().clone();
    assert!(!logs.is_empty(), "the server logged something");
    for secret in &secrets {
        for file in &files {
            if file.ends_with("admin-token") {
                continue; // The bootstrap token file exists to hold exactly that secret.
            }
            let bytes = std::fs::read(file).unwrap();
            assert!(
                !contains(&bytes, secret),
                "plaintext secret in {}",
                file.display()
            );
            // Nor the body without its prefix.
            let body = &secret[5..45];
            assert!(!contains(&bytes, body), "secret body in {}", file.display());
        }
        assert!(
            !contains(&logs, &secret[5..45]),
            "plaintext secret in the logs"
        );
        assert!(
            !contains(&audit, &secret[5..45]),
            "plaintext secret in the audit export"
        );
    }
}
