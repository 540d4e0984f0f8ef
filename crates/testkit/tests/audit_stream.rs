//! Audit streaming to a webhook and to a real syslog collector (rsyslog,
//! from Debian's packages): every record arrives, in order, at least once,
//! signed (webhook) or as RFC 5424 messages rsyslog parses field by field;
//! a receiver that fails or goes away gets everything once it is back; a
//! restarted server resumes from its cursor instead of starting over; an
//! operator replays from a sequence number but can never skip records.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use laissez_server::audit_stream::StreamConfig;
use laissez_testkit::{TestServer, free_port};
use serde_json::{Value, json};

const SECRET: &str = "audit-stream-secret-0123456789";

/// The records a receiver got, by seq, with how often each came.
fn received(hook: &laissez_testkit::webhook::Receiver) -> BTreeMap<i64, (Value, usize)> {
    let mut records = BTreeMap::new();
    for batch in hook.bodies() {
        for record in batch["records"].as_array().cloned().unwrap_or_default() {
            let seq = record["seq"].as_i64().unwrap();
            records.entry(seq).or_insert((record, 0)).1 += 1;
        }
    }
    records
}

fn options(webhook: Option<&str>, syslog: Option<String>) -> laissez_server::run::Options {
    laissez_server::run::Options {
        audit_stream: StreamConfig {
            webhook: webhook.map(|url| (url.to_owned(), SECRET.to_owned())),
            syslog,
            hostname: String::new(),
        },
        ..Default::default()
    }
}

/// Waits until `done` holds, for at most 20 seconds.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn newest(server: &TestServer) -> i64 {
    let (status, streams) = server.get("/v1/audit/streams").await;
    assert_eq!(status, StatusCode::OK, "{streams}");
    streams[0]["newest"].as_i64().unwrap()
}

