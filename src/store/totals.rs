//! The daily counts a period (four weeks, see `keys`) at a time, as reports
//! read them, and each account's total of a whole period, kept in memory.
//!
//! A report reads every account's key of every period in its range, and
//! sled's iterator pays a tree descent per key and, when the range is
//! larger than the page cache, reads and decodes every node from the file
//! again: with 100,000 accounts that was most of a 90-day report's second.
//! A period the range covers whole gives the same totals to every report
//! until a write changes it, so its totals are kept: at most
//! [`KEPT_PERIODS`] periods (a 90-day range covers two or three whole),
//! about 100 bytes per account each.
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

/// Periods whose totals are kept, at most.
const KEPT_PERIODS: usize = 4;

/// The totals of one period: every account with messages in it, in
/// account order, and the period's days (all accounts together).
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
    kept: HashMap<u32, (Version, Arc<PeriodTotals>)>,
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

    /// The kept totals of `period` if they are current, else the version to
    /// give [`Totals::keep`] with totals read from now on.
    pub(crate) fn get(&self, period: u32) -> Result<Arc<PeriodTotals>, Version> {
        let inner = self.inner();
        let version = inner.version(period);
        match inner.kept.get(&period) {
            Some((v, totals)) if *v == version => Ok(totals.clone()),
            _ => Err(version),
        }
    }

    /// Keeps `totals` of `period`, read after [`Totals::get`] gave
    /// `version`, unless the period changed since (then they may be stale).
    pub(crate) fn keep(&self, period: u32, version: Version, totals: Arc<PeriodTotals>) {
        let mut inner = self.inner();
        if inner.version(period) != version {
            return;
        }
        if inner.kept.len() >= KEPT_PERIODS
            && !inner.kept.contains_key(&period)
            && let Some(oldest) = inner.kept.keys().min().copied()
        {
            // Reports look at recent weeks far more than at old ones.
            if oldest > period {
                return;
            }
            inner.kept.remove(&oldest);
        }
        inner.kept.insert(period, (version, totals));
    }

    /// Periods whose daily counts a write changed.
    pub(crate) fn changed(&self, periods: impl IntoIterator<Item = u32>) {
        let mut inner = self.inner();
        for period in periods {
            *inner.changes.entry(period).or_default() += 1;
            inner.kept.remove(&period);
        }
    }

    /// Every period's daily counts may have changed.
    pub(crate) fn changed_all(&self) {
        let mut inner = self.inner();
        inner.all += 1;
        inner.kept.clear();
    }
}

impl Store {
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

    /// Every account's total of period `period`, and its days: kept in
    /// memory until a write changes them (see the module doc).
    pub(crate) fn period_totals(&self, period: u32) -> Result<Arc<PeriodTotals>, StoreError> {
        let version = match self.totals.get(period) {
            Ok(kept) => return Ok(kept),
            Err(version) => version,
        };
        let mut days = vec![TlsCounts::default(); keys::DAYS_PER_KEY as usize];
        let mut senders = Vec::new();
        for item in self.daily_run(period) {
            let (sender, value) = item?;
            let mut total = TlsCounts::default();
            for (at, counts) in codec::slots::<5>(&value, keys::DAYS_PER_KEY) {
                let counts = TlsCounts(counts);
                days[usize::from(at)].add(&counts);
                total.add(&counts);
            }
            senders.push((sender, total));
        }
        let totals = Arc::new(PeriodTotals { senders, days });
        self.totals.keep(period, version, totals.clone());
        Ok(totals)
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
    fn totals_read_before_a_change_are_never_kept() {
        let t = Totals::default();
        let v = t.get(7).err().unwrap();
        t.keep(7, v, totals(1));
        assert!(t.get(7).is_ok());
        // Read, then the writer changes the period before they are kept.
        let v = t.get(8).err().unwrap();
        t.changed([8]);
        t.keep(8, v, totals(2));
        assert!(t.get(8).is_err());
        // A change drops what is kept; the purge drops everything.
        t.changed([7]);
        assert!(t.get(7).is_err());
        let v = t.get(7).err().unwrap();
        t.keep(7, v, totals(3));
        let v9 = t.get(9).err().unwrap();
        t.changed_all();
        t.keep(9, v9, totals(4));
        assert!(t.get(7).is_err() && t.get(9).is_err());
    }

    #[test]
    fn at_most_the_most_recent_periods_are_kept() {
        let t = Totals::default();
        for p in 10..10 + KEPT_PERIODS as u32 + 2 {
            let v = t.get(p).err().unwrap();
            t.keep(p, v, totals(u64::from(p)));
        }
        let kept: Vec<u32> = (0..20).filter(|p| t.get(*p).is_ok()).collect();
        assert_eq!(kept.len(), KEPT_PERIODS);
        assert_eq!(kept[0], 12, "the oldest went first");
        // An older period than every kept one does not push one out.
        let v = t.get(3).err().unwrap();
        t.keep(3, v, totals(3));
        assert!(t.get(3).is_err() && t.get(12).is_ok());
    }
}
