//! Task credentials, measured: issuance over REST and through token
//! exchange (each answer signs a DPoP-bound JWT and commits the task with
//! its audit record), the gate's overhead with DPoP verification next to
//! the app reached directly and to an unbound bearer token (interleaved
//! rounds, the same request), how long after a task is completed the gate
//! refuses it (on the next request, and as a prober on another connection
//! sees it while the completion runs), and what a task costs in the store
//! at 100,000 tasks.
//!
//! Proofs are made before each request's clock starts: the client's signing
//! is not counted as the server's or the gate's time.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::routing::get;
use hyper::{Method, StatusCode};
use laissez_core::audit::AuditEvent;
use laissez_dpop::ProofKey;
use laissez_store::Store;
use laissez_store::task::{TaskRecord, TaskState, task_id};
use laissez_testkit::TestServer;
use serde_json::{Value, json};

use crate::load::{connect, send_with as send};
use crate::row;
use crate::stats::{Samples, ms};

async fn app() -> &'static str {
    "hello from the app\n"
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Prints the task rows.
pub async fn run(server: &TestServer, n: usize, stored: usize) {
    let (app_url, gate_url, gate) = laissez_testkit::gate::front_with_handle(
        Router::new().route("/hello", get(app)),
        &server.url,
        |c| {
            c.app = "tasks-bench".into();
            c.default_scopes = vec!["bench.read".into()];
        },
    )
    .await;
    let resource = gate_url.clone();
    let client = laissez_testkit::gate::service_client(&server.url, "bench.read", &resource).await;
    let (_, issued) = server
        .post(
            "/v1/tokens",
            json!({"principal": client.service, "ttl": "1d"}),
        )
        .await;
    let agent_token = issued["token"].as_str().expect("agent token").to_owned();
    let server_addr = server.url.trim_start_matches("http://").to_owned();
    let key = Arc::new(ProofKey::generate().expect("key"));

    // The floor under every durable answer: this disk's fsync.
    fsync_floor(&server.data_dir, n.min(1000));

    // Issuance over REST, one connection.
    let ask = json!({"description": "bench", "permissions": ["bench.read"], "resources": [resource], "ttl": "10m"}).to_string();
    let mut sender = connect(&server_addr).await;
    let mut latencies = Vec::with_capacity(n);
    let mut last: Option<Value> = None;
    let start = Instant::now();
    for i in 0..(n + 200) {
        let proof = key
            .proof(
                "POST",
                &format!("{}/v1/tasks", server.url),
                None,
                None,
                now(),
            )
            .expect("proof");
        let headers = [
            ("authorization", format!("Bearer {agent_token}")),
            ("dpop", proof),
        ];
        let t = Instant::now();
        let (status, body) = send(
            &mut sender,
            &server_addr,
            Method::POST,
            "/v1/tasks",
            &headers,
            Some(("application/json", ask.clone())),
        )
        .await;
        let took = t.elapsed();
        assert_eq!(
            status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&body)
        );
        if i >= 200 {
            latencies.push(took);
        }
        last = serde_json::from_slice(&body).ok();
    }
    row(
        "issue task credential (POST /v1/tasks: bound, lztt_ + DPoP JWT, durable), 1 connection",
        &Samples::new(latencies, start.elapsed()),
    );

    // Issuance through token exchange, one connection.
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", client.client_id, client.secret));
    let form = format!(
        "grant_type={}&scope=bench.read&resource={}",
        url::form_urlencoded::byte_serialize(b"urn:ietf:params:oauth:grant-type:token-exchange")
            .collect::<String>(),
        url::form_urlencoded::byte_serialize(resource.as_bytes()).collect::<String>()
    );
    let mut latencies = Vec::with_capacity(n);
    let start = Instant::now();
    for i in 0..(n + 200) {
        let proof = key
            .proof(
                "POST",
                &format!("{}/oauth/token", server.url),
                None,
                None,
                now(),
            )
            .expect("proof");
        let headers = [("authorization", format!("Basic {basic}")), ("dpop", proof)];
        let t = Instant::now();
        let (status, body) = send(
            &mut sender,
            &server_addr,
            Method::POST,
            "/oauth/token",
            &headers,
            Some(("application/x-www-form-urlencoded", form.clone())),
        )
        .await;
        let took = t.elapsed();
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        if i >= 200 {
            latencies.push(took);
        }
    }
    row(
        "issue task credential (token exchange, RFC 8693 + DPoP), 1 connection",
        &Samples::new(latencies, start.elapsed()),
    );

    let issued = last.expect("an issued task");
    let jwt = issued["access_tokens"][0]["access_token"]
        .as_str()
        .expect("task JWT")
        .to_owned();
    gate_overhead(&app_url, &gate_url, &resource, &server.url, &jwt, &key, n).await;
    revocation(server, &gate, &gate_url, &agent_token, &resource, 80).await;
    storage(server, stored).await;
}

