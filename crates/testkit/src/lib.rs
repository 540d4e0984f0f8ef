//! A real Laissez server for tests and benchmarks: a temporary (or given)
//! data folder, a free loopback port, its own runtime thread, and a small
//! HTTP client that returns status and JSON. Tests drive the server only over
//! HTTP, as users do.

pub mod browser;
pub mod chromium;
pub mod debian;
pub mod gate;
pub mod node;
pub mod pki;
pub mod python;
pub mod task;
pub mod webhook;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::thread::JoinHandle;

use laissez_server::bootstrap::ADMIN_TOKEN_FILE;
use laissez_server::run::start;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::sync::oneshot;

/// The admin tokens of the servers this process started, by URL (so that
/// helpers given only a server's URL, such as [`gate::start_gate`], can
/// set up what they need as its administrator).
static ADMINS: Mutex<Option<HashMap<String, String>>> = Mutex::new(None);

/// The admin token of the test server at `url`, if this process started it.
pub fn admin_token_of(url: &str) -> Option<String> {
    ADMINS
        .lock()
        .ok()?
        .as_ref()?
        .get(url.trim_end_matches('/'))
        .cloned()
}

/// A running server. Dropping it shuts the server down.
pub struct TestServer {
    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub url: String,
    /// The bootstrap admin token.
    pub admin_token: String,
    /// The data folder.
    pub data_dir: PathBuf,
    /// The server's store, to simulate failures.
    pub store: laissez_store::SqliteStore,
    client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    _temp: Option<tempfile::TempDir>,
}

impl TestServer {
    /// Starts a server on a fresh temporary data folder.
    pub fn start() -> TestServer {
        let temp = tempfile::tempdir().expect("temporary folder");
        let dir = temp.path().join("data");
        let mut server = TestServer::start_in(&dir);
        server._temp = Some(temp);
        server
    }

    /// Starts a server on `data_dir` (created if needed, reused if present).
    pub fn start_in(data_dir: &Path) -> TestServer {
        TestServer::start_with(data_dir, laissez_server::run::Options::default())
    }

    /// Starts a server on a fresh temporary data folder with `options`.
    pub fn start_with_options(options: laissez_server::run::Options) -> TestServer {
        let temp = tempfile::tempdir().expect("temporary folder");
        let dir = temp.path().join("data");
        let mut server = TestServer::start_with(&dir, options);
        server._temp = Some(temp);
        server
    }

    /// Starts a server on `data_dir` with `options`.
    pub fn start_with(data_dir: &Path, options: laissez_server::run::Options) -> TestServer {
        let data_dir = data_dir.to_path_buf();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let dir = data_dir.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let started = match start(&dir, "127.0.0.1:0", &options).await {
                    Ok(started) => started,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok((started.addr, started.store.clone())));
                let _ = started
                    .serve(async move {
                        let _ = shutdown_rx.await;
                    })
                    .await;
            });
        });
        let (addr, store) = ready_rx
            .recv()
            .expect("server thread")
            .unwrap_or_else(|e| panic!("server did not start: {e}"));
        let admin_token = std::fs::read_to_string(data_dir.join(ADMIN_TOKEN_FILE))
            .expect("admin token file")
            .trim()
            .to_owned();
        let url = format!("http://{addr}");
        if let Ok(mut admins) = ADMINS.lock() {
            admins
                .get_or_insert_with(HashMap::new)
                .insert(url.clone(), admin_token.clone());
        }
        TestServer {
            url,
            admin_token,
            data_dir,
            store,
            client: reqwest::Client::new(),
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
            _temp: None,
        }
    }

    /// Stops the server and waits for it.
    pub fn stop(mut self) {
        self.shutdown_now();
    }

    fn shutdown_now(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    /// Sends a request with `token` and an optional JSON body; returns the
    /// status and the JSON body (`Value::Null` when the body is not JSON).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let bytes = response.bytes().await.expect("body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// GET as the admin.
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, &self.admin_token, None).await
    }

    /// POST JSON as the admin.
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, &self.admin_token, Some(&body))
            .await
    }

    /// Creates the user `name` with `password` (to sign in on the web
    /// pages); returns the user.
    pub async fn add_person(&self, name: &str, password: &str) -> Value {
        let (status, user) = self
            .post(
                "/v1/principals",
                serde_json::json!({"kind": "user", "name": name}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{user}");
        let (status, body) = self
            .call(
                Method::PUT,
                &format!("/v1/principals/{name}/password"),
                &self.admin_token,
                Some(&serde_json::json!({"password": password})),
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        user
    }

    /// Lets `user` act with `permissions` on `scope` (`/` for everywhere):
    /// creates a role holding them and a policy granting it, as the admin;
    /// returns the policy's id. A person can let an application have only
    /// the scopes their own policies grant.
    pub async fn grant_app_role(&self, user: &str, permissions: &[&str], scope: &str) -> String {
        grant_app_role(&self.url, user, permissions, scope).await
    }

    /// The raw HTTP client.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }
}

/// [`TestServer::grant_app_role`] for a test server of this process known
/// by its URL.
pub async fn grant_app_role(
    server_url: &str,
    user: &str,
    permissions: &[&str],
    scope: &str,
) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let admin = admin_token_of(server_url).expect("a test server of this process");
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        http.post(format!("{server_url}{path}"))
            .bearer_auth(&admin)
            .json(&body)
            .send()
    };
    let role = format!("app-{user}-{n}");
    let made = post(
        "/v1/roles",
        serde_json::json!({"name": role, "permissions": permissions}),
    )
    .await
    .expect("create role");
    assert!(
        made.status().is_success(),
        "role: {}",
        made.text().await.unwrap_or_default()
    );
    let granted = post(
        "/v1/policies",
        serde_json::json!({"principal": user, "role": role, "scope": scope}),
    )
    .await
    .expect("create policy");
    let status = granted.status();
    let policy: Value = granted.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "policy: {policy}");
    policy["id"]
        .as_str()
        .unwrap_or_else(|| panic!("policy id: {policy}"))
        .to_owned()
}

/// The claims of a JWT (its signature is not checked).
pub fn jwt_claims(jwt: &str) -> Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).expect("a JWT has three parts");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// A free TCP port on 127.0.0.1 (for a server that must be told its port up front).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown_now();
    }
}
