//! A small HTTP/1.1 load generator over loopback: keep-alive connections,
//! one request in flight per connection, every latency recorded.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::stats::Samples;

/// One request to repeat.
#[derive(Clone)]
pub struct Call {
    /// Method.
    pub method: Method,
    /// Path and query.
    pub path: String,
    /// Bearer token, if any.
    pub token: Option<String>,
    /// JSON body, if any.
    pub body: Option<String>,
    /// The status every answer must have.
    pub expect: StatusCode,
    /// HTTP Basic credentials (already base64), if any.
    pub basic: Option<String>,
    /// Whether the body is a form rather than JSON.
    pub form: bool,
}

/// Opens a keep-alive connection to `addr`.
pub async fn connect(addr: &str) -> SendRequest<Full<Bytes>> {
    let stream = TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    sender
}

/// Sends `call` once and returns the body.
pub async fn send(sender: &mut SendRequest<Full<Bytes>>, addr: &str, call: &Call) -> Bytes {
    let mut headers = Vec::new();
    if let Some(token) = &call.token {
        headers.push(("authorization", format!("Bearer {token}")));
    }
    if let Some(basic) = &call.basic {
        headers.push(("authorization", format!("Basic {basic}")));
    }
    let kind = if call.form {
        "application/x-www-form-urlencoded"
    } else {
        "application/json"
    };
    let body = call.body.clone().map(|body| (kind, body));
    let (status, bytes) = send_with(
        sender,
        addr,
        call.method.clone(),
        &call.path,
        &headers,
        body,
    )
    .await;
    assert_eq!(
        status,
        call.expect,
        "{} {}: {}",
        call.method,
        call.path,
        String::from_utf8_lossy(&bytes)
    );
    bytes
}

/// Sends one request with these headers and body (its media type and
/// text); returns the status and the body.
pub async fn send_with(
    sender: &mut SendRequest<Full<Bytes>>,
    addr: &str,
    method: Method,
    path: &str,
    headers: &[(&str, String)],
    body: Option<(&str, String)>,
) -> (StatusCode, Bytes) {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let body = match body {
        Some((kind, body)) => {
            request = request.header("content-type", kind);
            Full::new(Bytes::from(body))
        }
        None => Full::new(Bytes::new()),
    };
    sender.ready().await.expect("connection ready");
    let response = sender
        .send_request(request.body(body).expect("request"))
        .await
        .expect("response");
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, bytes)
}

/// Runs `total` calls over `connections` connections, one in flight each.
pub async fn run(addr: &str, call: &Call, connections: usize, total: usize) -> Samples {
    let per = total / connections;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let addr = addr.to_owned();
        let call = call.clone();
        tasks.push(tokio::spawn(async move {
            let mut sender = connect(&addr).await;
            let mut latencies = Vec::with_capacity(per);
            for _ in 0..per {
                let t = Instant::now();
                send(&mut sender, &addr, &call).await;
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut all: Vec<Duration> = Vec::with_capacity(total);
    for task in tasks {
        all.extend(task.await.expect("worker"));
    }
    Samples::new(all, start.elapsed())
}