/// The app directly, through the gate with an unbound bearer JWT, and with
/// the task's DPoP-bound JWT: interleaved rounds of the same request.
async fn gate_overhead(
    app_url: &str,
    gate_url: &str,
    resource: &str,
    server_url: &str,
    jwt: &str,
    key: &ProofKey,
    n: usize,
) {
    let bearer_jwt =
        laissez_testkit::gate::client_credentials_token(server_url, "bench.read", resource).await;
    let app_addr = app_url.trim_start_matches("http://").to_owned();
    let gate_addr = gate_url.trim_start_matches("http://").to_owned();
    let mut direct = connect(&app_addr).await;
    let mut gated = connect(&gate_addr).await;
    let mut bound = connect(&gate_addr).await;
    let mut times = [Vec::new(), Vec::new(), Vec::new()];
    let rounds = 20;
    let per = n / rounds;
    let start = Instant::now();
    for round in 0..(rounds + 2) {
        for _ in 0..per {
            let t = Instant::now();
            let (status, _) = send(&mut direct, &app_addr, Method::GET, "/hello", &[], None).await;
            let a = t.elapsed();
            assert_eq!(status, StatusCode::OK);
            let headers = [("authorization", format!("Bearer {bearer_jwt}"))];
            let t = Instant::now();
            let (status, _) = send(
                &mut gated,
                &gate_addr,
                Method::GET,
                "/hello",
                &headers,
                None,
            )
            .await;
            let b = t.elapsed();
            assert_eq!(status, StatusCode::OK);
            let proof = key
                .proof("GET", &format!("{gate_url}/hello"), Some(jwt), None, now())
                .expect("proof");
            let headers = [("authorization", format!("DPoP {jwt}")), ("dpop", proof)];
            let t = Instant::now();
            let (status, body) = send(
                &mut bound,
                &gate_addr,
                Method::GET,
                "/hello",
                &headers,
                None,
            )
            .await;
            let c = t.elapsed();
            assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
            // The first two rounds warm up.
            if round >= 2 {
                times[0].push(a);
                times[1].push(b);
                times[2].push(c);
            }
        }
    }
    let wall = start.elapsed();
    let [a, b, c] = times.map(|t| Samples::new(t, wall));
    row("app directly (interleaved with the two below)", &a);
    row("app through the gate, bearer JWT", &b);
    row(
        "app through the gate, task JWT with DPoP proof (signature, ath, htu, replay cache)",
        &c,
    );
    let diff =
        |x: &Samples, y: &Samples, p: f64| ms(x.percentile(p).saturating_sub(y.percentile(p)));
    println!(
        "| gate overhead with DPoP (p50 / p99 vs direct) | {} | {} | | |",
        diff(&c, &a, 50.0),
        diff(&c, &a, 99.0)
    );
    println!(
        "| DPoP's own cost at the gate (p50 / p99 vs bearer) | {} | {} | | |",
        diff(&c, &b, 50.0),
        diff(&c, &b, 99.0)
    );
}

/// Times `n` appends of 4 KiB to a file in `dir`, each followed by fsync:
/// what one durable commit costs at least on this disk (SQLite in WAL mode
/// with `synchronous = FULL` syncs the log once per commit).
fn fsync_floor(dir: &std::path::Path, n: usize) {
    use std::io::Write;
    let path = dir.join("bench-fsync.tmp");
    let mut file = std::fs::File::create(&path).expect("a file in the data folder");
    let block = [0u8; 4096];
    let mut latencies = Vec::with_capacity(n);
    let start = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        file.write_all(&block).expect("write");
        file.sync_all().expect("fsync");
        latencies.push(t.elapsed());
    }
    let wall = start.elapsed();
    drop(file);
    let _ = std::fs::remove_file(&path);
    row(
        "this disk's fsync (4 KiB append + fsync: the floor under every durable answer)",
        &Samples::new(latencies, wall),
    );
}

