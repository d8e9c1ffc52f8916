//! The daily counts a period (four weeks, see `keys`) at a time, as reports
//! read them, and each account's total over the days of a period a report
//! asked for, kept in memory.
//!
//! A report reads every account's key of every period in its range, and
//! sled's iterator pays a tree descent per key and, when the range is
//! larger than the page cache, reads and decodes every node from the file
//! again: with 100,000 accounts that was most of a 90-day report's second.
//! The same days of a period give the same totals to every report until a
//! write changes the period, so they are kept: at most [`KEPT_SPANS`] spans
//! of days, about 100 bytes per account each. A 90-day range is two or
//! three whole periods and the parts of two more; the dashboard's page
//! adds its 7-day tile. The current period changes with every write, so on
//! a site with traffic its spans are read again by most reports; the past
//! ones are read once. A period read again gives every span of it kept
//! before in the same pass (the dashboard's page asks for two of the
//! current period: its range's and its tile's). The daemon reads the whole
//! periods before today's ahead, at start ([`Store::read_ahead`]), so the
//! first report after a start reads only the periods it begins and ends in.
//!
//! The writer calls [`Totals::changed`] after it has applied anything that
//! changes a period's daily counts (a fold, an import's write-out, whether
//! or not it succeeded; the purge changes them all). A report builds a
//! period's totals only from what it read after the period's last change,
//! so it never keeps totals a write made stale: see [`Totals::keep`].

use super::{Store, StoreError, codec, keys};
use crate::event::TlsCounts;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Spans whose totals are kept, at most.
const KEPT_SPANS: usize = 8;
/// Spans of one period built in one read of it, at most.
const SPANS_PER_READ: usize = 4;
/// Whole periods read ahead, at most: half the spans kept, the rest for
/// the parts of periods that ranges begin and end in.
const READ_AHEAD: usize = KEPT_SPANS / 2;

/// Days of one period: its number and the first and last day of the span
/// (day numbers).
pub(crate) type Span = (u32, u32, u32);

/// The totals of some days of one period: every account with messages in
/// them, in account order, and each of the days (all accounts together).
pub(crate) struct PeriodTotals {
    pub senders: Vec<(sled::IVec, TlsCounts)>,
    pub days: Vec<TlsCounts>,
}

/// When a period's counts last changed: the change count of all periods
/// and of that period.
pub(crate) type Version = (u64, u64);

#[derive(Default)]
struct Inner {
    /// Changes of every period at once (the purge).
    all: u64,
    /// Changes per period.
    changes: HashMap<u32, u64>,
    /// The spans kept, with the version their totals were read at; the
    /// totals are dropped when their period changes, the span stays: it is
    /// built again with the next read of its period.
    kept: HashMap<Span, (Version, Option<Arc<PeriodTotals>>)>,
}

impl Inner {
    fn version(&self, period: u32) -> Version {
        (self.all, self.changes.get(&period).copied().unwrap_or(0))
    }
}

/// The kept totals (see the module doc), shared by every handle of a store.
#[derive(Default)]
pub(crate) struct Totals(Mutex<Inner>);

impl Totals {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The data stays consistent whatever a panicking holder did: each
        // method changes it in one step.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The kept totals of `span` if they are current, else the version to
    /// give [`Totals::keep`] with totals read from now on.
    pub(crate) fn get(&self, span: Span) -> Result<Arc<PeriodTotals>, Version> {
        let inner = self.inner();
        let version = inner.version(span.0);
        match inner.kept.get(&span) {
            Some((v, Some(totals))) if *v == version => Ok(totals.clone()),
            _ => Err(version),
        }
    }

    /// Keeps `totals` of `span`, read after [`Totals::get`] gave
    /// `version`, unless its period changed since (then they may be stale).
    pub(crate) fn keep(&self, span: Span, version: Version, totals: Arc<PeriodTotals>) {
        let mut inner = self.inner();
        if inner.version(span.0) != version {
            return;
        }
        if inner.kept.len() >= KEPT_SPANS
            && !inner.kept.contains_key(&span)
            && let Some(oldest) = inner.kept.keys().min().copied()
        {
            // Reports look at recent weeks far more than at old ones.
            if oldest > span {
                return;
            }
            inner.kept.remove(&oldest);
        }
        inner.kept.insert(span, (version, Some(totals)));
    }

    /// `span` first, then the other spans kept of its period (the latest
    /// first): what one read of the period builds.
    fn along(&self, span: Span) -> Vec<Span> {
        let inner = self.inner();
        let mut others: Vec<Span> = inner
            .kept
            .keys()
            .filter(|s| s.0 == span.0 && **s != span)
            .copied()
            .collect();
        others.sort_unstable_by(|a, b| b.cmp(a));
        others.truncate(SPANS_PER_READ - 1);
        std::iter::once(span).chain(others).collect()
    }

    /// Periods whose daily counts a write changed.
    pub(crate) fn changed(&self, periods: impl IntoIterator<Item = u32>) {
        let mut inner = self.inner();
        for period in periods {
            *inner.changes.entry(period).or_default() += 1;
            for (span, (_, totals)) in inner.kept.iter_mut() {
                if span.0 == period {
                    *totals = None;
                }
            }
        }
    }

    /// Every period's daily counts may have changed.
    pub(crate) fn changed_all(&self) {
        let mut inner = self.inner();
        inner.all += 1;
        inner
            .kept
            .values_mut()
            .for_each(|(_, totals)| *totals = None);
    }
}

