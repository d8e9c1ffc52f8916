//! A write-out: what a bulk held, with the detectors' state and alerts of
//! the same stretch, written in parts; on the store thread, or behind it
//! on a thread of its own while the store thread counts the next bulk.
//!
//! Why behind: importing 100,000 accounts in time order (`cargo bench
//! --bench scale`), the write-outs were 28 of the store thread's 48 s
//! (perf), and while they ran the parser and the detectors waited, one
//! core idle. A write-out behind needs nothing the store thread changes
//! meanwhile: the store's keys of its accounts are written by it alone
//! (the next bulk's write-out waits for it), it numbers its alerts from
//! the writer's last sequence number, and it appends the ids to the last
//! blocks of their days, lent to it by the writer's id index (see
//! `IdIndex::lend_reserved`). The writer takes all of it back when it
//! waits for the write-out: at the next one, or at the end.

use super::held::{Gathered, Held};
use super::{Bulk, Taken};
use crate::detect::{Alert, Dirty, Persisted};
use crate::store::codec::SenderInfo;
use crate::store::ids::{Blocks, IdKey};
use crate::store::writer::fold::{Change, added, counter_changes, merged};
use crate::store::writer::injected::injected;
use crate::store::{Store, StoreError, Writer, keys};
use chrono::{DateTime, Utc};

/// Accounts per store batch of a write-out: sled keeps every version of
/// the nodes a batch rewrites until it ends (heaptrack: ≈ 30 MB for 512
/// accounts), and the nodes grow with the tree, so this bounds the
/// write's memory. 128 was faster than 256 or 512 on the import benchmark;
/// 64 is as fast and, importing 18 days of log (4 GB), peaked at 80 MiB of
/// RSS instead of 90 (32: 79 MiB, with more system time).
pub(super) const PART_ACCOUNTS: usize = 64;

/// Everything one write-out writes.
pub(in crate::store::writer) struct WriteOut {
    pub store: Store,
    pub taken: Taken,
    /// The detectors' changed account states.
    pub states: States,
    pub cooldowns: Vec<(String, i64)>,
    /// Alerts raised, in order, to be logged (see [`Log`]).
    pub raised: Vec<Alert>,
    pub log: Log,
    pub blocks: Blocks,
    /// The detectors' cut these states came from (`Dirty::cut`).
    pub cut: u32,
    /// Parts after which a test makes the write fail.
    pub fail_after: Option<u64>,
    /// Whether to free the events as they are written (see [`release`]):
    /// behind the store thread, which fills the next bulk meanwhile.
    pub release: bool,
}

/// What a write-out gives back to the writer, written whole or not.
pub(in crate::store::writer) struct Done {
    pub written: Result<(), StoreError>,
    pub last_seq: u64,
    /// The alerts of the parts applied.
    pub committed: Vec<Alert>,
    pub blocks: Blocks,
    /// The events' memory, for the next bulk.
    pub held: Vec<Held>,
    /// The daily periods written (see `Store::daily_periods`).
    pub periods: Vec<u32>,
    pub cut: u32,
}

impl WriteOut {
    /// Writes everything (see the module doc of `bulk`): one batch per
    /// [`PART_ACCOUNTS`] accounts, with their states and a share of the
    /// alerts, then one with the rest.
    pub(super) fn run(mut self) -> Done {
        let periods = Store::daily_periods(self.taken.held.iter().map(Held::day));
        let mut held = std::mem::take(&mut self.taken.held);
        let written = self.write(&mut held);
        // What the write-out freed (account names, sled's batches) goes back
        // to the system (without this the import's RSS grew with its length
        // while its heap peak did not: 66 and 78 MiB for a 1 and a 2 GB log,
        // heap peak 76 MB for both).
        drop(self.taken);
        crate::process::release_freed();
        Done {
            written,
            last_seq: self.log.last_seq,
            committed: self.log.committed,
            blocks: self.blocks,
            held,
            periods,
            cut: self.cut,
        }
    }

