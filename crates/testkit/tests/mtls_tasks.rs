//! Task credentials bound to a TLS client certificate (RFC 8705) instead of
//! a DPoP key: on a server listening with TLS and a client CA, an agent
//! that authenticates with its certificate (a `tls_client_auth` client, or
//! its `lzat_` token over a connection with a certificate) and sends no
//! DPoP proof gets a task bound to that certificate (`cnf.x5t#S256`, token
//! type `Bearer`). The task's `lztt_` token works only over a connection
//! with the same certificate: none, or a colleague's from the same CA, is
//! refused and audited as a possible theft; a sub-task narrowed from it
//! needs the certificate too. A client registered for certificate-bound
//! tokens that also sends a proof gets a task bound to both.

use laissez_dpop::ProofKey;
use laissez_testkit::jwt_claims;
use laissez_testkit::pki::{Issued, TlsServer};
use laissez_testkit::task::{TOKEN_EXCHANGE, unix_now};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const TASK_TOKEN: &str = "urn:laissez:params:oauth:token-type:task_token";

struct Setup {
    server: TlsServer,
    /// The agent's certificate, naming `agent.example`.
    certificate: Issued,
    /// The agent's `lzat_` token.
    agent_token: String,
}

/// An agent `bot` owned by the admin, both holding notes.read on the notes
/// resource, with an `lzat_` token and a certificate of the client CA.
async fn setup() -> Setup {
    let server = TlsServer::start().await;
    let bot = server
        .admin(
            Method::POST,
            "/v1/principals",
            json!({"kind": "agent", "name": "bot", "owner": "admin"}),
        )
        .await;
    assert!(bot["id"].is_string(), "{bot}");
    server
        .admin(
            Method::PUT,
            "/v1/resources",
            json!({"resource": "https://notes.example", "name": "notes",
                "scopes": {"notes.read": "Read notes", "notes.write": "Write notes"}}),
        )
        .await;
    server
        .admin(
            Method::POST,
            "/v1/roles",
            json!({"name": "notes-reader", "permissions": ["notes.read"]}),
        )
        .await;
    for principal in ["admin", "bot"] {
        server
            .admin(
                Method::POST,
                "/v1/policies",
                json!({"principal": principal, "role": "notes-reader", "scope": "/"}),
            )
            .await;
    }
    let issued = server
        .admin(Method::POST, "/v1/tokens", json!({"principal": "bot"}))
        .await;
    Setup {
        certificate: server.client_ca.client_for("bot", &["agent.example"]),
        agent_token: issued["token"].as_str().unwrap().to_owned(),
        server,
    }
}

impl Setup {
    /// A certificate from the same CA for the same name, held by someone
    /// else: what must not pass for the agent's.
    fn colleague(&self) -> Issued {
        self.server
            .client_ca
            .client_for("colleague", &["agent.example"])
    }

    /// A `tls_client_auth` client for the agent; `bound` asks for
    /// certificate-bound tokens.
    async fn client(&self, bound: bool) -> String {
        let client = self
            .server
            .admin(
                Method::POST,
                "/v1/clients",
                json!({"client_name": "bot over mTLS", "grant_types": ["client_credentials"],
                    "scope": "notes.read", "principal": "bot",
                    "token_endpoint_auth_method": "tls_client_auth",
                    "tls_client_auth_san_dns": "agent.example",
                    "tls_client_certificate_bound_access_tokens": bound}),
            )
            .await;
        client["client_id"].as_str().unwrap().to_owned()
    }

    /// A token exchange as `client_id` over a connection presenting
    /// `certificate`, with a DPoP proof by `key` when given.
    async fn exchange(
        &self,
        client_id: &str,
        certificate: Option<&Issued>,
        key: Option<&ProofKey>,
        extra: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let url = format!("{}/oauth/token", self.server.url);
        let mut form = vec![
            ("grant_type", TOKEN_EXCHANGE),
            ("client_id", client_id),
            ("scope", "notes.read"),
            ("resource", "https://notes.example"),
            ("task_description", "read the release notes"),
        ];
        // A parameter in `extra` replaces the default of the same name.
        form.retain(|(name, _)| extra.iter().all(|(other, _)| other != name));
        form.extend_from_slice(extra);
        let mut request = self.server.client(certificate).post(&url).form(&form);
        if let Some(key) = key {
            request = request.header(
                "dpop",
                key.proof("POST", &url, None, None, unix_now()).unwrap(),
            );
        }
        answer(request.send().await.unwrap()).await
    }

    /// `GET /v1/whoami` with `token` (as Bearer) over a connection
    /// presenting `certificate`.
    async fn whoami(&self, token: &str, certificate: Option<&Issued>) -> (StatusCode, Value) {
        self.call(Method::GET, "/v1/whoami", token, certificate, None)
            .await
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        certificate: Option<&Issued>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .server
            .client(certificate)
            .request(method, format!("{}{path}", self.server.url))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        answer(request.send().await.unwrap()).await
    }