impl Store {
    /// Reads and keeps the totals of the whole periods before today's
    /// within the retention window, newest first, at most [`READ_AHEAD`],
    /// until `stop` says so; how many. Reads: call it from a blocking
    /// thread.
    pub(crate) fn read_ahead(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        stop: impl Fn() -> bool,
    ) -> Result<usize, StoreError> {
        let oldest = crate::event::time::day_number(self.oldest_day(now));
        let today = crate::event::time::day_number(self.today(now));
        let mut read = 0;
        for period in (0..Store::daily_period(today)).rev().take(READ_AHEAD) {
            let days = Store::period_days(period);
            if *days.start() < oldest || stop() {
                break;
            }
            self.period_totals((period, *days.start(), *days.end()))?;
            read += 1;
        }
        Ok(read)
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
        let mut periods: Vec<u32> = days.into_iter().map(Store::daily_period).collect();
        periods.sort_unstable();
        periods.dedup();
        periods
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(n: u64) -> Arc<PeriodTotals> {
        Arc::new(PeriodTotals {
            senders: vec![(sled::IVec::from(&b"a@x"[..]), TlsCounts([n, 0, 0, 0, 0]))],
            days: Vec::new(),
        })
    }

    #[test]
    fn the_past_periods_in_retention_are_read_ahead() {
        use crate::event::{Event, Tls};
        let dir = tempfile::tempdir().unwrap();
        let store =
            Store::open(&crate::store::StoreOptions::for_test(dir.path(), "UTC", 90)).unwrap();
        let now = chrono::Utc::now();
        let events: Vec<Event> = (0..90)
            .map(|d| Event::accepted(now - chrono::Days::new(d), "a@x", Tls::V1_3))
            .collect();
        crate::store::Writer::new(store.clone())
            .apply(&[&events], &[], now)
            .unwrap();
        let today = crate::event::time::day_number(store.today(now));
        let oldest = crate::event::time::day_number(store.oldest_day(now));
        let current = Store::daily_period(today);
        let whole = |p: u32| {
            let days = Store::period_days(p);
            (p, *days.start(), *days.end())
        };
        // Asked to stop at once, it reads nothing.
        assert_eq!(store.read_ahead(now, || true).unwrap(), 0);
        let want: Vec<u32> = (0..current)
            .rev()
            .take_while(|p| *Store::period_days(*p).start() >= oldest)
            .collect();
        assert!(want.len() >= 2, "{want:?}");
        assert_eq!(store.read_ahead(now, || false).unwrap(), want.len());
        for p in &want {
            let Ok(kept) = store.totals.get(whole(*p)) else {
                panic!("period {p} not kept");
            };
            assert_eq!(kept.senders.len(), 1);
            assert_eq!(
                kept.days
                    .iter()
                    .map(|d| d.0[Tls::V1_3.index()])
                    .sum::<u64>(),
                28
            );
        }
        // Not today's period, which every write changes, nor one partly
        // older than the retention.
        assert!(store.totals.get(whole(current)).is_err());
        assert!(store.totals.get(whole(want[want.len() - 1] - 1)).is_err());
    }

    #[test]
    fn totals_read_before_a_change_are_never_kept() {
        let t = Totals::default();
        let v = t.get((7, 0, 0)).err().unwrap();
        t.keep((7, 0, 0), v, totals(1));
        assert!(t.get((7, 0, 0)).is_ok());
        // Read, then the writer changes the period before they are kept.
        let v = t.get((8, 0, 0)).err().unwrap();
        t.changed([8]);
        t.keep((8, 0, 0), v, totals(2));
        assert!(t.get((8, 0, 0)).is_err());
        // A change drops what is kept; the purge drops everything.
        t.changed([7]);
        assert!(t.get((7, 0, 0)).is_err());
        let v = t.get((7, 0, 0)).err().unwrap();
        t.keep((7, 0, 0), v, totals(3));
        let v9 = t.get((9, 0, 0)).err().unwrap();
        t.changed_all();
        t.keep((9, 0, 0), v9, totals(4));
        assert!(t.get((7, 0, 0)).is_err() && t.get((9, 0, 0)).is_err());
    }

    #[test]
    fn at_most_the_most_recent_spans_are_kept() {
        let t = Totals::default();
        for p in 10..10 + KEPT_SPANS as u32 + 2 {
            let v = t.get((p, 0, 6)).err().unwrap();
            t.keep((p, 0, 6), v, totals(u64::from(p)));
        }
        let kept: Vec<u32> = (0..30).filter(|p| t.get((*p, 0, 6)).is_ok()).collect();
        assert_eq!(kept.len(), KEPT_SPANS);
        assert_eq!(kept[0], 12, "the oldest went first");
        // An older period than every kept one does not push one out.
        let v = t.get((3, 0, 6)).err().unwrap();
        t.keep((3, 0, 6), v, totals(3));
        assert!(t.get((3, 0, 6)).is_err() && t.get((12, 0, 6)).is_ok());
        // Spans of one period are kept apart and dropped together.
        let last = kept[kept.len() - 1];
        let v = t.get((last, 1, 6)).err().unwrap();
        t.keep((last, 1, 6), v, totals(1));
        assert!(t.get((last, 1, 6)).is_ok() && t.get((last, 0, 6)).is_ok());
        t.changed([last]);
        assert!(t.get((last, 1, 6)).is_err() && t.get((last, 0, 6)).is_err());
        // Read again, the period gives both in one pass, the asked one first.
        assert_eq!(
            t.along((last, 2, 3)),
            [(last, 2, 3), (last, 1, 6), (last, 0, 6)]
        );
        assert_eq!(t.along((last, 0, 6)), [(last, 0, 6), (last, 1, 6)]);
    }
}