/// How long completing a task takes until the gate refuses it, over
/// `rounds` fresh tasks: the completion's answer returns once it is durable
/// and every gate has applied it; the next gate request is then refused.
async fn revocation(
    server: &TestServer,
    running: &laissez_gate::Gate,
    gate_url: &str,
    agent_token: &str,
    resource: &str,
    rounds: usize,
) {
    let gate_addr = gate_url.trim_start_matches("http://").to_owned();
    let server_addr = server.url.trim_start_matches("http://").to_owned();
    let mut gate = connect(&gate_addr).await;
    let mut probe = connect(&gate_addr).await;
    let mut api = connect(&server_addr).await;
    let key = ProofKey::generate().expect("key");
    let ask = json!({"description": "bench", "permissions": ["bench.read"], "resources": [resource], "ttl": "10m"}).to_string();
    let mut answered = Vec::with_capacity(rounds);
    let mut refused = Vec::with_capacity(rounds);
    let mut effective = Vec::with_capacity(rounds);
    let mut applied = Vec::with_capacity(rounds);
    // When the gate's revocation view moved, after the completion asked at
    // `asked` (one clock: the gate runs in this process).
    let applied_since = |asked: std::time::SystemTime| {
        let at = running
            .verifier
            .feed_changed_at()
            .expect("the gate applied the feed");
        at.duration_since(asked)
            .expect("the gate's view moved after the completion was asked")
    };
    let start = Instant::now();
    for round in 0..rounds {
        let proof = key
            .proof(
                "POST",
                &format!("{}/v1/tasks", server.url),
                None,
                None,
                now(),
            )
            .expect("proof");
        let headers = [
            ("authorization", format!("Bearer {agent_token}")),
            ("dpop", proof),
        ];
        let (status, body) = send(
            &mut api,
            &server_addr,
            Method::POST,
            "/v1/tasks",
            &headers,
            Some(("application/json", ask.clone())),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&body)
        );
        let issued: Value = serde_json::from_slice(&body).expect("json");
        let jwt = issued["access_tokens"][0]["access_token"]
            .as_str()
            .expect("jwt")
            .to_owned();
        let task_id = issued["task"]["id"].as_str().expect("id").to_owned();
        let token = issued["token"].as_str().expect("lztt").to_owned();
        let at_gate = |jwt: &str| {
            let proof = key
                .proof("GET", &format!("{gate_url}/hello"), Some(jwt), None, now())
                .expect("proof");
            [("authorization", format!("DPoP {jwt}")), ("dpop", proof)]
        };
        let (status, _) = send(
            &mut gate,
            &gate_addr,
            Method::GET,
            "/hello",
            &at_gate(&jwt),
            None,
        )
        .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "the task works before it is completed"
        );
        let path = format!("/v1/tasks/{task_id}/complete");
        let proof = key
            .proof(
                "POST",
                &format!("{}{path}", server.url),
                Some(&token),
                None,
                now(),
            )
            .expect("proof");
        let headers = [("authorization", format!("DPoP {token}")), ("dpop", proof)];
        let next = at_gate(&jwt);
        if round % 2 == 1 {
            // Odd rounds: another connection probes the gate while the
            // completion runs; the first refusal it sees is when it took
            // effect. Its proofs are made before the clock starts.
            let probes: Vec<_> = (0..256).map(|_| at_gate(&jwt)).collect();
            let asked_at = std::time::SystemTime::now();
            let asked = Instant::now();
            let completing = send(&mut api, &server_addr, Method::POST, &path, &headers, None);
            let probing = async {
                for headers in &probes {
                    let (status, _) =
                        send(&mut probe, &gate_addr, Method::GET, "/hello", headers, None).await;
                    if status == StatusCode::UNAUTHORIZED {
                        return Some(asked.elapsed());
                    }
                }
                None
            };
            let ((status, body), seen) = tokio::join!(completing, probing);
            assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
            effective.push(seen.expect("the gate refused the completed task"));
            applied.push(applied_since(asked_at));
            continue;
        }
        let asked_at = std::time::SystemTime::now();
        let asked = Instant::now();
        let (status, body) =
            send(&mut api, &server_addr, Method::POST, &path, &headers, None).await;
        answered.push(asked.elapsed());
        applied.push(applied_since(asked_at));
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        let (status, _) = send(&mut gate, &gate_addr, Method::GET, "/hello", &next, None).await;
        refused.push(asked.elapsed());
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "refused on the next request"
        );
    }
    let wall = start.elapsed();
    row(
        "complete a task: answered once durable and applied by every gate",
        &Samples::new(answered, wall),
    );
    row(
        "complete a task → its JWT refused at the gate (the next request)",
        &Samples::new(refused, wall),
    );
    row(
        "complete a task → the gate's revocation view holds it (effective at the gate: the gate's own clock)",
        &Samples::new(applied, wall),
    );
    row(
        "complete a task → first refusal seen by a concurrent prober (an upper bound: one probe's own latency more)",
        &Samples::new(effective, wall),
    );
}

