//! Bulk loading (`import`): counts held in memory across many batches and
//! written once per key, in key order.
//!
//! Folding an import batch by batch read and rewrote an account-day's keys
//! in every batch the account appeared in, at random places of a tree far
//! larger than the page cache: sled paged a node in for nearly every key,
//! and that bounded the import (`cargo bench --bench import`: 11–15 s for
//! a 1 GB log at the default cache). A [`Bulk`] holds the counts of many
//! batches in a compact form and writes them sorted by account, so each
//! key is read and written once per write-out and the tree is walked in
//! order.
//!
//! Crash safety: a write-out is a series of batches, each holding whole
//! accounts — their counts, sender index entries and the ids of their
//! events. After a crash an account's events are either all counted with
//! their ids or not at all, so re-running the import counts every event
//! exactly once. An account's detector state goes with its counts; the
//! alerts are spread over the batches in the order raised, so a crash in
//! the middle of a write-out may lose some alerts of that stretch.

use super::codec::SenderInfo;
use super::fold::{added, counter_changes, merged};
use super::ids::IdKey;
use super::write::Admitted;
use super::{StoreError, Writer, keys};
use crate::counts::TlsCounts;
use crate::detect::Dirty;
use crate::event::{Event, Outcome};
use chrono::{DateTime, Utc};
use foldhash::HashMap;

/// Accounts per store batch of a write-out: sled keeps every version of
/// the nodes a batch rewrites until it ends (heaptrack: ≈ 30 MB for 512
/// accounts), and the nodes grow with the tree, so this bounds the
/// write's memory. 128 was faster than 256 or 512 on the import benchmark;
/// 64 is as fast and, importing 18 days of log (4 GB), peaked at 80 MiB of
/// RSS instead of 90 (32: 79 MiB, with more system time).
const PART_ACCOUNTS: usize = 64;

/// Bytes of memory per item held, for [`Bulk::bytes`] (measured with
/// heaptrack: an account's map entry, name and first allocations; the lists
/// grow one entry at a time, most accounts having few).
const ACCOUNT_BYTES: usize = 256;
const DAY_BYTES: usize = 56;
const HOUR_BYTES: usize = 12;
const ID_BYTES: usize = 16;
const ID_DAY_BYTES: usize = 8;
const IP_BYTES: usize = std::mem::size_of::<(std::net::IpAddr, i64)>();

/// The counts of one account (sender or failed-login username) held.
#[derive(Default)]
struct Account {
    /// Accepted messages' summary (None: only failed logins).
    info: Option<SenderInfo>,
    /// Per local day: messages by TLS class and failed logins; ascending.
    days: Vec<(u32, (TlsCounts, u64))>,
    /// Per UTC hour: messages and failed logins (saturating: written out
    /// long before); ascending. An account-hour and an id are what a bulk
    /// holds most of, about one each per event: 12 and 16 bytes instead of
    /// 24 and 24 hold 40 % more events in the same memory.
    hours: Vec<(u32, [u32; 2])>,
    /// The ids' days, as runs: (day, number of ids) in the order held.
    id_days: Vec<(u32, u32)>,
    /// The ids' hashes (as [`words`]: a `u128` would align the list to 16).
    ids: Vec<[u64; 2]>,
}

/// An id hash as two words, and back.
fn words(h: u128) -> [u64; 2] {
    [h as u64, (h >> 64) as u64]
}

fn hash(w: [u64; 2]) -> u128 {
    u128::from(w[0]) | u128::from(w[1]) << 64
}

/// Counts admitted but not written yet (see the module doc).
#[derive(Default)]
pub struct Bulk {
    /// Boxed: a table sized for its peak would hold every account's lists'
    /// headers in each of its (mostly empty) buckets. Hashed with foldhash,
    /// randomly seeded: several times faster than SipHash on account
    /// names, and failed-login names, which attackers choose, cannot be
    /// chosen to collide with a seed they do not know.
    accounts: HashMap<Box<str>, Box<Account>>,
    bytes: usize,
    /// Memory to hold at most (0: no limit, write-outs are the caller's).
    budget: usize,
}

