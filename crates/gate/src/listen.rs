//! The one HTTP/1 listener every Laissez port uses (the server's and each
//! gate's), so none of them can be held open by clients that connect and
//! then say nothing.
//!
//! Three bounds hold on every connection:
//! - the request head must arrive within [`Limits::header_read_timeout`]
//!   (also the longest an idle keep-alive connection waits for its next
//!   request);
//! - a connection on which no byte moves in either direction for
//!   [`Limits::idle_timeout`] is closed, even in the middle of a request;
//! - at most [`Limits::max_connections`] are open at once. When the cap is
//!   reached, a new connection evicts the oldest one that has no request in
//!   progress (a slow-header client, or an idle keep-alive one), so a flood
//!   of slow clients cannot keep a health check or an operator out; if every
//!   connection is busy, new ones wait in the kernel's backlog.
//!
//! Over TLS ([`serve_tls`]) the handshake runs in the connection's own task
//! within [`laissez_tls::HANDSHAKE_TIMEOUT`], counted against the cap and
//! evictable like an idle connection; a failed one is logged at debug and
//! dropped. Every request on a TLS connection carries the connection's
//! [`ClientCertificate`] as an extension.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use laissez_tls::{ClientCertificate, Tls};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};

/// The bounds on a listener's connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The longest a client may take to send a request head.
    pub header_read_timeout: Duration,
    /// The longest a connection may stay open with no byte moving.
    pub idle_timeout: Duration,
    /// Open connections at most.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            header_read_timeout: HEADER_READ_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
            max_connections: MAX_CONNECTIONS,
        }
    }
}

/// Serves `app` on `listener` within `limits` until `shutdown` completes;
/// then stops accepting, lets requests in progress finish (at most
/// [`DRAIN_TIMEOUT`]) and returns. Handlers see the peer address as
/// [`ConnectInfo<SocketAddr>`].
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    accept(listener, None, app, limits, shutdown).await
}

/// [`serve`] over TLS: each connection's handshake first, then HTTP/1 with
/// the client's certificate (or [`ClientCertificate::none`]) in every
/// request's extensions, beside [`ConnectInfo<SocketAddr>`].
pub async fn serve_tls(
    listener: TcpListener,
    tls: Tls,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    accept(listener, Some(tls), app, limits, shutdown).await
}

/// The accept loop of [`serve`] and [`serve_tls`].
async fn accept(
    listener: TcpListener,
    tls: Option<Tls>,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let connections = Arc::new(Connections::default());
    let (stop, stopped) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    let max = limits.max_connections.max(1);
    loop {
        // At the cap, make room first: evict an idle connection, or wait
        // for one to close.
        while connections.len() >= max {
            if !connections.evict_oldest_idle() {
                tokio::select! {
                    () = connections.closed.notified() => {}
                    () = tokio::time::sleep(Duration::from_millis(50)) => {}
                    () = &mut shutdown => return drain(stop, &connections).await,
                }
            } else {
                // Let the evicted task run and leave.
                tokio::task::yield_now().await;
                break;
            }
        }
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors or a connection reset before accept:
                    // pause briefly rather than spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => return drain(stop, &connections).await,
        };
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            peer,
            app: app.clone(),
            limits,
            slot: connections.open(),
            connections: connections.clone(),
            stopped: stopped.clone(),
        };
        tokio::spawn(connection.run(stream, tls.clone()));
    }
}

/// One accepted connection and what serving it needs.
struct Connection {
    peer: SocketAddr,
    app: Router,
    limits: Limits,
    slot: Arc<Slot>,
    connections: Arc<Connections>,
    stopped: watch::Receiver<bool>,
}

impl Connection {
    /// Serves the connection (after its TLS handshake, with `tls`) until it
    /// ends, is evicted, idles out or the listener shuts down.
    async fn run(mut self, stream: TcpStream, tls: Option<Tls>) {
        let activity = Arc::new(Activity::new());
        let watched = Watched {
            inner: stream,
            activity: activity.clone(),
        };
        let peer = self.peer;
        match tls {
            None => self.http(watched, activity, None).await,
            Some(tls) => {
                // Bounded by the handshake timeout; an evicted connection or
                // a shutdown drops it at once.
                let handshake = tokio::select! {
                    result = tls.accept(watched) => Some(result),
                    () = self.slot.evict.notified() => None,
                    _ = self.stopped.wait_for(|stopped| *stopped) => None,
                };
                match handshake {
                    Some(Ok((stream, certificate))) => {
                        self.http(stream, activity, Some(certificate)).await;
                    }
                    Some(Err(error)) => tracing::debug!(%error, %peer, "TLS handshake failed"),
                    None => tracing::debug!(%peer, "connection dropped during its TLS handshake"),
                }
            }
        }
        self.connections.close(self.slot.id);
    }

