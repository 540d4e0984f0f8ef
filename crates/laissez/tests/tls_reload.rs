//! `kill -HUP` makes `laissez serve` read its TLS certificate and key
//! again: the next handshake presents the new certificate, and a pair that
//! does not load is refused with the old one kept and the server running.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use laissez_testkit::free_port;
use laissez_testkit::pki::Authority;

const BIN: &str = env!("CARGO_BIN_EXE_laissez");

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The leaf certificate a new connection to `port` is shown, trusting `ca`.
async fn served(port: u16, ca: &Authority) -> Vec<u8> {
    let root = reqwest::Certificate::from_pem(ca.certificate.pem().as_bytes()).unwrap();
    let response = reqwest::Client::builder()
        .tls_info(true)
        .add_root_certificate(root)
        .resolve("localhost", ([127, 0, 0, 1], port).into())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
        .get(format!("https://localhost:{port}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .expect("the server's certificate")
        .to_vec()
}

fn hangup(child: &Child) {
    let status = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // The signal is handled on the server's runtime; give it a moment.
    std::thread::sleep(Duration::from_millis(500));
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_reloads_the_certificate_and_keeps_it_when_the_new_one_is_bad() {
    let temp = tempfile::tempdir().unwrap();
    let cert = temp.path().join("cert.pem");
    let key = temp.path().join("key.pem");
    let ca = Authority::new("reload CA");
    let first = ca.server();
    std::fs::write(&cert, &first.cert).unwrap();
    std::fs::write(&key, &first.key).unwrap();
    let port = free_port();
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data"])
        .arg(temp.path().join("data"))
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .env_remove("LAISSEZ_DATA")
        .env_remove("LAISSEZ_CONFIG")
        .env("LAISSEZ_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let server = Running(child);
    let mut lines = BufReader::new(stdout).lines();
    loop {
        let line = lines.next().expect("the server started").unwrap();
        if line.starts_with("listening on https://") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});

    let second = ca.server();
    assert_eq!(served(port, &ca).await, first.der);

    std::fs::write(&cert, &second.cert).unwrap();
    std::fs::write(&key, &second.key).unwrap();
    // Nothing changes before the signal.
    assert_eq!(served(port, &ca).await, first.der);
    hangup(&server.0);
    assert_eq!(served(port, &ca).await, second.der);

    // A key that does not match the certificate: the second pair stays,
    // and the server keeps serving.
    std::fs::write(&key, &first.key).unwrap();
    hangup(&server.0);
    assert_eq!(served(port, &ca).await, second.der);
}
