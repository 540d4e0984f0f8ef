//! Task credentials through the real binary: `laissez task run` asks for a
//! task bound to a fresh key, hands it to a command, waits for a person's
//! approval when one is needed, and completes the task however the command
//! ends; `laissez approvals` decides; a copied task token is useless.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use laissez_testkit::TestServer;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_laissez");

/// A server with the user alice and her agent bot, which may read
/// everything (`laissez-auditor` on `/`); their tokens.
struct Org {
    server: TestServer,
    alice: String,
    bot: String,
    out: tempfile::TempDir,
}

impl Org {
    fn new() -> Org {
        let server = TestServer::start();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let (alice, bot) = runtime.block_on(async {
            server.add_person("alice", "correct horse battery").await;
            let (status, agent) = server
                .post(
                    "/v1/principals",
                    json!({"kind": "agent", "name": "bot", "owner": "alice"}),
                )
                .await;
            assert!(status.is_success(), "{agent}");
            for principal in ["alice", "bot"] {
                let (status, policy) = server
                    .post(
                        "/v1/policies",
                        json!({"principal": principal, "role": "laissez-auditor", "scope": "/"}),
                    )
                    .await;
                assert!(status.is_success(), "{policy}");
            }
            let mut tokens = Vec::new();
            for principal in ["alice", "bot"] {
                let (status, issued) = server
                    .post("/v1/tokens", json!({"principal": principal}))
                    .await;
                assert!(status.is_success(), "{issued}");
                tokens.push(issued["token"].as_str().unwrap().to_owned());
            }
            (tokens[0].clone(), tokens[1].clone())
        });
        Org {
            server,
            alice,
            bot,
            out: tempfile::tempdir().unwrap(),
        }
    }

    /// The CLI against this server with `token`, and no task environment.
    fn command(&self, token: &str, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .args(["--server", &self.server.url])
            .args(args)
            .env("LAISSEZ_TOKEN", token)
            .env("LAISSEZ_OUT", self.out.path())
            .env("LAISSEZ_BIN", BIN)
            .env_remove("LAISSEZ_URL")
            .env_remove("LAISSEZ_DATA")
            .env_remove("LAISSEZ_DPOP_KEY")
            .env_remove("LAISSEZ_ACCESS_TOKENS")
            .env_remove("COLUMNS");
        command
    }

    fn run(&self, token: &str, args: &[&str]) -> Output {
        self.command(token, args).output().unwrap()
    }

