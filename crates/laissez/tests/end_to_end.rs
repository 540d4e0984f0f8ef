//! The `laissez` binary end to end, as a new user drives it: `laissez serve`
//! as a child process, and the admin CLI against it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use laissez_testkit::free_port;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_laissez");

struct Server {
    child: Child,
    url: String,
    data: PathBuf,
    first_lines: Vec<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(data: &Path) -> Server {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .env_remove("LAISSEZ_DATA")
        .env("LAISSEZ_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn laissez serve");
    let stdout = child.stdout.take();
    // Owned by the guard from here on, so the child is killed and reaped
    // even if reading its address fails.
    let mut server = Server {
        child,
        url: String::new(),
        data: data.to_owned(),
        first_lines: Vec::new(),
    };
    let mut lines = BufReader::new(stdout.expect("piped stdout")).lines();
    loop {
        let line = lines.next().expect("server printed its address").unwrap();
        if let Some(url) = line.strip_prefix("listening on ") {
            server.url = url.to_owned();
            return server;
        }
        server.first_lines.push(line);
    }
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

fn cli(server: &Server, args: &[&str]) -> Out {
    run(&server.url, &server.data, args)
}

fn run(url: &str, data: &Path, args: &[&str]) -> Out {
    let out = Command::new(BIN)
        .args(["--server", url, "--data"])
        .arg(data)
        .args(args)
        .env_remove("LAISSEZ_URL")
        .env_remove("LAISSEZ_TOKEN")
        .env_remove("LAISSEZ_DATA")
        .output()
        .expect("run laissez");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn ok(server: &Server, args: &[&str]) -> Out {
    let out = cli(server, args);
    assert_eq!(out.code, 0, "{args:?}: {}{}", out.stdout, out.stderr);
    out
}

fn fails(server: &Server, args: &[&str], needle: &str) -> Out {
    let out = cli(server, args);
    assert_eq!(out.code, 1, "{args:?} should fail: {}", out.stdout);
    assert_eq!(
        out.stderr.lines().count(),
        1,
        "one-line error: {}",
        out.stderr
    );
    assert!(out.stderr.starts_with("error: "), "{}", out.stderr);
    assert!(
        out.stderr.contains(needle),
        "{args:?}: {} lacks {needle:?}",
        out.stderr
    );
    out
}

fn setup() -> (tempfile::TempDir, Server) {
    let temp = tempfile::tempdir().unwrap();
    let server = serve(&temp.path().join("data"));
    ok(&server, &["user", "add", "alice"]);
    ok(&server, &["agent", "add", "bot", "--owner", "alice"]);
    (temp, server)
}

#[test]
fn first_start_bootstraps_once_and_the_cli_finds_the_token() {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("data");
    let server = serve(&data);
    let token_file = data.join("admin-token");
    let token = std::fs::read_to_string(&token_file).unwrap();
    assert_eq!(
        server.first_lines.len(),
        1,
        "one line on first start: {:?}",
        server.first_lines
    );
    assert!(server.first_lines[0].contains("admin-token"));
    assert!(
        !server.first_lines[0].contains(token.trim()),
        "the token is never printed"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let check = ok(&server, &["token", "check", token.trim()]);
    assert!(check.stdout.contains("lzut_"), "{}", check.stdout);
    let me = ok(&server, &["whoami", "--json"]).json();
    assert_eq!(me["principal"]["name"], "admin");
    drop(server);
    let again = serve(&data);
    assert!(
        again.first_lines.is_empty(),
        "nothing recreated: {:?}",
        again.first_lines
    );
    assert_eq!(std::fs::read_to_string(&token_file).unwrap(), token);
    ok(&again, &["whoami"]);
}

#[test]
fn principals_need_owners_and_list_as_tables_or_json() {
    let (_temp, server) = setup();
    fails(&server, &["service", "add", "ci"], "owner");
    ok(&server, &["service", "add", "ci", "--owner", "alice"]);
    let users = ok(&server, &["user", "list"]);
    assert!(users.stdout.contains("alice") && users.stdout.contains("admin"));
    let alice = ok(&server, &["user", "list", "--json"]).json();
    let alice_id = alice
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "alice")
        .unwrap()["id"]
        .clone();
    let agents = ok(&server, &["agent", "list", "--json"]).json();
    assert_eq!(agents.as_array().unwrap().len(), 1);
    assert_eq!(agents[0]["name"], "bot");
    assert_eq!(agents[0]["owner_id"], alice_id);
    let table = ok(&server, &["service", "list"]);
    assert!(
        table.stdout.contains("ci") && table.stdout.contains("alice"),
        "owner shown by name"
    );
}

#[test]
fn token_lifecycle_from_the_command_line() {
    let (_temp, server) = setup();
    let created = ok(
        &server,
        &["token", "create", "--principal", "bot", "--ttl", "30m"],
    );
    let lines: Vec<&str> = created.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "stdout is the token alone");
    let token = lines[0].to_owned();
    assert!(token.starts_with("lzat_"));
    assert!(created.stderr.contains("only time"));
    let check = ok(&server, &["token", "check", &token]);
    assert!(check.stdout.contains("account API token"));
    let me = ok(&server, &["whoami", "--token", &token]);
    assert!(
        me.stdout.contains("agent:bot") && me.stdout.contains("user:alice → agent:bot"),
        "{}",
        me.stdout
    );
    let listed = ok(&server, &["token", "list", "--json"]);
    assert!(
        !listed.stdout.contains(&token[5..45]),
        "token list never shows secrets"
    );
    let id = listed
        .json()
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["principal"]["name"] == "bot")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let other = ok(&server, &["token", "create", "--principal", "bot"])
        .stdout
        .trim()
        .to_owned();
    let other_id = ok(&server, &["whoami", "--token", &other, "--json"]).json()["credential"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let rolled = ok(&server, &["token", "roll", &other_id])
        .stdout
        .trim()
        .to_owned();
    fails(&server, &["whoami", "--token", &other], "not known");
    ok(&server, &["whoami", "--token", &rolled]);

    ok(&server, &["token", "revoke", &id]);
    fails(&server, &["whoami", "--token", &token], "revoked");

    // One changed character fails the offline checksum.
    let mut altered = token.clone().into_bytes();
    altered[20] = if altered[20] == b'A' { b'B' } else { b'A' };
    fails(
        &server,
        &["token", "check", std::str::from_utf8(&altered).unwrap()],
        "checksum",
    );
}

#[test]
fn roles_policies_and_check_explain_themselves() {
    let (_temp, server) = setup();
    ok(
        &server,
        &[
            "role",
            "add",
            "wiki-reader",
            "--permission",
            "wiki.pages.read",
        ],
    );
    ok(
        &server,
        &[
            "policy",
            "add",
            "--principal",
            "alice",
            "--role",
            "wiki-reader",
            "--scope",
            "acme/apps/wiki",
        ],
    );
    ok(
        &server,
        &[
            "policy",
            "add",
            "--principal",
            "bot",
            "--role",
            "wiki-reader",
            "--scope",
            "acme",
        ],
    );
    let policies = ok(&server, &["policy", "list", "--json"]).json();
    let ids: Vec<String> = policies
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["role"] == "wiki-reader")
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 2);
    let args = [
        "check",
        "--principal",
        "bot",
        "--permission",
        "wiki.pages.read",
        "--resource",
    ];
    let allowed = ok(&server, &[&args[..], &["acme/apps/wiki/pages/42"]].concat());
    assert!(allowed.stdout.starts_with("allow"));
    for id in &ids {
        assert!(
            allowed.stdout.contains(id.as_str()),
            "{} names {id}",
            allowed.stdout
        );
    }
    let denied = cli(&server, &[&args[..], &["acme/apps/blog"]].concat());
    assert_eq!(denied.code, 1);
    assert!(
        denied.stdout.starts_with("deny") && denied.stdout.contains("alice"),
        "{}",
        denied.stdout
    );
}

