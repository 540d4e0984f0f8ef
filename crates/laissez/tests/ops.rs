//! Operating the binary: JSON logs with one access line per request and no
//! secret in them, and a gate whose readiness follows its issuer (503 while
//! the server is down, ready again once it is back).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use laissez_testkit::free_port;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_laissez");

/// A child process, killed and reaped when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `laissez ARGS` and waits for the stdout line starting with
/// `ready_line`; the process, and that line.
fn start(
    args: &[&str],
    env: &[(&str, &str)],
    stderr: Stdio,
    ready_line: &str,
) -> (Running, String) {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env_remove("LAISSEZ_DATA")
        .env_remove("LAISSEZ_URL")
        .env_remove("LAISSEZ_CONFIG")
        .env_remove("LAISSEZ_LOG_FORMAT")
        .env("LAISSEZ_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(stderr);
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("spawn laissez");
    let stdout = child.stdout.take().expect("piped stdout");
    let running = Running(child);
    let mut lines = BufReader::new(stdout).lines();
    loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("{args:?} printed no line starting {ready_line:?}"))
            .unwrap();
        if line.starts_with(ready_line) {
            // Keep draining stdout so the child never blocks on it.
            std::thread::spawn(move || for _ in lines {});
            return (running, line);
        }
    }
}

fn serve(
    data: &Path,
    listen: &str,
    extra: &[&str],
    stderr: Stdio,
    env: &[(&str, &str)],
) -> Running {
    let mut args = vec!["serve", "--listen", listen, "--data"];
    let data = data.to_str().unwrap();
    args.push(data);
    args.extend_from_slice(extra);
    start(&args, env, stderr, "listening on ").0
}

#[test]
fn json_logs_have_an_access_line_per_request_and_no_secret() {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("data");
    let log = temp.path().join("stderr.log");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let server = serve(
        &data,
        &listen,
        &["--log-format", "json"],
        Stdio::from(std::fs::File::create(&log).unwrap()),
        &[("LAISSEZ_LOG", "info")],
    );
    let admin = std::fs::read_to_string(data.join("admin-token"))
        .unwrap()
        .trim()
        .to_owned();
    let query_secret = "lzut_querysecretquerysecretquerysecretquer0AbCdE";
    let (code, body) = get(
        &listen,
        &format!("/v1/whoami?access_token={query_secret}"),
        &admin,
    );
    assert_eq!(code, 200, "{body}");
    let whoami: Value = serde_json::from_str(&body).unwrap();
    let (code, _) = get(&listen, "/v1/principals/admin", "lzut_not-a-token");
    assert_eq!(code, 401);
    // The access line is written once the response is; give it a moment.
    std::thread::sleep(Duration::from_millis(300));
    drop(server);

    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        !text.contains(&admin),
        "the admin token was logged:\n{text}"
    );
    assert!(
        !text.contains(query_secret),
        "a query value was logged:\n{text}"
    );
    assert!(!text.contains("\u{1b}["), "colour codes in a file:\n{text}");
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    let access: Vec<&Value> = lines
        .iter()
        .filter(|l| l["target"] == "laissez::access")
        .collect();
    let ok = access
        .iter()
        .find(|l| l["route"] == "/v1/whoami")
        .unwrap_or_else(|| panic!("no access line for /v1/whoami:\n{text}"));
    assert_eq!(ok["method"], "GET");
    assert_eq!(ok["status"], 200);
    assert!(
        ok["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0),
        "{ok}"
    );
    assert_eq!(ok["level"], "INFO");
    let me = whoami["principal"]["id"]
        .as_str()
        .or_else(|| whoami["id"].as_str())
        .unwrap_or_else(|| panic!("whoami names an id: {whoami}"));
    assert_eq!(ok["principal"], me, "{ok}");
    let refused = access
        .iter()
        .find(|l| l["route"] == "/v1/principals/{id}")
        .unwrap_or_else(|| panic!("no access line for the refusal:\n{text}"));
    assert_eq!(refused["status"], 401);
    assert!(refused.get("principal").is_none(), "{refused}");
}

/// `GET path` at `addr` with a bearer `token` (if not empty), over plain
/// HTTP/1.1: the status (0 when nothing answers) and the body.
fn get(addr: &str, path: &str, token: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
        return (0, String::new());
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let auth = if token.is_empty() {
        String::new()
    } else {
        format!("Authorization: Bearer {token}\r\n")
    };
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return (0, String::new());
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (code, body)
}