impl Bulk {
    /// A bulk written out by [`Writer::load`] when it holds `bytes`. (Also
    /// writing out at the start of a day once half full, so that fewer
    /// account-days are written in two parts, was slower on both the import
    /// benchmark's log and a file of 89 days: more write-outs.)
    pub fn with_budget(bytes: usize) -> Bulk {
        Bulk {
            budget: bytes,
            ..Bulk::default()
        }
    }

    /// Whether to write out before counting more.
    fn due(&self) -> bool {
        self.budget > 0 && self.bytes >= self.budget
    }

    /// Approximate memory held, in bytes.
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    /// Counts one admitted event (`day`: its local day number; hourly
    /// counts from `oldest_hour`).
    fn count(&mut self, ev: &Event, day: u32, id: Option<IdKey>, oldest_hour: u32) {
        let account = match self.accounts.get_mut(ev.sender.as_str()) {
            Some(a) => a,
            None => {
                self.bytes += ACCOUNT_BYTES + ev.sender.len();
                self.accounts.entry(ev.sender.as_str().into()).or_default()
            }
        };
        if let Some((day, hash)) = id {
            match account.id_days.last_mut() {
                Some((last, n)) if *last == day => *n += 1,
                _ => {
                    account.id_days.push((day, 1));
                    self.bytes += ID_DAY_BYTES;
                }
            }
            account.ids.push(words(hash));
            self.bytes += ID_BYTES;
        }
        let ((counts, failures), fresh) = slot(&mut account.days, day);
        self.bytes += usize::from(fresh) * DAY_BYTES;
        let failed = match ev.result {
            Outcome::Accepted => {
                counts.bump(ev.tls);
                let ts = ev.ts.timestamp();
                let info = account.info.get_or_insert_with(|| SenderInfo::first(ts));
                let had = info.ips.capacity();
                info.note(ts, ev.client_ip);
                self.bytes += (info.ips.capacity() - had) * IP_BYTES;
                0
            }
            Outcome::AuthFailed => {
                *failures += 1;
                1
            }
        };
        let hour = keys::hour_number(ev.ts);
        if hour >= oldest_hour {
            let (h, fresh) = slot(&mut account.hours, hour);
            h[failed] = h[failed].saturating_add(1);
            self.bytes += usize::from(fresh) * HOUR_BYTES;
        }
    }
}

/// The entry for `at` in a list ascending by `at`, added (and then
/// `true`) if missing. Events come mostly in time order, so the search
/// starts from the end.
fn slot<T: Default>(list: &mut Vec<(u32, T)>, at: u32) -> (&mut T, bool) {
    let pos = list.iter().rposition(|e| e.0 <= at);
    match pos {
        Some(i) if list[i].0 == at => (&mut list[i].1, false),
        _ => {
            let i = pos.map_or(0, |i| i + 1);
            list.reserve_exact(1);
            list.insert(i, (at, T::default()));
            (&mut list[i].1, true)
        }
    }
}

impl Writer {
    /// Admits `events` (as [`Writer::apply`] does, also against the ids
    /// `bulk` holds) and counts them into `bulk`; the detectors observe them
    /// now. Writes out as [`Bulk::with_budget`] says; call
    /// [`Writer::write_bulk`] at the end. Does not flush.
    pub fn load(
        &mut self,
        bulk: &mut Bulk,
        events: &[Event],
        now: DateTime<Utc>,
    ) -> Result<super::IngestOutcome, StoreError> {
        // An id is reserved in the writer's index as it is admitted and
        // written with its account's counts.
        let (outcome, keep) = self.admit_with(events, now, |w, key| {
            Ok(!w.pending.ids.contains(&key) && w.ids.reserve(&w.store, key)?)
        })?;
        let oldest_hour = self.oldest_hour(now);
        let admitted = events.iter().zip(keep).filter_map(|(e, k)| Some((e, k?)));
        for (ev, Admitted { day, id }) in admitted {
            if bulk.due() {
                self.write_bulk(bulk, now)?;
            }
            bulk.count(ev, day, id, oldest_hour);
            // Accounts held in `bulk` stay in the detectors' memory until
            // the write-out (they are swept only on commit), so the store's
            // stale view of them is never loaded.
            if let Some(detector) = &mut self.detector {
                detector.observe(ev, &self.store, &mut self.raised);
            }
        }
        Ok(outcome)
    }

