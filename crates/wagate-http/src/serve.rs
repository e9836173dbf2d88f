//! Serving HTTP/1.1 so that no client can starve the gateway. The webhook endpoint is on the
//! public internet by design, so idle sockets, trickled headers and slow bodies must not be able
//! to use up connections or file descriptors and lock Meta out.
//!
//! hyper serves each connection; around it this module keeps a registry of every open
//! connection and what it is doing:
//! - *idle*: waiting for a request, no byte of one yet — closed after `idle_timeout`;
//! - *head*: bytes of a request arrived, its handler has not started — closed when the whole
//!   head has not arrived within `header_timeout` of its first byte (slowloris);
//! - *body*: a handler waits for the request's body — cut with 408 when it arrives more slowly
//!   than `server.min_body_bytes_per_second` after `server.body_grace_seconds` ([`Paced`]);
//! - *busy*: a handler runs with its body read — bounded by the per-route deadlines
//!   (`TimeoutLayer`, 408).
//!
//! At most `max_connections` are open. A new connection beyond that closes the oldest idle,
//! head or body connection first (a webhook without a well-formed signature is refused before
//! its body, so it never waits there), so a flood of idle or slow sockets cannot keep Meta out;
//! only when every connection is busy is the new one refused. Closes are counted in
//! `wagate_connections_closed_total{reason}` and summed up in the log every 10 s.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Connection limits, from `[server]` in the configuration.
#[derive(Debug, Clone)]
pub struct Limits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    /// hyper's own read buffer: the most a request head may take before hyper refuses it.
    pub max_buf_size: usize,
    /// hyper's most header lines.
    pub max_headers: usize,
}

/// Why a connection was closed by the gateway (the `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    HeaderTimeout,
    IdleTimeout,
    Evicted,
    OverCapacity,
}

impl Reason {
    const ALL: [Reason; 4] = [
        Reason::HeaderTimeout,
        Reason::IdleTimeout,
        Reason::Evicted,
        Reason::OverCapacity,
    ];

    fn label(self) -> &'static str {
        match self {
            Reason::HeaderTimeout => "header_timeout",
            Reason::IdleTimeout => "idle_timeout",
            Reason::Evicted => "evicted",
            Reason::OverCapacity => "over_capacity",
        }
    }
}

const IDLE: u8 = 0;
const HEAD: u8 = 1;
const BUSY: u8 = 2;
const BODY: u8 = 3;

/// One open connection, as the registry sees it.
struct Conn {
    id: u64,
    state: AtomicU8,
    /// When the current state began (ms since the server started).
    since_ms: AtomicU64,
    /// When bytes last moved either way (ms since the server started).
    last_io_ms: AtomicU64,
    /// Handlers running on this connection (HTTP/1.1 runs one at a time; counted to be safe).
    in_flight: AtomicU64,
    /// Cancelled by the registry to close the connection (eviction).
    close: CancellationToken,
    /// The first byte of a request arrived: the watchdog times the head from now on.
    woken: tokio::sync::Notify,
}

impl Conn {
    fn set(&self, state: u8, now: u64) {
        self.state.store(state, Ordering::Release);
        self.since_ms.store(now, Ordering::Release);
    }
}

/// Every open connection, and the clock they share.
struct Registry {
    started: Instant,
    limits: Limits,
    conns: Mutex<BTreeMap<u64, Arc<Conn>>>,
    next_id: AtomicU64,
    closed: [AtomicU64; 4],
}

