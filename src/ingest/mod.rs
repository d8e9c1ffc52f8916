//! The single writer: every batch of events goes through one thread that
//! owns all store writes, with group commit.
//!
//! Why one thread: counters are read-modify-write; with a single writer they
//! need no transactions. Why group commit: an acknowledged event must be on
//! disk, and an fsync costs milliseconds; requests that arrive while one
//! sync runs are journaled together and share the next one, so throughput
//! grows with concurrency instead of being capped at one fsync per request.
//! The counts of journaled requests are folded into the store at most
//! half a second later (see `store::writer`), or at once when a reader asks
//! through [`Ingester::sync`].
//!
//! The writer's thread drives its loop with the daemon's runtime (for the
//! channel and the fold deadline) but is not one of its workers: the sled
//! writes and fsyncs it does block only itself.

use crate::event::Event;
use crate::metrics::Metrics;
use crate::store::{IngestOutcome, Marks, PurgeStats, StoreError, Writer};
use chrono::Utc;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Most requests journaled as one group (one append, one fsync).
const MAX_GROUP_JOBS: usize = 256;
/// Most events in one group (a single larger request still forms a group
/// of its own): bounds how long the first request of a group waits.
const MAX_GROUP_EVENTS: usize = 8_000;

#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum IngestError {
    /// The store failed; shared by every request of the group it failed.
    #[error("the store could not save the events: {0}")]
    Store(Arc<StoreError>),
    #[error("the daemon is shutting down")]
    Closed,
    #[error("a change of {0} takes effect at the next restart")]
    Restart(&'static str),
}

type Reply<T> = oneshot::Sender<Result<T, IngestError>>;

pub(crate) use crate::store::journal::Extra;

mod health;
pub(crate) use health::Health;

enum Job {
    Events {
        events: Vec<Event>,
        extra: Extra,
        /// The policy service's submissions among them.
        marks: Marks,
        reply: Reply<IngestOutcome>,
    },
    Purge {
        reply: Reply<PurgeStats>,
    },
    /// Wall-clock tick for the detectors (resolutions without new events).
    Tick,
    /// Fold every acknowledged event into the store, then reply.
    Sync {
        reply: Reply<()>,
    },
    /// Fold, flush and exit, whatever handles remain (shutdown).
    Stop,
    /// New detector settings (a reload); replies whether they apply.
    Reconfigure {
        detect: Arc<crate::detect::DetectConfig>,
        reply: Reply<()>,
    },
}

/// Handle for submitting work to the writer; clone it freely. The writer
/// stops once every handle is dropped, after its last flush.
#[derive(Clone)]
pub(crate) struct Ingester {
    tx: mpsc::Sender<Job>,
    health: Arc<Health>,
}

/// While writes are refused, how often free space is looked at again.
const RECHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

impl Ingester {
    /// Starts the writer thread for `writer`, driven by the current
    /// runtime; outcomes of every source are counted in `metrics`. The
    /// thread ends after [`Ingester::stop`] or once every handle is gone.
    pub(crate) fn spawn(
        writer: Writer,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<(Ingester, std::thread::JoinHandle<()>)> {
        let (tx, rx) = mpsc::channel(1024);
        let runtime = tokio::runtime::Handle::current();
        let health = Arc::new(Health::default());
        let state = health.clone();
        let handle = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || runtime.block_on(run_writer(writer, rx, metrics, state)))?;
        Ok((Ingester { tx, health }, handle))
    }

    /// Why writes are refused at the moment, if they are.
    pub(crate) fn degraded(&self) -> Option<String> {
        self.health.degraded()
    }

    /// Advances the detectors to the wall clock.
    pub(crate) async fn tick(&self) -> Result<(), IngestError> {
        self.tx
            .send(Job::Tick)
            .await
            .map_err(|_| IngestError::Closed)
    }

