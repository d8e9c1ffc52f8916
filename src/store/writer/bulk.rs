//! Bulk loading (`import`): counts held in memory across many batches and
//! written once per key, in key order.
//!
//! Folding an import batch by batch read and rewrote an account-day's keys
//! in every batch the account appeared in, at random places of a tree far
//! larger than the page cache: sled paged a node in for nearly every key,
//! and that bounded the import (`cargo bench --bench import`: 11–15 s for
//! a 1 GB log at the default cache). A [`Bulk`] holds the events of many
//! batches, one small record each (`held`), and writes their counts
//! sorted by account, so each key is read and written once per write-out
//! and the tree is walked in order.
//!
//! Crash safety: a write-out is a series of batches, each holding whole
//! accounts — their counts, sender index entries and the ids of their
//! events. After a crash an account's events are either all counted with
//! their ids or not at all, so re-running the import counts every event
//! exactly once. An account's detector state goes with its counts; the
//! alerts are spread over the batches in the order raised, so a crash in
//! the middle of a write-out may lose some alerts of that stretch. A
//! write-out behind the store thread (`out.rs`) writes the same batches;
//! what the store thread counted meanwhile is in no batch yet, and is
//! counted by the re-run.

use super::Admitted;
use crate::event::{Event, Outcome};
use crate::store::codec::SenderInfo;
use crate::store::ids::IdKey;
use crate::store::{StoreError, Writer};
use chrono::{DateTime, Utc};
use foldhash::HashMap;
use held::{Held, MAX_ACCOUNTS};
use std::sync::Arc;

mod behind;
mod held;
mod out;

pub(crate) use behind::Behind;

/// Events held per account, on average, before a write-out. A write-out
/// rewrites every account it holds (its daily, hourly and index keys): with
/// 100,000 accounts their table alone outgrew the budget, and each
/// write-out rewrote them all for one or two events each. 100,000
/// accounts over 20 days (`cargo bench --bench scale`, BENCH_DAYS=20): 85 s,
/// 1,542 MiB written for a store of 580 MiB; with a floor of 8 events 35 s;
/// of 16, 25 s, 833 MiB written for 330, peak RSS 229 MiB instead of 163.
/// Over 90 days, 16 against 32: 79–83 s against 60 s, a store of 1.11 GB
/// against 0.95 (fewer rewrites leave sled less to clean); 24 against 32:
/// 65.8–68.4 s against 63.9, a store of 0.99–1.01 GB against 0.94.
const EVENTS_PER_ACCOUNT: usize = 32;

/// The floor applies only where it holds at least this many times the
/// budget: for sites whose accounts outnumber the budget (100,000
/// accounts: 8 events each at the import's budget), not for those it
/// would hold a little longer. For 30,000 accounts (a 4 GB log of the
/// import benchmark), lifting them to 32 events each held 960,000 events,
/// and the ids of the days they span, and peaked at 96.7–97.9 MiB (8 GB:
/// 101.9–102.6), over the 100 MB an import is to stay in; a 16 MiB budget
/// and no floor for them: 84.8–87.9 MiB (8 GB: 92.3–92.6) in the same
/// time (9.10–9.35 s against 9.05–9.55, three runs each, alternated).
const FLOOR_FROM: usize = 2;

/// The most a bulk holds, as a multiple of its budget, however few events
/// its accounts have: the floor above waits for accounts to gather events,
/// and a log of failed logins under a new username each (a password
/// spray) has accounts that never do. Such a log of 3 million lines was
/// imported whole into memory, 744 MiB of peak RSS. Six times the
/// import's budget is 96 MiB, above what 100,000 accounts hold at the
/// floor by this count (100,000 × (32 × 16 + 128 + a name) ≈ 66 MB), so
/// `cargo bench --bench scale` writes out as before.
const CEILING: usize = 6;

/// Bytes of memory per account held, for [`Bulk::bytes`]: its table
/// entry and name...
const ACCOUNT_BYTES: usize = 64;
/// ...and for those with accepted messages, their summary (client IPs
/// counted apart).
const INFO_BYTES: usize = std::mem::size_of::<SenderInfo>();
const IP_BYTES: usize = std::mem::size_of::<(std::net::IpAddr, i64)>();
/// An envelope sender's entry in an account's summary, without its text.
const ENVELOPE_BYTES: usize = std::mem::size_of::<(Box<str>, i64)>();

