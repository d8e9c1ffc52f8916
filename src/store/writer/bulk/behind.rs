//! The write-out behind the store thread: an import's write-out on a
//! thread of its own while the store thread counts the next bulk (see
//! `out.rs` for why, and for what makes it exact).

use super::Bulk;
use super::out::{Done, WriteOut};
use crate::store::{StoreError, Writer};
use chrono::{DateTime, Utc};

impl Writer {
    /// Write-outs of an import run behind the store thread, on a thread of
    /// their own (see `out.rs`), when `on` and the bulk holds so many
    /// accounts that their floor of events sets its size (see
    /// [`super::FLOOR_FROM`]): a site of 100,000 accounts, where the time goes,
    /// not a log of 30,000, whose memory stays as it was (two bulks at
    /// once would hold twice the budget).
    pub fn write_behind(&mut self, on: bool) {
        self.behind.allowed = on;
    }

    /// The write-out `bulk` is due for: behind the store thread when
    /// [`Writer::write_behind`] allows it and the floor sets the bulk's
    /// size, else here.
    pub(super) fn write_out(
        &mut self,
        bulk: &mut Bulk,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        match self.behind.allowed && bulk.floored() {
            true => self.write_out_behind(bulk, now),
            false => self.write_bulk(bulk, now),
        }
    }

    /// Cuts a write-out of `bulk` and starts it behind the store thread,
    /// once the one before has ended; on the store thread if no thread can
    /// be started.
    fn write_out_behind(&mut self, bulk: &mut Bulk, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.wait_behind()?;
        let out = WriteOut {
            release: true,
            ..self.cut(bulk, now)
        };
        // The next events go to a buffer of their own meanwhile, about
        // this bulk's size (grown by doubling, it held both copies at once;
        // the write-out frees its own as it goes).
        let fits = out.taken.held.len() + out.taken.held.len() / 8;
        bulk.held = Vec::with_capacity(fits);
        // Handed over once the thread runs, so that it is still here if
        // none can be started.
        let (give, take) = std::sync::mpsc::sync_channel::<WriteOut>(1);
        let spawned = std::thread::Builder::new()
            .name("write-out".into())
            .spawn(move || take.recv().ok().map(WriteOut::run));
        match spawned {
            Ok(thread) => {
                // The thread waits for it: it cannot have ended.
                let _ = give.send(out);
                self.behind.thread = Some(thread);
                self.behind.started += 1;
                Ok(())
            }
            Err(e) => {
                tracing::debug!(error = %e, "writing out on the store thread");
                self.settle(out.run()).map(drop)
            }
        }
    }

    /// Waits for the write-out behind, if one runs, and settles it.
    pub(super) fn wait_behind(&mut self) -> Result<(), StoreError> {
        match self.behind.thread.take().map(std::thread::JoinHandle::join) {
            None | Some(Ok(None)) => Ok(()),
            Some(Ok(Some(done))) => self.settle(done).map(drop),
            Some(Err(panic)) => std::panic::resume_unwind(panic),
        }
    }
}

/// The write-out running behind the store thread, if any, and whether one
/// may (see [`Writer::write_behind`]).
#[derive(Default)]
pub(crate) struct Behind {
    allowed: bool,
    thread: Option<std::thread::JoinHandle<Option<Done>>>,
    /// Write-outs started behind (for tests).
    pub(super) started: u64,
}

impl Drop for Behind {
    /// A writer dropped while a write-out runs (an import that failed)
    /// lets it end: each of its batches is whole, so a store it leaves
    /// half written is one an import resumes exactly.
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
