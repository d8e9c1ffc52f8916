//! The durable outbox: every mail is written to sled before the first
//! attempt, retried with exponential backoff and jitter on temporary
//! failures, given up on permanent ones with the reason recorded, and removed
//! only once the relay has accepted it. It survives restarts: a queued mail
//! is delivered after the daemon comes back.
//!
//! Building a mail is apart from sending it (as in lettre): callers build a
//! `lettre::Message`, the outbox stores it, and `deliver` hands it to the
//! configured [`Transport`], SMTP or `.eml` files.
//!
//! Three trees: `outbox` holds queued mails by id, `mail_status` the status
//! of every mail (queued, sent, failed) for `GET /api/v1/reports/{id}`,
//! and `marks` the progress marks of `marks`.
//!
//! - `config`: `[mail]`; `transport`: SMTP and files; `deliver`: the
//!   delivery loop; `marks`: progress marks written with the mails.

mod config;
mod deliver;
pub mod marks;
mod transport;

pub use config::{MailConfig, RecipientError, Security, TransportKind, address};
pub use deliver::Retry;
pub(crate) use marks::Marks;
pub use transport::{SendError, Transport, TransportError};

use chrono::Utc;
use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::TransactionError;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::Notify;

/// Why the outbox could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("mail queue: {0}")]
    Store(#[from] sled::Error),
    #[error("mail queue: cannot encode an entry: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("mail queue: a task stopped: {0}")]
    Task(String),
}

impl OutboxError {
    /// The outbox's transactions never abort; their storage errors remain.
    fn from_transaction(e: TransactionError<()>) -> OutboxError {
        match e {
            TransactionError::Storage(e) => OutboxError::Store(e),
            TransactionError::Abort(()) => OutboxError::Task("transaction aborted".into()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Queued,
    Sent,
    Failed,
}

/// A mail's status, as `GET /api/v1/reports/{id}` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub id: String,
    pub status: State,
    pub attempts: u32,
    pub last_error: Option<String>,
    /// RFC 3339.
    pub created: String,
    pub(crate) finished: Option<String>,
    /// Unix milliseconds of the next attempt while queued.
    pub(crate) next_attempt_ms: i64,
}

/// A queued mail: the formatted message and its envelope.
#[derive(Serialize, Deserialize)]
struct Queued {
    message: Vec<u8>,
    from: String,
    to: Vec<String>,
}

#[derive(Clone)]
pub struct Outbox {
    db: sled::Db,
    queue: sled::Tree,
    status: sled::Tree,
    marks: Marks,
    wake: Arc<Notify>,
    /// Gauges and counters for /metrics.
    pub stats: Arc<OutboxStats>,
}

#[derive(Default)]
pub struct OutboxStats {
    pub queued: AtomicU64,
    pub sent: AtomicU64,
    pub failed: AtomicU64,
    pub(crate) temporary_failures: AtomicU64,
}

impl Outbox {
    pub fn open(db: &sled::Db) -> Result<Outbox, OutboxError> {
        let status = db.open_tree("mail_status")?;
        let outbox = Outbox {
            db: db.clone(),
            queue: db.open_tree("outbox")?,
            marks: Marks::open(db, &status)?,
            status,
            wake: Arc::new(Notify::new()),
            stats: Arc::default(),
        };
        outbox
            .stats
            .queued
            .store(outbox.queue.len() as u64, Ordering::Relaxed);
        Ok(outbox)
    }

    /// The progress marks (see [`marks`]).
    pub(crate) fn marks(&self) -> &Marks {
        &self.marks
    }

    /// Queues a built message; returns once it is durable (one fsync).
    /// `id` is the caller's (a report request id) so that its status can be
    /// asked for. `mark` (name, value) is set in the same transaction: a
    /// schedule's slot, how far the alert log has been mailed.
    pub(crate) fn enqueue(
        &self,
        id: &str,
        message: &lettre::Message,
        mark: Option<(&str, &str)>,
    ) -> Result<(), OutboxError> {
        let envelope = message.envelope();
        let queued = Queued {
            message: message.formatted(),
            from: envelope.from().map(|a| a.to_string()).unwrap_or_default(),
            to: envelope.to().iter().map(|a| a.to_string()).collect(),
        };
        let now = Utc::now();
        let status = Status {
            id: id.to_owned(),
            status: State::Queued,
            attempts: 0,
            last_error: None,
            created: now.to_rfc3339(),
            finished: None,
            next_attempt_ms: now.timestamp_millis(),
        };
        let q = serde_json::to_vec(&queued)?;
        let s = serde_json::to_vec(&status)?;
        // Counted before the mark moves: `/metrics` must never show the
        // alert log handled while its mail is not yet counted as waiting.
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        let written = (&self.queue, &self.status, self.marks.tree())
            .transaction(|(queue, statuses, marks)| {
                queue.insert(id.as_bytes(), q.as_slice())?;
                statuses.insert(id.as_bytes(), s.as_slice())?;
                if let Some((name, value)) = mark {
                    marks.insert(name.as_bytes(), value.as_bytes())?;
                }
                Ok(())
            })
            .map_err(OutboxError::from_transaction);
        if let Err(e) = written {
            self.stats.queued.fetch_sub(1, Ordering::Relaxed);
            return Err(e);
        }
        self.db.flush()?;
        self.wake.notify_one();
        Ok(())
    }

    /// The status of mail `id`, if it is known.
    pub fn status(&self, id: &str) -> Option<Status> {
        let v = self.status.get(id.as_bytes()).ok()??;
        serde_json::from_slice::<Status>(&v).ok()
    }
}
