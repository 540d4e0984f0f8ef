//! What an issued API token costs in the store: `count` tokens issued
//! through the real API (`POST /v1/tokens`, 16 connections, each a durable
//! commit with its audit record), then SQLite's `dbstat` pages per table and
//! index, before and after, divided by `count`. Printed as a Markdown table
//! and as one `STORE {json}` line for `bench/run`'s report.

use std::collections::BTreeMap;

use hyper::{Method, StatusCode};
use laissez_testkit::TestServer;
use serde_json::json;

use crate::load::{self, Call};

/// Bytes per table and index (SQLite pages in use, `dbstat`).
fn pages_by_name(db: &std::path::Path) -> BTreeMap<String, i64> {
    let conn = rusqlite::Connection::open(db).expect("open the store");
    let mut statement = conn
        .prepare("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name")
        .expect("dbstat");
    statement
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .expect("dbstat rows")
        .map(|r| r.expect("row"))
        .collect()
}

/// Issues `count` tokens and prints the bytes each added, by table.
pub async fn run(server: &TestServer, count: usize) {
    let addr = server.url.trim_start_matches("http://").to_owned();
    server
        .post(
            "/v1/principals",
            json!({"kind": "service", "name": "store-bench", "owner": "admin"}),
        )
        .await;
    let db = server.store.path().to_path_buf();
    let before = pages_by_name(&db);
    let issue = Call {
        method: Method::POST,
        path: "/v1/tokens".into(),
        token: Some(server.admin_token.clone()),
        body: Some(json!({"principal": "store-bench", "ttl": "30d"}).to_string()),
        expect: StatusCode::CREATED,
        basic: None,
        form: false,
    };
    let t = std::time::Instant::now();
    load::run(&addr, &issue, 16, count).await;
    let took = t.elapsed();
    let after = pages_by_name(&db);
    let mut per_token: BTreeMap<String, f64> = BTreeMap::new();
    for (name, bytes) in &after {
        let grown = bytes - before.get(name).copied().unwrap_or(0);
        if grown > 0 {
            per_token.insert(name.clone(), grown as f64 / count as f64);
        }
    }
    let total: f64 = per_token.values().sum();
    let audit: f64 = per_token
        .iter()
        .filter(|(name, _)| name.starts_with("audit"))
        .map(|(_, b)| b)
        .sum();
    println!(
        "\nStore bytes per issued API token ({count} tokens through POST /v1/tokens in {:.1} s; SQLite dbstat, pages in use): {total:.0} B in all, audit {audit:.0} B\n",
        took.as_secs_f64()
    );
    println!("| table or index | bytes per token |\n| --- | --- |");
    for (name, bytes) in &per_token {
        println!("| {name} | {bytes:.0} |");
    }
    println!(
        "STORE {}",
        json!({"tokens": count, "seconds": took.as_secs_f64(), "total": total, "audit": audit, "by_name": per_token})
    );
}
