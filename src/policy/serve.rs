//! Accepting policy connections and answering their requests, one after
//! the other on each connection; answers to pipelined requests go out
//! together.

use super::Service;
use super::listen::Peer;
use super::listen::{Listener, Peers, Stream};
use super::protocol::{Action, MAX_REQUEST, RequestError};
use crate::metrics::PolicyCount;
use crate::server::slots::{Admitted, Bounds, Slot, Slots};
use std::io;
use std::time::{Duration, Instant};
use tokio::io::{
    AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter,
};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Time the rest of a request may take once it has begun.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Most bytes read while skipping an oversized request; beyond, the
/// connection is closed (a client that never ends its request).
const MAX_SKIP: usize = 1 << 20;
/// Least time between two log lines about refused peers, and about a full
/// service.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// The bounds of [`run`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub max_connections: usize,
    pub max_connections_per_peer: usize,
    /// Time a connection may stay idle between requests.
    pub(crate) idle_timeout: Duration,
}

/// A log line at most every [`WARN_EVERY`].
#[derive(Default)]
struct Every(Option<Instant>);

impl Every {
    fn due(&mut self) -> bool {
        let due = self.0.is_none_or(|t| t.elapsed() >= WARN_EVERY);
        if due {
            self.0 = Some(Instant::now());
        }
        due
    }
}

/// Serves `listener` until `stop` is cancelled, to `peers` only;
/// connections close at their next request boundary (an answer under way
/// is sent).
pub(crate) async fn run(
    listener: Listener,
    peers: Peers,
    service: Service,
    limits: Limits,
    stop: CancellationToken,
) {
    let bounds = Bounds {
        max: limits.max_connections,
        per_peer: limits.max_connections_per_peer,
        evict_busy: false,
    };
    let metrics = service.metrics.clone();
    let slots = Slots::new(
        bounds,
        std::sync::Arc::new(move |idle, answering| metrics.policy_connections(idle, answering)),
    );
    let (mut refused_peer, mut full) = (Every::default(), Every::default());
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors, typically: back off rather
                // than spin; the connections in hand will close.
                tracing::warn!(error = %e, "policy service: cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Before a byte is read: a peer that may not speak counts nothing.
        if !peers.admits(peer) {
            service.metrics.policy(PolicyCount::PeerRefused);
            if refused_peer.due() {
                tracing::warn!(
                    peer = %peer,
                    "policy service: a connection from a peer outside policy.allow (or a local \
                     user outside the socket's group) was closed unread"
                );
            }
            continue;
        }
        let slot = match slots.admit(peer) {
            Admitted::Yes { slot, evicted } => {
                if evicted {
                    service.metrics.policy(PolicyCount::IdleClosed);
                }
                slot
            }
            Admitted::No => {
                service.metrics.policy(PolicyCount::Refused);
                if full.due() {
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        max_connections_per_peer = limits.max_connections_per_peer,
                        peer = %peer,
                        "policy service: every connection is answering a request; closing new ones"
                    );
                }
                continue;
            }
        };
        let (service, stop) = (service.clone(), stop.clone());
        connections.spawn(async move {
            if let Err(e) = serve(stream, &service, slot, limits.idle_timeout, &stop).await {
                tracing::debug!(error = %e, peer = %peer, "policy connection ended");
            }
        });
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

async fn serve(
    stream: Stream,
    service: &Service,
    slot: Slot<Peer>,
    idle: Duration,
    stop: &CancellationToken,
) -> io::Result<()> {
    match stream {
        Stream::Tcp(s) => {
            s.set_nodelay(true)?;
            let (rd, wr) = s.into_split();
            connection(rd, wr, service, &slot, idle, stop).await
        }
        Stream::Unix(s) => {
            let (rd, wr) = s.into_split();
            connection(rd, wr, service, &slot, idle, stop).await
        }
    }
}

/// Answers the requests of one connection until it closes, idles too
/// long, is closed to make room, or `stop` is cancelled between two
/// requests.
async fn connection<R, W>(
    rd: R,
    wr: W,
    service: &Service,
    slot: &Slot<Peer>,
    idle: Duration,
    stop: &CancellationToken,
) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut rd = BufReader::new(rd);
    let mut wr = BufWriter::new(wr);
    let mut request = Vec::with_capacity(1024);
    loop {
        if rd.buffer().is_empty() {
            let waited = tokio::select! {
                () = stop.cancelled() => return Ok(()),
                () = slot.closed().cancelled() => return Ok(()),
                r = tokio::time::timeout(idle, rd.fill_buf()) => r,
            };
            match waited {
                Err(_) => return Ok(()),
                Ok(Err(e)) => return Err(e),
                Ok(Ok([])) => return Ok(()),
                Ok(Ok(_)) => slot.idle(false),
            }
        }
        request.clear();
        let read = tokio::time::timeout(REQUEST_TIMEOUT, read_request(&mut rd, &mut request))
            .await
            .unwrap_or(Ok(Read::Slow))?;
        let action = match read {
            Read::Whole => service.answer(&request).await,
            Read::TooLong => {
                service.not_understood(&RequestError::TooLong.to_string());
                Action::Dunno
            }
            Read::Endless | Read::Slow => {
                service.not_understood(&format!(
                    "a request longer than {MAX_SKIP} bytes or slower than {} s; connection closed",
                    REQUEST_TIMEOUT.as_secs()
                ));
                return Ok(());
            }
            Read::Eof => return Ok(()),
        };
        wr.write_all(&action.answer()).await?;
        if rd.buffer().is_empty() {
            // Idle from before the answer leaves: a client that has it
            // finds the connection counted as idle.
            slot.idle(true);
            wr.flush().await?;
        }
    }
}

/// How reading one request ended.
enum Read {
    /// Its lines are in the buffer.
    Whole,
    /// Longer than [`MAX_REQUEST`]: read to its end, not kept.
    TooLong,
    /// Longer than [`MAX_SKIP`]: abandoned.
    Endless,
    /// Took longer than [`REQUEST_TIMEOUT`].
    Slow,
    /// The connection closed before its empty line.
    Eof,
}

/// Reads one request's lines into `buf`, without the empty line that ends
/// it; keeps at most [`MAX_REQUEST`] bytes.
async fn read_request<R: AsyncRead + Unpin>(
    rd: &mut BufReader<R>,
    buf: &mut Vec<u8>,
) -> io::Result<Read> {
    let (mut skipped, mut line_start) = (0usize, true);
    loop {
        let start = buf.len();
        let room = (MAX_REQUEST + 2).saturating_sub(start).max(2) as u64;
        let n = (&mut *rd).take(room).read_until(b'\n', buf).await?;
        if n == 0 {
            return Ok(Read::Eof);
        }
        let line = &buf[start..];
        if line_start && (line == b"\n" || line == b"\r\n") {
            buf.truncate(start);
            return Ok(if skipped > 0 {
                Read::TooLong
            } else {
                Read::Whole
            });
        }
        line_start = line.ends_with(b"\n");
        if buf.len() > MAX_REQUEST || skipped > 0 {
            skipped += buf.len();
            buf.clear();
            if skipped > MAX_SKIP {
                return Ok(Read::Endless);
            }
        }
    }
}
