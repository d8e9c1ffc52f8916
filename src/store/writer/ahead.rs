//! The detectors of an import on a thread of their own, so that they
//! observe one batch while the store thread admits and counts the next.
//!
//! Why: importing 100,000 accounts, the detectors were about a quarter of
//! the store thread's time and the parser thread stood idle most of it
//! (perf, `cargo bench --bench scale`); on two cores the detectors now
//! share the second one with the parser.
//!
//! Order keeps it exact. The thread takes its jobs in the order the store
//! thread sends them, so the detectors observe every event of a write-out
//! before the write-out takes their state and alerts ([`Ahead::drain`]),
//! and drop idle accounts only once that write-out has committed
//! ([`Ahead::sweep`]), as they did on the store thread. An account they
//! read from the store is never part of a write-out under way: one with
//! events in it was observed since the last sweep, so it is in memory.

use super::Writer;
use crate::detect::{Alert, Detector, Dirty};
use crate::event::Event;
use crate::store::Store;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

/// Jobs queued before the store thread waits for the detectors: a few
/// batches of events (about 1 MB each).
const QUEUED: usize = 4;

enum Job {
    /// The detectors to run (the first job).
    Start(Box<Detector>),
    /// The events of a batch at these indices, in order.
    Observe(Arc<Vec<Event>>, Vec<u32>),
    /// Hand over the alerts raised and the state changed so far.
    Drain,
    /// What was drained up to the cut (the second number) is committed;
    /// accounts idle since may go unless they have hours older than the
    /// first (see [`Detector::sweep_cut`]).
    Sweep(u32, u32),
    /// A write failed: forget what is held (see [`Detector::reset`]).
    Reset,
}

/// The detectors' thread and the way to it.
pub(super) struct Ahead {
    jobs: Option<SyncSender<Job>>,
    answers: Receiver<(Vec<Alert>, Dirty)>,
    /// The cut of the last state drained (see `Dirty::cut`).
    drained: u32,
    thread: Option<JoinHandle<Option<Box<Detector>>>>,
}

impl Ahead {
    /// Starts the thread and hands it `detector`; `store` is what it reads
    /// accounts back from. On failure the detectors are given back.
    pub(super) fn start(
        detector: Box<Detector>,
        store: Store,
    ) -> Result<Ahead, (std::io::Error, Box<Detector>)> {
        let (jobs, queue) = sync_channel(QUEUED);
        let (give, answers) = sync_channel(1);
        let spawned = std::thread::Builder::new()
            .name("detectors".into())
            .spawn(move || run(&queue, &give, &store));
        let thread = match spawned {
            Ok(thread) => thread,
            Err(e) => return Err((e, detector)),
        };
        let ahead = Ahead {
            jobs: Some(jobs),
            answers,
            drained: 0,
            thread: Some(thread),
        };
        ahead.send(Job::Start(detector));
        Ok(ahead)
    }

    fn send(&self, job: Job) {
        // A closed queue means the thread panicked: `drain` says so.
        if let Some(jobs) = &self.jobs {
            let _ = jobs.send(job);
        }
    }

    /// Queues the events of `events` at `at` (emptied) for the detectors.
    pub(super) fn observe(&self, events: &Arc<Vec<Event>>, at: &mut Vec<u32>) {
        if !at.is_empty() {
            self.send(Job::Observe(events.clone(), std::mem::take(at)));
        }
    }

    /// Waits until the detectors have observed everything queued; the
    /// alerts they raised and the state they changed since the last drain.
    pub(super) fn drain(&mut self) -> (Vec<Alert>, Dirty) {
        self.send(Job::Drain);
        match self.answers.recv() {
            Ok(drained) => {
                self.drained = drained.1.cut;
                drained
            }
            // The thread ended without answering: it panicked, a bug that
            // stays one here.
            Err(_) => match self.thread.take().map(JoinHandle::join) {
                Some(Err(panic)) => std::panic::resume_unwind(panic),
                _ => unreachable!("the detectors' thread ended while its queue was open"),
            },
        }
    }

    /// See [`Writer::sweep_stored`]: without a cut, up to the last one
    /// drained (the thread may have observed events queued since).
    pub(super) fn sweep(&self, restorable_from: u32, cut: Option<u32>) {
        self.send(Job::Sweep(restorable_from, cut.unwrap_or(self.drained)));
    }

    pub(super) fn reset(&self) {
        self.send(Job::Reset);
    }

    /// Stops the thread once it has done what is queued; the detectors.
    pub(super) fn finish(mut self) -> Option<Box<Detector>> {
        self.jobs = None;
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(detector)) => detector,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            None => None,
        }
    }
}

impl Drop for Ahead {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Writer {
    /// Runs the detectors on a thread of their own (see the module doc) for
    /// [`Writer::load`] and [`Writer::write_bulk`], until
    /// [`Writer::stop_detecting`]; other writes do not run them meanwhile.
    pub fn detect_ahead(&mut self) -> std::io::Result<()> {
        let Some(detector) = self.detector.take() else {
            return Ok(());
        };
        match Ahead::start(Box::new(detector), self.store.clone()) {
            Ok(ahead) => {
                self.ahead = Some(ahead);
                Ok(())
            }
            Err((e, detector)) => {
                self.detector = Some(*detector);
                Err(e)
            }
        }
    }

    /// Ends detection for good, before an import's last write-out: what
    /// the detectors raised and changed is kept for that write, and their
    /// memory goes back to the system before it. Every account's state is
    /// then in the store or in that write, so nothing is lost, and the
    /// write-out, the import's peak of memory, no longer has the
    /// detectors beside it (the import benchmark's 1 GB log pinned to one
    /// core: 58–61 MiB instead of 62–66).
    pub fn stop_detecting(&mut self) {
        self.stopped = self.take_detected();
        if let Some(ahead) = self.ahead.take() {
            drop(ahead.finish());
        }
        self.detector = None;
        crate::process::release_freed();
    }

    /// The alerts the detectors raised (into `raised`) and the state they
    /// changed, wherever they run, or what they left when they stopped
    /// (see [`Writer::stop_detecting`]).
    pub(super) fn take_detected(&mut self) -> crate::detect::Dirty {
        if let Some(ahead) = &mut self.ahead {
            let (raised, dirty) = ahead.drain();
            self.raised.extend(raised);
            return dirty;
        }
        match &mut self.detector {
            Some(detector) => detector.take_dirty(),
            None => std::mem::take(&mut self.stopped),
        }
    }
}

/// The thread: the jobs in order, until the queue closes.
fn run(
    queue: &Receiver<Job>,
    give: &SyncSender<(Vec<Alert>, Dirty)>,
    store: &Store,
) -> Option<Box<Detector>> {
    let Ok(Job::Start(mut detector)) = queue.recv() else {
        return None;
    };
    let mut raised = Vec::new();
    for job in queue {
        match job {
            Job::Start(_) => {}
            Job::Observe(events, at) => {
                for ev in at.into_iter().filter_map(|i| events.get(i as usize)) {
                    detector.observe(ev, store, &mut raised);
                }
            }
            Job::Drain => {
                if give
                    .send((std::mem::take(&mut raised), detector.take_dirty()))
                    .is_err()
                {
                    break;
                }
            }
            Job::Sweep(from, cut) => detector.sweep_cut(Some(from), cut),
            Job::Reset => {
                raised.clear();
                detector.reset();
            }
        }
    }
    Some(detector)
}
