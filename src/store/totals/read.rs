//! The store's reads of a period's daily counts, kept as [`Totals`].

use super::{PeriodTotals, READ_AHEAD, Span};
use crate::event::TlsCounts;
use crate::store::{Store, StoreError, codec, keys};
use std::sync::Arc;

impl Store {
    /// Reads and keeps, until `stop` says so, the totals the first reports
    /// after a start read: the spans of the ranges of the last `ranges`
    /// days and of the whole retention window (the whole periods between
    /// and the parts the ranges begin and end in), the newest
    /// [`READ_AHEAD`] of them. Returns how many periods it read: none when
    /// all of it is kept and current (the daemon calls it every few
    /// minutes, so that the spans of a new day are ready too; with more
    /// spans than are kept, each call would read the oldest again).
    /// Reads: call it from a blocking thread.
    pub(crate) fn read_ahead(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        ranges: &[u32],
        stop: impl Fn() -> bool,
    ) -> Result<usize, StoreError> {
        let oldest = crate::event::time::day_number(self.oldest_day(now));
        let today = crate::event::time::day_number(self.today(now));
        let firsts = ranges
            .iter()
            .map(|days| today.saturating_sub(days.saturating_sub(1)).max(oldest))
            .chain([oldest]);
        let mut spans: Vec<Span> = firsts
            .flat_map(|first| Store::spans(first..=today))
            .collect();
        spans.sort_unstable_by(|a, b| b.cmp(a));
        spans.dedup();
        spans.truncate(READ_AHEAD);
        // One read of a period builds every span of it wanted.
        spans.iter().for_each(|span| self.totals.want(*span));
        let mut read = Vec::new();
        for span in spans {
            if read.contains(&span.0) || self.totals.get(span).is_ok() {
                continue;
            }
            if stop() {
                break;
            }
            self.period_totals(span)?;
            read.push(span.0);
        }
        Ok(read.len())
    }

    /// The days `days` (day numbers) as a span of each period they touch,
    /// oldest first: what a report of them reads from each period.
    pub(crate) fn spans(days: std::ops::RangeInclusive<u32>) -> impl Iterator<Item = Span> {
        let (first, last) = (*days.start(), *days.end());
        (Store::daily_period(first)..=Store::daily_period(last)).map(move |period| {
            let whole = Store::period_days(period);
            (period, first.max(*whole.start()), last.min(*whole.end()))
        })
    }

    /// The accepted-message keys of one period (see [`keys::slot`]) in
    /// sender order, as `(sender, value)`: the sorted runs a report merges,
    /// each value read with [`Store::daily_slots`].
    pub(crate) fn daily_run(
        &self,
        period: u32,
    ) -> impl Iterator<Item = Result<(sled::IVec, sled::IVec), StoreError>> + use<> {
        self.period_keys(keys::DAILY, period..=period).map(|item| {
            let (k, v) = item?;
            Ok((k.subslice(5.min(k.len()), k.len().saturating_sub(5)), v))
        })
    }

    /// The days and counts of a value of period `period`'s run.
    pub(crate) fn daily_slots(period: u32, value: &[u8]) -> impl Iterator<Item = (u32, TlsCounts)> {
        codec::slots::<5>(value, keys::DAYS_PER_KEY).map(move |(at, counts)| {
            (
                keys::unslot(period, at, keys::DAYS_PER_KEY),
                TlsCounts(counts),
            )
        })
    }

    /// The period (see [`keys::slot`]) holding day `day`'s counts.
    pub(crate) fn daily_period(day: u32) -> u32 {
        keys::slot(day, keys::DAYS_PER_KEY).0
    }

    /// The days of period `period`.
    pub(crate) fn period_days(period: u32) -> std::ops::RangeInclusive<u32> {
        let first = keys::unslot(period, 0, keys::DAYS_PER_KEY);
        first..=first.saturating_add(keys::DAYS_PER_KEY - 1)
    }

    /// Every account's total over the days `first..=last` of period
    /// `period` (both within it), and each of those days: kept in memory
    /// until a write changes the period (see the module doc).
    pub(crate) fn period_totals(&self, span: Span) -> Result<Arc<PeriodTotals>, StoreError> {
        let version = match self.totals.get(span) {
            Ok(kept) => return Ok(kept),
            Err(version) => version,
        };
        let spans = self.totals.along(span);
        let base = *Store::period_days(span.0).start();
        // Each span's first and last slot of the period's keys.
        let slots: Vec<(u32, u32)> = spans
            .iter()
            .map(|(_, first, last)| (first.saturating_sub(base), last.saturating_sub(base)))
            .collect();
        let mut built: Vec<PeriodTotals> = slots
            .iter()
            .map(|(from, to)| PeriodTotals {
                senders: Vec::new(),
                days: vec![TlsCounts::default(); (to.saturating_sub(*from) + 1) as usize],
            })
            .collect();
        let mut sums = vec![None; spans.len()];
        for item in self.daily_run(span.0) {
            let (sender, value) = item?;
            for (at, counts) in codec::slots::<5>(&value, keys::DAYS_PER_KEY) {
                let (at, counts) = (u32::from(at), TlsCounts(counts));
                for (((from, to), totals), sum) in slots.iter().zip(&mut built).zip(&mut sums) {
                    if let Some(day) = at.checked_sub(*from).filter(|_| at <= *to) {
                        totals.days[day as usize].add(&counts);
                        sum.get_or_insert_with(TlsCounts::default).add(&counts);
                    }
                }
            }
            for (totals, sum) in built.iter_mut().zip(&mut sums) {
                if let Some(sum) = sum.take() {
                    totals.senders.push((sender.clone(), sum));
                }
            }
        }
        let built: Vec<Arc<PeriodTotals>> = built.into_iter().map(Arc::new).collect();
        for (span, totals) in spans.iter().zip(&built) {
            self.totals.keep(*span, version, totals.clone());
        }
        // `along` puts the span asked for first.
        Ok(built[0].clone())
    }

    /// The periods (see [`keys::slot`]) holding `days`, each once: what a
    /// write of those days changes.
    pub(crate) fn daily_periods(days: impl IntoIterator<Item = u32>) -> Vec<u32> {
        // An import's write-out gives millions of days of a few periods:
        // each kept once as it comes, not all collected and sorted.
        let mut periods: Vec<u32> = Vec::new();
        for period in days.into_iter().map(Store::daily_period) {
            if periods.last() != Some(&period) && !periods.contains(&period) {
                periods.push(period);
            }
        }
        periods.sort_unstable();
        periods
    }
}