#[test]
fn audit_verifies_and_exports_json_lines_without_secrets() {
    let (_temp, server) = setup();
    let token = ok(&server, &["token", "create", "--principal", "alice"])
        .stdout
        .trim()
        .to_owned();
    ok(&server, &["whoami", "--token", &token]);
    let verify = ok(&server, &["audit", "verify"]);
    assert!(verify.stdout.contains("intact"));
    let export = ok(&server, &["audit", "export"]);
    let records: Vec<Value> = export
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(records.len() >= 4);
    for (i, record) in records.iter().enumerate() {
        assert_eq!(record["seq"], i as i64 + 1);
    }
    assert!(!export.stdout.contains(&token[5..45]));
    let list = ok(&server, &["audit", "list"]);
    assert!(list.stdout.contains("token.create"));
}

#[test]
fn bad_input_is_one_clear_line_and_changes_nothing() {
    let (_temp, server) = setup();
    let count = || {
        ok(&server, &["token", "list", "--json"])
            .json()
            .as_array()
            .unwrap()
            .len()
    };
    let before = count();
    fails(
        &server,
        &["token", "create", "--principal", "alice", "--ttl", "-5m"],
        "positive",
    );
    fails(
        &server,
        &["token", "create", "--principal", "alice", "--ttl", "10y"],
        "maximum",
    );
    fails(
        &server,
        &["token", "create", "--principal", "alice", "--scope", "a//b"],
        "scope",
    );
    fails(
        &server,
        &["token", "create", "--principal", "ghost"],
        "unknown principal",
    );
    assert_eq!(count(), before);
    let unreachable = run("http://127.0.0.1:1", &server.data, &["whoami"]);
    assert_eq!(unreachable.code, 1);
    assert_eq!(unreachable.stderr.lines().count(), 1);
    assert!(
        unreachable.stderr.contains("cannot reach"),
        "{}",
        unreachable.stderr
    );
    fails(
        &server,
        &["--token", "garbage", "whoami"],
        "not a valid Laissez token",
    );
    fails(
        &server,
        &["token", "check", "garbage"],
        "not a valid Laissez token",
    );
}

