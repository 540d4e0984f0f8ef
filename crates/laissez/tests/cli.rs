//! The bugs a newcomer hit, through the real binary: `laissez fetch`, the
//! request timeout, `--server` without a scheme, a server that is not
//! Laissez, an empty `LAISSEZ_TOKEN`, `token revoke` given the secret,
//! errors as JSON, tables that fit the terminal and one mask everywhere.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_laissez");

/// `laissez serve` on a temporary data folder and a free port.
struct Server {
    child: Child,
    url: String,
    data: PathBuf,
    _temp: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start() -> Server {
        let temp = tempfile::tempdir().unwrap();
        let data = temp.path().join("data");
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(&data)
            .env_remove("LAISSEZ_DATA")
            .env("LAISSEZ_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn laissez serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut server = Server {
            child,
            url: String::new(),
            data,
            _temp: temp,
        };
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if let Some(url) = line.strip_prefix("listening on ") {
                server.url = url.to_owned();
                return server;
            }
        }
        panic!("the server never said where it listens");
    }

    /// The CLI against this server, with its admin token from the data folder.
    fn cli(&self, args: &[&str]) -> Out {
        laissez(&self.url, &self.data, args, &[])
    }

    fn ok(&self, args: &[&str]) -> Out {
        let out = self.cli(args);
        assert_eq!(out.code, 0, "{args:?}: {}{}", out.stdout, out.stderr);
        out
    }
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn laissez(server: &str, data: &Path, args: &[&str], env: &[(&str, &str)]) -> Out {
    let mut command = Command::new(BIN);
    command
        .args(["--server", server, "--data"])
        .arg(data)
        .args(args)
        .env_remove("LAISSEZ_URL")
        .env_remove("LAISSEZ_TOKEN")
        .env_remove("LAISSEZ_DATA")
        .env_remove("LAISSEZ_TIMEOUT")
        .env_remove("COLUMNS");
    for (name, value) in env {
        command.env(name, value);
    }
    let out = command.output().expect("run laissez");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A TCP server on a free port answering every connection with `answer`
/// (or, for `None`, accepting and never answering).
fn fake_server(answer: Option<&'static str>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            match answer {
                Some(answer) => {
                    let mut buffer = [0u8; 4096];
                    let _ = stream.read(&mut buffer);
                    let _ = stream.write_all(answer.as_bytes());
                }
                None => held.push(stream),
            }
        }
    });
    format!("http://{addr}")
}

#[test]
fn fetch_runs_with_its_body_header_and_method_options() {
    let server = Server::start();
    let health = format!("{}/healthz", server.url);
    let got = server.ok(&["fetch", &health]);
    assert!(got.stdout.contains("ok"), "{}", got.stdout);
    // `-d` (curl's) and the global `--data` no longer clash: clap used to
    // panic on every `laissez fetch`.
    let posted = server.cli(&[
        "fetch",
        "-X",
        "POST",
        "-d",
        "{\"text\":\"hi\"}",
        "-H",
        "content-type: application/json",
        &health,
    ]);
    assert_eq!(posted.code, 1, "{}{}", posted.stdout, posted.stderr);
    assert!(
        posted.stderr.contains("answered HTTP 405"),
        "{}",
        posted.stderr
    );
    assert!(!posted.stderr.contains("panicked"), "{}", posted.stderr);
    let from_file = server._temp.path().join("body.json");
    std::fs::write(&from_file, "{}").unwrap();
    let file_arg = format!("@{}", from_file.display());
    let posted = server.cli(&["fetch", "-X", "POST", "--body", &file_arg, &health]);
    assert!(
        posted.stderr.contains("answered HTTP 405"),
        "{}",
        posted.stderr
    );
}

#[test]
fn a_server_that_never_answers_times_out() {
    let silent = fake_server(None);
    let temp = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = laissez(
        &silent,
        temp.path(),
        &["--timeout", "1s", "--token", "lzut_x", "whoami"],
        &[],
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("did not answer within 1 s"),
        "{}",
        out.stderr
    );
}

#[test]
fn server_without_a_scheme_means_http_on_loopback_only() {
    let server = Server::start();
    let bare = server.url.trim_start_matches("http://").to_owned();
    let out = laissez(&bare, &server.data, &["whoami"], &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("admin"), "{}", out.stdout);
    let remote = laissez("id.acme.example:8700", &server.data, &["whoami"], &[]);
    assert_eq!(remote.code, 1);
    assert!(
        remote
            .stderr
            .contains("needs a scheme: https://id.acme.example:8700"),
        "{}",
        remote.stderr
    );
    assert!(!remote.stderr.contains("relative URL"), "{}", remote.stderr);
}

