//! `--tls-*` flags of `laissez serve` and `laissez gate`, and the audit
//! stream flags of `serve`: a wrong file, value or a missing companion flag
//! is one line on stderr and a non-zero exit, before anything listens (nor
//! is the data folder created).

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_laissez");

/// A self-signed certificate and its key, PEM.
fn certificate() -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
}

/// Runs `laissez` with `args`; its stderr, after checking it failed.
fn fails(args: &[&str], data: &Path) -> String {
    let out = Command::new(BIN)
        .args(args)
        .env("LAISSEZ_DATA", data)
        .env("LAISSEZ_LOG", "warn")
        .env_remove("LAISSEZ_URL")
        .output()
        .expect("run laissez");
    assert!(!out.status.success(), "{args:?} should fail");
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    assert_eq!(
        stderr.lines().count(),
        1,
        "one line for {args:?}: {stderr:?}"
    );
    assert!(
        !data.exists(),
        "{args:?} started before checking its TLS files"
    );
    stderr
}

#[test]
fn bad_audit_stream_flags_are_one_line_and_stop_the_start() {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("data");
    let short = temp.path().join("short-secret");
    std::fs::write(&short, "short\n").unwrap();
    let short = short.display().to_string();
    for (flags, expected) in [
        (
            vec!["--audit-syslog", "udp://127.0.0.1:514"],
            "tcp://host:port",
        ),
        (vec!["--audit-syslog", "tcp://127.0.0.1"], "tcp://host:port"),
        (
            vec!["--audit-webhook", "https://siem.example/in"],
            "--audit-webhook needs a signing secret",
        ),
        (
            vec![
                "--audit-webhook",
                "https://siem.example/in",
                "--audit-webhook-secret-file",
                &short,
            ],
            "at least 16 characters",
        ),
    ] {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(&flags);
        let stderr = fails(&args, &data);
        assert!(stderr.contains(expected), "{flags:?}: {stderr}");
    }
}

#[test]
fn bad_tls_flags_are_one_line_and_stop_the_start() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let (cert, key) = certificate();
    let (_, other_key) = certificate();
    let cert = write("cert.pem", &cert);
    let key = write("key.pem", &key);
    let other_key = write("other-key.pem", &other_key);
    let empty = write("empty.pem", "no certificate here\n");
    let missing = dir.join("missing.pem").display().to_string();
    let data = dir.join("data");

    let serve = |flags: &[&str]| {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(flags);
        fails(&args, &data)
    };
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--tls-cert", &missing, "--tls-key", &key],
            "missing.pem",
        ),
        (
            vec!["--tls-cert", &cert, "--tls-key", &missing],
            "missing.pem",
        ),
        (
            vec!["--tls-cert", &cert, "--tls-key", &other_key],
            "does not match",
        ),
        (
            vec!["--tls-cert", &empty, "--tls-key", &key],
            "no PEM certificate",
        ),
        (
            vec![
                "--tls-cert",
                &cert,
                "--tls-key",
                &key,
                "--tls-client-ca",
                &empty,
            ],
            "TLS client CA",
        ),
        (vec!["--tls-cert", &cert], "--tls-key"),
        (vec!["--tls-client-ca", &cert], "--tls-cert"),
    ];
    for (flags, wanted) in cases {
        let stderr = serve(&flags);
        assert!(
            stderr.contains(wanted),
            "{flags:?}: {stderr:?} should say {wanted:?}"
        );
    }

    // A gate in front of nothing, with `extra` flags: it must refuse to start.
    let gate_fails = |extra: &[&str]| {
        let mut args = vec![
            "gate",
            "--app",
            "notes",
            "--upstream",
            "http://127.0.0.1:9",
            "--listen",
            "127.0.0.1:0",
        ];
        args.extend_from_slice(extra);
        fails(&args, &data)
    };
    let gate = gate_fails(&["--tls-cert", &cert, "--tls-key", &other_key]);
    assert!(gate.contains("does not match"), "{gate:?}");
    for (ca, expected) in [(&missing, "--issuer-ca"), (&empty, "no certificate")] {
        let gate = gate_fails(&["--issuer-ca", ca]);
        assert!(gate.contains(expected), "{gate:?}");
    }
}