#[test]
fn deactivating_the_owner_suspends_the_agent() {
    let (_temp, server) = setup();
    let token = ok(&server, &["token", "create", "--principal", "bot"])
        .stdout
        .trim()
        .to_owned();
    ok(&server, &["whoami", "--token", &token]);
    ok(&server, &["user", "deactivate", "alice"]);
    fails(&server, &["whoami", "--token", &token], "inactive");
    let findings = ok(&server, &["hygiene", "--json"]).json();
    assert!(
        findings
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["finding"] == "owner_inactive" && f["principal"]["name"] == "bot"),
        "{findings}"
    );
}

#[test]
fn applications_are_registered_and_listed() {
    let (_temp, server) = setup();
    // A client acting alone acts as a service; without one it is refused.
    let refused = cli(
        &server,
        &[
            "app",
            "register",
            "--name",
            "billing-sync",
            "--grant",
            "client_credentials",
        ],
    );
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    ok(
        &server,
        &["service", "add", "billing-svc", "--owner", "admin"],
    );
    let out = ok(
        &server,
        &[
            "app",
            "register",
            "--name",
            "billing-sync",
            "--grant",
            "client_credentials",
            "--scope",
            "billing.read",
            "--principal",
            "billing-svc",
        ],
    );
    let client_id = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("client_id "))
        .unwrap()
        .to_owned();
    let secret = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("client_secret "))
        .unwrap()
        .to_owned();
    assert!(secret.starts_with("lzcs_"));
    assert!(out.stderr.contains("only time"));
    ok(&server, &["token", "check", &secret]);
    let listed = ok(&server, &["app", "list", "--json"]).json();
    assert_eq!(listed[0]["client_id"], client_id.as_str());
    assert!(!listed.to_string().contains(&secret[5..45]));
    let public = ok(
        &server,
        &[
            "app",
            "register",
            "--name",
            "cli-agent",
            "--public",
            "--redirect-uri",
            "http://127.0.0.1/cb",
        ],
    );
    assert!(!public.stdout.contains("client_secret"));
    fails(
        &server,
        &[
            "app",
            "register",
            "--name",
            "bad",
            "--redirect-uri",
            "http://evil.example/cb",
        ],
        "redirect",
    );
}

