//! A range's per-sender totals without a table of every sender.
//!
//! The counts of a period (four weeks, see the store's key layout) are
//! stored in sender order, one key per sender holding its days, so merging
//! the periods' runs yields every sender's total once, in sender order:
//! memory is the report's own rows, not a hash table per scan thread beside
//! them (two tables of 100,000 senders were a fifth of the daemon's peak
//! during such a report). Each key is read once whatever the number of its
//! days in the range: merging a run per day read every key of a period once
//! for each of its days (3.5 s for 90 days of 100,000 senders, against
//! well under a second by period).
//!
//! A report of every domain merges the totals of the range's days in each
//! period, kept in memory by the store, split by account range over
//! threads (`kept`). A report of one domain reads the periods' keys: the
//! periods are split into contiguous slices merged on their own threads,
//! each sending its sorted totals in batches, and the caller's thread
//! merges those streams the same way.

use crate::event::{TlsCounts, sender_domain};
use crate::store::{Store, StoreError};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::collections::binary_heap::PeekMut;
use std::ops::RangeInclusive;
use std::sync::mpsc;

mod kept;

/// Totals sent per message between a slice's thread and the merge.
const BATCH: usize = 1_024;
/// Batches a slice's thread may run ahead of the merge.
const AHEAD: usize = 4;

/// One sender's total.
type SenderTotal = (String, TlsCounts);

/// The per-day counts and per-sender totals (sender order) of `days`
/// (day numbers), merged on up to `slices` threads, restricted to
/// `domain`.
pub(super) fn totals(
    store: &Store,
    days: RangeInclusive<u32>,
    slices: u32,
    domain: Option<&str>,
) -> Result<(Vec<TlsCounts>, Vec<SenderTotal>), StoreError> {
    let Some(domain) = domain else {
        return kept::totals(store, &days, slices);
    };
    let (first, last) = (*days.start(), *days.end());
    let count = last.saturating_sub(first) as usize + 1;
    let (lo, hi) = (Store::daily_period(first), Store::daily_period(last));
    let periods = hi.saturating_sub(lo) + 1;
    let slices = slices.clamp(1, periods);
    let mut daily = vec![TlsCounts::default(); count];
    let mut senders: Vec<SenderTotal> = Vec::new();
    if slices == 1 {
        merge_periods(store, lo..=hi, &days, domain, &mut daily, |sender, c| {
            senders.push((sender.to_owned(), c));
            true
        })?;
        return Ok((daily, senders));
    }
    std::thread::scope(|scope| {
        let mut streams = Vec::new();
        let mut handles = Vec::new();
        for i in 0..slices {
            let from = lo + periods * i / slices;
            let to = lo + periods * (i + 1) / slices - 1;
            let (tx, rx) = mpsc::sync_channel::<Vec<SenderTotal>>(AHEAD);
            streams.push(rx);
            let days = &days;
            handles.push(scope.spawn(move || {
                let mut part = vec![TlsCounts::default(); count];
                let mut batch = Vec::with_capacity(BATCH);
                merge_periods(store, from..=to, days, domain, &mut part, |sender, c| {
                    batch.push((sender.to_owned(), c));
                    if batch.len() < BATCH {
                        return true;
                    }
                    tx.send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)))
                        .is_ok()
                })?;
                // A closed channel means the merge stopped: nothing to send.
                let _ = tx.send(batch);
                Ok::<_, StoreError>(part)
            }));
        }
        merge_streams(streams, |sender, c| senders.push((sender, c)));
        for handle in handles {
            // A panic in a slice is a bug: it stays one, on this thread.
            let part = handle
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e))?;
            for (mine, theirs) in daily.iter_mut().zip(&part) {
                mine.add(theirs);
            }
        }
        Ok((daily, senders))
    })
}

/// Merges the runs of `periods`, the accounts of `domain`: adds each
/// account's counts of each of `days` to `daily` (indexed from the first of
/// `days`) and calls `emit(sender, total)` once per account with counts in
/// `days`, in account order, until it returns false.
fn merge_periods(
    store: &Store,
    periods: RangeInclusive<u32>,
    days: &RangeInclusive<u32>,
    domain: &str,
    daily: &mut [TlsCounts],
    mut emit: impl FnMut(&str, TlsCounts) -> bool,
) -> Result<(), StoreError> {
    let first = *days.start();
    let mut runs: Vec<_> = periods.map(|p| (store.daily_run(p), p)).collect();
    let sources = runs.len();
    // The next sender of run `run` in `domain` with counts in `days`.
    let next = |run: usize| -> Result<Option<(sled::IVec, TlsCounts)>, StoreError> {
        let (reading, period) = &mut runs[run];
        while let Some((sender, value)) = reading.next().transpose()? {
            let kept = std::str::from_utf8(&sender).is_ok_and(|s| sender_domain(s) == domain);
            if !kept {
                continue;
            }
            let mut total = TlsCounts::default();
            let mut any = false;
            for (day, counts) in Store::daily_slots(*period, &value) {
                let slot = daily.get_mut(day.wrapping_sub(first) as usize);
                if let (true, Some(slot)) = (days.contains(&day), slot) {
                    slot.add(&counts);
                    total.add(&counts);
                    any = true;
                }
            }
            if any {
                return Ok(Some((sender, total)));
            }
        }
        Ok(None)
    };
    merge_sorted(sources, next, |sender, total| {
        emit(std::str::from_utf8(&sender).unwrap_or_default(), total)
    })
}