impl Registry {
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn count(&self, reason: Reason) {
        metrics::counter!("wagate_connections_closed_total", "reason" => reason.label()).increment(1);
        if let Some(c) = Reason::ALL
            .iter()
            .position(|r| *r == reason)
            .and_then(|i| self.closed.get(i))
        {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Registers a new connection; at the cap, first closes the oldest connection that is not
    /// running a handler. `None`: every connection is busy, refuse this one.
    fn admit(&self) -> Option<Arc<Conn>> {
        let now = self.now_ms();
        let mut conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        if conns.len() >= self.limits.max_connections {
            let victim = conns
                .values()
                .filter(|c| c.state.load(Ordering::Acquire) != BUSY && !c.close.is_cancelled())
                .min_by_key(|c| {
                    c.since_ms
                        .load(Ordering::Acquire)
                        .max(c.last_io_ms.load(Ordering::Acquire))
                })
                .cloned();
            match victim {
                Some(v) => {
                    v.close.cancel();
                    conns.remove(&v.id);
                }
                None => return None,
            }
        }
        let conn = Arc::new(Conn {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            state: AtomicU8::new(IDLE),
            since_ms: AtomicU64::new(now),
            last_io_ms: AtomicU64::new(now),
            in_flight: AtomicU64::new(0),
            close: CancellationToken::new(),
            woken: tokio::sync::Notify::new(),
        });
        conns.insert(conn.id, conn.clone());
        metrics::gauge!("wagate_connections_open").set(conns.len() as f64);
        Some(conn)
    }

    fn remove(&self, id: u64) {
        let mut conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        conns.remove(&id);
        metrics::gauge!("wagate_connections_open").set(conns.len() as f64);
    }

    /// When the connection's current state runs out, if it can (busy connections are bounded
    /// by the route deadlines instead).
    fn deadline(&self, conn: &Conn) -> Option<(u64, Reason)> {
        let since = conn.since_ms.load(Ordering::Acquire);
        match conn.state.load(Ordering::Acquire) {
            IDLE => {
                let last = since.max(conn.last_io_ms.load(Ordering::Acquire));
                Some((last + self.limits.idle_timeout.as_millis() as u64, Reason::IdleTimeout))
            }
            HEAD => Some((
                since + self.limits.header_timeout.as_millis() as u64,
                Reason::HeaderTimeout,
            )),
            _ => None,
        }
    }

    /// Logs a summary of what was closed, at most every 10 s, so a flood does not flood the log.
    async fn report(self: Arc<Self>, stop: CancellationToken) {
        let mut last = [0u64; 4];
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(10)) => {}
            }
            let now: Vec<u64> = self.closed.iter().map(|c| c.load(Ordering::Relaxed)).collect();
            let parts: Vec<String> = Reason::ALL
                .iter()
                .zip(now.iter().zip(last.iter()))
                .filter(|(_, (n, l))| n > l)
                .map(|(r, (n, l))| format!("{}={}", r.label(), n - l))
                .collect();
            if !parts.is_empty() {
                let open = self.conns.lock().map(|c| c.len()).unwrap_or_default();
                tracing::warn!(
                    closed = %parts.join(" "),
                    open,
                    max = self.limits.max_connections,
                    "closed slow, idle or surplus connections in the last 10 s"
                );
            }
            for (l, n) in last.iter_mut().zip(now) {
                *l = n;
            }
        }
    }
}

/// The socket, watched: the first byte of a request moves the connection from idle to head.
struct Watched {
    io: TcpStream,
    conn: Arc<Conn>,
    registry: Arc<Registry>,
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            let now = self.registry.now_ms();
            self.conn.last_io_ms.store(now, Ordering::Release);
            if self.conn.state.load(Ordering::Acquire) == IDLE {
                self.conn.set(HEAD, now);
                self.conn.woken.notify_one();
            }
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            let now = self.registry.now_ms();
            self.conn.last_io_ms.store(now, Ordering::Release);
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The app as hyper calls it on one connection: marks the connection busy while a handler runs.
#[derive(Clone)]
struct Tracked {
    router: Router,
    conn: Arc<Conn>,
    registry: Arc<Registry>,
    peer: std::net::SocketAddr,
}

/// Marks the connection idle again when the handler ends, however it ends.
struct BusyGuard {
    conn: Arc<Conn>,
    registry: Arc<Registry>,
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        if self.conn.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.conn.set(IDLE, self.registry.now_ms());
        }
    }
}

impl hyper::service::Service<hyper::Request<Incoming>> for Tracked {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn call(&self, req: hyper::Request<Incoming>) -> Self::Future {
        self.conn.in_flight.fetch_add(1, Ordering::AcqRel);
        self.conn.set(BUSY, self.registry.now_ms());
        let guard = BusyGuard {
            conn: self.conn.clone(),
            registry: self.registry.clone(),
        };
        let mut router = self.router.clone();
        let peer = self.peer;
        let reading = Reading {
            conn: self.conn.clone(),
            registry: self.registry.clone(),
        };
        Box::pin(async move {
            let _guard = guard;
            let mut req: Request = req.map(Body::new);
            req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
            req.extensions_mut().insert(reading);
            // A Router is always ready, so it may be called without polling readiness.
            tower::Service::call(&mut router, req).await
        })
    }
}

/// The connection a request came on, as the body guard (`limits::guard_body`) marks it: while the handler waits for the body, the connection may be closed to make room.
#[derive(Clone)]
pub struct Reading {
    conn: Arc<Conn>,
    registry: Arc<Registry>,
}

impl Reading {
    /// The handler waits for the body.
    pub fn started(&self) {
        self.moved(BUSY, BODY);
    }

    /// The body is read (or given up): the handler runs on.
    pub fn finished(&self) {
        self.moved(BODY, BUSY);
    }

    fn moved(&self, from: u8, to: u8) {
        if self
            .conn
            .state
            .compare_exchange(from, to, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.conn.since_ms.store(self.registry.now_ms(), Ordering::Release);
        }
    }
}

/// A request body that must keep coming: once `grace` has passed, at least `rate` bytes a
/// second on average since it began, else it ends with an error and `slow` is set (the guard
/// answers 408). The connection counts as reading its body until the body ends or is dropped.
pub struct Paced {
    inner: Body,
    received: u64,
    started: Instant,
    grace: Duration,
    rate: u64,
    timer: Pin<Box<tokio::time::Sleep>>,
    slow: Arc<std::sync::atomic::AtomicBool>,
    reading: Option<Reading>,
}

