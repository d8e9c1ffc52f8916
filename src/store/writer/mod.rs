//! [`Writer`], the store's one writer, and everything it does, in this
//! folder. The write path: a group of event batches becomes one atomic
//! sled batch.
//!
//! | File | Writer's methods | What they do |
//! |------|------------------|--------------|
//! | `mod.rs` | `new`, `for_config`, `with_detector`, `store`, `reconfigure`, `apply`, `tick`, `take_raised`, `purge` | the writer and its detectors; a group of events admitted (idempotency, retention), counted and committed with the detectors' state and the alerts they raised |
//! | `pending.rs` | `open`, `recover`, `submit`, `fold_due`, `fold_in`, `fold_pending` | the daemon's path: a request is acknowledged once it is in the journal, and folded into the counts in groups later (or at once when a reader asks) |
//! | `fold.rs` | (`fold`) | a group of journal records folded into counts, in parts that each commit with the journal's progress |
//! | `bulk.rs` | `load`, `write_bulk`, `write_behind` | the import's path: millions of events counted in memory and written in parts (`bulk/out.rs`), on the store thread or behind it |
//! | `ahead.rs` | `detect_ahead`, `stop_detecting` | the import's detectors on a thread of their own |
//! | `injected.rs` | (none) | the failures tests inject into a write, to check that what it leaves is whole |
//! | `replicas.rs` | `set_replicas`, `mark` | the detector state of accounts the policy service asks about, handed to it after each commit |
//!
//! Counters are aggregated in memory first and each distinct key is read,
//! added to and written once per group. sled's merge operators were the
//! alternative, and `cargo bench --bench store` measures them about 1.3x
//! faster for one 1,000-event request per flush; but a merge cannot join a
//! `Batch`, so counts could not be committed atomically with the idempotency
//! keys and log cursors that produced them, and a crash between the two
//! would lose or double-count events. Group commit narrows the gap: requests
//! that wait for the same flush share one read-modify-write per key.

mod ahead;
mod bulk;
pub(super) mod fold;
pub(super) mod injected;
mod pending;
mod replicas;

pub use bulk::Bulk;
pub(crate) use replicas::{Marks, Replicas};

use super::ids::{IdIndex, IdKey, IdSet};
use super::keys;
use super::{Store, StoreError};
use crate::detect::{Alert, DetectConfig, Detector};
use crate::event::{Event, Outcome};
use chrono::{DateTime, Utc};
use fold::Record;
use std::sync::Arc;

/// An event that counts: its local day and idempotency key.
#[derive(Debug, Clone, Copy)]
pub(super) struct Admitted {
    pub day: u32,
    pub id: Option<IdKey>,
}

/// What happened to one submitted batch of events.
/// It is also what `POST /api/v1/events` answers, read back by the command
/// line when it imports through a running daemon.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IngestOutcome {
    /// Counted now.
    pub accepted: u64,
    /// Carried an `id` already counted (earlier, or earlier in this batch).
    pub duplicates: u64,
    /// Older than the retention window: nothing would ever report them.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub too_old: u64,
    /// The counted events by result (accepted, failed login) and TLS class
    /// ([`crate::event::Tls::index`]), for `/metrics`; not in the answer.
    #[serde(skip)]
    pub(crate) by_class: [[u64; 5]; 2],
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl IngestOutcome {
    pub fn add(&mut self, o: &IngestOutcome) {
        self.accepted += o.accepted;
        self.duplicates += o.duplicates;
        self.too_old += o.too_old;
        for (mine, theirs) in self.by_class.iter_mut().zip(&o.by_class) {
            for (m, t) in mine.iter_mut().zip(theirs) {
                *m += t;
            }
        }
    }
}

/// The store's one writer: counts groups of events, purges old data. Owned
/// by the ingest thread (or `import`); readers use [`Store`] directly.
///
/// It reads current values from sled rather than caching them: sled
/// consolidates a page's update fragments on reads, and with a write-side
/// cache in front of it the daemon's memory grew past 1.5 GB under sustained
/// ingest (measured with `cargo bench --bench ingest`).
pub struct Writer {
    store: Store,
    /// The detectors, fed every event counted; their state and alerts are
    /// committed in the same batch as the counts.
    detector: Option<Detector>,
    /// The detectors while they run on a thread of their own (an import's
    /// [`Writer::detect_ahead`]); `detector` is None meanwhile.
    ahead: Option<ahead::Ahead>,
    /// What the detectors changed before [`Writer::stop_detecting`] ended
    /// them, for the next write.
    stopped: crate::detect::Dirty,
    /// Sequence number of the last logged alert.
    last_seq: u64,
    /// Alerts raised in the current batch.
    raised: Vec<Alert>,
    /// Alerts committed, until [`Writer::take_raised`].
    committed: Vec<Alert>,
    /// Where acknowledged requests wait to be folded (the daemon's writer).
    journal: Option<super::journal::Journal>,
    pending: pending::Pending,
    pub(super) purge_cursor: super::purge::PurgeCursor,
    /// The stored idempotency keys of recent days.
    ids: IdIndex,
    /// Where replicas of the accounts the policy service asks about go.
    replicas: Option<Box<dyn super::Replicas>>,
    /// An import's write-out running behind the store thread.
    behind: bulk::Behind,
}

