//! Folding admitted events into the store: counters are aggregated in
//! memory, and each distinct key is read, added to and written once.
//!
//! sled's merge operators were the alternative, and `cargo bench --bench
//! store` measures them about 1.3x faster for one 1,000-event request; but a
//! merge cannot join a `Batch`, so counts could not be committed atomically
//! with the idempotency keys, log cursors and journal progress that go with
//! them, and a crash between the two would lose or double-count events.
//!
//! Memory: sled keeps a copy of every node a batch rewrites until the batch
//! ends, a few kilobytes per key. A journaled fold may therefore write its
//! keys in parts of [`PART_KEYS`], in key order; each part records in the
//! same batch how far the fold got, so that after a crash the journal replay
//! skips exactly the parts already written. (The detectors observe the whole
//! fold before any part is written; only a replay after a crash mid-fold
//! may show them some of the fold's counts as history.)

use crate::event::TlsCounts;
use crate::event::{Event, Outcome};
use crate::store::codec::{self, SenderInfo, Slot};
use crate::store::ids::{IdIndex, IdKey};
use crate::store::{Store, StoreError, Writer, keys};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// Events and extra key/values counted atomically (one request).
pub(in crate::store) struct Record<'a> {
    pub events: Vec<&'a Event>,
    pub extra: &'a [(Vec<u8>, Vec<u8>)],
}

/// Keys one group of records may touch before the next record starts a new
/// group. Large enough that a second's traffic of 10,000 active accounts is
/// one group: one read-modify-write per key for all of it.
const MAX_GROUP_KEYS: usize = 40_000;

/// Keys per sled batch of a journaled fold.
const PART_KEYS: usize = 1_024;

/// A sender index entry is rewritten only when it changes by more than this
/// much (or gains an IP): `last_seen` is precise to a minute, and a busy
/// account costs one write a minute instead of one per request.
const LAST_SEEN_GRANULARITY: i64 = 60;

/// How far a journaled fold got: `records` of journal `generation` are
/// counted, and `parts` batches of the next group of records are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Progress {
    pub generation: u64,
    pub records: u64,
    pub parts: u64,
}

/// In-memory deltas of one group, borrowing senders from the events.
#[derive(Default)]
struct Deltas<'a> {
    daily: HashMap<(u32, &'a str), TlsCounts>,
    failures: HashMap<(u32, &'a str), u64>,
    hourly: HashMap<(&'a str, u32), [u64; 2]>,
    senders: HashMap<&'a str, SenderInfo>,
    ids: Vec<IdKey>,
}

/// One key's delta.
pub(super) enum Change<'a> {
    /// Days of a `d` key: messages per TLS class.
    Daily(Vec<Slot<5>>),
    /// Days of an `f` key: failed logins.
    Failures(Vec<Slot<1>>),
    Hourly(Vec<codec::Hour>),
    Sender(&'a str, &'a SenderInfo),
}

pub(super) type Known<'a> = HashMap<&'a str, Option<SenderInfo>>;

/// One group of a fold: its records and their deltas, and for a journaled
/// fold how far the store says it got (`written`: these records' first
/// parts) and what its last batch records (`done`: all of them).
struct Group<'r, 'a> {
    records: &'r [Record<'a>],
    deltas: &'r Deltas<'a>,
    written: Option<Progress>,
    done: Option<Progress>,
}

impl Writer {
    /// Counts admitted records with their idempotency keys and extra
    /// key/values, and the detectors' state and alerts, in groups of whole
    /// records touching at most about [`MAX_GROUP_KEYS`] keys. Each group is
    /// one atomic batch, or with `progress` (a journaled fold, whose
    /// records precede `progress.records`) parts that record their
    /// progress. Does not flush.
    pub(super) fn fold(
        &mut self,
        records: &[Record],
        progress: Option<Progress>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let oldest_hour = self.oldest_hour(now);
        let mut start = 0;
        let mut skip = progress.map_or(0, |p| p.parts);
        while start < records.len() {
            let mut d = Deltas::default();
            let mut end = start;
            while end < records.len() && (end == start || d.keys() < MAX_GROUP_KEYS) {
                d.count_all(&records[end].events, &self.store, &self.ids, oldest_hour);
                end += 1;
            }
            let at = |records: usize, parts: u64| {
                progress.map(|p| Progress {
                    generation: p.generation,
                    records: p.records + records as u64,
                    parts,
                })
            };
            let group = Group {
                records: &records[start..end],
                deltas: &d,
                written: at(start, skip),
                done: at(end, 0),
            };
            if let Err(e) = self.fold_group(group, now) {
                // The store is the truth: what the detectors and the id
                // index hold in memory may be ahead of it now.
                self.forget();
                return Err(e);
            }
            start = end;
            skip = 0;
        }
        Ok(())
    }