/// An account without a summary in [`Bulk`]'s `infos`.
const NO_INFO: u32 = u32::MAX;

/// Events admitted but not written yet (see the module doc).
#[derive(Default)]
pub struct Bulk {
    /// Account names and their numbers. Hashed with foldhash, randomly
    /// seeded: several times faster than SipHash on account names, and
    /// failed-login names, which attackers choose, cannot be chosen to
    /// collide with a seed they do not know.
    accounts: HashMap<Box<str>, u32>,
    /// Where each account's summary is in `infos`, by account number
    /// ([`NO_INFO`]: only failed logins, which need none: a log of them
    /// under ever new usernames kept 64 bytes of nothing per name).
    info_of: Vec<u32>,
    /// Accepted messages' summaries.
    infos: Vec<SenderInfo>,
    held: Vec<Held>,
    bytes: usize,
    /// Memory to hold at most (0: no limit, write-outs are the caller's).
    budget: usize,
    /// Events per account held before a write-out, on average, at least.
    per_account: usize,
}

impl Bulk {
    /// A bulk written out by [`Writer::load`] when it holds `bytes`. (Also
    /// writing out at the start of a day once half full, so that fewer
    /// account-days are written in two parts, was slower on both the import
    /// benchmark's log and a file of 89 days: more write-outs.)
    pub(crate) fn with_budget(bytes: usize) -> Bulk {
        Bulk {
            budget: bytes,
            // Grown only past the budget, for many accounts (see
            // [`EVENTS_PER_ACCOUNT`]): the old and new copies of a growing
            // vector stay in the heap, and peak RSS with them.
            held: Vec::with_capacity(bytes / std::mem::size_of::<Held>()),
            per_account: EVENTS_PER_ACCOUNT,
            ..Bulk::default()
        }
    }

    /// The same bulk writing out on the budget alone.
    #[cfg(test)]
    pub fn without_floor(self) -> Bulk {
        Bulk {
            per_account: 0,
            ..self
        }
    }

    /// Whether to write out before counting more: when the budget is
    /// spent, but not before the accounts held have [`EVENTS_PER_ACCOUNT`]
    /// events each on average if that is at least [`FLOOR_FROM`] times
    /// the budget, nor before [`CEILING`] times the budget is spent.
    fn due(&self) -> bool {
        if self.accounts.len() >= MAX_ACCOUNTS {
            return true;
        }
        let floor = self.accounts.len() * self.per_account * std::mem::size_of::<Held>();
        let below_floor = self.floored() && self.held.len() * std::mem::size_of::<Held>() < floor;
        self.budget > 0
            && self.bytes >= self.budget
            && (!below_floor || self.bytes >= self.budget.saturating_mul(CEILING))
    }

    /// Whether the floor of events per account applies: it holds at
    /// least [`FLOOR_FROM`] times the budget.
    fn floored(&self) -> bool {
        let floor = self.accounts.len() * self.per_account * std::mem::size_of::<Held>();
        floor >= self.budget.saturating_mul(FLOOR_FROM)
    }