    /// Writes the parts in order, or last to first when it frees the
    /// events written from the end of `held` (see [`WriteOut::release`]):
    /// on the store thread, the parts in descending order were a few
    /// percent slower (the import benchmark's log pinned to one core:
    /// 2.98–3.04 s against 2.88–2.90, three runs each, alternated).
    fn write(&mut self, held: &mut Vec<Held>) -> Result<(), StoreError> {
        let taken = &self.taken;
        let parts: Vec<_> = taken.names.chunks(PART_ACCOUNTS).collect();
        let (mut states, left) = by_part(std::mem::take(&mut self.states), &parts);
        let raised = std::mem::take(&mut self.raised);
        let per_part = raised.len().div_ceil(parts.len().max(1));
        let mut raised = raised.into_iter();
        let mut gathered = Gathered::default();
        let mut ids = Vec::new();
        let mut changes = Vec::new();
        let n = parts.len();
        for written in 0..n {
            let i = if self.release {
                n - 1 - written
            } else {
                written
            };
            let mut batch = sled::Batch::default();
            let first = i * PART_ACCOUNTS;
            let start = held.partition_point(|h| (h.account() as usize) < first);
            for account in taken.accounts(first, parts[i], &held[start..]) {
                let scratch = (&mut gathered, &mut changes, &mut ids);
                add_account(&self.store, &mut batch, account, scratch)?;
            }
            self.blocks.write(&self.store, &mut batch, &ids)?;
            ids.clear();
            injected(written as u64, self.fail_after)?;
            let own = Dirty {
                senders: std::mem::take(&mut states[i]),
                ..Dirty::default()
            };
            crate::store::alerts::save_dirty(&mut batch, &own);
            let alerts: Vec<Alert> = raised.by_ref().take(per_part).collect();
            self.log.apply(&self.store, batch, alerts)?;
            if self.release {
                release(held, start);
            }
        }
        // The rest: cool-downs, alerts left (and the states, if no account
        // was held).
        let mut batch = sled::Batch::default();
        let rest = Dirty {
            senders: left,
            cooldowns: std::mem::take(&mut self.cooldowns),
            ..Dirty::default()
        };
        crate::store::alerts::save_dirty(&mut batch, &rest);
        self.log.apply(&self.store, batch, raised.collect())
    }
}

/// Accounts' detector states, by name.
type States = Vec<(String, Persisted)>;

/// The accounts' states by the part they are written with: the part
/// whose first name is the last one at or before theirs, or the first
/// part (an account not held, whose incident the clock resolved, may fall
/// between them); all of them left over if there is no part.
fn by_part(states: States, parts: &[&[(Box<str>, u32)]]) -> (Vec<States>, States) {
    if parts.is_empty() {
        return (Vec::new(), states);
    }
    let mut by_part = vec![Vec::new(); parts.len()];
    for state in states {
        let after = parts.partition_point(|p| p.first().is_some_and(|a| *a.0 <= *state.0));
        by_part[after.saturating_sub(1)].push(state);
    }
    (by_part, Vec::new())
}

/// Bytes of written events freed at a time behind the store thread (see
/// [`release`]).
const RELEASE_BYTES: usize = 1 << 20;

/// Drops the events of `held` from `len` on, and gives their memory back
/// once [`RELEASE_BYTES`] of it are unused: shrinking a vector this large
/// in place hands the pages at its end back to the system (glibc maps it
/// apart and unmaps the tail), so the bulk being written shrinks while the
/// next one grows.
fn release(held: &mut Vec<Held>, len: usize) {
    held.truncate(len);
    if (held.capacity() - len) * std::mem::size_of::<Held>() >= RELEASE_BYTES {
        held.shrink_to(len);
    }
}

/// Where a write-out's alerts are logged: numbered after the last one
/// logged, and recorded at `now`.
pub(in crate::store::writer) struct Log {
    pub last_seq: u64,
    pub now: DateTime<Utc>,
    /// The alerts of the batches applied.
    pub committed: Vec<Alert>,
}

impl Log {
    /// Applies `batch` with `alerts` logged in it.
    fn apply(
        &mut self,
        store: &Store,
        mut batch: sled::Batch,
        alerts: Vec<Alert>,
    ) -> Result<(), StoreError> {
        super::super::log_alerts(&mut batch, &alerts, self.last_seq, self.now);
        store.data.apply_batch(batch)?;
        self.last_seq += alerts.len() as u64;
        self.committed.extend(alerts);
        Ok(())
    }
}