    /// Writes one group: the parts after `written` (a journaled fold) and
    /// the last batch, which carries `done`. The periods whose daily counts
    /// it changed, or may have, lose their kept totals once it is done.
    fn fold_group(&mut self, g: Group, now: DateTime<Utc>) -> Result<(), StoreError> {
        let periods = Store::daily_periods(g.deltas.daily.keys().map(|(day, _)| *day));
        let changing = self.store.totals.begin(periods);
        let deltas = g.deltas;
        // A replay after a crash skips parts written before it: the kept
        // totals may hold those already.
        let whole = g.written.is_none_or(|p| p.parts == 0);
        let written = self.write_group(g, now);
        let added = (written.is_ok() && whole).then_some(&deltas.daily);
        self.store.totals.end(changing, added);
        written
    }

    fn write_group(&mut self, g: Group, now: DateTime<Utc>) -> Result<(), StoreError> {
        let d = g.deltas;
        let known = self.read_senders(d)?;
        if g.done.is_some() {
            // Journaled events are folded again after a crash, and storing
            // an id twice changes nothing: the ids need not share the
            // counts' batches.
            let mut batch = sled::Batch::default();
            self.ids.write(&self.store, &mut batch, &d.ids)?;
            self.store.data.apply_batch(batch)?;
        }
        if let Some(detector) = &mut self.detector {
            let loader = crate::store::alerts::Prefetched {
                store: &self.store,
                senders: &known,
            };
            for ev in g.records.iter().flat_map(|r| r.events.iter()) {
                detector.observe(ev, &loader, &mut self.raised);
            }
        }
        let skip = g.written.map_or(0, |p| p.parts);
        let mut parts = parts_of(&self.store, d, &known, g.done.is_some(), skip)?;
        let mut last = parts.pop().unwrap_or_default();
        if g.done.is_none() {
            self.ids.write(&self.store, &mut last, &d.ids)?;
        }
        for (k, v) in g.records.iter().flat_map(|r| r.extra.iter()) {
            last.insert(k.as_slice(), v.as_slice());
        }
        if let Some(p) = g.done {
            insert_progress(&mut last, p);
        }
        self.detector_batch(&mut last, now);
        for (i, mut part) in (skip..).zip(parts) {
            if let Some(p) = g.written {
                insert_progress(&mut part, Progress { parts: i + 1, ..p });
            }
            self.apply_part(part, i)?;
        }
        self.commit(last)?;
        self.announce(&known);
        Ok(())
    }

    /// Applies one part of a journaled fold (`written` parts before it).
    fn apply_part(&self, part: sled::Batch, written: u64) -> Result<(), StoreError> {
        super::injected::injected(written, super::injected::failure_planned())?;
        Ok(self.store.data.apply_batch(part)?)
    }

    /// The sender index entries of the deltas' senders (None: a new one).
    fn read_senders<'a>(&self, d: &Deltas<'a>) -> Result<Known<'a>, StoreError> {
        let mut known = HashMap::with_capacity(d.senders.len());
        for sender in d.senders.keys() {
            known.insert(*sender, self.store.sender_info(sender)?);
        }
        Ok(known)
    }
}

/// Adds the deltas to the current values (`known`: the sender index entries
/// as read): batches of the new values in key order, one unless `split`, the
/// first `skip` parts left out.
fn parts_of(
    store: &Store,
    d: &Deltas,
    known: &Known,
    split: bool,
    skip: u64,
) -> Result<Vec<sled::Batch>, StoreError> {
    let mut changes: Vec<(Vec<u8>, Change)> = Vec::with_capacity(d.keys());
    counter_changes(
        d.daily.iter().map(|((day, s), c)| ((*s, *day), c.0)),
        d.failures.iter().map(|((day, u), n)| ((*u, *day), [*n])),
        d.hourly.iter().map(|(k, n)| (*k, *n)),
        &mut changes,
    );
    for (sender, info) in &d.senders {
        changes.push((keys::sender_key(sender), Change::Sender(sender, info)));
    }
    // Key order makes the parts the same when a replay computes them.
    changes.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let size = if split {
        PART_KEYS
    } else {
        changes.len().max(1)
    };
    let mut parts = Vec::new();
    for (i, part) in changes.chunks(size).enumerate() {
        let write = i as u64 >= skip;
        let mut batch = sled::Batch::default();
        for (key, change) in part {
            if let Change::Sender(sender, delta) = change {
                let stored = known.get(sender).cloned().flatten();
                if let Some(info) = merged(stored, delta).filter(|_| write) {
                    batch.insert(key.as_slice(), info.encode());
                }
            } else if write {
                batch.insert(key.as_slice(), added(store, key, change)?);
            }
        }
        if write {
            parts.push(batch);
        }
    }
    Ok(parts)
}