#[test]
fn a_server_that_is_not_laissez_is_named_not_printed() {
    let proxy = fake_server(Some(
        "HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: 49\r\nconnection: close\r\n\r\n<html><body><h1>502 Bad Gateway</h1></body></html>",
    ));
    let temp = tempfile::tempdir().unwrap();
    let out = laissez(&proxy, temp.path(), &["--token", "lzut_x", "whoami"], &[]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains(&format!(
            "not a Laissez server at {proxy}: HTTP 502 text/html"
        )),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("<html"), "{}", out.stderr);
}

#[test]
fn an_empty_laissez_token_is_an_error_not_the_admin() {
    let server = Server::start();
    let out = laissez(
        &server.url,
        &server.data,
        &["whoami"],
        &[("LAISSEZ_TOKEN", "")],
    );
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(out.stderr.contains("is empty"), "{}", out.stderr);
    assert!(!out.stderr.contains("header"), "{}", out.stderr);
    assert!(!out.stdout.contains("admin"), "{}", out.stdout);
}

#[test]
fn token_revoke_takes_the_secret_and_never_shows_it() {
    let server = Server::start();
    server.ok(&["service", "add", "ci", "--owner", "admin"]);
    let secret = server.ok(&["token", "create", "--principal", "ci"]).stdout;
    let secret = secret.trim();
    let revoked = server.ok(&["token", "revoke", secret]);
    assert!(
        revoked.stdout.starts_with("revoked tok_"),
        "{}",
        revoked.stdout
    );
    assert!(!revoked.stdout.contains(secret) && !revoked.stderr.contains(secret));
    let refused = laissez(
        &server.url,
        &server.data,
        &["whoami"],
        &[("LAISSEZ_TOKEN", secret)],
    );
    assert_eq!(refused.code, 1, "{}", refused.stdout);
    // A mistyped secret is refused without being repeated.
    let mut typo = secret.to_owned();
    typo.pop();
    typo.push(if secret.ends_with('a') { 'b' } else { 'a' });
    let out = server.cli(&["token", "revoke", &typo]);
    assert_eq!(out.code, 1);
    assert!(!out.stderr.contains(&typo), "{}", out.stderr);
    assert!(out.stderr.contains("token id"), "{}", out.stderr);
    // The admin revoked it (the secret was never presented as a credential),
    // and the audit log names the token by id, never by secret.
    let audit = server.ok(&["audit", "export"]).stdout;
    let revoke: Value = audit
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|r| r["action"] == "token.revoke")
        .expect("a token.revoke record");
    assert_eq!(revoke["chain"][0]["name"], "admin", "{revoke}");
    assert!(!audit.contains(secret));
}

#[test]
fn a_token_can_be_limited_to_named_permissions() {
    let server = Server::start();
    let secret = server
        .ok(&[
            "token",
            "create",
            "--principal",
            "admin",
            "--permission",
            "laissez.principals.read",
            "--permission",
            "laissez.audit.read",
        ])
        .stdout;
    let secret = secret.trim();
    let listed = server.ok(&["token", "list", "--principal", "admin"]).stdout;
    assert!(
        listed.contains("laissez.audit.read,laissez.principals.read"),
        "{listed}"
    );
    let env = [("LAISSEZ_TOKEN", secret)];
    let allowed = laissez(&server.url, &server.data, &["service", "list"], &env);
    assert_eq!(allowed.code, 0, "{}", allowed.stderr);
    let refused = laissez(
        &server.url,
        &server.data,
        &["service", "add", "x", "--owner", "admin"],
        &env,
    );
    assert_eq!(refused.code, 1, "{}", refused.stdout);
    assert!(
        refused.stderr.contains("laissez.principals.write"),
        "{}",
        refused.stderr
    );
    // A permission no role has is a clear one-line error.
    let typo = server.cli(&[
        "token",
        "create",
        "--principal",
        "admin",
        "--permission",
        "laissez.principals.raed",
    ]);
    assert_eq!(typo.code, 1);
    assert!(typo.stderr.contains("no role grants"), "{}", typo.stderr);
}

#[test]
fn errors_are_json_on_stderr_with_json() {
    let server = Server::start();
    let out = server.cli(&["--json", "token", "show", "tok_nope"]);
    assert_eq!(out.code, 1);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    let error: Value = serde_json::from_str(out.stderr.trim()).expect("JSON error");
    assert_eq!(error["error"]["status"], 404, "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("tok_nope")
    );
    let email = server.ok(&["user", "add", "alice"]);
    assert_eq!(email.code, 0);
    let email = server.ok(&["--json", "user", "email", "alice", "alice@acme.example"]);
    let answer: Value = serde_json::from_str(&email.stdout).expect("JSON answer");
    assert!(
        answer.to_string().contains("alice@acme.example"),
        "{answer}"
    );
}