/// Bytes a task adds to the store: the hot tables (tasks, their shapes and
/// approvals, with indexes) apart from the audit records.
async fn storage(server: &TestServer, count: usize) {
    let store = server.store.clone();
    let db = store.path().to_path_buf();
    let bytes = |names: &[&str]| -> i64 {
        let conn = rusqlite::Connection::open(&db).expect("open");
        let list = names
            .iter()
            .map(|n| format!("'{n}'"))
            .collect::<Vec<_>>()
            .join(",");
        conn.query_row(
            &format!("SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name IN ({list})"),
            [],
            |r| r.get(0),
        )
        .expect("dbstat")
    };
    let hot = [
        "tasks",
        "tasks_token",
        "tasks_children",
        "tasks_ended",
        "task_shapes",
        "sqlite_autoindex_task_shapes_1",
        "task_approvals",
    ];
    let (hot_before, audit_before) = (bytes(&hot), bytes(&["audit_log"]));
    let t = Instant::now();
    let chunk = 512;
    let mut done = 0;
    let agents: Vec<String> = (0..20).map(|i| format!("agt_bench{i:016}")).collect();
    while done < count {
        let mut batch = Vec::new();
        for i in done..(done + chunk).min(count) {
            let store = store.clone();
            let agent = agents[i % agents.len()].clone();
            batch.push(tokio::spawn(async move {
                let seq = store.next_task_seq().await.expect("seq");
                let tag = laissez_token::random_base62(6).expect("tag");
                let id = task_id(seq, &tag);
                let key = laissez_core::credential::hash_secret(&format!("key {i}"));
                use base64::Engine;
                let record = TaskRecord {
                    id: id.clone(),
                    parent_id: None,
                    ancestors: Vec::new(),
                    agent_id: agent.clone(),
                    subject_id: Some(format!("usr_{:020}", i % 1000)),
                    client_id: None,
                    grants: vec![format!("tickets.read@https://tickets.example/queues/{}/", i % 50)],
                    allowed_ips: Vec::new(),
                    binding: laissez_core::KeyBinding::dpop(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)),
                    state: TaskState::Active,
                    issued_at: now(),
                    expires_at: now() + 600,
                    ended_at: None,
                };
                // The audit record the server writes for an issuance, of the same size.
                let audit = AuditEvent::success(&[], "task.issue", id.clone()).with_detail(json!({
                    "task": id, "description": format!("summarise ticket {i}"),
                    "granted": record.grants, "dropped": [], "agent": agent,
                    "sub": record.subject_id, "jkt": record.binding.jkt, "expires_at": record.expires_at,
                }));
                let secret = laissez_token::random_base62(40).expect("secret");
                store
                    .create_task(record, Some(laissez_core::credential::hash_secret(&secret)), None, audit)
                    .await
                    .expect("task");
            }));
        }
        for task in batch {
            task.await.expect("insert");
        }
        done = (done + chunk).min(count);
    }
    let took = t.elapsed();
    let hot_bytes = bytes(&hot) - hot_before;
    let audit_bytes = bytes(&["audit_log"]) - audit_before;
    println!(
        "\nStore cost of task credentials at {count} tasks (SQLite dbstat, {:.1} s to write): hot tables (tasks, shapes, approvals and their indexes) {:.0} bytes per task; their audit records {:.0} bytes per task, kept when expired tasks are pruned.",
        took.as_secs_f64(),
        hot_bytes as f64 / count as f64,
        audit_bytes as f64 / count as f64
    );
}