    /// Serves HTTP/1 on `io` until the connection ends, is evicted, idles
    /// out or the listener shuts down (gracefully: the request in progress
    /// finishes).
    async fn http<S>(
        &mut self,
        io: S,
        activity: Arc<Activity>,
        certificate: Option<ClientCertificate>,
    ) where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (peer, limits, slot) = (self.peer, self.limits, self.slot.clone());
        let stopped = &mut self.stopped;
        let io = TokioIo::new(io);
        let busy = slot.clone();
        let app = self.app.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let guard = Busy::enter(busy.clone());
            let mut request = request.map(Body::new);
            request.extensions_mut().insert(ConnectInfo(peer));
            if let Some(certificate) = &certificate {
                request.extensions_mut().insert(certificate.clone());
            }
            let app = app.clone();
            async move {
                let response = app.oneshot_call(request).await;
                Ok::<_, std::convert::Infallible>(response.map(|body| {
                    Body::new(Tracked {
                        inner: body,
                        _busy: guard,
                    })
                }))
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .keep_alive(true);
        let conn = builder.serve_connection(io, service).with_upgrades();
        let mut conn = std::pin::pin!(conn);
        let check = (limits.idle_timeout / 4).max(Duration::from_millis(100));
        let mut draining = *stopped.borrow();
        if draining {
            conn.as_mut().graceful_shutdown();
        }
        loop {
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%error, %peer, "connection ended");
                    }
                    break;
                }
                () = slot.evict.notified() => {
                    tracing::debug!(%peer, "connection evicted to make room");
                    break;
                }
                changed = stopped.changed(), if !draining => {
                    if changed.is_err() || *stopped.borrow() {
                        draining = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
                () = tokio::time::sleep(check) => {
                    if activity.idle_for() >= limits.idle_timeout {
                        tracing::debug!(%peer, "connection idle too long");
                        break;
                    }
                }
            }
        }
    }
}

/// Stops accepting and waits for open connections to finish their requests.
async fn drain(stop: watch::Sender<bool>, connections: &Connections) -> std::io::Result<()> {
    let _ = stop.send(true);
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    while connections.len() > 0 && Instant::now() < deadline {
        tokio::select! {
            () = connections.closed.notified() => {}
            () = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    }
    Ok(())
}

/// The open connections.
#[derive(Default)]
struct Connections {
    open: Mutex<HashMap<u64, Arc<Slot>>>,
    next: AtomicU64,
    closed: Notify,
}

impl Connections {
    fn len(&self) -> usize {
        self.slots().len()
    }

    /// The open connections. A panic elsewhere cannot leave the map
    /// inconsistent (each change is one insert or remove), so a poisoned
    /// lock is still used rather than stopping the listener.
    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Slot>>> {
        self.open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn open(&self) -> Arc<Slot> {
        let slot = Arc::new(Slot {
            id: self.next.fetch_add(1, Ordering::Relaxed),
            requests: AtomicUsize::new(0),
            evict: Notify::new(),
        });
        self.slots().insert(slot.id, slot.clone());
        slot
    }

    fn close(&self, id: u64) {
        self.slots().remove(&id);
        self.closed.notify_one();
    }

    /// Tells the oldest connection with no request in progress to close, and
    /// forgets it at once so that it is not chosen twice. Whether there was one.
    fn evict_oldest_idle(&self) -> bool {
        let mut open = self.slots();
        let oldest = open
            .values()
            .filter(|slot| slot.requests.load(Ordering::Acquire) == 0)
            .map(|slot| slot.id)
            .min();
        match oldest.and_then(|id| open.remove(&id)) {
            Some(slot) => {
                slot.evict.notify_one();
                true
            }
            None => false,
        }
    }
}

/// One open connection.
struct Slot {
    id: u64,
    /// Requests in progress: from the head's arrival to the end of the response body.
    requests: AtomicUsize,
    evict: Notify,
}

/// Counts a request in progress on its connection while alive.
struct Busy(Arc<Slot>);

impl Busy {
    fn enter(slot: Arc<Slot>) -> Busy {
        slot.requests.fetch_add(1, Ordering::AcqRel);
        Busy(slot)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.requests.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its request counted until it is done.
struct Tracked {
    inner: Body,
    _busy: Busy,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// When a byte last moved on a connection.
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last)
    }
}

/// A stream that records activity.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Calling a router once, without naming tower's `Service` trait.
trait OneshotCall {
    fn oneshot_call(
        self,
        request: hyper::Request<Body>,
    ) -> impl Future<Output = hyper::Response<Body>> + Send;
}

impl OneshotCall for Router {
    fn oneshot_call(
        self,
        request: hyper::Request<Body>,
    ) -> impl Future<Output = hyper::Response<Body>> + Send {
        use tower_service::Service;
        let mut router = self;
        async move {
            match router.call(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            }
        }
    }
}

/// Default: time for a request head.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default: time with no byte moving (longer than the revocation feed's
/// 30-second long poll).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// Default: open connections at most.
pub const MAX_CONNECTIONS: usize = 1024;
/// The longest a shutdown waits for requests in progress.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eviction_picks_the_oldest_idle_connection() {
        let connections = Connections::default();
        let a = connections.open();
        let b = connections.open();
        let c = connections.open();
        let _busy = Busy::enter(a.clone());
        assert!(connections.evict_oldest_idle());
        assert_eq!(connections.len(), 2);
        let open = connections.slots();
        assert!(open.contains_key(&a.id), "a busy connection stays");
        assert!(!open.contains_key(&b.id), "the oldest idle one goes");
        assert!(open.contains_key(&c.id));
    }

    #[test]
    fn nothing_is_evicted_when_every_connection_is_busy() {
        let connections = Connections::default();
        let a = connections.open();
        let _busy = Busy::enter(a);
        assert!(!connections.evict_oldest_idle());
        assert_eq!(connections.len(), 1);
    }
}