#[test]
fn a_client_registered_with_a_key_gets_no_secret() {
    let (temp, server) = setup();
    ok(
        &server,
        &["service", "add", "keyed-svc", "--owner", "admin"],
    );
    let key = laissez_dpop::ProofKey::generate().unwrap();
    let jwk = temp.path().join("key.jwk");
    std::fs::write(&jwk, key.public_jwk().to_string()).unwrap();
    let args = |file: &str| -> Vec<String> {
        [
            "app",
            "register",
            "--name",
            "keyed",
            "--grant",
            "client_credentials",
            "--scope",
            "x.read",
            "--principal",
            "keyed-svc",
            "--jwks",
            file,
        ]
        .map(str::to_owned)
        .to_vec()
    };
    let file = jwk.to_str().unwrap();
    let argv = args(file);
    let out = ok(
        &server,
        &argv.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert!(out.stdout.starts_with("client_id cli_"), "{}", out.stdout);
    assert!(!out.stdout.contains("client_secret"), "{}", out.stdout);
    let listed = ok(&server, &["app", "list", "--json"]).json();
    assert!(listed.to_string().contains("private_key_jwt"), "{listed}");
    // A missing file and a private key: one line each, nothing registered.
    let argv = args("/nonexistent/key.jwk");
    fails(
        &server,
        &argv.iter().map(String::as_str).collect::<Vec<_>>(),
        "cannot read --jwks",
    );
    let mut private = key.public_jwk();
    private["d"] = serde_json::json!("AAAA");
    std::fs::write(&jwk, private.to_string()).unwrap();
    let argv = args(file);
    fails(
        &server,
        &argv.iter().map(String::as_str).collect::<Vec<_>>(),
        "private key material",
    );
    assert_eq!(
        ok(&server, &["app", "list", "--json"])
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// A plain HTTP/1.1 exchange over loopback; returns the whole response.
fn http(addr: &str, request: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn apps_configured_by_name_are_gated_by_serve_itself_and_by_laissez_gate() {
    let (temp, server) = setup();
    // The app: answers "hello" to anything.
    let app = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let app_addr = app.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for mut stream in app.incoming().map_while(Result::ok) {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
            );
        }
    });
    let gate_addr = format!("127.0.0.1:{}", free_port());
    let resource = format!("http://{gate_addr}");
    let upstream = format!("http://{app_addr}");
    let add = |extra: &[&str]| {
        let mut args = vec![
            "resource",
            "add",
            &resource,
            "--name",
            "notes",
            "--scope",
            "notes.read=Read your notes",
            "--require-scope",
            "notes.read",
        ];
        args.extend_from_slice(extra);
        cli(&server, &args)
    };
    let bad = add(&["--upstream", "ftp://files.example"]);
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("gate.upstream"), "{}", bad.stderr);
    let bad = add(&["--upstream", &upstream, "--listen", "everywhere"]);
    assert!(bad.stderr.contains("gate.listen"), "{}", bad.stderr);
    let listed = ok(&server, &["resource", "list", "--json"]).json();
    assert_eq!(listed, serde_json::json!([]), "bad input changed nothing");
    let out = add(&["--upstream", &upstream, "--listen", &gate_addr]);
    assert_eq!(out.code, 0, "{}", out.stderr);

    // After a restart, serve runs the gate itself.
    let data = server.data.clone();
    drop(server);
    let server = serve(&data);
    let refused = http(
        &gate_addr,
        &format!("GET /notes HTTP/1.1\r\nHost: {gate_addr}\r\nConnection: close\r\n\r\n"),
    );
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    assert!(
        refused.contains("resource_metadata=") && refused.contains("scope=\"notes.read\""),
        "{refused}"
    );

    // A client acting alone, as a service whose policies (and its owner's)
    // grant notes.read.
    ok(
        &server,
        &["service", "add", "notes-sync-svc", "--owner", "admin"],
    );
    ok(
        &server,
        &["role", "add", "notes-reader", "--permission", "notes.read"],
    );
    for principal in ["notes-sync-svc", "admin"] {
        ok(
            &server,
            &[
                "policy",
                "add",
                "--principal",
                principal,
                "--role",
                "notes-reader",
                "--scope",
                "/",
            ],
        );
    }
    let out = ok(
        &server,
        &[
            "app",
            "register",
            "--name",
            "notes-sync",
            "--grant",
            "client_credentials",
            "--scope",
            "notes.read",
            "--principal",
            "notes-sync-svc",
        ],
    );
    let field = |name: &str| {
        out.stdout
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap()
            .to_owned()
    };
    let (id, secret) = (field("client_id "), field("client_secret "));
    let form = format!(
        "grant_type=client_credentials&scope=notes.read&resource={resource}&client_id={id}&client_secret={secret}"
    );
    let server_addr = server.url.trim_start_matches("http://").to_owned();
    let token_response = http(
        &server_addr,
        &format!(
            "POST /oauth/token HTTP/1.1\r\nHost: {server_addr}\r\nConnection: close\r\n\
Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        ),
    );
    let body = token_response.split("\r\n\r\n").nth(1).unwrap();
    let tokens: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("{token_response}"));
    let access = tokens["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{token_response}"));
    let allowed = http(
        &gate_addr,
        &format!(
            "GET /notes HTTP/1.1\r\nHost: {gate_addr}\r\nAuthorization: Bearer {access}\r\nConnection: close\r\n\r\n"
        ),
    );
    assert!(allowed.starts_with("HTTP/1.1 200"), "{allowed}");
    assert!(allowed.ends_with("hello"));
    // The embedded gate's decisions reach the audit log.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let audit = ok(&server, &["audit", "export"]).stdout;
        if audit.contains("gate.allow") && audit.contains("serve-gates") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no gate decision in the audit log: {audit}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    // `laissez gate --app notes` needs nothing but the app's name and a gate token.
    ok(&server, &["service", "add", "gw", "--owner", "admin"]);
    ok(
        &server,
        &[
            "policy",
            "add",
            "--principal",
            "gw",
            "--role",
            "laissez-gate",
            "--scope",
            "/",
        ],
    );
    let gate_token = ok(&server, &["token", "create", "--principal", "gw"])
        .stdout
        .trim()
        .to_owned();
    let no_token = Command::new(BIN)
        .args(["gate", "--app", "notes", "--issuer", &server.url])
        .env_remove("LAISSEZ_GATE_TOKEN")
        .output()
        .unwrap();
    assert_eq!(no_token.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&no_token.stderr).contains("--audit-token"));
    let second = format!("127.0.0.1:{}", free_port());
    let mut gate = Command::new(BIN)
        .args(["gate", "--app", "notes", "--issuer", &server.url])
        .args(["--audit-token", &gate_token, "--listen", &second])
        .env("LAISSEZ_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let line = BufReader::new(gate.stdout.take().unwrap())
        .lines()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(line, format!("gate listening on http://{second}"));
    let through_second = http(
        &second,
        &format!(
            "GET /notes HTTP/1.1\r\nHost: {second}\r\nAuthorization: Bearer {access}\r\nConnection: close\r\n\r\n"
        ),
    );
    let _ = gate.kill();
    let _ = gate.wait();
    assert!(
        through_second.starts_with("HTTP/1.1 200"),
        "the stored resource is the audience: {through_second}"
    );
    drop(temp);
}