    /// `task show ID --json` as the agent.
    fn task(&self, id: &str) -> Value {
        let out = self.run(&self.bot, &["task", "show", id, "--json"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// A file the command under test wrote to `$LAISSEZ_OUT`.
    fn written(&self, name: &str) -> String {
        std::fs::read_to_string(self.out.path().join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .trim()
            .to_owned()
    }

    /// The one approval waiting for alice, once it appears.
    fn waiting_approval(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = self.run(&self.alice, &["approvals", "list", "--json"]);
            assert!(out.status.success(), "{}", text(&out.stderr));
            let list: Value = serde_json::from_slice(&out.stdout).unwrap();
            if let Some(id) = list[0]["id"].as_str() {
                return id.to_owned();
            }
            assert!(Instant::now() < deadline, "no approval appeared");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// What the command run by `task run` records of its environment.
const RECORD: &str = r#"echo "$LAISSEZ_TASK_ID" > "$LAISSEZ_OUT/id"; echo "$LAISSEZ_TOKEN" > "$LAISSEZ_OUT/token"; echo "$LAISSEZ_DPOP_KEY" > "$LAISSEZ_OUT/key-path"; cp "$LAISSEZ_DPOP_KEY" "$LAISSEZ_OUT/key.pem""#;

/// What the command records of the modes of the key and its folder.
const MODES: &str = r#"stat -c %a "$(dirname "$LAISSEZ_DPOP_KEY")" > "$LAISSEZ_OUT/dir-mode"; stat -c %a "$LAISSEZ_DPOP_KEY" > "$LAISSEZ_OUT/key-mode""#;

#[test]
fn task_run_hands_the_command_a_bound_task_token_and_completes_the_task() {
    let org = Org::new();
    let script = format!(
        r#"{RECORD}; {MODES}; "$LAISSEZ_BIN" whoami --json > "$LAISSEZ_OUT/whoami.json" || exit 20; env -u LAISSEZ_DPOP_KEY "$LAISSEZ_BIN" whoami 2> "$LAISSEZ_OUT/bearer.err"; echo $? > "$LAISSEZ_OUT/bearer.code""#
    );
    let out = org.run(
        &org.bot,
        &[
            "task",
            "run",
            "--permission",
            "laissez.principals.read",
            "--resource",
            "/",
            "--",
            "sh",
            "-c",
            &script,
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let id = org.written("id");
    assert!(
        stderr.contains(&id) && stderr.contains("granted laissez.principals.read@/"),
        "{stderr}"
    );

    // The key was readable by its user only ...
    assert_eq!(org.written("dir-mode"), "700");
    assert_eq!(org.written("key-mode"), "600");
    // ... inside, `laissez whoami` was the task, proven with that key ...
    let token = org.written("token");
    assert!(token.starts_with("lztt_"), "{token}");
    let whoami: Value = serde_json::from_str(&org.written("whoami.json")).unwrap();
    assert_eq!(whoami["credential"]["id"], id.as_str(), "{whoami}");
    assert_eq!(whoami["principal"]["name"], "bot", "{whoami}");
    // ... whose grants it shows, narrower than the agent's policies ...
    assert_eq!(whoami["task"]["id"], id.as_str(), "{whoami}");
    assert_eq!(
        whoami["task"]["grants"],
        json!(["laissez.principals.read@/"]),
        "{whoami}"
    );
    assert_eq!(whoami["task"]["status"], "active", "{whoami}");
    // ... and the same token without its key (Bearer) was refused.
    assert_ne!(org.written("bearer.code"), "0");
    assert!(
        org.written("bearer.err").contains("DPoP"),
        "{}",
        org.written("bearer.err")
    );

    // Afterwards the task is completed and its key gone.
    assert_eq!(org.task(&id)["status"], "completed");
    let key_path = org.written("key-path");
    assert!(!Path::new(&key_path).exists(), "{key_path} is left");
    assert!(!Path::new(&key_path).parent().unwrap().exists());

    // The copied token is refused, with or without the copied key.
    let bearer = org.run(&token, &["whoami"]);
    assert!(!bearer.status.success());
    let key_copy = org.out.path().join("key.pem");
    let proven = org
        .command(&token, &["whoami"])
        .env("LAISSEZ_DPOP_KEY", &key_copy)
        .output()
        .unwrap();
    assert!(!proven.status.success(), "{}", text(&proven.stdout));
    assert!(text(&proven.stderr).starts_with("error: "));
}

#[test]
fn a_missing_key_file_is_one_clear_error() {
    let org = Org::new();
    let out = org
        .command(&org.bot, &["whoami"])
        .env("LAISSEZ_DPOP_KEY", org.out.path().join("nowhere.pem"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("LAISSEZ_DPOP_KEY"), "{stderr}");
}

#[test]
fn the_command_exit_code_is_passed_on_and_the_task_still_completes() {
    let org = Org::new();
    let out = org.run(
        &org.bot,
        &[
            "task",
            "run",
            "--permission",
            "laissez.principals.read",
            "--resource",
            "/",
            "--",
            "sh",
            "-c",
            &format!("{RECORD}; exit 3"),
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_eq!(org.task(&org.written("id"))["status"], "completed");
}

#[test]
fn sigterm_to_task_run_reaches_the_command_and_completes_the_task() {
    let org = Org::new();
    let child = org
        .command(
            &org.bot,
            &[
                "task",
                "run",
                "--permission",
                "laissez.principals.read",
                "--resource",
                "/",
                "--",
                "sh",
                "-c",
                &format!("{RECORD}; exec sleep 60"),
            ],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !org.out.path().join("key.pem").exists() {
        assert!(Instant::now() < deadline, "the command never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(128 + 15), "{}", text(&out.stderr));
    assert_eq!(org.task(&org.written("id"))["status"], "completed");
    assert!(!Path::new(&org.written("key-path")).exists());
}

/// `task run` of a task above the approval threshold (2 h > 1 h).
fn long_task(org: &Org, extra: &[&str]) -> Command {
    let mut args = vec![
        "task",
        "run",
        "--permission",
        "laissez.principals.read",
        "--resource",
        "/",
        "--ttl",
        "2h",
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--", "sh", "-c", r#"echo ran > "$LAISSEZ_OUT/ran""#]);
    org.command(&org.bot, &args)
}

#[test]
fn no_wait_fails_at_once_naming_the_approval() {
    let org = Org::new();
    let out = long_task(&org, &["--no-wait"]).output().unwrap();
    assert!(!out.status.success());
    let id = org.waiting_approval();
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("laissez approvals approve {id}")),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(!org.out.path().join("ran").exists());
}

#[test]
fn an_approval_from_another_process_lets_the_task_run() {
    let org = Org::new();
    let child = long_task(&org, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let id = org.waiting_approval();
    let approved = org.run(&org.alice, &["approvals", "approve", &id]);
    assert!(approved.status.success(), "{}", text(&approved.stderr));
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!("laissez approvals approve {id}")),
        "{stderr}"
    );
    assert_eq!(org.written("ran"), "ran");
    assert_eq!(org.task(&id)["status"], "completed");
}

#[test]
fn a_denied_task_fails_clearly_and_runs_nothing() {
    let org = Org::new();
    let child = long_task(&org, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let id = org.waiting_approval();
    let denied = org.run(&org.alice, &["approvals", "deny", &id, "--reason", "no"]);
    assert!(denied.status.success(), "{}", text(&denied.stderr));
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr
            .lines()
            .last()
            .is_some_and(|l| l.starts_with("error: ") && l.contains("denied")),
        "{stderr}"
    );
    assert!(!org.out.path().join("ran").exists());
}

#[test]
fn permissions_the_agent_lacks_are_dropped_with_the_reason() {
    let org = Org::new();
    let out = org.run(
        &org.bot,
        &[
            "task",
            "run",
            "--permission",
            "laissez.principals.read",
            "--permission",
            "laissez.policies.write",
            "--resource",
            "/",
            "--",
            "true",
        ],
    );
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("dropped laissez.policies.write@/ ("),
        "{stderr}"
    );

    let out = org.run(
        &org.bot,
        &[
            "task",
            "run",
            "--permission",
            "laissez.policies.write",
            "--resource",
            "/",
            "--",
            "sh",
            "-c",
            r#"echo ran > "$LAISSEZ_OUT/ran""#,
        ],
    );
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(!org.out.path().join("ran").exists());
}

/// One request as a test server saw it: its request line and headers.
struct Seen {
    line: String,
    headers: Vec<(String, String)>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A resource server on a free port that asks for its nonce on the first
/// request and answers `hello` to the next; returns its URL and what it saw.
fn nonce_server() -> (String, std::sync::mpsc::Receiver<Seen>) {
    use std::io::{BufRead, BufReader, Write};

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (seen_tx, seen_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let mut headers = Vec::new();
            loop {
                let mut header = String::new();
                reader.read_line(&mut header).unwrap();
                let Some((name, value)) = header.trim_end().split_once(':') else {
                    break;
                };
                headers.push((name.trim().to_owned(), value.trim().to_owned()));
            }
            let _ = seen_tx.send(Seen {
                line: line.trim_end().to_owned(),
                headers,
            });
            let answer = if n == 0 {
                "HTTP/1.1 401 Unauthorized\r\nwww-authenticate: Bearer realm=\"app\", DPoP error=\"use_dpop_nonce\"\r\ndpop-nonce: nonce-1\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            } else {
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello"
            };
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    (url, seen_rx)
}

#[test]
fn fetch_inside_a_task_presents_its_access_token_with_a_proof_and_the_nonce() {
    let (url, seen) = nonce_server();
    let dir = tempfile::tempdir().unwrap();
    let key = laissez_dpop::ProofKey::generate().unwrap();
    let key_path = dir.path().join("key.pem");
    std::fs::write(&key_path, key.to_pem()).unwrap();
    let tokens =
        json!({ format!("{url}/api"): "jwt-for-api", "https://elsewhere.example": "other" });
    let out = Command::new(BIN)
        .args(["fetch", &format!("{url}/api/notes?page=2")])
        .env("LAISSEZ_ACCESS_TOKENS", tokens.to_string())
        .env("LAISSEZ_DPOP_KEY", &key_path)
        .env("HOME", dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "hello");

    let first = seen.recv().unwrap();
    let second = seen.recv().unwrap();
    assert_eq!(second.line, "GET /api/notes?page=2 HTTP/1.1");
    for request in [&first, &second] {
        assert_eq!(request.header("authorization"), Some("DPoP jwt-for-api"));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let expected = laissez_dpop::Expected {
        method: "GET",
        url: &format!("{url}/api/notes"),
        access_token: Some("jwt-for-api"),
        nonce: Some("nonce-1"),
        now,
        max_age: 60,
        leeway: 5,
    };
    let proof = second.header("dpop").expect("a DPoP proof");
    let verified = laissez_dpop::verify_proof(proof, &expected).unwrap();
    assert_eq!(verified.jkt, key.thumbprint());
    // The first proof had no nonce yet: the server had to ask for it.
    let first_proof = first.header("dpop").expect("a DPoP proof");
    assert!(laissez_dpop::verify_proof(first_proof, &expected).is_err());
}
