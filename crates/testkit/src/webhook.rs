//! A webhook receiver for tests: it checks each POST's `Laissez-Signature`
//! with the shared secret (an unsigned or mis-signed delivery gets 401 and
//! is not kept), keeps the JSON bodies in arrival order, and can refuse the
//! next deliveries with 503 to show that the sender retries.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;

/// A running receiver.
#[derive(Clone)]
pub struct Receiver {
    /// Where it listens (`http://127.0.0.1:PORT/hook`).
    pub url: String,
    /// The bodies it accepted, in arrival order.
    pub bodies: Arc<Mutex<Vec<Value>>>,
    /// How many more deliveries it refuses with 503.
    pub refuse: Arc<AtomicUsize>,
    /// How many it refused so far.
    pub refused: Arc<AtomicUsize>,
}

impl Receiver {
    /// A copy of the bodies accepted so far.
    pub fn bodies(&self) -> Vec<Value> {
        self.bodies.lock().map(|b| b.clone()).unwrap_or_default()
    }
}

/// Starts a receiver checking signatures made with `secret`.
pub async fn receiver(secret: &'static str) -> Receiver {
    let receiver = Receiver {
        url: String::new(),
        bodies: Arc::default(),
        refuse: Arc::default(),
        refused: Arc::default(),
    };
    let state = receiver.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let state = state.clone();
            async move {
                let signature = headers
                    .get("laissez-signature")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                let t: i64 = signature
                    .split(',')
                    .find_map(|p| p.strip_prefix("t="))
                    .and_then(|t| t.parse().ok())
                    .unwrap_or_default();
                if laissez_server::leaks::notify::signature(secret, t, &body) != signature {
                    return StatusCode::UNAUTHORIZED;
                }
                let refused = state
                    .refuse
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
                if refused.is_ok() {
                    state.refused.fetch_add(1, Ordering::SeqCst);
                    return StatusCode::SERVICE_UNAVAILABLE;
                }
                let Ok(body) = serde_json::from_slice(&body) else {
                    return StatusCode::BAD_REQUEST;
                };
                if let Ok(mut bodies) = state.bodies.lock() {
                    bodies.push(body);
                }
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let url = format!("http://{}/hook", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    Receiver { url, ..receiver }
}
