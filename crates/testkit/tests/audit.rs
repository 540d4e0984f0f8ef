//! The audit log is tamper-evident: editing or deleting records directly in
//! SQLite is detected by `GET /v1/audit/verify`, which names the first bad
//! record.

use laissez_testkit::TestServer;
use serde_json::{Value, json};

async fn busy_server() -> TestServer {
    let server = TestServer::start();
    for name in ["alice", "bob", "carol", "dave"] {
        server
            .post("/v1/principals", json!({"kind": "user", "name": name}))
            .await;
        server.post("/v1/tokens", json!({"principal": name})).await;
    }
    server
}

async fn verify(server: &TestServer) -> Value {
    let (status, value) = server.get("/v1/audit/verify").await;
    assert!(status.is_success(), "{value}");
    value
}

fn sql(server: &TestServer, statement: &str) {
    let conn = rusqlite::Connection::open(server.data_dir.join("laissez.db")).unwrap();
    let changed = conn.execute(statement, []).unwrap();
    assert_eq!(changed, 1, "{statement}");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_mutation_is_one_record_with_the_full_chain() {
    let server = busy_server().await;
    let v = verify(&server).await;
    assert_eq!(v["first_break"], Value::Null);
    // bootstrap + 4 × (principal + token)
    assert_eq!(v["records"], 9);
    let (_, records) = server.get("/v1/audit?limit=100").await;
    let records = records.as_array().unwrap();
    let actions: Vec<&str> = records
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions[..3],
        ["bootstrap", "principal.create", "token.create"]
    );
    for (i, record) in records.iter().enumerate() {
        assert_eq!(record["seq"], i as i64 + 1);
        assert_eq!(record["chain"][0]["name"], "admin");
        assert_eq!(
            record["client_ip"].as_str().is_some(),
            i > 0,
            "API records carry the client IP"
        );
        assert_eq!(record["hash"].as_str().unwrap().len(), 64);
        if i > 0 {
            assert_eq!(record["prev_hash"], records[i - 1]["hash"]);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_edited_record_is_named() {
    let server = busy_server().await;
    sql(
        &server,
        "UPDATE audit_log SET target = 'someone-else' WHERE seq = 4",
    );
    assert_eq!(verify(&server).await["first_break"]["seq"], 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_edited_and_rehashed_record_is_caught_by_the_next_link() {
    let server = busy_server().await;
    sql(
        &server,
        "UPDATE audit_log SET outcome = 'denied', hash = 'f' || substr(hash, 2) WHERE seq = 6",
    );
    assert_eq!(verify(&server).await["first_break"]["seq"], 6);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_record_is_named() {
    let server = busy_server().await;
    sql(&server, "DELETE FROM audit_log WHERE seq = 5");
    let v = verify(&server).await;
    assert_eq!(v["first_break"]["seq"], 5, "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_the_newest_records_is_detected() {
    let server = busy_server().await;
    // A verify call is not audited, so the last record is still seq 9.
    sql(&server, "DELETE FROM audit_log WHERE seq = 9");
    let v = verify(&server).await;
    assert_eq!(v["first_break"]["seq"], 9, "{v}");
}
