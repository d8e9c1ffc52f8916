//! Accepting connections: bounds on how many are served at once, in all
//! and from one address, and deadlines for slow or idle clients, so that
//! neither a flood of idle sockets nor requests trickling in byte by byte
//! can starve `/healthz` or hold up a shutdown. (axum's own `serve` has
//! neither.)
//!
//! When every slot is taken, the connection waiting the longest makes
//! room (see `slots`): one idle between requests, or one whose request is
//! still arriving. A connection that proved who is speaking (the API token,
//! a dashboard session) is never closed for a newcomer, so the admins and
//! their log shippers keep their connections whatever anonymous clients do.

use super::slots::{Admitted, Bounds, Slot, Slots};
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use http_body::Frame;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

/// How long connections may finish their requests after shutdown begins.
const DRAIN: Duration = Duration::from_secs(30);

/// Least time between two "connection limit reached" log lines.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// Marks a response to a request that proved who is speaking: its
/// connection is never closed to make room.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Trusted;

/// The bounds of [`serve`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub max_connections: usize,
    pub(crate) max_connections_per_address: usize,
    /// Time to send a request's headers; also the idle time allowed
    /// between requests on a kept-alive connection.
    pub(crate) header_timeout: Duration,
}

/// What [`serve`] reports.
pub(crate) struct Watch {
    /// A connection closed at once: every slot was taken by a trusted one.
    pub refused: Box<dyn Fn() + Send + Sync>,
    /// A waiting connection closed to make room.
    pub(crate) evicted: Box<dyn Fn() + Send + Sync>,
    /// The connections open: waiting for a request, answering one.
    pub open: super::slots::Show,
}

/// Serves `app` on `listener` until `stop` is cancelled, then lets the
/// connections finish (idle ones close at once) for at most [`DRAIN`].
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    stop: CancellationToken,
    watch: Watch,
) {
    let bounds = Bounds {
        max: limits.max_connections,
        per_peer: limits.max_connections_per_address,
        evict_busy: true,
    };
    let slots: Slots<IpAddr> = Slots::new(bounds, watch.open.clone());
    let mut last_warned: Option<Instant> = None;
    let mut connections = JoinSet::new();
    while let Some((stream, peer)) = next(&listener, &stop).await {
        while connections.try_join_next().is_some() {}
        let slot = match slots.admit(peer.ip().to_canonical()) {
            Admitted::Yes { slot, evicted } => {
                if evicted {
                    (watch.evicted)();
                }
                slot
            }
            Admitted::No => {
                (watch.refused)();
                if last_warned.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
                    last_warned = Some(Instant::now());
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        peer = %peer,
                        "every connection of the API is held by a trusted client; closing new ones"
                    );
                }
                continue;
            }
        };
        let (app, stop) = (app.clone(), stop.clone());
        connections.spawn(connection(stream, peer, app, limits, slot, stop));
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
pub(crate) async fn next(
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

async fn connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: Limits,
    slot: Slot<IpAddr>,
    stop: CancellationToken,
) {
    let slot = Arc::new(slot);
    let tracked = slot.clone();
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        let slot = tracked.clone();
        slot.idle(false);
        let answer = app.clone().oneshot(req);
        async move {
            let response = answer.await?;
            if response.extensions().get::<Trusted>().is_some() {
                slot.trust();
            }
            // Answering until its body has gone out.
            Ok::<_, std::convert::Infallible>(response.map(|body| {
                Body::new(Answering {
                    body,
                    slot: Some(slot),
                })
            }))
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .serve_connection(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        () = slot.closed().cancelled() => {
            tracing::debug!(peer = %peer, "connection closed to make room");
            return;
        }
        () = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(peer = %peer, error = %e, "connection ended");
    }
}

/// A response body that marks its connection waiting again once it has
/// gone out (or was dropped).
struct Answering {
    body: Body,
    slot: Option<Arc<Slot<IpAddr>>>,
}

impl Answering {
    fn done(&mut self) {
        if let Some(slot) = self.slot.take() {
            slot.idle(true);
        }
    }
}

impl http_body::Body for Answering {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            self.done();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Answering {
    fn drop(&mut self) {
        self.done();
    }
}