async fn add_people(server: &TestServer, names: &[&str]) {
    for name in names {
        let (status, body) = server
            .post("/v1/principals", json!({"kind": "user", "name": name}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
}

/// Every seq from 1 to `through` is there, and each links to the one before.
fn complete_chain(records: &BTreeMap<i64, (Value, usize)>, through: i64) -> bool {
    (1..=through).all(|seq| {
        records.get(&seq).is_some_and(|(record, _)| {
            seq == 1
                || records.get(&(seq - 1)).map(|(r, _)| &r["hash"]) == Some(&record["prev_hash"])
        })
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn the_webhook_gets_every_record_in_order_even_after_failures_and_restarts() {
    let hook = laissez_testkit::webhook::receiver(SECRET).await;
    hook.refuse.store(2, Ordering::SeqCst);
    let url = hook.url.clone();
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("data");
    let server = TestServer::start_with(&data, options(Some(&url), None));
    add_people(&server, &["ada", "bob", "cy"]).await;
    let through = newest(&server).await;
    eventually("every record, after two refused deliveries", || {
        complete_chain(&received(&hook), through)
    })
    .await;
    assert_eq!(hook.refused.load(Ordering::SeqCst), 2);
    let (_, streams) = server.get("/v1/audit/streams").await;
    assert_eq!(streams[0]["sink"], "webhook", "{streams}");
    assert!(streams[0]["delivered_through"].as_i64().unwrap() >= through);

    // A restarted server resumes from its cursor: nothing delivered is sent again.
    server.stop();
    let before: BTreeMap<i64, usize> = received(&hook)
        .iter()
        .map(|(seq, (_, n))| (*seq, *n))
        .collect();
    let server = TestServer::start_with(&data, options(Some(&url), None));
    add_people(&server, &["dee"]).await;
    let through = newest(&server).await;
    eventually("the records after the restart", || {
        complete_chain(&received(&hook), through)
    })
    .await;
    let after = received(&hook);
    for (seq, count) in &before {
        assert_eq!(after[seq].1, *count, "record {seq} was sent again");
    }

    // Replay from a sequence number: those records come again.
    let (status, body) = server
        .post("/v1/audit/streams/webhook/replay", json!({"after": 2}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["delivered_through"], 2);
    eventually("the replayed records", || {
        received(&hook).get(&3).is_some_and(|(_, n)| *n >= 2)
    })
    .await;
    eventually("the replay's own audit record", || {
        received(&hook)
            .values()
            .any(|(r, _)| r["action"] == "audit.stream.replay")
    })
    .await;

    // Never forward (that would hide records), never below 0, only real sinks.
    let cursor = {
        let (_, streams) = server.get("/v1/audit/streams").await;
        streams[0]["delivered_through"].as_i64().unwrap()
    };
    for (path, body, expected) in [
        (
            "/v1/audit/streams/webhook/replay",
            json!({"after": cursor + 1000}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/v1/audit/streams/webhook/replay",
            json!({"after": -1}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/v1/audit/streams/webhook/replay",
            json!({"after": "0"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/v1/audit/streams/syslog/replay",
            json!({"after": 0}),
            StatusCode::NOT_FOUND,
        ),
    ] {
        let (status, answer) = server.post(path, body.clone()).await;
        assert_eq!(status, expected, "{path} {body}: {answer}");
        assert!(answer["detail"].is_string(), "{answer}");
    }
    // An auditor reads the streams but may not move them.
    let (_, auditor) = server
        .post(
            "/v1/principals",
            json!({"kind": "service", "name": "siem", "owner": "admin"}),
        )
        .await;
    assert!(auditor["id"].is_string(), "{auditor}");
    let (status, policy) = server
        .post(
            "/v1/policies",
            json!({"principal": "siem", "role": "laissez-auditor", "scope": "/"}),
        )
        .await;
    assert!(status.is_success(), "{policy}");
    let (_, issued) = server
        .post("/v1/tokens", json!({"principal": "siem"}))
        .await;
    let token = issued["token"].as_str().unwrap();
    let (status, _) = server
        .call(reqwest::Method::GET, "/v1/audit/streams", token, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = server
        .call(
            reqwest::Method::POST,
            "/v1/audit/streams/webhook/replay",
            token,
            Some(&json!({"after": 0})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
}

/// rsyslog listening on TCP at `port`, writing each message's parsed
/// fields to `out`, one line each.
fn rsyslog(dir: &Path, port: u16, out: &Path) -> Child {
    laissez_testkit::debian::ensure("/usr/sbin/rsyslogd", &["rsyslog"]);
    let work = dir.join("work");
    std::fs::create_dir_all(&work).unwrap();
    let conf = dir.join("rsyslog.conf");
    std::fs::write(
        &conf,
        format!(
            r#"global(workDirectory="{work}" maxMessageSize="64k")
module(load="imtcp")
input(type="imtcp" port="{port}" address="127.0.0.1")
template(name="fields" type="string" string="%syslogfacility-text%|%syslogseverity-text%|%app-name%|%msgid%|%structured-data%|%msg%\n")
action(type="omfile" file="{out}" template="fields")
"#,
            work = work.display(),
            out = out.display()
        ),
    )
    .unwrap();
    let child = Command::new("/usr/sbin/rsyslogd")
        .arg("-n")
        .arg("-f")
        .arg(&conf)
        .arg("-i")
        .arg(dir.join("rsyslog.pid"))
        .spawn()
        .expect("rsyslogd starts");
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "rsyslogd does not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// The records rsyslog wrote: seq → the record's JSON, after checking each
/// line's parsed fields.
fn collected(out: &Path) -> BTreeMap<i64, (Value, usize)> {
    let text = std::fs::read_to_string(out).unwrap_or_default();
    let mut records = BTreeMap::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.splitn(6, '|').collect();
        assert_eq!(fields.len(), 6, "{line}");
        assert_eq!(fields[0], "authpriv", "{line}");
        assert!(matches!(fields[1], "info" | "notice"), "{line}");
        assert_eq!(fields[2], "laissez", "{line}");
        assert_eq!(fields[3], "audit", "{line}");
        assert!(fields[4].starts_with("[laissez@32473 seq=\""), "{line}");
        let json = fields[5].trim_start_matches(|c: char| c == '\u{feff}' || c.is_whitespace());
        let record: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {line}"));
        let seq = record["seq"].as_i64().unwrap();
        assert!(
            fields[4].contains(&format!("seq=\"{seq}\"")),
            "the structured data names the record: {line}"
        );
        records.entry(seq).or_insert((record, 0)).1 += 1;
    }
    records
}

#[tokio::test(flavor = "multi_thread")]
async fn rsyslog_receives_every_record_as_rfc5424_and_nothing_is_lost_while_it_is_down() {
    let temp = tempfile::tempdir().unwrap();
    let port = free_port();
    let out = temp.path().join("audit.log");
    let mut collector = rsyslog(temp.path(), port, &out);
    let server = TestServer::start_with(
        &temp.path().join("data"),
        options(None, Some(format!("127.0.0.1:{port}"))),
    );
    add_people(&server, &["ada", "bob"]).await;
    let through = newest(&server).await;
    eventually("rsyslog to write every record", || {
        complete_chain(&collected(&out), through)
    })
    .await;

    // The collector goes away; records written meanwhile arrive once it is back.
    collector.kill().unwrap();
    collector.wait().unwrap();
    add_people(&server, &["cy", "dee"]).await;
    let through = newest(&server).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let mut collector = rsyslog(temp.path(), port, &out);
    eventually("the records written while rsyslog was down", || {
        complete_chain(&collected(&out), through)
    })
    .await;
    collector.kill().unwrap();
    let _ = collector.wait();
}