impl Writer {
    /// A writer that only counts.
    pub fn new(store: Store) -> Writer {
        Writer {
            ids: IdIndex::new(store.id_seed),
            store,
            detector: None,
            ahead: None,
            stopped: Default::default(),
            last_seq: 0,
            raised: Vec::new(),
            committed: Vec::new(),
            journal: None,
            pending: Default::default(),
            purge_cursor: Default::default(),
            replicas: None,
            behind: Default::default(),
        }
    }

    /// The writer `[detect]` asks for: with the detectors when enabled.
    pub(crate) fn for_config(store: Store, cfg: &DetectConfig) -> Result<Writer, StoreError> {
        match cfg.enabled {
            true => Writer::with_detector(store, Arc::new(cfg.clone())),
            false => Ok(Writer::new(store)),
        }
    }

    /// A writer that also runs the detectors; accounts whose incident was
    /// open at the last stop are brought back so that they can resolve.
    pub(crate) fn with_detector(
        store: Store,
        cfg: Arc<DetectConfig>,
    ) -> Result<Writer, StoreError> {
        let mut detector = Detector::new(cfg);
        detector.resume(&store.open_incidents()?, &store);
        let last_seq = store.last_alert_seq()?;
        Ok(Writer {
            detector: Some(detector),
            last_seq,
            ..Writer::new(store)
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// New detector settings for the running detectors; false (nothing
    /// changed) when they would turn the detectors on or off.
    pub(crate) fn reconfigure(&mut self, cfg: Arc<DetectConfig>) -> bool {
        match &mut self.detector {
            Some(d) if cfg.enabled => {
                d.reconfigure(cfg);
                true
            }
            None => !cfg.enabled,
            Some(_) => false,
        }
    }

    /// Counts `groups` (each one submitted batch) and `extra` raw key/value
    /// pairs (log cursors) atomically: in one sled batch unless they touch
    /// very many keys, then in batches of whole groups (see `fold`).
    /// Does not flush: the caller makes the whole group durable at once.
    pub fn apply(
        &mut self,
        groups: &[&[Event]],
        extra: &[(Vec<u8>, Vec<u8>)],
        now: DateTime<Utc>,
    ) -> Result<Vec<IngestOutcome>, StoreError> {
        let mut ids = IdSet::default();
        let mut records = Vec::with_capacity(groups.len());
        let mut outcomes = Vec::with_capacity(groups.len());
        for (i, events) in groups.iter().enumerate() {
            let (outcome, keep) = self.admit(events, &mut ids, now)?;
            outcomes.push(outcome);
            let events = events.iter().zip(keep).filter_map(|(e, k)| k.map(|_| e));
            let last = i + 1 == groups.len();
            records.push(Record {
                events: events.collect(),
                extra: if last { extra } else { &[] },
            });
        }
        self.fold(&records, None, now)?;
        Ok(outcomes)
    }

    /// Decides which events of one request count: not older than retention,
    /// and an `id` neither stored nor pending (admitted, not folded yet)
    /// nor in `ids`, to which the new ones are added. Writes nothing.
    pub(super) fn admit(
        &mut self,
        events: &[Event],
        ids: &mut IdSet,
        now: DateTime<Utc>,
    ) -> Result<(IngestOutcome, Vec<Option<Admitted>>), StoreError> {
        self.admit_with(events, now, |w, key| {
            let new = !ids.contains(&key)
                && !w.pending.ids.contains(&key)
                && !w.ids.contains(&w.store, key)?;
            if new {
                ids.insert(key);
            }
            Ok(new)
        })
    }

    /// Which `events` count (None: not counted): those not older than
    /// retention and without an `id`, or whose id `is_new` accepts.
    pub(super) fn admit_with(
        &mut self,
        events: &[Event],
        now: DateTime<Utc>,
        mut is_new: impl FnMut(&mut Writer, IdKey) -> Result<bool, StoreError>,
    ) -> Result<(IngestOutcome, Vec<Option<Admitted>>), StoreError> {
        let (tz, oldest_day) = (
            self.store.tz,
            crate::event::time::day_number(self.store.oldest_day(now)),
        );
        let mut out = IngestOutcome::default();
        let mut admitted = Vec::with_capacity(events.len());
        for ev in events {
            let day = crate::event::time::day_number(crate::event::time::local_date(ev.ts, tz));
            if day < oldest_day {
                out.too_old += 1;
                admitted.push(None);
                continue;
            }
            let id = ev.id.as_deref().map(|id| self.ids.key(day, id));
            if let Some(key) = id
                && !is_new(self, key)?
            {
                out.duplicates += 1;
                admitted.push(None);
                continue;
            }
            out.accepted += 1;
            out.by_class[usize::from(ev.result == Outcome::AuthFailed)][ev.tls.index()] += 1;
            admitted.push(Some(Admitted { day, id }));
        }
        Ok((out, admitted))
    }

    /// The oldest hour (Unix hours) whose counts are kept at `now`.
    pub(super) fn oldest_hour(&self, now: DateTime<Utc>) -> u32 {
        let hours = self.store.retention.hourly_days.saturating_mul(24);
        crate::event::time::hour_number(now).saturating_sub(hours)
    }

    /// Advances the detectors' clock to `now` (wall time while running):
    /// incidents whose quiet hour has passed resolve even when no event
    /// arrives. Does not flush.
    pub fn tick(&mut self, now: DateTime<Utc>) -> Result<(), StoreError> {
        let Some(detector) = &mut self.detector else {
            return Ok(());
        };
        detector.tick(now.timestamp(), &mut self.raised);
        let mut batch = sled::Batch::default();
        self.detector_batch(&mut batch, now);
        self.commit(batch)
    }

    /// Adds the detectors' dirty state and the alerts raised to `batch`.
    pub(super) fn detector_batch(&mut self, batch: &mut sled::Batch, now: DateTime<Utc>) {
        let Some(detector) = &mut self.detector else {
            return;
        };
        super::alerts::save_dirty(batch, &detector.take_dirty());
        self.log_raised(batch, now);
    }

    /// Adds the alerts raised to `batch`, numbered after the last logged.
    pub(super) fn log_raised(&self, batch: &mut sled::Batch, now: DateTime<Utc>) {
        log_alerts(batch, &self.raised, self.last_seq, now);
    }

    /// Applies `batch`; on failure the detectors forget what they hold in
    /// memory (the store is the truth) and the alerts of the batch are dropped.
    pub(super) fn commit(&mut self, batch: sled::Batch) -> Result<(), StoreError> {
        self.apply_logged(batch)?;
        // Everything the detectors hold is in the store now.
        self.sweep_stored(None);
        Ok(())
    }

    /// Lets the detectors drop idle accounts whose messages are stored:
    /// all they handed on, or those up to `cut` (see
    /// `Detector::sweep_cut`); the hourly counts are stored as far back as
    /// hourly retention.
    pub(super) fn sweep_stored(&mut self, cut: Option<u32>) {
        let restorable = self.oldest_hour(Utc::now());
        if let Some(d) = &mut self.detector {
            match cut {
                Some(cut) => d.sweep_cut(Some(restorable), cut),
                None => d.sweep(Some(restorable)),
            }
        }
        if let Some(ahead) = &self.ahead {
            ahead.sweep(restorable, cut);
        }
    }

    /// Applies `batch`, which logs the alerts raised (see
    /// [`Writer::log_raised`]); on failure, see [`Writer::forget`].
    pub(super) fn apply_logged(&mut self, batch: sled::Batch) -> Result<(), StoreError> {
        match self.store.data.apply_batch(batch) {
            Ok(()) => {
                self.last_seq += self.raised.len() as u64;
                self.committed.append(&mut self.raised);
                Ok(())
            }
            Err(e) => {
                self.forget();
                Err(e.into())
            }
        }
    }

    /// After a failed write: the detectors and the id index forget what
    /// they hold in memory (the store is the truth) and the alerts not
    /// committed are dropped.
    pub(super) fn forget(&mut self) {
        self.store.totals.changed_all();
        self.raised.clear();
        self.stopped = Default::default();
        self.ids.forget();
        if let Some(d) = &mut self.detector {
            d.reset();
        }
        if let Some(ahead) = &self.ahead {
            ahead.reset();
        }
    }

    /// Alerts committed since the last call (for metrics and `import`).
    pub(crate) fn take_raised(&mut self) -> Vec<Alert> {
        std::mem::take(&mut self.committed)
    }

    /// Purges old data (see [`Store::purge`]); the sender-major key
    /// spaces a slice at a time.
    pub(crate) fn purge(&mut self, now: DateTime<Utc>) -> Result<super::PurgeStats, StoreError> {
        let oldest = crate::event::time::day_number(self.store.oldest_day(now));
        self.ids.forget_before(oldest);
        let purged = self.store.purge(now, &mut self.purge_cursor);
        self.store.totals.purged(oldest);
        purged
    }
}

/// Adds `alerts` to `batch`, numbered from `last_seq + 1`.
fn log_alerts(batch: &mut sled::Batch, alerts: &[Alert], last_seq: u64, now: DateTime<Utc>) {
    for (i, alert) in alerts.iter().enumerate() {
        let seq = last_seq + 1 + i as u64;
        let record = super::Recorded {
            seq,
            recorded_ms: now.timestamp_millis(),
            alert: alert.clone(),
        };
        batch.insert(
            &keys::alert_key(seq)[..],
            serde_json::to_vec(&record).unwrap_or_default(),
        );
        super::alerts::index_alert(batch, &record);
    }
}
