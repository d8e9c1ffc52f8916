//! The single writer: every batch of events goes through one thread that
//! owns all store writes, with group commit.
//!
//! Why one thread: counters are read-modify-write; with a single writer they
//! need no transactions. Why group commit: an acknowledged event must be on
//! disk, and an fsync costs milliseconds; requests that arrive while one
//! flush runs are applied together and share the next flush, so throughput
//! grows with concurrency instead of being capped at one fsync per request.

use crate::event::Event;
use crate::metrics::Metrics;
use crate::store::{IngestOutcome, PurgeStats, Writer};
use chrono::Utc;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Most requests folded into one group (one sled batch, one flush).
const MAX_GROUP_JOBS: usize = 256;
/// Most events in one group (a single larger request still forms a group
/// of its own). sled holds every node a batch rewrites until the batch
/// ends, a few kilobytes per event, so this bounds the writer's memory.
const MAX_GROUP_EVENTS: usize = 8_000;

#[derive(Debug, Clone, thiserror::Error)]
pub enum IngestError {
    #[error("the store could not save the events: {0}")]
    Store(String),
    #[error("the daemon is shutting down")]
    Closed,
}

type Reply<T> = oneshot::Sender<Result<T, IngestError>>;

/// A raw key/value written in the same batch as the events (log cursors).
pub type Extra = Vec<(Vec<u8>, Vec<u8>)>;

enum Job {
    Events {
        events: Vec<Event>,
        extra: Extra,
        reply: Reply<IngestOutcome>,
    },
    Purge {
        reply: Reply<PurgeStats>,
    },
    /// Wall-clock tick for the detectors (resolutions without new events).
    Tick,
}

/// Handle for submitting work to the writer; clone it freely. The writer
/// stops once every handle is dropped, after its last flush.
#[derive(Clone)]
pub struct Ingester {
    tx: mpsc::Sender<Job>,
}

impl Ingester {
    /// Starts the writer thread for `writer`; outcomes of every source are
    /// counted in `metrics`.
    pub fn spawn(writer: Writer, metrics: Arc<Metrics>) -> (Ingester, std::thread::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(1024);
        let handle = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || run_writer(writer, rx, metrics))
            .expect("spawning the store writer thread");
        (Ingester { tx }, handle)
    }

    /// Advances the detectors to the wall clock.
    pub async fn tick(&self) -> Result<(), IngestError> {
        self.tx
            .send(Job::Tick)
            .await
            .map_err(|_| IngestError::Closed)
    }

    /// Counts `events` and returns once they are durable on disk.
    pub async fn ingest(
        &self,
        events: Vec<Event>,
        extra: Extra,
    ) -> Result<IngestOutcome, IngestError> {
        let (job, rx) = events_job(events, extra);
        self.tx.send(job).await.map_err(|_| IngestError::Closed)?;
        rx.await.map_err(|_| IngestError::Closed)?
    }

    /// [`Ingester::ingest`] for threads outside the async runtime (log
    /// followers); blocks until the events are durable.
    pub fn ingest_blocking(
        &self,
        events: Vec<Event>,
        extra: Extra,
    ) -> Result<IngestOutcome, IngestError> {
        let (job, rx) = events_job(events, extra);
        self.tx
            .blocking_send(job)
            .map_err(|_| IngestError::Closed)?;
        rx.blocking_recv().map_err(|_| IngestError::Closed)?
    }

    /// Removes data older than the retention window.
    pub async fn purge(&self) -> Result<PurgeStats, IngestError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job::Purge { reply })
            .await
            .map_err(|_| IngestError::Closed)?;
        rx.await.map_err(|_| IngestError::Closed)?
    }
}

impl Job {
    /// Events the job carries (the group limit counts them).
    fn events(&self) -> usize {
        match self {
            Job::Events { events, .. } => events.len(),
            Job::Purge { .. } | Job::Tick => 0,
        }
    }
}

type ReplyRx<T> = oneshot::Receiver<Result<T, IngestError>>;

fn events_job(events: Vec<Event>, extra: Extra) -> (Job, ReplyRx<IngestOutcome>) {
    let (reply, rx) = oneshot::channel();
    (
        Job::Events {
            events,
            extra,
            reply,
        },
        rx,
    )
}

fn run_writer(mut writer: Writer, mut rx: mpsc::Receiver<Job>, metrics: Arc<Metrics>) {
    while let Some(first) = rx.blocking_recv() {
        let mut events = first.events();
        let mut jobs = vec![first];
        while jobs.len() < MAX_GROUP_JOBS && events < MAX_GROUP_EVENTS {
            match rx.try_recv() {
                Ok(job) => {
                    events += job.events();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        run_group(&mut writer, jobs, &metrics);
    }
    if let Err(e) = writer.store().flush() {
        tracing::error!(error = %e, "final store flush failed");
    }
}

/// Applies one group: all event jobs in one batch, one flush, then replies.
fn run_group(writer: &mut Writer, jobs: Vec<Job>, metrics: &Metrics) {
    let mut batches = Vec::new();
    let mut extra = Vec::new();
    let mut replies = Vec::new();
    let mut purges = Vec::new();
    let mut tick = false;
    for job in jobs {
        match job {
            Job::Events {
                events,
                extra: e,
                reply,
            } => {
                batches.push(events);
                extra.extend(e);
                replies.push(reply);
            }
            Job::Purge { reply } => purges.push(reply),
            Job::Tick => tick = true,
        }
    }
    let now = Utc::now();
    if !batches.is_empty() {
        let slices: Vec<&[Event]> = batches.iter().map(Vec::as_slice).collect();
        let result = writer
            .apply(&slices, &extra, now)
            .and_then(|outcomes| writer.store().flush().map(|()| outcomes));
        match result {
            Ok(outcomes) => {
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    metrics.events_ingested(&outcome);
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "storing events failed");
                for reply in replies {
                    let _ = reply.send(Err(IngestError::Store(e.to_string())));
                }
            }
        }
    }
    if tick {
        if let Err(e) = writer.tick(now).and_then(|()| writer.store().flush()) {
            tracing::error!(error = %e, "saving the detectors' state failed");
        }
    }
    metrics.alerts_raised(&writer.take_raised());
    for reply in purges {
        let result = writer
            .purge(now)
            .and_then(|stats| writer.store().flush().map(|()| stats))
            .map_err(|e| IngestError::Store(e.to_string()));
        let _ = reply.send(result);
    }
}