    /// Writes what `bulk` holds (see the module doc) and empties it. Does
    /// not flush.
    pub fn write_bulk(&mut self, bulk: &mut Bulk, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut accounts: Vec<_> = std::mem::take(&mut bulk.accounts).into_iter().collect();
        bulk.bytes = 0;
        accounts.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        // The detectors' state of each account goes with its counts, and
        // the alerts are spread over the batches in the order raised: one
        // batch of them all held most of an import's memory.
        let dirty = self.detector.as_mut().map(|d| d.take_dirty());
        let Dirty {
            mut senders,
            cooldowns,
        } = dirty.unwrap_or_default();
        senders.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut states = senders.into_iter().peekable();
        let raised = std::mem::take(&mut self.raised);
        let parts = accounts.chunks(PART_ACCOUNTS);
        let per_part = raised.len().div_ceil(parts.len().max(1));
        let mut raised = raised.into_iter();
        for (i, part) in parts.enumerate() {
            let mut batch = sled::Batch::default();
            let written = self.part_batch(&mut batch, part);
            if let Err(e) = written.and_then(|()| super::fold::injected_failure(i as u64)) {
                self.forget();
                return Err(e);
            }
            let last = part.last().map_or("", |a| &a.0);
            let dirty = Dirty {
                senders: std::iter::from_fn(|| states.next_if(|s| s.0.as_str() <= last)).collect(),
                cooldowns: Vec::new(),
            };
            super::alerts::save_dirty(&mut batch, &dirty);
            self.raised = raised.by_ref().take(per_part).collect();
            self.log_raised(&mut batch, now);
            self.apply_logged(batch)?;
        }
        // The rest: accounts not held (an incident resolved by the clock),
        // cool-downs, alerts left.
        let mut batch = sled::Batch::default();
        let rest = Dirty {
            senders: states.collect(),
            cooldowns,
        };
        super::alerts::save_dirty(&mut batch, &rest);
        self.raised = raised.collect();
        self.log_raised(&mut batch, now);
        let committed = self.commit(batch);
        // The accounts just written are freed (without this the import's
        // RSS grew with its length while its heap peak did not: 66 and 78
        // MiB for a 1 and a 2 GB log, heap peak 76 MB for both).
        crate::memory::release_freed();
        committed
    }

    /// Adds the new values of some accounts' keys, and their ids, to `batch`.
    fn part_batch(
        &mut self,
        batch: &mut sled::Batch,
        part: &[(Box<str>, Box<Account>)],
    ) -> Result<(), StoreError> {
        let store = &self.store;
        let mut ids = Vec::new();
        for (sender, account) in part {
            let mut changes = Vec::new();
            let days = account.days.iter();
            counter_changes(
                days.clone()
                    .filter(|(_, (counts, _))| counts.0.iter().any(|n| *n > 0))
                    .map(|(day, (counts, _))| ((&**sender, *day), counts.0)),
                days.filter(|(_, (_, failed))| *failed > 0)
                    .map(|(day, (_, failed))| ((&**sender, *day), [*failed])),
                account
                    .hours
                    .iter()
                    .map(|(hour, n)| ((&**sender, *hour), n.map(u64::from))),
                &mut changes,
            );
            for (key, change) in changes {
                let value = added(store, &key, &change)?;
                batch.insert(key, value);
            }
            if let Some(info) = &account.info {
                if let Some(info) = merged(store.sender_info(sender)?, info) {
                    batch.insert(keys::sender_key(sender), info.encode());
                }
            }
            let mut hashes = account.ids.iter();
            for (day, n) in &account.id_days {
                let run = hashes.by_ref().take(*n as usize);
                ids.extend(run.map(|h| (*day, hash(*h))));
            }
        }
        self.ids.write_reserved(store, batch, &ids)
    }
}

#[cfg(test)]
mod tests;
