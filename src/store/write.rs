//! The write path: a group of event batches becomes one atomic sled batch.
//!
//! Counters are aggregated in memory first and each distinct key is read,
//! added to and written once per group. sled's merge operators were the
//! alternative, and `cargo bench --bench store` measures them about 1.3x
//! faster for one 1,000-event request per flush; but a merge cannot join a
//! `Batch`, so counts could not be committed atomically with the idempotency
//! keys and log cursors that produced them, and a crash between the two
//! would lose or double-count events. Group commit narrows the gap: requests
//! that wait for the same flush share one read-modify-write per key.

use super::codec::{self, SenderInfo};
use super::keys;
use super::{Store, StoreError};
use crate::counts::TlsCounts;
use crate::detect::{Alert, DetectConfig, Detector};
use crate::event::{Event, Outcome};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// What happened to one submitted batch of events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct IngestOutcome {
    /// Counted now.
    pub accepted: u64,
    /// Carried an `id` already counted (earlier, or earlier in this batch).
    pub duplicates: u64,
    /// Older than the retention window: nothing would ever report them.
    #[serde(skip_serializing_if = "is_zero")]
    pub too_old: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl IngestOutcome {
    pub fn add(&mut self, o: &IngestOutcome) {
        self.accepted += o.accepted;
        self.duplicates += o.duplicates;
        self.too_old += o.too_old;
    }
}

