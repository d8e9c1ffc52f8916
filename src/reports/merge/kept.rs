//! The totals of a report of every domain, from the totals of the range's
//! days in each period that the store keeps (its `totals`).
//!
//! Those are sorted by account in memory, so the merge is split by
//! account range, not by period: each thread merges every period's
//! accounts of one range, and the ranges' results are laid end to end.
//! Split by period, every thread met most accounts, copied each name out,
//! and a last merge on the caller's thread compared them all again: with
//! 100,000 accounts the merge was the largest part of the dashboard's
//! 90-day page (perf).

use super::{SenderTotal, merge_sorted};
use crate::event::TlsCounts;
use crate::store::{PeriodTotals, Span, Store, StoreError};
use std::ops::RangeInclusive;
use std::sync::Arc;

/// The per-day counts and per-account totals (account order) of `days`
/// (day numbers), on up to `threads` threads.
pub(super) fn totals(
    store: &Store,
    days: &RangeInclusive<u32>,
    threads: u32,
) -> Result<(Vec<TlsCounts>, Vec<SenderTotal>), StoreError> {
    let first = *days.start();
    let spans: Vec<Span> = Store::spans(days.clone()).collect();
    let kept = read(store, &spans, threads)?;
    let mut daily = vec![TlsCounts::default(); days.clone().count()];
    for (span, totals) in spans.iter().zip(&kept) {
        let from = (span.1 - first) as usize;
        for (mine, theirs) in daily.iter_mut().skip(from).zip(&totals.days) {
            mine.add(theirs);
        }
    }
    let runs: Vec<&[(sled::IVec, TlsCounts)]> = kept.iter().map(|t| &t.senders[..]).collect();
    // Account ranges of about equal size: cut where the longest run is.
    let longest = runs.iter().copied().max_by_key(|r| r.len()).unwrap_or(&[]);
    let cuts: Vec<&[u8]> = (1..threads as usize)
        .filter_map(|i| longest.get(longest.len() * i / threads as usize))
        .map(|(sender, _)| sender.as_ref())
        .collect();
    // Range `i` of every run: from cut `i - 1` (or the start) to cut `i`
    // (or the end).
    let range = |i: usize| -> Vec<&[(sled::IVec, TlsCounts)]> {
        let at = |run: &[(sled::IVec, TlsCounts)], cut: Option<&&[u8]>, none: usize| {
            cut.map_or(none, |cut| run.partition_point(|(s, _)| s.as_ref() < *cut))
        };
        let lower = i.checked_sub(1).and_then(|i| cuts.get(i));
        runs.iter()
            .map(|run| &run[at(run, lower, 0)..at(run, cuts.get(i), run.len())])
            .collect()
    };
    if cuts.is_empty() {
        return Ok((daily, merge(&range(0))));
    }
    let parts = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..=cuts.len())
            .map(|i| {
                let runs = range(i);
                scope.spawn(move || merge(&runs))
            })
            .collect();
        // A panic in a thread is a bug: it stays one, on this thread.
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect::<Vec<_>>()
    });
    Ok((daily, parts.concat()))
}

/// The totals of `spans`, read from the store where not kept, the spans
/// shared out among up to `threads` threads.
fn read(store: &Store, spans: &[Span], threads: u32) -> Result<Vec<Arc<PeriodTotals>>, StoreError> {
    let per_thread = spans.len().div_ceil(threads.max(1) as usize).max(1);
    if per_thread == spans.len() {
        return spans.iter().map(|s| store.period_totals(*s)).collect();
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = spans
            .chunks(per_thread)
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|s| store.period_totals(*s))
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        let mut all = Vec::with_capacity(spans.len());
        for handle in handles {
            all.extend(
                handle
                    .join()
                    .unwrap_or_else(|e| std::panic::resume_unwind(e))?,
            );
        }
        Ok(all)
    })
}

/// One account range of every period merged: each account's total once,
/// in account order. The names are borrowed from the kept totals, not
/// cloned: a clone and a drop of a name's shared buffer are two atomic
/// operations, and most of the merge's samples fell just after them
/// (perf annotate, the page of 100,000 accounts).
fn merge(runs: &[&[(sled::IVec, TlsCounts)]]) -> Vec<SenderTotal> {
    let mut at = vec![0; runs.len()];
    let next = |run: usize| {
        let item = runs[run].get(at[run]);
        at[run] += 1;
        Ok::<_, std::convert::Infallible>(item.map(|(sender, counts)| (sender.as_ref(), *counts)))
    };
    let mut out = Vec::new();
    let Ok(()) = merge_sorted(runs.len(), next, |sender: &[u8], total| {
        out.push((
            std::str::from_utf8(sender).unwrap_or_default().to_owned(),
            total,
        ));
        true
    });
    out
}