#[test]
fn tables_fit_the_terminal_and_tokens_are_masked_as_scan_masks_them() {
    let server = Server::start();
    server.ok(&["service", "add", "deployer", "--owner", "admin"]);
    let secret = server
        .ok(&[
            "token",
            "create",
            "--principal",
            "deployer",
            "--description",
            "deploys",
        ])
        .stdout
        .trim()
        .to_owned();
    let list = laissez(
        &server.url,
        &server.data,
        &["token", "list"],
        &[("COLUMNS", "80")],
    );
    assert_eq!(list.code, 0, "{}", list.stderr);
    for line in list.stdout.lines() {
        assert!(
            line.chars().count() <= 80,
            "{} columns: {line}",
            line.chars().count()
        );
    }
    let folder = tempfile::tempdir().unwrap();
    std::fs::write(
        folder.path().join("deploy.env"),
        format!("TOKEN={secret}\n"),
    )
    .unwrap();
    let scan = Command::new(BIN)
        .args(["scan", "--format", "json", "--no-progress"])
        .arg(folder.path())
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&scan.stdout).unwrap();
    let mask = report["finds"][0]["secret_masked"]
        .as_str()
        .unwrap()
        .to_owned();
    let wide = laissez(
        &server.url,
        &server.data,
        &["token", "list"],
        &[("COLUMNS", "400")],
    );
    assert!(
        wide.stdout.contains(&mask),
        "{mask} not in\n{}",
        wide.stdout
    );
}

#[test]
fn serve_reset_admin_token_writes_a_new_audited_token() {
    let server = Server::start();
    let file = server.data.join("admin-token");
    let old = std::fs::read_to_string(&file).unwrap();
    let reset = Command::new(BIN)
        .args(["serve", "--reset-admin-token", "--data"])
        .arg(&server.data)
        .env_remove("LAISSEZ_DATA")
        .env("LAISSEZ_LOG", "warn")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&reset.stdout);
    assert!(
        reset.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&reset.stderr)
    );
    assert!(
        said.contains("wrote a new token for user 'admin'"),
        "{said}"
    );
    let new = std::fs::read_to_string(&file).unwrap();
    assert_ne!(old, new);
    assert!(!said.contains(new.trim()), "the token is only in the file");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // The running server takes the new token (read from the file) at once.
    let whoami = server.ok(&["whoami"]);
    assert!(whoami.stdout.contains("admin"), "{}", whoami.stdout);
    let audit = server.ok(&["audit", "export"]).stdout;
    assert!(audit.contains("--reset-admin-token"), "{audit}");
    // No data folder, no token.
    let empty = tempfile::tempdir().unwrap();
    let refused = Command::new(BIN)
        .args(["serve", "--reset-admin-token", "--data"])
        .arg(empty.path())
        .env_remove("LAISSEZ_DATA")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("holds no Laissez store"));
}

#[test]
fn oidc_issuers_are_checked_at_start() {
    let temp = tempfile::tempdir().unwrap();
    let serve = |issuer: &str| {
        Command::new(BIN)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--oidc-client-id",
                "laissez",
            ])
            .args(["--oidc-issuer", issuer, "--data"])
            .arg(temp.path().join("data"))
            .env_remove("LAISSEZ_DATA")
            .env("LAISSEZ_OIDC_CLIENT_SECRET", "a client secret")
            .env("LAISSEZ_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // Plain http to another host is refused before anything starts.
    let refused = serve("http://sso.acme.example").wait_with_output().unwrap();
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("must be https"), "{said}");
    // An unreachable provider is said at start; the server still serves.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let issuer = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let mut child = serve(&issuer);
    let stdout = child.stdout.take().unwrap();
    let started = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|line| line.starts_with("listening on "));
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    assert!(started, "the server starts while its provider is down");
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("the OpenID Connect provider cannot be used") && said.contains(&issuer),
        "{said}"
    );
}

#[test]
fn token_revoke_reads_the_secret_from_stdin() {
    let server = Server::start();
    server.ok(&["service", "add", "ci", "--owner", "admin"]);
    let secret = server.ok(&["token", "create", "--principal", "ci"]).stdout;
    let mut child = Command::new(BIN)
        .args(["--server", &server.url, "--data"])
        .arg(&server.data)
        .args(["token", "revoke", "-"])
        .env_remove("LAISSEZ_TOKEN")
        .env_remove("LAISSEZ_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(secret.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.starts_with("revoked tok_") && !said.contains(secret.trim()),
        "{said}"
    );
}