/// Lists reused from one account to the next.
type Scratch<'s, 'a> = (
    &'s mut Gathered,
    &'s mut Vec<(Vec<u8>, Change<'a>)>,
    &'s mut Vec<IdKey>,
);

/// Adds one account's new counts and index entry to `batch`, its ids to
/// the scratch list.
fn add_account<'a>(
    store: &Store,
    batch: &mut sled::Batch,
    (sender, info, held): (&'a str, Option<&SenderInfo>, &[Held]),
    (gathered, changes, ids): Scratch<'_, 'a>,
) -> Result<(), StoreError> {
    gathered.gather(held, ids);
    let days = gathered.days.iter();
    counter_changes(
        days.clone()
            .filter(|(_, (counts, _))| counts.iter().any(|n| *n > 0))
            .map(|(day, (counts, _))| ((sender, *day), *counts)),
        days.filter(|(_, (_, failed))| *failed > 0)
            .map(|(day, (_, failed))| ((sender, *day), [*failed])),
        gathered.hours.iter().map(|(hour, n)| ((sender, *hour), *n)),
        changes,
    );
    for (key, change) in changes.drain(..) {
        let value = added(store, &key, &change)?;
        batch.insert(key, value);
    }
    if let Some(info) = info
        && let Some(info) = merged(store.sender_info(sender)?, info)
    {
        batch.insert(keys::sender_key(sender), info.encode());
    }
    Ok(())
}

impl Writer {
    /// A write-out of `bulk` (emptied), with what the detectors changed and
    /// raised since the last one.
    pub(super) fn cut(&mut self, bulk: &mut Bulk, now: DateTime<Utc>) -> WriteOut {
        let taken = bulk.take();
        let Dirty {
            senders,
            cooldowns,
            cut,
        } = self.take_detected();
        // The detectors' state of each account goes with its counts, and
        // the alerts are spread over the batches in the order raised: one
        // batch of them all held most of an import's memory.
        WriteOut {
            store: self.store.clone(),
            taken,
            states: senders,
            cooldowns,
            raised: std::mem::take(&mut self.raised),
            log: Log {
                last_seq: self.last_seq,
                now,
                committed: Vec::new(),
            },
            blocks: self.ids.lend_reserved(),
            cut,
            fail_after: crate::store::writer::injected::failure_planned(),
            release: false,
        }
    }

    /// Takes back what a write-out lent and wrote; the detectors may drop
    /// the accounts it stored, unless they sent since. On failure the
    /// writer forgets what it holds (see [`Writer::forget`]).
    pub(super) fn settle(&mut self, done: Done) -> Result<Vec<Held>, StoreError> {
        self.last_seq = done.last_seq;
        self.committed.extend(done.committed);
        self.store.totals.changed(done.periods);
        if let Err(e) = done.written {
            self.forget();
            return Err(e);
        }
        self.ids.give_back(done.blocks);
        // Everything the detectors held at the cut is in the store now.
        self.sweep_stored(Some(done.cut));
        Ok(done.held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_goes_with_one_part() {
        let names: Vec<(Box<str>, u32)> = ["a", "b", "c", "d", "e"]
            .iter()
            .zip(0..)
            .map(|(n, i)| (Box::from(*n), i))
            .collect();
        let parts: Vec<_> = names.chunks(3).collect();
        let state = |n: &str| (n.to_string(), Persisted::default());
        let states = ["0", "b", "cz", "d", "zz"].map(state).to_vec();
        let (by, left) = by_part(states.clone(), &parts);
        let names = |v: &[(String, Persisted)]| v.iter().map(|s| s.0.clone()).collect::<Vec<_>>();
        assert_eq!(names(&by[0]), ["0", "b", "cz"]);
        assert_eq!(names(&by[1]), ["d", "zz"]);
        assert!(left.is_empty());
        let (by, left) = by_part(states, &[]);
        assert!(by.is_empty() && left.len() == 5);
    }
}