/// The permission bits of `path`.
#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_backup_taken_while_serving_restores_into_a_deployment_that_knows_its_tokens() {
    let (temp, server) = setup();
    let token = ok(&server, &["token", "create", "--principal", "bot"])
        .stdout
        .trim()
        .to_owned();
    // Writes go on while the backup runs; it copies the database as of one
    // commit, so whatever it holds verifies.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (url, data, stop) = (server.url.clone(), server.data.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let out = run(&url, &data, &["user", "add", &format!("busy{n}")]);
                assert_eq!(out.code, 0, "{}", out.stderr);
                n += 1;
            }
            n
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(300));
    let out = temp.path().join("backup");
    let backup = Command::new(BIN)
        .args(["backup"])
        .arg(&server.data)
        .arg(&out)
        .output()
        .unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let written = writer.join().unwrap();
    assert!(written > 0, "writes ran during the backup");
    let said = String::from_utf8_lossy(&backup.stdout);
    assert!(
        backup.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&backup.stderr)
    );
    assert!(said.contains("chain intact"), "{said}");
    #[cfg(unix)]
    {
        assert_eq!(mode(&out), 0o700);
        for name in ["laissez.db", "signing-keys.json", "admin-token"] {
            assert_eq!(mode(&out.join(name)), 0o600, "{name}");
        }
    }
    drop(server);

    let data = temp.path().join("restored");
    let restore = Command::new(BIN)
        .args(["restore", "--json"])
        .arg(&out)
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        restore.status.success(),
        "{}",
        String::from_utf8_lossy(&restore.stderr)
    );
    let restored: Value = serde_json::from_slice(&restore.stdout).unwrap();
    assert_eq!(restored["chain"], "intact");
    assert!(
        restored["audit_records"].as_i64().unwrap() >= 4,
        "{restored}"
    );
    let again = serve(&data);
    // The token issued before the backup, the admin token and the audit
    // chain all came along; so did what was written before the copy.
    let me = ok(&again, &["whoami", "--token", &token]);
    assert!(me.stdout.contains("agent:bot"), "{}", me.stdout);
    assert!(ok(&again, &["audit", "verify"]).stdout.contains("intact"));
    let users = ok(&again, &["user", "list", "--json"]).json();
    let names: Vec<&str> = users
        .as_array()
        .unwrap_or_else(|| panic!("{users}"))
        .iter()
        .filter_map(|u| u["name"].as_str())
        .collect();
    assert!(names.contains(&"alice"), "{names:?}");
    // One commit's state: the users written before it, in order, none after.
    let busy = names.iter().filter(|n| n.starts_with("busy")).count();
    for n in 0..busy {
        assert!(
            names.contains(&format!("busy{n}").as_str()),
            "busy{n} in {names:?}"
        );
    }
}

