//! `laissez-bench`: the benchmark table in one run. In-process figures first,
//! then load runs over loopback against a real server on a temporary data
//! folder: authenticated no-op call (whoami) against an unauthenticated
//! round trip, token issuance, and verification latency with 1,000 and then
//! 1,000,000 stored tokens; the gate's overhead, with and without DLP; the
//! time from a leak report to the gate refusing the leaked grant.
//!
//! Run with `cargo run --release -p laissez-bench` (`-- --quick` for a short run,
//! `-- --tasks-only` for the task-credential rows alone, `-- --leaks-only`
//! for the leak rows alone, `-- --store-only` for the store bytes per issued
//! API token). The comparisons with other tools (nginx, oidc-provider, the
//! secret scanners) are `bench/run`'s, which runs this too.

mod gate;
mod inproc;
mod leaks;
mod load;
mod stats;
mod store;
mod tasks;

use std::sync::Arc;
use std::time::Instant;

use hyper::{Method, StatusCode};
use laissez_core::audit::AuditEvent;
use laissez_core::credential::{Credential, hash_secret};
use laissez_core::{Restriction, Scope};
use laissez_store::Store;
use laissez_testkit::TestServer;
use laissez_token::{Kind, Namespace, Token};
use serde_json::json;

use load::Call;
use stats::{Samples, ms, rate};

fn row(name: &str, samples: &Samples) {
    println!(
        "| {name} | {} | {} | {} | {} |",
        ms(samples.percentile(50.0)),
        ms(samples.percentile(99.0)),
        rate(samples.per_second()),
        samples.len()
    );
}

/// Stores `n` more credentials for `principal` straight through the store
/// (the same path the API uses, with one audit record each).
async fn fill(store: &laissez_store::SqliteStore, principal: &str, n: usize) {
    let ns = Namespace::default();
    let chunk = 512;
    let mut done = 0;
    while done < n {
        let mut tasks = Vec::with_capacity(chunk);
        for _ in 0..chunk.min(n - done) {
            let store = store.clone();
            let token = Token::generate(&ns, Kind::Account).expect("token");
            let credential = Credential {
                id: laissez_server::new_id("tok").expect("id"),
                kind: "at".into(),
                prefix: token.prefix().into(),
                last4: token.last4().into(),
                principal_id: principal.into(),
                restriction: Restriction {
                    role: None,
                    scope: None,
                    permissions: None,
                },
                allowed_ips: Vec::new(),
                description: String::new(),
                created_at: 0,
                expires_at: Some(i64::MAX / 2),
                last_used_at: None,
                revoked_at: None,
            };
            let event = AuditEvent::success(&[], "token.create", credential.id.clone());
            let hash = hash_secret(token.expose());
            tasks.push(tokio::spawn(async move {
                store.create_credential(credential, hash, event).await
            }));
        }
        for task in tasks {
            task.await.expect("task").expect("insert");
        }
        done += chunk.min(n - done);
    }
}

/// `GET /v1/whoami` with `token`: one authenticated call.
fn whoami_call(token: &str) -> Call {
    Call {
        method: Method::GET,
        path: "/v1/whoami".into(),
        token: Some(token.to_owned()),
        body: None,
        expect: StatusCode::OK,
        basic: None,
        form: false,
    }
}

/// `POST /v1/tokens` for `principal`, as the server's administrator.
fn issue_call(server: &TestServer, principal: &str) -> Call {
    Call {
        method: Method::POST,
        path: "/v1/tokens".into(),
        token: Some(server.admin_token.clone()),
        body: Some(json!({"principal": principal}).to_string()),
        expect: StatusCode::CREATED,
        basic: None,
        form: false,
    }
}

/// A user named `name` on `server` and a day-long token for it: (id, token).
async fn user_with_token(server: &TestServer, name: &str) -> (String, String) {
    let (_, user) = server
        .post("/v1/principals", json!({"kind": "user", "name": name}))
        .await;
    let (_, issued) = server
        .post("/v1/tokens", json!({"principal": name, "ttl": "1d"}))
        .await;
    (
        user["id"].as_str().expect("id").to_owned(),
        issued["token"].as_str().expect("token").to_owned(),
    )
}