/// Merges the sorted streams of the slices' threads into `emit`, adding
/// up the totals of a sender found in several slices.
fn merge_streams(
    streams: Vec<mpsc::Receiver<Vec<SenderTotal>>>,
    mut emit: impl FnMut(String, TlsCounts),
) {
    let mut batches: Vec<std::vec::IntoIter<SenderTotal>> =
        streams.iter().map(|_| Vec::new().into_iter()).collect();
    // Next item of stream `i`: from its batch, or the next batch it sends.
    let next = |i: usize| loop {
        if let Some(item) = batches[i].next() {
            return Ok::<_, std::convert::Infallible>(Some(item));
        }
        match streams[i].recv() {
            Ok(batch) => batches[i] = batch.into_iter(),
            Err(_) => return Ok(None),
        }
    };
    let sources = streams.len();
    let Ok(()) = merge_sorted(sources, next, |sender, total| {
        emit(sender, total);
        true
    });
}

/// The k-way merge both levels share: `next(i)` gives source `i`'s next
/// `(key, counts)` (each source in key order), and `emit(key, total)`
/// each key's total once, in key order, until it returns false.
fn merge_sorted<K: AsRef<[u8]>, E>(
    sources: usize,
    mut next: impl FnMut(usize) -> Result<Option<(K, TlsCounts)>, E>,
    mut emit: impl FnMut(K, TlsCounts) -> bool,
) -> Result<(), E> {
    // Each source's counts wait beside the heap, which moves only keys:
    // moving them with the counts (72 bytes an item, a call to `memcpy`
    // each) was a fifth of the dashboard's 90-day page of 100,000 accounts
    // (perf).
    let mut counts = vec![TlsCounts::default(); sources];
    let mut heads = BinaryHeap::with_capacity(sources);
    for (run, slot) in counts.iter_mut().enumerate() {
        if let Some((key, c)) = next(run)? {
            *slot = c;
            heads.push(Reverse(Head::new(key, run)));
        }
    }
    let mut current: Option<(Head<K>, TlsCounts)> = None;
    while let Some(mut top) = heads.peek_mut() {
        let run = top.0.run;
        let c = counts[run];
        // The source's next key takes its place (one sift, not two).
        let head = match next(run)? {
            Some((key, c)) => {
                counts[run] = c;
                std::mem::replace(&mut top.0, Head::new(key, run))
            }
            None => PeekMut::pop(top).0,
        };
        match &mut current {
            Some((cur, total)) if cur.same_key(&head) => total.add(&c),
            _ => {
                if let Some((done, total)) = current.replace((head, c))
                    && !emit(done.key, total)
                {
                    return Ok(());
                }
            }
        }
    }
    if let Some((done, total)) = current {
        emit(done.key, total);
    }
    Ok(())
}

/// The current key of one source: ordered by key, then source. The
/// key's first eight bytes, read once as a number, decide most
/// comparisons: names compared whole, a call to `memcmp` each, were 15 %
/// of the dashboard's 90-day page of 100,000 accounts (perf).
struct Head<K> {
    prefix: u64,
    key: K,
    run: usize,
}

impl<K: AsRef<[u8]>> Head<K> {
    fn new(key: K, run: usize) -> Head<K> {
        Head {
            prefix: prefix(key.as_ref()),
            key,
            run,
        }
    }

    fn same_key(&self, other: &Head<K>) -> bool {
        self.prefix == other.prefix && self.key.as_ref() == other.key.as_ref()
    }
}

/// The first eight bytes of `key` as a big-endian number, zero-padded:
/// ordered as the keys are, but for ties (a key and another it starts,
/// or two that differ only after eight bytes).
fn prefix(key: &[u8]) -> u64 {
    let mut head = [0u8; 8];
    let n = key.len().min(8);
    head[..n].copy_from_slice(&key[..n]);
    u64::from_be_bytes(head)
}

impl<K: AsRef<[u8]>> Ord for Head<K> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.prefix
            .cmp(&other.prefix)
            .then_with(|| self.key.as_ref().cmp(other.key.as_ref()))
            .then(self.run.cmp(&other.run))
    }
}

