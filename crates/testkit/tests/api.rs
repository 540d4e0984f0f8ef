//! The admin API over HTTP against a real server: identities and ownership,
//! token lifecycle, policy enforcement, bad input, concurrency, durability.

use laissez_testkit::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn add(server: &TestServer, kind: &str, name: &str, owner: Option<&str>) -> Value {
    let mut body = json!({"kind": kind, "name": name});
    if let Some(owner) = owner {
        body["owner"] = json!(owner);
    }
    let (status, value) = server.post("/v1/principals", body).await;
    assert_eq!(status, StatusCode::CREATED, "{value}");
    value
}

async fn token(server: &TestServer, body: Value) -> (String, Value) {
    let (status, value) = server.post("/v1/tokens", body).await;
    assert_eq!(status, StatusCode::CREATED, "{value}");
    (value["token"].as_str().unwrap().to_owned(), value)
}

async fn whoami(server: &TestServer, token: &str) -> (StatusCode, Value) {
    server.call(Method::GET, "/v1/whoami", token, None).await
}

fn is_problem(value: &Value, status: StatusCode) {
    assert_eq!(value["status"], status.as_u16(), "{value}");
    assert!(
        value["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("https://")),
        "{value}"
    );
    assert!(
        value["detail"].as_str().is_some_and(|d| d.len() > 10),
        "{value}"
    );
}

async fn counts(server: &TestServer) -> (usize, usize, usize) {
    let principals = server
        .get("/v1/principals")
        .await
        .1
        .as_array()
        .unwrap()
        .len();
    let tokens = server.get("/v1/tokens").await.1.as_array().unwrap().len();
    let policies = server.get("/v1/policies").await.1.as_array().unwrap().len();
    (principals, tokens, policies)
}

#[tokio::test(flavor = "multi_thread")]
async fn whoami_describes_the_chain_scope_and_expiry() {
    let server = TestServer::start();
    add(&server, "user", "alice", None).await;
    add(&server, "agent", "bot", Some("alice")).await;
    let (status, _) = server
        .post(
            "/v1/policies",
            json!({"principal": "alice", "role": "laissez-auditor", "scope": "acme"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (secret, issued) = token(
        &server,
        json!({"principal": "bot", "scope": "acme/apps", "ttl": "30m"}),
    )
    .await;
    assert!(secret.starts_with("lzat_"));
    assert_eq!(
        issued["expires_at"].as_i64().unwrap() - issued["created_at"].as_i64().unwrap(),
        1800
    );
    let (status, me) = whoami(&server, &secret).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["principal"]["name"], "bot");
    assert_eq!(me["owner"]["name"], "alice");
    assert_eq!(me["chain_text"], "user:alice → agent:bot");
    assert_eq!(me["credential"]["restriction"]["scope"], "acme/apps");
    assert_eq!(me["credential"]["expires_at"], issued["expires_at"]);
    assert!(
        me.to_string().find(&secret).is_none(),
        "whoami must not echo the secret"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn non_human_principals_need_an_active_human_owner() {
    let server = TestServer::start();
    let before = counts(&server).await;
    let (status, value) = server
        .post("/v1/principals", json!({"kind": "service", "name": "ci"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    is_problem(&value, status);
    assert!(value["detail"].as_str().unwrap().contains("owner"));
    let (status, _) = server
        .post(
            "/v1/principals",
            json!({"kind": "agent", "name": "bot", "owner": "nobody"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    add(&server, "user", "alice", None).await;
    add(&server, "service", "ci", Some("alice")).await;
    let (status, _) = server
        .post(
            "/v1/principals",
            json!({"kind": "agent", "name": "bot", "owner": "ci"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a service cannot own");
    let (status, _) = server
        .post("/v1/principals", json!({"kind": "user", "name": "alice"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let after = counts(&server).await;
    assert_eq!(after.0, before.0 + 2, "only alice and ci were created");
}

#[tokio::test(flavor = "multi_thread")]
async fn deactivating_an_owner_suspends_everything_they_own() {
    let server = TestServer::start();
    add(&server, "user", "alice", None).await;
    add(&server, "agent", "bot", Some("alice")).await;
    add(&server, "service", "ci", Some("alice")).await;
    let (bot, _) = token(&server, json!({"principal": "bot"})).await;
    let (ci, _) = token(&server, json!({"principal": "ci"})).await;
    let (alice, _) = token(&server, json!({"principal": "alice"})).await;
    for t in [&bot, &ci, &alice] {
        assert_eq!(whoami(&server, t).await.0, StatusCode::OK);
    }
    let (status, _) = server
        .post("/v1/principals/alice/deactivate", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    for t in [&bot, &ci, &alice] {
        let (status, value) = whoami(&server, t).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(
            value["detail"].as_str().unwrap().contains("inactive"),
            "{value}"
        );
    }
    let (_, findings) = server.get("/v1/hygiene").await;
    let orphans: Vec<&str> = findings
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["finding"] == "owner_inactive")
        .map(|f| f["principal"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(orphans, ["bot", "ci"]);
    server
        .post("/v1/principals/alice/activate", json!({}))
        .await;
    assert_eq!(whoami(&server, &bot).await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn revoked_rolled_and_expired_tokens_are_refused_on_the_next_request() {
    let server = TestServer::start();
    add(&server, "user", "alice", None).await;
    let (first, issued) = token(&server, json!({"principal": "alice", "ttl": "1h"})).await;
    let id = issued["id"].as_str().unwrap().to_owned();
    assert_eq!(whoami(&server, &first).await.0, StatusCode::OK);

    let (status, rolled) = server
        .post(&format!("/v1/tokens/{id}/roll"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{rolled}");
    let second = rolled["token"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    assert_eq!(rolled["id"], id.as_str());
    assert_eq!(
        rolled["expires_at"].as_i64().unwrap() - rolled["created_at"].as_i64().unwrap(),
        3600
    );
    assert_eq!(
        whoami(&server, &first).await.0,
        StatusCode::UNAUTHORIZED,
        "old secret dead after roll"
    );
    assert_eq!(whoami(&server, &second).await.0, StatusCode::OK);

    let (status, _) = server
        .post(&format!("/v1/tokens/{id}/revoke"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, value) = whoami(&server, &second).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(value["detail"].as_str().unwrap().contains("revoked"));
    let (status, _) = server
        .post(&format!("/v1/tokens/{id}/roll"), json!({}))
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a revoked token cannot be brought back by rolling"
    );

    let (short, _) = token(&server, json!({"principal": "alice", "ttl": "1s"})).await;
    assert_eq!(whoami(&server, &short).await.0, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (status, value) = whoami(&server, &short).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(value["detail"].as_str().unwrap().contains("expired"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_holder_can_revoke_its_own_token_without_any_policy() {
    let server = TestServer::start();
    add(&server, "user", "alice", None).await;
    add(&server, "service", "ci", Some("alice")).await;
    let (ci, issued) = token(&server, json!({"principal": "ci"})).await;
    let id = issued["id"].as_str().unwrap();
    let (status, _) = server
        .call(
            Method::POST,
            "/v1/principals",
            &ci,
            Some(&json!({"kind": "user", "name": "x"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a service has no admin rights by default"
    );
    let (status, _) = server
        .call(Method::POST, &format!("/v1/tokens/{id}/revoke"), &ci, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(whoami(&server, &ci).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread")]
async fn client_ip_ranges_are_enforced() {
    let server = TestServer::start();
    add(&server, "user", "alice", None).await;
    let (elsewhere, _) = token(
        &server,
        json!({"principal": "alice", "allowed_ips": ["10.0.0.0/8", "2001:db8::/32"]}),
    )
    .await;
    let (here, _) = token(
        &server,
        json!({"principal": "alice", "allowed_ips": ["127.0.0.0/8"]}),
    )
    .await;
    let (status, value) = whoami(&server, &elsewhere).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        value["detail"].as_str().unwrap().contains("127.0.0.1"),
        "{value}"
    );
    assert_eq!(whoami(&server, &here).await.0, StatusCode::OK);
    let (status, value) = server
        .post(
            "/v1/tokens",
            json!({"principal": "alice", "allowed_ips": ["10.0.0.0/33"]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(value["detail"].as_str().unwrap().contains("CIDR"));
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_narrow_and_never_widen_their_principal() {
    let server = TestServer::start();
    add(&server, "user", "alice", None).await;
    let (status, _) = server
        .post(
            "/v1/roles",
            json!({"name": "wiki-reader", "permissions": ["wiki.pages.read"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    server
        .post(
            "/v1/policies",
            json!({"principal": "alice", "role": "wiki-reader", "scope": "acme/apps/wiki"}),
        )
        .await;
    // Within what alice holds: fine.
    token(
        &server,
        json!({"principal": "alice", "role": "wiki-reader", "scope": "acme/apps/wiki/pages"}),
    )
    .await;
    // Wider scope or a role she lacks: refused, nothing created.
    let before = counts(&server).await;
    let (status, value) = server
        .post(
            "/v1/tokens",
            json!({"principal": "alice", "role": "wiki-reader", "scope": "acme"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        value["detail"]
            .as_str()
            .unwrap()
            .contains("wiki.pages.read"),
        "{value}"
    );
    let (status, _) = server
        .post(
            "/v1/tokens",
            json!({"principal": "alice", "role": "laissez-admin"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(counts(&server).await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_limited_to_individual_permissions_does_only_those() {
    let server = TestServer::start();
    add(&server, "user", "carol", None).await;
    server
        .post(
            "/v1/policies",
            json!({"principal": "carol", "role": "laissez-admin", "scope": "/"}),
        )
        .await;
    // Only reading principals, out of everything an admin holds.
    let (reader, issued) = token(
        &server,
        json!({"principal": "carol", "permissions": ["laissez.principals.read"]}),
    )
    .await;
    assert_eq!(
        issued["restriction"]["permissions"],
        json!(["laissez.principals.read"])
    );
    let (status, _) = server
        .call(Method::GET, "/v1/principals", &reader, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    for (method, path, body) in [
        (Method::GET, "/v1/tokens", None),
        (Method::GET, "/v1/policies", None),
        (
            Method::POST,
            "/v1/principals",
            Some(json!({"kind": "user", "name": "mallory"})),
        ),
    ] {
        let (status, value) = server.call(method, path, &reader, body.as_ref()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {value}");
        is_problem(&value, status);
    }
    // It cannot mint a wider token for its own principal either.
    let (status, _) = server
        .call(
            Method::POST,
            "/v1/tokens",
            &reader,
            Some(&json!({"principal": "carol"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // The listing shows the limit; the audit record names it.
    let (_, listed) = server.get("/v1/tokens?principal=carol").await;
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["restriction"]["permissions"] == json!(["laissez.principals.read"])),
        "{listed}"
    );
    let (_, records) = server.get("/v1/audit?limit=1000").await;
    assert!(
        records
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["action"] == "token.create"
                && r["detail"]["permissions"] == json!(["laissez.principals.read"]))
    );

    // Never wider than the principal, and each refusal changes nothing.
    add(&server, "user", "dave", None).await;
    server
        .post(
            "/v1/policies",
            json!({"principal": "dave", "role": "laissez-auditor", "scope": "/"}),
        )
        .await;
    let before = counts(&server).await;
    for (body, says) in [
        // dave does not hold it.
        (
            json!({"principal": "dave", "permissions": ["laissez.principals.write"]}),
            "laissez.principals.write",
        ),
        // No role grants it: a typo.
        (
            json!({"principal": "dave", "permissions": ["laissez.principals.raed"]}),
            "no role grants",
        ),
        // Not the role's own.
        (
            json!({"principal": "dave", "role": "laissez-auditor", "permissions": ["laissez.principals.write"]}),
            "does not have the permission",
        ),
        // Not a permission name at all.
        (
            json!({"principal": "dave", "permissions": ["Principals Read!"]}),
            "permission",
        ),
        // Not a list of names.
        (
            json!({"principal": "dave", "permissions": "laissez.principals.read"}),
            "permissions",
        ),
    ] {
        let (status, value) = server.post("/v1/tokens", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {value}");
        is_problem(&value, status);
        assert!(
            value["detail"].as_str().unwrap().contains(says),
            "{body}: {value}"
        );
    }
    assert_eq!(counts(&server).await, before);
    // Within the role: allowed, and only the listed ones work.
    let (narrow, _) = token(
        &server,
        json!({"principal": "dave", "role": "laissez-auditor", "permissions": ["laissez.audit.read"]}),
    )
    .await;
    let (status, _) = server
        .call(Method::GET, "/v1/audit?limit=1", &narrow, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = server
        .call(Method::GET, "/v1/principals", &narrow, None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_api_authorizes_through_policies() {
    let server = TestServer::start();
    add(&server, "user", "carol", None).await;
    server
        .post(
            "/v1/policies",
            json!({"principal": "carol", "role": "laissez-auditor", "scope": "/"}),
        )
        .await;
    let (carol, _) = token(&server, json!({"principal": "carol"})).await;
    let (status, _) = server
        .call(Method::GET, "/v1/principals", &carol, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, value) = server
        .call(
            Method::POST,
            "/v1/principals",
            &carol,
            Some(&json!({"kind": "user", "name": "mallory"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    is_problem(&value, status);
    assert!(
        value["detail"]
            .as_str()
            .unwrap()
            .contains("laissez.principals.write")
    );
    // An auditor cannot grant what they do not hold.
    let (status, _) = server
        .call(
            Method::POST,
            "/v1/policies",
            &carol,
            Some(&json!({"principal": "carol", "role": "laissez-admin", "scope": "/"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Denials are audited with the chain.
    let (_, records) = server.get("/v1/audit?limit=1000").await;
    let denied = records
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] == "denied" && r["chain"][0]["name"] == "carol")
        .count();
    assert_eq!(denied, 2);
    // The admin's admin token restricted to the auditor role cannot write either.
    let (restricted, _) = token(
        &server,
        json!({"principal": "admin", "role": "laissez-auditor"}),
    )
    .await;
    let (status, _) = server
        .call(
            Method::POST,
            "/v1/principals",
            &restricted,
            Some(&json!({"kind": "user", "name": "dave"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread")]
async fn check_names_the_granting_policy_and_intersects_the_chain() {
    let server = TestServer::start();
    add(&server, "user", "alice", None).await;
    add(&server, "agent", "bot", Some("alice")).await;
    server
        .post(
            "/v1/roles",
            json!({"name": "wiki-reader", "permissions": ["wiki.pages.read"]}),
        )
        .await;
    let (_, alice_policy) = server
        .post(
            "/v1/policies",
            json!({"principal": "alice", "role": "wiki-reader", "scope": "acme/apps/wiki"}),
        )
        .await;
    let check = |principal: &'static str, resource: &'static str| {
        let server = &server;
        async move {
            let (status, value) = server
                .post(
                    "/v1/check",
                    json!({"principal": principal, "permission": "wiki.pages.read", "resource": resource}),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{value}");
            value
        }
    };
    let allowed = check("alice", "acme/apps/wiki/pages/42").await;
    assert_eq!(allowed["allowed"], true);
    assert!(
        allowed["explanation"]
            .as_str()
            .unwrap()
            .contains(alice_policy["id"].as_str().unwrap())
    );
    assert_eq!(
        check("alice", "acme/apps/wiki2").await["allowed"],
        false,
        "no leak to a sibling"
    );
    assert_eq!(
        check("alice", "acme/apps").await["allowed"],
        false,
        "no leak to a parent"
    );
    // The agent holds nothing yet: intersection denies, naming the agent.
    let denied = check("bot", "acme/apps/wiki/pages/42").await;
    assert_eq!(denied["allowed"], false);
    assert_eq!(denied["decision"]["reason"]["principal"]["name"], "bot");
    server
        .post(
            "/v1/policies",
            json!({"principal": "bot", "role": "wiki-reader", "scope": "acme"}),
        )
        .await;
    assert_eq!(
        check("bot", "acme/apps/wiki/pages/42").await["allowed"],
        true
    );
    assert_eq!(
        check("bot", "acme/apps/blog").await["allowed"],
        false,
        "the agent's wider grant is cut to its owner's"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_a_clear_problem_and_changes_nothing() {
    let server = TestServer::start();
    add(&server, "user", "alice", None).await;
    let before = counts(&server).await;
    let cases = [
        (
            json!({"principal": "alice", "ttl": "-5m"}),
            StatusCode::BAD_REQUEST,
            "ttl",
        ),
        (
            json!({"principal": "alice", "ttl": "10y"}),
            StatusCode::BAD_REQUEST,
            "maximum",
        ),
        (
            json!({"principal": "alice", "ttl": "0s"}),
            StatusCode::BAD_REQUEST,
            "ttl",
        ),
        (
            json!({"principal": "alice", "scope": "acme//wiki"}),
            StatusCode::BAD_REQUEST,
            "scope",
        ),
        (
            json!({"principal": "nobody"}),
            StatusCode::NOT_FOUND,
            "unknown principal",
        ),
        (
            json!({"principal": "alice", "colour": "red"}),
            StatusCode::BAD_REQUEST,
            "colour",
        ),
        (json!({"principal": 5}), StatusCode::BAD_REQUEST, "shape"),
    ];
    for (body, status, needle) in cases {
        let (got, value) = server.post("/v1/tokens", body.clone()).await;
        assert_eq!(got, status, "{body} → {value}");
        is_problem(&value, status);
        assert!(
            value["detail"].as_str().unwrap().contains(needle),
            "{body} → {value}"
        );
    }
    let raw = |body: &'static str| {
        server
            .client()
            .post(format!("{}/v1/tokens", server.url))
            .bearer_auth(&server.admin_token)
            .header("content-type", "application/json")
            .body(body)
    };
    let response = raw("{\"principal\": ").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let big = format!(
        "{{\"principal\": \"alice\", \"description\": \"{}\"}}",
        "x".repeat(100_000)
    );
    let response = server
        .client()
        .post(format!("{}/v1/tokens", server.url))
        .bearer_auth(&server.admin_token)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let (status, value) = server.get("/v1/nothing-here").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    is_problem(&value, status);
    assert_eq!(counts(&server).await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_and_unknown_tokens_are_refused_and_audited() {
    let server = TestServer::start();
    let mut altered = server.admin_token.clone().into_bytes();
    let i = altered.len() - 10;
    altered[i] = if altered[i] == b'a' { b'b' } else { b'a' };
    let altered = String::from_utf8(altered).unwrap();
    let (status, value) = whoami(&server, &altered).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        value["detail"].as_str().unwrap().contains("checksum"),
        "{value}"
    );
    let unknown =
        laissez_token::Token::generate(&Default::default(), laissez_token::Kind::User).unwrap();
    let (status, value) = whoami(&server, unknown.expose()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(value["detail"].as_str().unwrap().contains("not known"));
    let response = server
        .client()
        .get(format!("{}/v1/whoami", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let (_, records) = server.get("/v1/audit?limit=1000").await;
    let failures = records
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] == "unauthenticated")
        .count();
    assert_eq!(failures, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_parallel_token_creations_all_land() {
    let server = std::sync::Arc::new(TestServer::start());
    add(&server, "user", "alice", None).await;
    let audit_before = server.get("/v1/audit/verify").await.1["records"]
        .as_i64()
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..200 {
        let server = server.clone();
        tasks.push(tokio::spawn(async move {
            let (status, value) = server
                .post(
                    "/v1/tokens",
                    json!({"principal": "alice", "description": format!("parallel {i}")}),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{value}");
            value["token"].as_str().unwrap().to_owned()
        }));
    }
    let mut secrets = std::collections::HashSet::new();
    for task in tasks {
        secrets.insert(task.await.unwrap());
    }
    assert_eq!(secrets.len(), 200);
    // Lists are paged (100 by default): ask for a page that holds them all.
    let (_, listed) = server.get("/v1/tokens?principal=alice&limit=1000").await;
    assert_eq!(listed.as_array().unwrap().len(), 200);
    let (_, verification) = server.get("/v1/audit/verify").await;
    assert_eq!(verification["first_break"], Value::Null);
    assert_eq!(
        verification["records"].as_i64().unwrap(),
        audit_before + 200
    );
    for secret in secrets.iter().take(20) {
        assert_eq!(whoami(&server, secret).await.0, StatusCode::OK);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_reuses_the_data_folder() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    let server = TestServer::start_in(&dir);
    let admin = server.admin_token.clone();
    add(&server, "user", "alice", None).await;
    let (alice, _) = token(&server, json!({"principal": "alice", "ttl": "2h"})).await;
    server.stop();
    let server = TestServer::start_in(&dir);
    assert_eq!(
        server.admin_token, admin,
        "the admin token file is not rewritten"
    );
    assert_eq!(whoami(&server, &alice).await.0, StatusCode::OK);
    let (_, users) = server.get("/v1/principals?kind=user").await;
    assert_eq!(users.as_array().unwrap().len(), 2, "no second admin");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("admin-token"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_store_answers_503_and_acknowledges_nothing() {
    let server = TestServer::start();
    server.store.close();
    let (status, value) = server
        .post("/v1/principals", json!({"kind": "user", "name": "zed"}))
        .await;
    // Authentication reads still work, the audited write does not.
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{value}");
    is_problem(&value, status);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_only_data_folder_is_refused_at_start() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("ro");
    std::fs::create_dir(&dir).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o500)).unwrap();
    }
    let probe = dir.join("probe");
    let writable = std::fs::write(&probe, b"").is_ok();
    let target = if writable {
        // Running as root: permissions do not stop writes, so use a path that
        // cannot be a folder instead.
        let file = temp.path().join("a-file");
        std::fs::write(&file, b"").unwrap();
        file
    } else {
        dir.clone()
    };
    let runtime = tokio::runtime::Handle::current();
    let result = runtime.spawn(async move {
        laissez_server::run::start(&target, "127.0.0.1:0", &Default::default())
            .await
            .err()
    });
    let error = result.await.unwrap().expect("start must fail");
    let message = error.to_string();
    assert!(message.contains("data folder"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_describes_the_api() {
    let server = TestServer::start();
    let document: Value = reqwest::get(format!("{}/openapi.json", server.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/v1/tokens",
        "/v1/whoami",
        "/v1/principals",
        "/v1/policies",
        "/v1/check",
        "/v1/audit/verify",
    ] {
        assert!(document["paths"][path].is_object(), "{path} missing");
    }
    assert!(document["components"]["schemas"]["Problem"].is_object());
    assert!(document["components"]["schemas"]["CreateToken"].is_object());
}