async fn verification(server: &TestServer, addr: &str, token: &str, n: usize, label: &str) {
    let call = whoami_call(token);
    load::run(addr, &call, 1, 2_000).await; // warm up
    let samples = load::run(addr, &call, 1, n).await;
    row(
        &format!("verify (whoami), 1 connection, {label} stored tokens"),
        &samples,
    );
    let _ = server;
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let n = if quick { 5_000 } else { 20_000 };
    if std::env::args().any(|a| a == "--leaks-only") {
        let server = TestServer::start();
        println!("| run | p50 | p99 | throughput | requests |\n| --- | --- | --- | --- | --- |");
        leaks::dlp_overhead(&server, n).await;
        leaks::report_to_refusal(&server, 20).await;
        return;
    }

    if std::env::args().any(|a| a == "--store-only") {
        let server = TestServer::start();
        store::run(&server, if quick { 20_000 } else { 100_000 }).await;
        return;
    }

    if std::env::args().any(|a| a == "--tasks-only") {
        let server = TestServer::start();
        println!("| run | p50 | p99 | throughput | requests |\n| --- | --- | --- | --- | --- |");
        tasks::run(&server, n, if quick { 20_000 } else { 100_000 }).await;
        return;
    }

    println!("## In process (median of 7 rounds)\n");
    println!("| operation | rate |\n| --- | --- |");
    println!(
        "| token generation + SHA-256 | {} |",
        rate(inproc::generate_and_hash())
    );
    println!(
        "| offline checksum check | {} |",
        rate(inproc::check_offline())
    );
    println!(
        "| policy check, 10,000 policies | {} |",
        rate(inproc::policy_checks())
    );

    let server = Arc::new(TestServer::start());
    let addr = server.url.trim_start_matches("http://").to_owned();
    let (alice_id, token) = user_with_token(&server, "alice").await;
    fill(&server.store, &alice_id, 1_000 - 2).await;

    println!("\n## Over loopback HTTP/1.1, keep-alive (server: 2 worker threads, same machine)\n");
    println!("| run | p50 | p99 | throughput | requests |\n| --- | --- | --- | --- | --- |");
    let plain = Call {
        method: Method::GET,
        path: "/v1/no-such-endpoint".into(),
        token: None,
        body: None,
        expect: StatusCode::NOT_FOUND,
        basic: None,
        form: false,
    };
    load::run(&addr, &plain, 1, 2_000).await;
    let baseline = load::run(&addr, &plain, 1, n).await;
    row("round trip, no auth (baseline)", &baseline);
    verification(&server, &addr, &token, n, "1,000").await;
    let whoami = whoami_call(&token);
    let auth = load::run(&addr, &whoami, 1, n).await;
    let overhead = auth
        .percentile(50.0)
        .saturating_sub(baseline.percentile(50.0));
    row("verify (whoami), 1 connection, repeat", &auth);
    row(
        "verify (whoami), 8 connections",
        &load::run(&addr, &whoami, 8, n * 2).await,
    );
    let issue = issue_call(&server, "alice");
    row(
        "issue token (POST /v1/tokens), 1 connection",
        &load::run(&addr, &issue, 1, n / 4).await,
    );
    row(
        "issue token (POST /v1/tokens), 16 connections",
        &load::run(&addr, &issue, 16, n).await,
    );

    gate::run(&server, n).await;
    tasks::run(&server, n, if quick { 20_000 } else { 100_000 }).await;
    // The task rows end with a paragraph: the leak rows start a table again.
    println!("\n| run | p50 | p99 | throughput | requests |\n| --- | --- | --- | --- | --- |");
    leaks::dlp_overhead(&server, n).await;
    leaks::report_to_refusal(&server, if quick { 20 } else { 100 }).await;

    growth(quick, n).await;

    println!(
        "\nAuthenticated-call overhead (whoami p50 − baseline p50, 1,000 tokens): {}",
        ms(overhead)
    );
    let _ = Scope::root();
}

/// Cost as the store grows: one server per size (1,000, 100,000 and in the
/// full run 1,000,000 stored tokens), measured in interleaved rounds (the
/// order alternating) so that this machine's drifts fall on every size
/// alike. Index lookups only, so verification and issuance should stay flat.
async fn growth(quick: bool, n: usize) {
    let sizes: &[usize] = if quick {
        &[1_000, 100_000]
    } else {
        &[1_000, 100_000, 1_000_000]
    };
    let mut servers = Vec::new();
    for &size in sizes {
        let server = TestServer::start();
        let (id, token) = user_with_token(&server, "grower").await;
        let t = Instant::now();
        fill(&server.store, &id, size - 1).await;
        eprintln!("stored {size} tokens in {:.1} s", t.elapsed().as_secs_f64());
        servers.push((size, server, token));
    }
    let rounds = 20;
    let mut verify: Vec<Vec<Samples>> = sizes.iter().map(|_| Vec::new()).collect();
    let mut issue: Vec<Vec<Samples>> = sizes.iter().map(|_| Vec::new()).collect();
    for round in 0..rounds {
        let mut order: Vec<usize> = (0..servers.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let (_, server, token) = &servers[i];
            let addr = server.url.trim_start_matches("http://").to_owned();
            let (whoami, create) = (whoami_call(token), issue_call(server, "grower"));
            if round == 0 {
                load::run(&addr, &whoami, 1, 1_000).await; // warm up
            }
            verify[i].push(load::run(&addr, &whoami, 1, n / rounds).await);
            issue[i].push(load::run(&addr, &create, 1, n / 4 / rounds).await);
        }
    }
    println!(
        "\n## As stored credentials grow ({rounds} interleaved rounds, one server per size; p50 per round: median [min – max]; ratio: per round to the 1,000-token server, then the median)\n"
    );
    println!(
        "| run | p50 | ratio to 1,000 stored | p99 (all rounds) | requests |\n| --- | --- | --- | --- | --- |"
    );
    for (what, runs) in [
        ("verify (whoami)", &verify),
        ("issue token (POST /v1/tokens)", &issue),
    ] {
        let p50s = |i: usize| -> Vec<f64> {
            runs[i]
                .iter()
                .map(|r| r.percentile(50.0).as_secs_f64() * 1000.0)
                .collect()
        };
        let base = p50s(0);
        for (i, size) in sizes.iter().enumerate() {
            let mine = p50s(i);
            let ratios: Vec<f64> = mine.iter().zip(&base).map(|(a, b)| a / b).collect();
            let all = Samples::merge(runs[i].iter().map(Samples::copy).collect());
            let label = rate(*size as f64);
            println!(
                "| {what}, 1 connection, {} stored tokens | {:.3} ms [{:.3} – {:.3}] | {:.2}x | {} | {} |",
                label.trim_end_matches("/s"),
                stats::median(&mine),
                mine.iter().cloned().fold(f64::INFINITY, f64::min),
                mine.iter().cloned().fold(0.0, f64::max),
                stats::median(&ratios),
                ms(all.percentile(99.0)),
                all.len()
            );
        }
    }
}