/// In-memory deltas of one group, borrowing senders from the events.
#[derive(Default)]
struct Deltas<'a> {
    daily: HashMap<(u32, &'a str), TlsCounts>,
    failures: HashMap<(u32, &'a str), u64>,
    hourly: HashMap<(&'a str, u32), [u64; 2]>,
    senders: HashMap<&'a str, SenderInfo>,
    ids: HashSet<Vec<u8>>,
}

/// A sender index entry is rewritten only when it changes by more than this
/// much (or gains an IP): `last_seen` is precise to a minute, and a busy
/// account costs one write a minute instead of one per request.
const LAST_SEEN_GRANULARITY: i64 = 60;

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
    /// Sequence number of the last logged alert.
    last_seq: u64,
    /// Alerts raised in the current batch.
    raised: Vec<Alert>,
    /// Alerts committed, until [`Writer::take_raised`].
    committed: Vec<Alert>,
}

impl Writer {
    /// A writer that only counts.
    pub fn new(store: Store) -> Writer {
        Writer {
            store,
            detector: None,
            last_seq: 0,
            raised: Vec::new(),
            committed: Vec::new(),
        }
    }

    /// The writer `[detect]` asks for: with the detectors when enabled.
    pub fn for_config(store: Store, cfg: &DetectConfig) -> Result<Writer, StoreError> {
        match cfg.enabled {
            true => Writer::with_detector(store, Arc::new(cfg.clone())),
            false => Ok(Writer::new(store)),
        }
    }

    /// A writer that also runs the detectors; accounts whose incident was
    /// open at the last stop are brought back so that they can resolve.
    pub fn with_detector(store: Store, cfg: Arc<DetectConfig>) -> Result<Writer, StoreError> {
        let mut detector = Detector::new(cfg);
        detector.resume(&store.open_incidents()?, &store);
        let last_seq = store.last_alert_seq()?;
        Ok(Writer {
            store,
            detector: Some(detector),
            last_seq,
            raised: Vec::new(),
            committed: Vec::new(),
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Counts `groups` (each one submitted batch) in one atomic sled batch,
    /// plus `extra` raw key/value pairs (log cursors) in the same batch.
    /// Does not flush: the caller makes the whole group durable at once.
    pub fn apply(
        &mut self,
        groups: &[&[Event]],
        extra: &[(Vec<u8>, Vec<u8>)],
        now: DateTime<Utc>,
    ) -> Result<Vec<IngestOutcome>, StoreError> {
        let store = &self.store;
        let oldest_day = keys::day_number(store.oldest_day(now));
        let oldest_hour =
            keys::hour_number(now).saturating_sub(store.retention.hourly_days.saturating_mul(24));
        let mut d = Deltas::default();
        let mut outcomes = Vec::with_capacity(groups.len());
        // Fed to the detectors once the batch has read the sender index.
        let mut counted = Vec::new();
        for events in groups {
            let mut out = IngestOutcome::default();
            for ev in *events {
                let day = keys::day_number(keys::local_date(ev.ts, store.tz));
                if day < oldest_day {
                    out.too_old += 1;
                    continue;
                }
                if let Some(id) = &ev.id {
                    let key = keys::day_key(keys::ID, day, id);
                    if d.ids.contains(&key) || store.data.contains_key(&key)? {
                        out.duplicates += 1;
                        continue;
                    }
                    d.ids.insert(key);
                }
                out.accepted += 1;
                d.count(ev, day, oldest_hour);
                counted.push(ev);
            }
            outcomes.push(out);
        }
        let (mut batch, senders) = self.batch_of(&d, extra)?;
        if let Some(detector) = &mut self.detector {
            let loader = super::alerts::Prefetched { store, senders };
            for ev in counted {
                detector.observe(ev, &loader, &mut self.raised);
            }
        }
        self.detector_batch(&mut batch, now);
        self.commit(batch)?;
        Ok(outcomes)
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
    fn detector_batch(&mut self, batch: &mut sled::Batch, now: DateTime<Utc>) {
        let Some(detector) = &mut self.detector else {
            return;
        };
        super::alerts::save_dirty(batch, &detector.take_dirty());
        for (i, alert) in self.raised.iter().enumerate() {
            let seq = self.last_seq + 1 + i as u64;
            let record = super::Recorded {
                seq,
                recorded_ms: now.timestamp_millis(),
                alert: alert.clone(),
            };
            batch.insert(
                &keys::alert_key(seq)[..],
                serde_json::to_vec(&record).unwrap_or_default(),
            );
        }
    }

    /// Applies `batch`; on failure the detectors forget what they hold in
    /// memory (the store is the truth) and the alerts of the batch are dropped.
    fn commit(&mut self, batch: sled::Batch) -> Result<(), StoreError> {
        match self.store.data.apply_batch(batch) {
            Ok(()) => {
                self.last_seq += self.raised.len() as u64;
                self.committed.append(&mut self.raised);
                if let Some(d) = &mut self.detector {
                    // Everything the detectors hold is in the store now, the
                    // hourly counts as far back as hourly retention.
                    let now = keys::hour_number(Utc::now());
                    let hours = self.store.retention.hourly_days.saturating_mul(24);
                    d.sweep(Some(now.saturating_sub(hours)));
                }
                Ok(())
            }
            Err(e) => {
                self.raised.clear();
                if let Some(d) = &mut self.detector {
                    d.reset();
                }
                Err(e.into())
            }
        }
    }

    /// Alerts committed since the last call (for metrics and `import`).
    pub fn take_raised(&mut self) -> Vec<Alert> {
        std::mem::take(&mut self.committed)
    }

    /// Adds the deltas to the current values and batches the results;
    /// also returns the sender index entries it read (None: a new sender).
    fn batch_of<'a>(
        &self,
        d: &Deltas<'a>,
        extra: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<(sled::Batch, HashMap<&'a str, Option<SenderInfo>>), StoreError> {
        // The detectors load accounts the index does not know for free;
        // without detectors nothing is kept.
        let keep = self.detector.is_some();
        let mut known = HashMap::with_capacity(if keep { d.senders.len() } else { 0 });
        let tree = &self.store.data;
        let mut batch = sled::Batch::default();
        for ((day, sender), delta) in &d.daily {
            let key = keys::day_key(keys::DAILY, *day, sender);
            let mut counts = tree
                .get(&key)?
                .map_or_else(TlsCounts::default, |v| codec::decode_counts(&v));
            counts.add(delta);
            batch.insert(key, codec::encode_counts(&counts));
        }
        for ((day, user), delta) in &d.failures {
            let key = keys::day_key(keys::FAILURES, *day, user);
            let old = tree
                .get(&key)?
                .map_or(0, |v| codec::decode_u64s::<1>(&v)[0]);
            batch.insert(key, codec::encode_u64s(&[old.saturating_add(*delta)]));
        }
        for ((sender, hour), delta) in &d.hourly {
            let key = keys::hourly_key(sender, *hour);
            let old = tree
                .get(&key)?
                .map_or([0, 0], |v| codec::decode_u64s::<2>(&v));
            batch.insert(
                key,
                codec::encode_u64s(&[old[0] + delta[0], old[1] + delta[1]]),
            );
        }
        for (sender, delta) in &d.senders {
            let key = keys::sender_key(sender);
            let stored = tree.get(&key)?.and_then(|v| SenderInfo::decode(&v));
            if keep {
                known.insert(*sender, stored.clone());
            }
            let old = stored.unwrap_or_default();
            let mut info = old.clone();
            info.merge(delta);
            if info.first_seen != old.first_seen
                || info.last_seen >= old.last_seen + LAST_SEEN_GRANULARITY
                || info
                    .ips
                    .iter()
                    .any(|(ip, _)| !old.ips.iter().any(|(o, _)| o == ip))
            {
                batch.insert(key, info.encode());
            }
        }
        for key in &d.ids {
            batch.insert(key.as_slice(), &[][..]);
        }
        for (k, v) in extra {
            batch.insert(k.as_slice(), v.as_slice());
        }
        Ok((batch, known))
    }

    /// Purges old data (see [`Store::purge`]).
    pub fn purge(&mut self, now: DateTime<Utc>) -> Result<super::PurgeStats, StoreError> {
        self.store.purge(now)
    }
}

impl<'a> Deltas<'a> {
    fn count(&mut self, ev: &'a Event, day: u32, oldest_hour: u32) {
        let hour = keys::hour_number(ev.ts);
        let sender = ev.sender.as_str();
        let slot = match ev.result {
            Outcome::Accepted => {
                self.daily.entry((day, sender)).or_default().bump(ev.tls);
                let ts = ev.ts.timestamp();
                let info = self.senders.entry(sender).or_insert_with(|| SenderInfo {
                    first_seen: ts,
                    last_seen: ts,
                    ips: Vec::new(),
                });
                info.first_seen = info.first_seen.min(ts);
                info.last_seen = info.last_seen.max(ts);
                if let Some(ip) = ev.client_ip {
                    info.note_ip(ip, ts);
                }
                0
            }
            Outcome::AuthFailed => {
                *self.failures.entry((day, sender)).or_default() += 1;
                1
            }
        };
        if hour >= oldest_hour {
            self.hourly.entry((sender, hour)).or_default()[slot] += 1;
        }
    }
}