    /// Sends the job `make` builds around a reply channel; returns the reply.
    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Job) -> Result<T, IngestError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .await
            .map_err(|_| IngestError::Closed)?;
        rx.await.map_err(|_| IngestError::Closed)?
    }

    /// [`Ingester::ask`] for threads outside the async runtime.
    fn ask_blocking<T>(&self, make: impl FnOnce(Reply<T>) -> Job) -> Result<T, IngestError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .blocking_send(make(reply))
            .map_err(|_| IngestError::Closed)?;
        rx.blocking_recv().map_err(|_| IngestError::Closed)?
    }

    /// Counts `events` and returns once they are durable on disk.
    pub(crate) async fn ingest(
        &self,
        events: Vec<Event>,
        extra: Extra,
    ) -> Result<IngestOutcome, IngestError> {
        self.events(events, extra, Marks::new()).await
    }

    /// [`Ingester::ingest`] for the policy service: `marks` numbers its
    /// submissions among `events`, so that the replicas the writer hands
    /// out after counting them say how far they go.
    pub(crate) async fn ingest_marked(
        &self,
        events: Vec<Event>,
        marks: Marks,
    ) -> Result<IngestOutcome, IngestError> {
        self.events(events, Extra::new(), marks).await
    }

    async fn events(
        &self,
        events: Vec<Event>,
        extra: Extra,
        marks: Marks,
    ) -> Result<IngestOutcome, IngestError> {
        self.ask(|reply| Job::Events {
            events,
            extra,
            marks,
            reply,
        })
        .await
    }

    /// [`Ingester::ingest`] for threads outside the async runtime (log
    /// followers); blocks until the events are durable.
    pub(crate) fn ingest_blocking(
        &self,
        events: Vec<Event>,
        extra: Extra,
    ) -> Result<IngestOutcome, IngestError> {
        self.ask_blocking(|reply| Job::Events {
            events,
            extra,
            marks: Marks::new(),
            reply,
        })
    }

    /// Returns once every event acknowledged so far is in the counts, so
    /// that what a reader reads next includes it.
    pub(crate) async fn sync(&self) -> Result<(), IngestError> {
        self.ask(|reply| Job::Sync { reply }).await
    }

    /// [`Ingester::sync`] for blocking threads.
    pub(crate) fn sync_blocking(&self) -> Result<(), IngestError> {
        self.ask_blocking(|reply| Job::Sync { reply })
    }

    /// Stops the writer after what was sent before: it folds, flushes and
    /// exits; later calls on any handle fail with [`IngestError::Closed`].
    pub(crate) async fn stop(&self) {
        let _ = self.tx.send(Job::Stop).await;
    }

    /// Gives the detectors new thresholds (a configuration reload). Turning
    /// them on or off needs a restart: that is refused.
    pub(crate) async fn reconfigure(
        &self,
        detect: Arc<crate::detect::DetectConfig>,
    ) -> Result<(), IngestError> {
        self.ask(|reply| Job::Reconfigure { detect, reply }).await
    }

    /// Removes data older than the retention window.
    pub(crate) async fn purge(&self) -> Result<PurgeStats, IngestError> {
        self.ask(|reply| Job::Purge { reply }).await
    }
}

impl Job {
    /// Events the job carries (the group limit counts them).
    fn events(&self) -> usize {
        match self {
            Job::Events { events, .. } => events.len(),
            Job::Purge { .. }
            | Job::Tick
            | Job::Sync { .. }
            | Job::Stop
            | Job::Reconfigure { .. } => 0,
        }
    }
}