impl<K: AsRef<[u8]>> PartialOrd for Head<K> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<K: AsRef<[u8]>> PartialEq for Head<K> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl<K: AsRef<[u8]>> Eq for Head<K> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, Tls};
    use crate::report::{ReportBuilder, ResolvedRange};
    use crate::store::{StoreOptions, Writer};
    use chrono::{Days, Utc};
    use std::sync::Arc;

    /// The report of `start..=end` (all domains) as built, and as a scan
    /// of every daily key gives it.
    fn built_and_scanned(
        store: &Store,
        start: chrono::NaiveDate,
        end: chrono::NaiveDate,
    ) -> (serde_json::Value, serde_json::Value) {
        let mut want = ReportBuilder::new(start, end, None);
        store
            .for_each_daily(start, end, |d, s, c| want.add(d, s, c))
            .unwrap();
        let range = ResolvedRange {
            start,
            end,
            domain: None,
        };
        let built = super::super::build_range(store, &range).unwrap();
        (
            serde_json::to_value(&built).unwrap(),
            serde_json::to_value(want.finish("UTC")).unwrap(),
        )
    }

    #[test]
    fn kept_period_totals_follow_every_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&StoreOptions::for_test(dir.path(), "UTC", 100)).unwrap();
        let now = Utc::now();
        let at =
            |days: u64, sender: &str| Event::accepted(now - Days::new(days), sender, Tls::V1_2);
        let events: Vec<Event> = (0..90).map(|d| at(d, &format!("u{}@x", d % 7))).collect();
        let mut w = Writer::new(store.clone());
        w.apply(&[&events], &[], now).unwrap();
        let today = store.today(now);
        let start = today - Days::new(89);
        let (built, want) = built_and_scanned(&store, start, today);
        assert_eq!(built, want);
        // Each later report equals a scan, and differs from the one before.
        let rebuilt = |from, before: &serde_json::Value, after: &str| {
            let (again, want) = built_and_scanned(&store, from, today);
            assert_eq!(again, want, "{after}");
            assert_ne!(&again, before, "{after}");
            again
        };
        // Both ways of writing change periods the first report kept.
        w.apply(&[&[at(40, "new@x"), at(41, "u1@x")]], &[], now)
            .unwrap();
        let again = rebuilt(start, &built, "after a fold");
        let mut bulk = crate::store::Bulk::with_budget(1 << 20);
        let events = vec![at(60, "bulk@x"), at(61, "new@x")];
        w.load(&mut bulk, Arc::new(events), now).unwrap();
        w.write_bulk(&mut bulk, now).unwrap();
        let third = rebuilt(start, &again, "after an import's write-out");
        assert_eq!(third["summary"]["messages"], 94);
        // The parts of periods a range ends in are kept as well: a week's
        // report, then a write into today's period.
        let week = today - Days::new(6);
        let (first_week, want) = built_and_scanned(&store, week, today);
        assert_eq!(first_week, want);
        w.apply(&[&[at(0, "late@x"), at(2, "u3@x")]], &[], now)
            .unwrap();
        rebuilt(week, &first_week, "a week after a fold into today");
        let fourth = rebuilt(start, &third, "90 days after a fold into today");
        assert_eq!(fourth["summary"]["messages"], 96);
    }

    #[test]
    fn merged_slices_equal_a_table_of_every_sender() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&StoreOptions::for_test(dir.path(), "UTC", 100)).unwrap();
        let now = Utc::now();
        // Senders on some days only over four periods, several domains,
        // "a@x" a prefix of "a@x2".
        let mut events: Vec<Event> = (0..12_000u64)
            .map(|i| {
                let ts = now - chrono::TimeDelta::hours((i * 7919 % 2_000) as i64);
                let sender = format!("u{}@d{}.example", i % 211, i % 3);
                Event::accepted(ts, sender, Tls::ALL[(i % 5) as usize])
            })
            .collect();
        for (sender, days) in [("a@x", 2), ("a@x2", 3), ("a@x", 9)] {
            events.push(Event::accepted(now - Days::new(days), sender, Tls::V1_3));
        }
        Writer::new(store.clone())
            .apply(&[&events], &[], now)
            .unwrap();
        let today = store.today(now);
        for (days, domain) in [
            (84u64, None),
            (60, Some("d2.example")),
            (17, None),
            (17, Some("d1.example")),
            (10, Some("x")),
            (1, None),
        ] {
            let start = today - Days::new(days - 1);
            let mut want = ReportBuilder::new(start, today, domain.map(str::to_owned));
            store
                .for_each_daily(start, today, |d, s, c| want.add(d, s, c))
                .unwrap();
            let want = serde_json::to_value(want.finish("UTC")).unwrap();
            let resolved = ResolvedRange {
                start,
                end: today,
                domain: domain.map(str::to_owned),
            };
            let built = super::super::build_range(&store, &resolved).unwrap();
            assert_eq!(
                serde_json::to_value(&built).unwrap(),
                want,
                "{days} days, {domain:?}"
            );
            let range =
                crate::event::time::day_number(start)..=crate::event::time::day_number(today);
            for slices in 1..=5 {
                let (daily, senders) = totals(&store, range.clone(), slices, domain).unwrap();
                assert!(
                    senders.windows(2).all(|w| w[0].0 < w[1].0),
                    "in sender order"
                );
                let got = crate::report::Report::assemble(
                    (start, today, domain.map(str::to_owned)),
                    "UTC",
                    daily,
                    senders,
                );
                assert_eq!(
                    serde_json::to_value(&got).unwrap(),
                    want,
                    "{days} days, {domain:?}, {slices} slices"
                );
                assert!(got.summary.messages > 0);
            }
        }
    }
}