/// Pushes onto `changes` the counter keys' changes for per-day counts
/// (accepted messages, failed logins) and per-hour counts, each given as
/// `((account, day or hour), counts)` in any order: every key with the
/// slots it gains (see [`keys::DAYS_PER_KEY`]), once.
pub(super) fn counter_changes<'a>(
    daily: impl Iterator<Item = ((&'a str, u32), [u64; 5])>,
    failures: impl Iterator<Item = ((&'a str, u32), [u64; 1])>,
    hourly: impl Iterator<Item = ((&'a str, u32), [u64; 2])>,
    changes: &mut Vec<(Vec<u8>, Change<'a>)>,
) {
    for ((sender, period), days) in slotted(daily, keys::DAYS_PER_KEY) {
        let key = keys::day_key(keys::DAILY, period, sender);
        changes.push((key, Change::Daily(days)));
    }
    for ((user, period), days) in slotted(failures, keys::DAYS_PER_KEY) {
        let key = keys::day_key(keys::FAILURES, period, user);
        changes.push((key, Change::Failures(days)));
    }
    for ((sender, week), hours) in slotted(hourly, keys::HOURS_PER_KEY) {
        changes.push((keys::hourly_key(sender, week), Change::Hourly(hours)));
    }
}

/// Per-unit counts grouped by the key of `per` units holding them:
/// `(account, key number)` and the key's slots, in order.
fn slotted<'a, const N: usize>(
    units: impl Iterator<Item = ((&'a str, u32), [u64; N])>,
    per: u32,
) -> Vec<((&'a str, u32), Vec<Slot<N>>)> {
    let mut units: Vec<_> = units.collect();
    // Already in order when a bulk write-out gives one account's lists.
    units.sort_unstable_by_key(|u| u.0);
    let mut keys: Vec<((&str, u32), Vec<Slot<N>>)> = Vec::new();
    for ((account, unit), counts) in units {
        let (number, at) = keys::slot(unit, per);
        match keys.last_mut() {
            Some((key, slots)) if *key == (account, number) => slots.push((at, counts)),
            _ => keys.push(((account, number), vec![(at, counts)])),
        }
    }
    keys
}

/// The new value of a counter key.
pub(super) fn added(store: &Store, key: &[u8], change: &Change) -> Result<Vec<u8>, StoreError> {
    let old = store.data.get(key)?;
    Ok(match change {
        Change::Daily(days) => codec::add_slots(&old.unwrap_or_default(), days, keys::DAYS_PER_KEY),
        Change::Failures(days) => {
            codec::add_slots(&old.unwrap_or_default(), days, keys::DAYS_PER_KEY)
        }
        Change::Hourly(hours) => {
            codec::add_slots(&old.unwrap_or_default(), hours, keys::HOURS_PER_KEY)
        }
        Change::Sender(..) => Vec::new(),
    })
}

/// The sender index entry after `delta`, when it must be written.
pub(super) fn merged(stored: Option<SenderInfo>, delta: &SenderInfo) -> Option<SenderInfo> {
    let old = stored.unwrap_or_default();
    let mut info = old.clone();
    info.merge(delta);
    let new_ip = info
        .ips
        .iter()
        .any(|(ip, _)| !old.ips.iter().any(|(o, _)| o == ip));
    (info.first_seen != old.first_seen
        || info.last_seen >= old.last_seen + LAST_SEEN_GRANULARITY
        || new_ip)
        .then_some(info)
}

fn insert_progress(batch: &mut sled::Batch, p: Progress) {
    let (k, v) = keys::journal_progress(p);
    batch.insert(&k[..], &v[..]);
}

impl<'a> Deltas<'a> {
    /// Keys a batch of these deltas writes at most (idempotency keys apart;
    /// hours of one sender and day share a key).
    fn keys(&self) -> usize {
        self.daily.len() + self.failures.len() + self.hourly.len() + self.senders.len()
    }

    /// Counts the events of one record (hourly counts from `oldest_hour`).
    fn count_all(&mut self, events: &[&'a Event], store: &Store, ids: &IdIndex, oldest_hour: u32) {
        for ev in events {
            let day =
                crate::event::time::day_number(crate::event::time::local_date(ev.ts, store.tz));
            if let Some(id) = &ev.id {
                self.ids.push(ids.key(day, id));
            }
            self.count(ev, day, oldest_hour);
        }
    }

    fn count(&mut self, ev: &'a Event, day: u32, oldest_hour: u32) {
        let hour = crate::event::time::hour_number(ev.ts);
        let sender = ev.sender.as_str();
        let slot = match ev.result {
            Outcome::Accepted => {
                self.daily.entry((day, sender)).or_default().bump(ev.tls);
                let ts = ev.ts.timestamp();
                let info = self.senders.entry(sender);
                let info = info.or_insert_with(|| SenderInfo::first(ts));
                info.note(&ev.sender, ts, ev.client_ip, ev.envelope_from.as_deref());
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