async fn run_writer(
    mut writer: Writer,
    mut rx: mpsc::Receiver<Job>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
) {
    loop {
        let wait = match (writer.fold_in(), health.degraded()) {
            (Some(fold), _) => Some(fold),
            (None, Some(_)) => Some(RECHECK_EVERY),
            (None, None) => None,
        };
        let first = match wait {
            None => rx.recv().await,
            Some(wait) => match tokio::time::timeout(wait, rx.recv()).await {
                Ok(job) => job,
                Err(_) => {
                    if writer.fold_in().is_some() {
                        let _ = fold(&mut writer, &metrics, &health);
                    } else {
                        health.note(&writer.store().ensure_space());
                    }
                    continue;
                }
            },
        };
        let Some(first) = first else { break };
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
        let stop = jobs.iter().any(|j| matches!(j, Job::Stop));
        run_group(&mut writer, jobs, &metrics, &health);
        if stop {
            break;
        }
        if writer.fold_due() {
            let _ = fold(&mut writer, &metrics, &health);
        }
    }
    let _ = fold(&mut writer, &metrics, &health);
    if health.degraded().is_some() {
        // No flush: sled's own writes could meet the full disk. What was
        // acknowledged is in the journal.
        return;
    }
    if let Err(e) = writer.store().flush() {
        tracing::error!(error = %e, "final store flush failed");
    }
}

/// Folds the pending events; on failure they stay pending (and journaled)
/// and the next fold tries again.
fn fold(writer: &mut Writer, metrics: &Metrics, health: &Health) -> Result<(), Arc<StoreError>> {
    let had_pending = writer.fold_in().is_some();
    let result = writer.fold_pending(Utc::now());
    // Folding nothing says nothing about free space.
    if had_pending || result.is_err() {
        health.note(&result);
    }
    metrics.alerts_raised(&writer.take_raised());
    result.map_err(|e| {
        if !matches!(e, StoreError::DiskFull { .. }) {
            tracing::error!(error = %e, "counting acknowledged events failed; will retry");
        }
        Arc::new(e)
    })
}

/// Runs one group: the event jobs journaled together (one sync), then
/// replies; ticks, purges and syncs after a fold.
fn run_group(writer: &mut Writer, jobs: Vec<Job>, metrics: &Metrics, health: &Health) {
    let mut requests = Vec::new();
    let mut marks = Marks::new();
    let mut replies = Vec::new();
    let mut purges = Vec::new();
    let mut syncs = Vec::new();
    let mut tick = false;
    for job in jobs {
        match job {
            Job::Events {
                events,
                extra,
                marks: more,
                reply,
            } => {
                requests.push((events, extra));
                marks.extend(more);
                replies.push(reply);
            }
            Job::Purge { reply } => purges.push(reply),
            Job::Sync { reply } => syncs.push(reply),
            Job::Tick => tick = true,
            Job::Stop => {}
            Job::Reconfigure { detect, reply } => {
                let result = match writer.reconfigure(detect) {
                    true => Ok(()),
                    false => Err(IngestError::Restart("detect.enabled")),
                };
                let _ = reply.send(result);
            }
        }
    }
    let now = Utc::now();
    if !requests.is_empty() {
        let submitted = writer.submit(requests, now);
        health.note(&submitted);
        match submitted {
            Ok(outcomes) => {
                writer.mark(marks);
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    metrics.events_ingested(&outcome);
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                if !matches!(e, StoreError::DiskFull { .. }) {
                    tracing::error!(error = %e, "storing events failed");
                }
                let e = Arc::new(e);
                for reply in replies {
                    let _ = reply.send(Err(IngestError::Store(e.clone())));
                }
            }
        }
    }
    metrics.alerts_raised(&writer.take_raised());
    if !tick && purges.is_empty() && syncs.is_empty() {
        return;
    }
    let folded = fold(writer, metrics, health).map_err(IngestError::Store);
    for reply in syncs {
        let _ = reply.send(folded.clone());
    }
    if tick {
        let ticked = writer
            .store()
            .ensure_space()
            .and_then(|()| writer.tick(now))
            .and_then(|()| writer.store().flush());
        health.note(&ticked);
        if let Err(e) = ticked {
            tracing::error!(error = %e, "saving the detectors' state failed");
        }
        metrics.alerts_raised(&writer.take_raised());
    }
    for reply in purges {
        let result = writer
            .store()
            .ensure_space()
            .and_then(|()| writer.purge(now))
            .and_then(|stats| writer.store().flush().map(|()| stats));
        health.note(&result);
        let result = result.map_err(|e| IngestError::Store(Arc::new(e)));
        let _ = reply.send(result);
    }
}
