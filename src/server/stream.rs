//! Large JSON responses written in chunks as they are serialized.
//!
//! A report of 100,000 senders is 15 MB of JSON. Serializing it into one
//! buffer held those 15 MB (and the report) until the last byte was sent;
//! here a blocking thread serializes into [`CHUNK`]-sized pieces that the
//! response sends as they come, a few at a time.

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use http_body::Frame;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::mpsc;

/// Bytes per piece of the body.
const CHUNK: usize = 64 * 1024;
/// Pieces serialized ahead of the client.
const AHEAD: usize = 4;

/// `value` as an `application/json` response, serialized on a blocking
/// thread while it is sent. A client that goes away stops the serializer.
pub(super) fn json<T: serde::Serialize + Send + 'static>(value: T) -> Response {
    let (tx, rx) = mpsc::channel(AHEAD);
    tokio::task::spawn_blocking(move || {
        let mut out = Chunks {
            tx,
            buf: Vec::with_capacity(CHUNK),
        };
        let written = serde_json::to_writer(&mut out, &value)
            .map_err(std::io::Error::from)
            .and_then(|()| std::io::Write::flush(&mut out));
        if let Err(e) = written {
            // The client is gone, or (a bug) the value cannot be written:
            // the body ends with an error, so it is never taken as whole.
            let _ = out.tx.blocking_send(Err(e));
        }
        // A large value leaves megabytes of freed heap: give them back
        // now, not at the next periodic release, so that reports in a row
        // do not pile up (five 100,000-sender reports right after start
        // peaked at 142–162 MB before).
        drop(value);
        crate::process::release_freed();
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        Body::new(Stream(rx)),
    )
        .into_response()
}

/// The serializer's side: fills a buffer, sends it when full.
struct Chunks {
    tx: mpsc::Sender<std::io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl std::io::Write for Chunks {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let piece = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx
            .blocking_send(Ok(Bytes::from(piece)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))
    }
}

/// The response's side.
struct Stream(mpsc::Receiver<std::io::Result<Bytes>>);

impl http_body::Body for Stream {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|piece| piece.map(|r| r.map(Frame::data)))
    }
}
