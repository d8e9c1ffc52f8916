//! Accepting policy connections and answering their requests, one after
//! the other on each connection; answers to pipelined requests go out
//! together.

use super::Service;
use super::protocol::{Action, MAX_REQUEST, RequestError};
use crate::metrics::PolicyCount;
use crate::server::accept::{self, Admission};
use std::io;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Time the rest of a request may take once it has begun.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Most bytes read while skipping an oversized request; beyond, the
/// connection is closed (a client that never ends its request).
const MAX_SKIP: usize = 1 << 20;

/// The bounds of [`run`].
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    /// Time a connection may stay idle between requests.
    pub idle_timeout: Duration,
}

/// Serves `listener` until `stop` is cancelled; connections close at their
/// next request boundary (an answer under way is sent).
pub async fn run(listener: TcpListener, service: Service, limits: Limits, stop: CancellationToken) {
    let mut admission = Admission::new(limits.max_connections, "the policy service");
    let mut connections = JoinSet::new();
    loop {
        let next = tokio::select! {
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            next = accept::next(&listener, &stop) => next,
        };
        let Some((stream, peer)) = next else {
            break;
        };
        let Some(slot) = admission.admit(peer) else {
            service.metrics.policy(PolicyCount::Refused);
            continue;
        };
        let (service, stop) = (service.clone(), stop.clone());
        connections.spawn(async move {
            let _slot = slot;
            if let Err(e) = connection(stream, &service, limits.idle_timeout, &stop).await {
                tracing::debug!(error = %e, "policy connection ended");
            }
        });
    }
    while connections.join_next().await.is_some() {}
}

/// Answers the requests of one connection until it closes, idles too
/// long, or `stop` is cancelled between two requests.
async fn connection(
    stream: TcpStream,
    service: &Service,
    idle: Duration,
    stop: &CancellationToken,
) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let (rd, wr) = stream.into_split();
    let mut rd = BufReader::new(rd);
    let mut wr = BufWriter::new(wr);
    let mut request = Vec::with_capacity(1024);
    loop {
        if rd.buffer().is_empty() {
            let waited = tokio::select! {
                () = stop.cancelled() => return Ok(()),
                r = tokio::time::timeout(idle, rd.fill_buf()) => r,
            };
            match waited {
                Err(_) => return Ok(()),
                Ok(Err(e)) => return Err(e),
                Ok(Ok([])) => return Ok(()),
                Ok(Ok(_)) => {}
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
async fn read_request(rd: &mut BufReader<OwnedReadHalf>, buf: &mut Vec<u8>) -> io::Result<Read> {
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