/// GET `url`'s status (`http://ADDR/PATH`), or 0 when nothing answers.
fn status(url: &str) -> u16 {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    let (addr, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    get(addr, path, "").0
}

/// Waits up to `within` for `url` to answer `wanted`.
fn wait_for(url: &str, wanted: u16, within: Duration) {
    let start = Instant::now();
    loop {
        let got = status(url);
        if got == wanted {
            return;
        }
        assert!(
            start.elapsed() < within,
            "{url} answered {got}, not {wanted}, for {within:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_gates_readiness_follows_its_issuer() {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("data");
    let listen = format!("127.0.0.1:{}", free_port());
    let server = serve(&data, &listen, &[], Stdio::null(), &[]);
    let admin = std::fs::read_to_string(data.join("admin-token"))
        .unwrap()
        .trim()
        .to_owned();
    let ops = format!("127.0.0.1:{}", free_port());
    let issuer = format!("http://{listen}");
    let gate_listen = format!("127.0.0.1:{}", free_port());
    let (_gate, line) = start(
        &[
            "gate",
            "--app",
            "notes",
            "--upstream",
            "http://127.0.0.1:9",
            "--listen",
            &gate_listen,
            "--issuer",
            &issuer,
            "--ops-listen",
            &ops,
            "--ready-max-feed-age",
            "3s",
        ],
        &[("LAISSEZ_GATE_TOKEN", &admin)],
        Stdio::null(),
        "gate listening on ",
    );
    assert!(line.contains(&gate_listen), "{line}");
    let readyz = format!("http://{ops}/readyz");
    wait_for(&readyz, 200, Duration::from_secs(5));
    // The app's paths stay the app's: the public listener has no /readyz of its own.
    assert_ne!(status(&format!("http://{gate_listen}/readyz")), 200);

    drop(server);
    wait_for(&readyz, 503, Duration::from_secs(10));
    assert_eq!(status(&format!("http://{ops}/healthz")), 200);

    let _server = serve(&data, &listen, &[], Stdio::null(), &[]);
    wait_for(&readyz, 200, Duration::from_secs(10));
}

#[test]
fn text_logs_off_a_terminal_have_no_colour_codes() {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("data");
    let log = temp.path().join("stderr.log");
    let listen = format!("127.0.0.1:{}", free_port());
    let server = serve(
        &data,
        &listen,
        &[],
        Stdio::from(std::fs::File::create(&log).unwrap()),
        &[("LAISSEZ_LOG", "info")],
    );
    let (code, _) = get(&listen, "/healthz", "");
    assert_eq!(code, 200);
    std::thread::sleep(Duration::from_millis(300));
    drop(server);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("laissez::access"), "{text}");
    assert!(
        text.contains("route=\"/healthz\"") || text.contains("route=/healthz"),
        "{text}"
    );
    assert!(!text.contains('\u{1b}'), "colour codes in a file:\n{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gates_json_access_log_names_the_principal_and_no_token() {
    let server = laissez_testkit::TestServer::start();
    let app =
        laissez_testkit::gate::serve_app(axum::Router::new().fallback(|| async { "from the app" }))
            .await;
    let temp = tempfile::tempdir().unwrap();
    let log = temp.path().join("gate.log");
    let listen = format!("127.0.0.1:{}", free_port());
    let resource = format!("http://{listen}");
    let (gate, _) = start(
        &[
            "gate",
            "--app",
            "notes",
            "--upstream",
            &app,
            "--listen",
            &listen,
            "--issuer",
            &server.url,
            "--scope",
            "notes.read",
            "--log-format",
            "json",
        ],
        &[
            ("LAISSEZ_GATE_TOKEN", &server.admin_token),
            ("LAISSEZ_LOG", "info"),
        ],
        Stdio::from(std::fs::File::create(&log).unwrap()),
        "gate listening on ",
    );
    let token =
        laissez_testkit::gate::client_credentials_token(&server.url, "notes.read", &resource).await;
    let query_secret = "querysecret-0123456789";
    let response = reqwest::Client::new()
        .get(format!("{resource}/notes/7?api_key={query_secret}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "from the app");
    let (whoami_status, _) = server
        .call(
            reqwest::Method::GET,
            "/v1/whoami",
            &server.admin_token,
            None,
        )
        .await;
    assert_eq!(whoami_status, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(gate);

    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        !text.contains(&token),
        "the access token was logged:\n{text}"
    );
    assert!(
        !text.contains(&server.admin_token),
        "the gate's credential was logged"
    );
    assert!(
        !text.contains(query_secret),
        "a query value was logged:\n{text}"
    );
    let access: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .filter(|l: &Value| l["target"] == "laissez::access")
        .collect();
    let line = access
        .iter()
        .find(|l| l["status"] == 200)
        .unwrap_or_else(|| panic!("no access line:\n{text}"));
    assert_eq!(line["method"], "GET");
    assert_eq!(line["route"], "/*", "{line}");
    assert!(
        line["principal"]
            .as_str()
            .is_some_and(|p| p.starts_with("svc_") || p.starts_with("usr_")),
        "{line}"
    );
    assert!(line["latency_ms"].is_number());
}