    /// Approximate memory held, in bytes.
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty() && self.held.is_empty()
    }

    /// Counts one admitted event (`day`: its local day number; hourly
    /// counts from `oldest_hour`).
    fn count(&mut self, ev: &Event, day: u32, id: Option<IdKey>, oldest_hour: u32) {
        let account = match self.accounts.get(ev.sender.as_str()) {
            Some(a) => *a,
            None => {
                let a = self.info_of.len() as u32;
                self.accounts.insert(ev.sender.as_str().into(), a);
                self.info_of.push(NO_INFO);
                self.bytes += ACCOUNT_BYTES + ev.sender.len();
                a
            }
        };
        if ev.result == Outcome::Accepted {
            let ts = ev.ts.timestamp();
            if let Some(at) = self.info_of.get_mut(account as usize) {
                if *at == NO_INFO {
                    *at = self.infos.len() as u32;
                    self.infos.push(SenderInfo::first(ts));
                    self.bytes += INFO_BYTES;
                }
                let info = &mut self.infos[*at as usize];
                let had = (info.ips.capacity(), info.envelopes.capacity());
                info.note(&ev.sender, ts, ev.client_ip, ev.envelope_from.as_deref());
                self.bytes += (info.ips.capacity() - had.0) * IP_BYTES;
                if info.envelopes.capacity() > had.1 {
                    // The string itself, with the entry: an upper bound.
                    self.bytes += ENVELOPE_BYTES + ev.envelope_from.as_ref().map_or(0, String::len);
                }
            }
        }
        let hour = crate::event::time::hour_number(ev.ts);
        let hash = id.map(|(_, hash)| hash);
        let held = Held::new(ev, account, hour, day, hash, hour >= oldest_hour);
        self.held.push(held);
        self.bytes += std::mem::size_of::<Held>();
    }

    /// Takes what is held: the accounts in name order with their numbers,
    /// the summaries by number, and the events sorted by the account's
    /// rank in name order (which replaces its number in them).
    fn take(&mut self) -> Taken {
        let mut names: Vec<(Box<str>, u32)> = self.accounts.drain().collect();
        names.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut rank = vec![0; names.len()];
        for (r, (_, a)) in names.iter().enumerate() {
            rank[*a as usize] = r as u32;
        }
        let mut held = std::mem::take(&mut self.held);
        for h in &mut held {
            h.renumber(rank[h.account() as usize]);
        }
        held.sort_unstable_by_key(Held::order);
        self.bytes = 0;
        Taken {
            names,
            info_of: std::mem::take(&mut self.info_of),
            infos: std::mem::take(&mut self.infos),
            held,
        }
    }
}

/// What a write-out takes from a [`Bulk`] (see [`Bulk::take`]).
struct Taken {
    names: Vec<(Box<str>, u32)>,
    info_of: Vec<u32>,
    infos: Vec<SenderInfo>,
    held: Vec<Held>,
}

impl Taken {
    /// The accounts of ranks `first..` (`names`), each with its summary and
    /// events, `held` starting with the events of `first`.
    fn accounts<'a, 'h>(
        &'a self,
        first: usize,
        names: &'a [(Box<str>, u32)],
        mut held: &'h [Held],
    ) -> impl Iterator<Item = (&'a str, Option<&'a SenderInfo>, &'h [Held])> {
        names.iter().enumerate().map(move |(i, (name, number))| {
            let rank = (first + i) as u32;
            let (own, rest) = held.split_at(held.partition_point(|h| h.account() <= rank));
            held = rest;
            let at = self.info_of.get(*number as usize).copied();
            let info = at.and_then(|at| self.infos.get(at as usize));
            (&**name, info, own)
        })
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
        events: Arc<Vec<Event>>,
        now: DateTime<Utc>,
    ) -> Result<crate::store::IngestOutcome, StoreError> {
        // An id is reserved in the writer's index as it is admitted and
        // written with its account's counts.
        let (outcome, keep) = self.admit_with(&events, now, |w, key| {
            Ok(!w.pending.ids.contains(&key) && w.ids.reserve(&w.store, key)?)
        })?;
        let oldest_hour = self.oldest_hour(now);
        // The events for the detectors' thread, by index in `events`.
        let mut ahead = Vec::new();
        let admitted = events.iter().zip(keep).enumerate();
        for (at, (ev, Admitted { day, id })) in
            admitted.filter_map(|(i, (e, k))| Some((i, (e, k?))))
        {
            if bulk.due() {
                if let Some(detectors) = &self.ahead {
                    detectors.observe(&events, &mut ahead);
                }
                self.write_out(bulk, now)?;
            }
            bulk.count(ev, day, id, oldest_hour);
            // Accounts held in `bulk` stay in the detectors' memory until
            // their write-out has committed (see `Detector::sweep_cut`),
            // so the store's stale view of them is never loaded.
            if let Some(detector) = &mut self.detector {
                detector.observe(ev, &self.store, &mut self.raised);
            } else if self.ahead.is_some() {
                ahead.push(at as u32);
            }
        }
        if let Some(detectors) = &self.ahead {
            detectors.observe(&events, &mut ahead);
        }
        Ok(outcome)
    }

    /// Writes what `bulk` holds (see the module doc) and empties it, once
    /// a write-out behind (see [`Writer::write_behind`]) has ended. Does
    /// not flush.
    pub(crate) fn write_bulk(
        &mut self,
        bulk: &mut Bulk,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.wait_behind()?;
        let done = self.cut(bulk, now).run();
        // The held events' memory is kept for the next ones.
        bulk.held = self.settle(done)?;
        bulk.held.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests;