impl Paced {
    pub fn new(
        inner: Body,
        grace: Duration,
        rate: u64,
        slow: Arc<std::sync::atomic::AtomicBool>,
        reading: Option<Reading>,
    ) -> Self {
        if let Some(r) = &reading {
            r.started();
        }
        let started = Instant::now();
        Self {
            inner,
            received: 0,
            started,
            grace,
            rate: rate.max(1),
            timer: Box::pin(tokio::time::sleep_until(started + grace)),
            slow,
            reading,
        }
    }

    fn done(&mut self) {
        if let Some(r) = self.reading.take() {
            r.finished();
        }
    }
}

impl Drop for Paced {
    fn drop(&mut self) {
        self.done();
    }
}

impl hyper::body::Body for Paced {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                }
                if hyper::body::Body::is_end_stream(&this.inner) {
                    this.done();
                }
                return Poll::Ready(Some(Ok(frame)));
            }
            Poll::Ready(None) => {
                this.done();
                return Poll::Ready(None);
            }
            Poll::Ready(Some(Err(e))) => {
                this.done();
                return Poll::Ready(Some(Err(e)));
            }
            Poll::Pending => {}
        }
        // Nothing more yet: by when must more have come?
        let due = this.started + this.grace.max(Duration::from_millis(this.received * 1000 / this.rate));
        if Instant::now() >= due {
            this.slow.store(true, Ordering::Release);
            this.done();
            return Poll::Ready(Some(Err(axum::Error::new("the request body arrived too slowly"))));
        }
        this.timer.as_mut().reset(due);
        if this.timer.as_mut().poll(cx).is_ready() {
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        hyper::body::Body::is_end_stream(&self.inner)
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::Body::size_hint(&self.inner)
    }
}

/// Serves `app` on `listener` until `shutdown`, then lets running handlers finish.
pub async fn serve(listener: TcpListener, app: Router, limits: Limits, shutdown: CancellationToken) {
    let registry = Arc::new(Registry {
        started: Instant::now(),
        limits,
        conns: Mutex::new(BTreeMap::new()),
        next_id: AtomicU64::new(0),
        closed: Default::default(),
    });
    let tracker = TaskTracker::new();
    let report_stop = CancellationToken::new();
    tracker.spawn(registry.clone().report(report_stop.clone()));
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors or the like: the accept is retried shortly, and
                    // the cap keeps this from lasting.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            }
        };
        let Some(conn) = registry.admit() else {
            registry.count(Reason::OverCapacity);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        tracker.spawn(serve_connection(
            stream,
            peer,
            conn,
            registry.clone(),
            app.clone(),
            shutdown.clone(),
        ));
    }
    drop(listener);
    report_stop.cancel();
    tracker.close();
    tracker.wait().await;
}

async fn serve_connection(
    stream: TcpStream,
    peer: std::net::SocketAddr,
    conn: Arc<Conn>,
    registry: Arc<Registry>,
    app: Router,
    shutdown: CancellationToken,
) {
    let io = TokioIo::new(Watched {
        io: stream,
        conn: conn.clone(),
        registry: registry.clone(),
    });
    let service = Tracked {
        router: app,
        conn: conn.clone(),
        registry: registry.clone(),
        peer,
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        // Our own watchdog times heads from their first byte and idleness separately.
        .header_read_timeout(None)
        .max_buf_size(registry.limits.max_buf_size)
        .max_headers(registry.limits.max_headers);
    let served = builder.serve_connection(io, service);
    tokio::pin!(served);
    let mut shutting_down = false;
    loop {
        let deadline = registry.deadline(&conn);
        let sleep_for = match deadline {
            Some((at, _)) => Duration::from_millis(at.saturating_sub(registry.now_ms())),
            // Busy: look again after a while; the route deadlines bound the handler.
            None => registry.limits.idle_timeout.min(Duration::from_secs(5)),
        };
        tokio::select! {
            result = served.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                break;
            }
            // Idle to head: the head's deadline is sooner than the idle one slept for.
            _ = conn.woken.notified() => {}
            _ = conn.close.cancelled() => {
                // Evicted by a newer connection (the registry already dropped it).
                registry.count(Reason::Evicted);
                return;
            }
            _ = shutdown.cancelled(), if !shutting_down => {
                shutting_down = true;
                if conn.state.load(Ordering::Acquire) == BUSY {
                    served.as_mut().graceful_shutdown();
                } else {
                    break;
                }
            }
            _ = tokio::time::sleep(sleep_for) => {
                if let Some((at, reason)) = registry.deadline(&conn) {
                    if registry.now_ms() >= at {
                        registry.count(reason);
                        break;
                    }
                }
            }
        }
    }
    registry.remove(conn.id);
}
