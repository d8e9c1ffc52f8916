//! Accepting connections: a bound on how many are served at once, and
//! deadlines for slow or idle clients, so that neither a flood of idle
//! sockets nor a half-sent request can starve `/healthz` or hold up a
//! shutdown. (axum's own `serve` has neither.)

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

/// How long connections may finish their requests after shutdown begins.
const DRAIN: Duration = Duration::from_secs(30);

/// Least time between two "connection limit reached" log lines.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// The bounds of [`serve`].
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    /// Time to send a request's headers; also the idle time allowed
    /// between requests on a kept-alive connection.
    pub header_timeout: Duration,
}

/// Serves `app` on `listener` until `stop` is cancelled, then lets the
/// connections finish (idle ones close at once) for at most [`DRAIN`].
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    stop: CancellationToken,
    on_refused: impl Fn() + Send + 'static,
) {
    let mut admission = Admission::new(limits.max_connections, "the API");
    let mut connections = JoinSet::new();
    while let Some((stream, peer)) = next(&listener, &stop).await {
        while connections.try_join_next().is_some() {}
        let Some(slot) = admission.admit(peer) else {
            on_refused();
            continue;
        };
        let (app, stop) = (app.clone(), stop.clone());
        connections.spawn(async move {
            connection(stream, peer, app, limits, stop).await;
            drop(slot);
        });
    }
    drop(listener);
    let drained = tokio::time::timeout(DRAIN, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            "connections still open after the drain time; closing them"
        );
        connections.shutdown().await;
    }
}

/// The next connection on `listener`, None once `stop` is cancelled. An
/// accept error (out of file descriptors, typically) backs off a little
/// rather than spin; the connections in hand will close.
pub async fn next(
    listener: &TcpListener,
    stop: &CancellationToken,
) -> Option<(tokio::net::TcpStream, SocketAddr)> {
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => return None,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok(a) => return Some(a),
            Err(e) => {
                tracing::warn!(error = %e, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// A bound on the connections served at once: beyond it a connection is
/// closed as it arrives, with a log line at most once a minute.
pub struct Admission {
    slots: Arc<Semaphore>,
    max: usize,
    /// What the connections are to, for the log.
    what: &'static str,
    last_warned: Option<Instant>,
}

impl Admission {
    pub fn new(max: usize, what: &'static str) -> Admission {
        Admission {
            slots: Arc::new(Semaphore::new(max)),
            max,
            what,
            last_warned: None,
        }
    }

    /// A slot for a connection from `peer`, held while it is served; None
    /// when all are taken (the caller drops the connection).
    pub fn admit(&mut self, peer: SocketAddr) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let slot = self.slots.clone().try_acquire_owned().ok();
        if slot.is_none() && self.last_warned.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
            self.last_warned = Some(Instant::now());
            tracing::warn!(
                max_connections = self.max,
                peer = %peer,
                to = self.what,
                "connection limit reached; closing new connections until some end"
            );
        }
        slot
    }
}

async fn connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: Limits,
    stop: CancellationToken,
) {
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        app.clone().oneshot(req)
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .serve_connection(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        () = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(peer = %peer, error = %e, "connection ended");
    }
}
