//! A deadline for a request's whole body, from the request's start: a
//! client trickling a byte now and then cannot keep a connection (and what
//! it holds) for longer than `server.body_timeout_seconds`. (A timeout
//! between chunks restarts with every byte.)

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http_body::Frame;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// Why a body stopped: its deadline passed.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive whole within its deadline")]
pub(super) struct Expired;

/// Middleware: the body of every request must arrive whole within
/// `within` of the request's start.
pub(super) async fn limit(within: Duration, req: Request, next: Next) -> Response {
    let deadline = tokio::time::Instant::now() + within;
    let req = req.map(|body| {
        Body::new(Deadline {
            body,
            sleep: Box::pin(tokio::time::sleep_until(deadline)),
        })
    });
    next.run(req).await
}

struct Deadline {
    body: Body,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl http_body::Body for Deadline {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.body).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        match self.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(axum::Error::new(Expired)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// Whether reading a body failed because its deadline passed.
pub(super) fn expired(e: &axum::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.is::<Expired>() {
            return true;
        }
        cause = c.source();
    }
    false
}