    /// The audit records with `action`.
    async fn audit(&self, action: &str) -> Vec<Value> {
        let (_, records) = self
            .call(
                Method::GET,
                "/v1/audit?limit=1000",
                &self.server.admin,
                None,
                None,
            )
            .await;
        records
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["action"] == action)
            .cloned()
            .collect()
    }
}

async fn answer(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn an_exchange_without_a_proof_binds_the_task_to_the_clients_certificate() {
    let s = setup().await;
    let client_id = s.client(false).await;
    let thumbprint = laissez_tls::thumbprint(&s.certificate.der);

    // The JWT for the app: bound to the certificate, sent as Bearer.
    let (status, body) = s
        .exchange(&client_id, Some(&s.certificate), None, &[])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer", "{body}");
    let claims = jwt_claims(body["access_token"].as_str().unwrap());
    assert_eq!(claims["cnf"]["x5t#S256"], thumbprint, "{claims}");
    assert!(claims["cnf"].get("jkt").is_none(), "{claims}");
    assert!(claims["task"].is_string(), "{claims}");

    // The lztt_ token: the API takes it only over the same certificate.
    let (status, body) = s
        .exchange(
            &client_id,
            Some(&s.certificate),
            None,
            &[("requested_token_type", TASK_TOKEN)],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let task_token = body["access_token"].as_str().unwrap().to_owned();
    assert!(task_token.starts_with("lztt_"), "{body}");
    let (status, me) = s.whoami(&task_token, Some(&s.certificate)).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["task"]["bound_to"]["x5t#S256"], thumbprint, "{me}");

    let colleague = s.colleague();
    for (what, certificate) in [
        ("no certificate", None),
        ("a colleague's", Some(&colleague)),
    ] {
        let (status, body) = s.whoami(&task_token, certificate).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
        assert!(
            body["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("TLS client certificate"),
            "{what}: {body}"
        );
    }
    let refusals = s.audit("task.refuse").await;
    assert_eq!(refusals.len(), 2, "{refusals:?}");
    assert!(
        refusals
            .iter()
            .all(|r| r["detail"]["possible_theft"] == true),
        "{refusals:?}"
    );
    let issued = s.audit("task.issue").await;
    assert!(
        issued.iter().all(|r| r["detail"]["x5t#S256"] == thumbprint),
        "{issued:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rest_face_binds_to_the_connections_certificate_and_sub_tasks_need_it() {
    let s = setup().await;
    let thumbprint = laissez_tls::thumbprint(&s.certificate.der);
    let ask = json!({"description": "read notes", "permissions": ["notes.read"],
        "resources": ["https://notes.example"], "ttl": "5m"});

    // Neither a proof nor a certificate: nothing to bind to, nothing issued.
    let (status, body) = s
        .call(
            Method::POST,
            "/v1/tasks",
            &s.agent_token,
            None,
            Some(ask.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "invalid_dpop_proof", "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("TLS client certificate"),
        "{body}"
    );
    assert!(s.audit("task.issue").await.is_empty());

    let (status, body) = s
        .call(
            Method::POST,
            "/v1/tasks",
            &s.agent_token,
            Some(&s.certificate),
            Some(ask.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["token_type"], "Bearer", "{body}");
    assert_eq!(body["task"]["bound_to"], json!({"x5t#S256": thumbprint}));
    let parent = body["token"].as_str().unwrap().to_owned();
    let jwt = body["access_tokens"][0]["access_token"].as_str().unwrap();
    assert_eq!(jwt_claims(jwt)["cnf"]["x5t#S256"], thumbprint);

    // Narrowing the task needs its certificate: a colleague's is refused.
    let colleague = s.colleague();
    let (status, body) = s
        .call(
            Method::POST,
            "/v1/tasks",
            &parent,
            Some(&colleague),
            Some(ask.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, child) = s
        .call(
            Method::POST,
            "/v1/tasks",
            &parent,
            Some(&s.certificate),
            Some(ask),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{child}");
    assert_eq!(child["task"]["parent"], body_id(&s, &parent).await);
    assert_eq!(child["task"]["bound_to"]["x5t#S256"], thumbprint);
}

/// The id of the task whose token is `token`, as it sees itself.
async fn body_id(s: &Setup, token: &str) -> Value {
    let (status, me) = s.whoami(token, Some(&s.certificate)).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    me["task"]["id"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_registered_for_certificate_bound_tokens_binds_both_keys() {
    let s = setup().await;
    let client_id = s.client(true).await;
    let key = ProofKey::generate().unwrap();
    let (status, body) = s
        .exchange(
            &client_id,
            Some(&s.certificate),
            Some(&key),
            &[("requested_token_type", TASK_TOKEN)],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "DPoP", "{body}");
    let task_token = body["access_token"].as_str().unwrap().to_owned();

    // The certificate alone is not enough: the DPoP key is bound too.
    let (status, body) = s.whoami(&task_token, Some(&s.certificate)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let url = format!("{}/v1/whoami", s.server.url);
    let signed = |certificate: Option<&Issued>| {
        let proof = key
            .proof("GET", &url, Some(&task_token), None, unix_now())
            .unwrap();
        s.server
            .client(certificate)
            .get(&url)
            .header("authorization", format!("DPoP {task_token}"))
            .header("dpop", proof)
    };
    let (status, body) = answer(signed(None).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the key alone: {body}");
    let (status, me) = answer(signed(Some(&s.certificate)).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(
        me["task"]["bound_to"],
        json!({"jkt": key.thumbprint(), "x5t#S256": laissez_tls::thumbprint(&s.certificate.der)})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn authlib_over_mutual_tls_gets_a_task_bound_to_its_certificate() {
    let s = setup().await;
    let client_id = s.client(false).await;
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let ca = write("ca.pem", &s.server.server_ca.certificate.pem());
    let cert = write("cert.pem", &s.certificate.cert);
    let key = write("key.pem", &s.certificate.key);
    let steps = laissez_testkit::python::script_steps(
        "task_authlib_mtls.py",
        &[
            &s.server.url,
            &client_id,
            &ca,
            &cert,
            &key,
            "https://notes.example",
        ],
    )
    .await;
    let metadata = &steps["metadata"];
    assert_eq!(metadata["bound"], true, "{metadata}");
    assert!(
        metadata["methods"]
            .to_string()
            .contains("\"tls_client_auth\""),
        "{metadata}"
    );
    let exchange = &steps["exchange"];
    assert_eq!(exchange["token_type"], "Bearer", "{exchange}");
    assert_eq!(exchange["issued_token_type"], TASK_TOKEN, "{exchange}");
    assert_eq!(exchange["prefix"], "lztt_", "{exchange}");
    let used = &steps["use"];
    assert_eq!(used["with_certificate"], 200, "{used}");
    assert_eq!(
        used["bound_to"]["x5t#S256"],
        laissez_tls::thumbprint(&s.certificate.der),
        "{used}"
    );
    assert_eq!(used["without_certificate"], 401, "{used}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gate_over_tls_admits_the_task_jwt_only_with_its_certificate_until_it_completes() {
    let s = setup().await;
    let client_id = s.client(false).await;
    // A gate over TLS in front of a small app, trusting the server's private CA.
    let dir = tempfile::tempdir().unwrap();
    let tls =
        laissez_testkit::pki::listener_tls(dir.path(), &s.server.server_ca, &s.server.client_ca);
    let app = axum::Router::new().fallback(|| async { "hello from the app" });
    let app_url = laissez_testkit::gate::serve_app(app).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gate_url = format!("https://{}", listener.local_addr().unwrap());
    s.server
        .admin(
            Method::PUT,
            "/v1/resources",
            json!({"resource": gate_url, "name": "notes-gate", "scopes": {"notes.read": "Read notes"}}),
        )
        .await;
    let mut config = laissez_gate::GateConfig::new(
        "notes-gate",
        gate_url.parse().unwrap(),
        app_url.parse().unwrap(),
        &s.server.url,
    );
    config.default_scopes = vec!["notes.read".into()];
    config.feed_token = Some(s.server.admin.clone());
    // Without the CA the gate cannot even reach its issuer.
    assert!(laissez_gate::Gate::new(config.clone()).await.is_err());
    config.issuer_ca = Some(s.server.server_ca.certificate.pem().into_bytes());
    let gate = laissez_gate::Gate::new(config).await.unwrap();
    tokio::spawn(gate.serve_tls(listener, tls, std::future::pending()));

    let (status, body) = s
        .exchange(
            &client_id,
            Some(&s.certificate),
            None,
            &[("resource", &gate_url)],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let jwt = body["access_token"].as_str().unwrap().to_owned();
    let task_id = jwt_claims(&jwt)["task"].as_str().unwrap().to_owned();
    let get = |certificate: Option<&Issued>| {
        s.server
            .client(certificate)
            .get(format!("{gate_url}/notes"))
            .bearer_auth(&jwt)
            .send()
    };
    let answer = get(Some(&s.certificate)).await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(answer.text().await.unwrap(), "hello from the app");
    let colleague = s.colleague();
    for (what, certificate) in [
        ("no certificate", None),
        ("a colleague's", Some(&colleague)),
    ] {
        let answer = get(certificate).await.unwrap();
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED, "{what}");
    }
    // Completed: refused at the gate on the very next request.
    let (status, body) = s
        .call(
            Method::POST,
            &format!("/v1/tasks/{task_id}/complete"),
            &s.server.admin,
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let answer = get(Some(&s.certificate)).await.unwrap();
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
}