#[test]
fn backup_and_restore_never_write_into_a_folder_that_holds_anything() {
    let (temp, server) = setup();
    let laissez = |args: &[&std::ffi::OsStr]| {
        let out = Command::new(BIN).args(args).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let taken = temp.path().join("taken");
    std::fs::create_dir(&taken).unwrap();
    std::fs::write(taken.join("keep.txt"), "mine").unwrap();
    let (code, stderr) = laissez(&[
        "backup".as_ref(),
        server.data.as_os_str(),
        taken.as_os_str(),
    ]);
    assert_eq!(code, 1);
    assert!(
        stderr.starts_with("error: ") && stderr.contains("is not empty"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_dir(&taken).unwrap().count(), 1);
    // Restoring over the live deployment is refused and changes nothing.
    let out = temp.path().join("backup");
    let (code, stderr) = laissez(&["backup".as_ref(), server.data.as_os_str(), out.as_os_str()]);
    assert_eq!(code, 0, "{stderr}");
    let (code, stderr) = laissez(&["restore".as_ref(), out.as_os_str(), server.data.as_os_str()]);
    assert_eq!(code, 1);
    assert!(stderr.contains("is not empty"), "{stderr}");
    ok(&server, &["audit", "verify"]);
    // A folder without a database is named as such.
    let empty = temp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let (code, stderr) = laissez(&[
        "restore".as_ref(),
        empty.as_os_str(),
        temp.path().join("x").as_os_str(),
    ]);
    assert_eq!(code, 1);
    assert!(stderr.contains("holds no Laissez database"), "{stderr}");
    assert!(!temp.path().join("x").exists());
    // A backup whose audit chain was tampered with is not restored, and
    // nothing is left behind.
    let db = rusqlite::Connection::open(out.join("laissez.db")).unwrap();
    db.execute("UPDATE audit_log SET action = 'edited' WHERE seq = 2", [])
        .unwrap();
    drop(db);
    let target = temp.path().join("from-tampered");
    let (code, stderr) = laissez(&["restore".as_ref(), out.as_os_str(), target.as_os_str()]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("audit chain") && stderr.contains("record 2"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(!target.exists(), "the half-made folder is removed");
}
