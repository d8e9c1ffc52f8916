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
//! adds its 7-day tile. A period read again gives every span of it kept
//! before in the same pass (the dashboard's page asks for two of the
//! current period: its range's and its tile's). The daemon reads ahead at
//! start ([`Store::read_ahead`]) the spans of the default range and of the
//! whole retention window (as many as are kept, the newest), so the first
//! reports after a start read nothing, and
//! again every ten minutes, which reads only what a new day (its spans end
//! today) or an import left unread. The span used least lately makes room
//! for a new one: at midnight those that ended yesterday go.
//!
//! The current period changes with every write. A fold (the daemon's
//! writes) brackets its write with [`Totals::begin`] and [`Totals::end`]
//! and hands the daily counts it added to `end`, which adds them to the
//! spans kept: on a site with traffic today's period is then not read
//! again for every report. Totals read while a write is under way are
//! never kept (they may hold part of it), and the kept ones are dropped
//! instead of added to when the write failed, when it wrote only part of
//! its counts (a replay after a crash) or when another write overlapped
//! it. An import's write-outs drop what they change ([`Totals::changed`]):
//! an import changes far more than a report reads again; the purge drops
//! the spans with days it removed ([`Totals::purged`]). A report builds a
//! period's totals only from what it read after the period's last change,
//! so it never keeps totals a write made stale: see [`Totals::keep`].

use crate::event::TlsCounts;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Spans whose totals are kept, at most.
const KEPT_SPANS: usize = 8;
/// Spans of one period built in one read of it, at most.
const SPANS_PER_READ: usize = 4;
/// Spans read ahead, at most: all those kept but one, for a report of
/// another range.
const READ_AHEAD: usize = KEPT_SPANS - 1;

/// Days of one period: its number and the first and last day of the span
/// (day numbers).
pub(crate) type Span = (u32, u32, u32);

/// The totals of some days of one period: every account with messages in
/// them, in account order, and each of the days (all accounts together).
#[derive(Clone)]
pub(crate) struct PeriodTotals {
    pub senders: Vec<(sled::IVec, TlsCounts)>,
    pub days: Vec<TlsCounts>,
}

impl PeriodTotals {
    /// Adds the counts of `added` on the span's days, keeping the accounts
    /// in order (an account new to the span goes where a read puts it).
    fn add(&mut self, (_, first, last): Span, added: &HashMap<(u32, &str), TlsCounts>) {
        let mut new: Vec<(&str, TlsCounts)> = Vec::new();
        for ((day, account), counts) in added {
            let Some(at) = day.checked_sub(first).filter(|_| *day <= last) else {
                continue;
            };
            if let Some(total) = self.days.get_mut(at as usize) {
                total.add(counts);
            }
            let found = self
                .senders
                .binary_search_by(|(s, _)| s.as_ref().cmp(account.as_bytes()));
            match found {
                Ok(i) => self.senders[i].1.add(counts),
                Err(_) => new.push((account, *counts)),
            }
        }
        if new.is_empty() {
            return;
        }
        new.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut merged: Vec<(sled::IVec, TlsCounts)> =
            Vec::with_capacity(self.senders.len() + new.len());
        let mut old = std::mem::take(&mut self.senders).into_iter().peekable();
        for (account, counts) in new {
            while let Some(o) = old.next_if(|(s, _)| s.as_ref() < account.as_bytes()) {
                merged.push(o);
            }
            match merged.last_mut() {
                Some((s, total)) if s.as_ref() == account.as_bytes() => total.add(&counts),
                _ => merged.push((sled::IVec::from(account.as_bytes()), counts)),
            }
        }
        merged.extend(old);
        self.senders = merged;
    }
}

/// A write's periods between [`Totals::begin`] and [`Totals::end`]: each
/// with its version before the write began and after.
#[must_use]
pub(crate) struct Changing(Vec<(u32, Version, Version)>);

/// When a period's counts last changed: the change count of all periods
/// and of that period.
pub(crate) type Version = (u64, u64);

#[derive(Default)]
struct Inner {
    /// Changes of every period at once (the purge).
    all: u64,
    /// Changes per period.
    changes: HashMap<u32, u64>,
    /// The spans kept; the totals are dropped when their period changes,
    /// the span stays: it is built again with the next read of its period.
    kept: HashMap<Span, Kept>,
    /// Counts uses of the spans, for [`Kept::used`].
    uses: u64,
}

/// One span kept.
struct Kept {
    /// When its period had last changed as its totals were read.
    version: Version,
    totals: Option<Arc<PeriodTotals>>,
    /// When it was last kept or given out: the span used least lately
    /// makes room for another (at midnight the spans that ended yesterday
    /// go, not the past periods every report reads).
    used: u64,
}

impl Inner {
    fn version(&self, period: u32) -> Version {
        (self.all, self.changes.get(&period).copied().unwrap_or(0))
    }

    /// Keeps `span` with `totals` read at `version`, making room for it
    /// if need be: the span used least lately goes.
    fn put(&mut self, span: Span, version: Version, totals: Option<Arc<PeriodTotals>>) {
        if self.kept.len() >= KEPT_SPANS
            && !self.kept.contains_key(&span)
            && let Some(least) = self
                .kept
                .iter()
                .min_by_key(|(_, k)| k.used)
                .map(|(s, _)| *s)
        {
            self.kept.remove(&least);
        }
        self.uses += 1;
        let used = self.uses;
        self.kept.insert(
            span,
            Kept {
                version,
                totals,
                used,
            },
        );
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
        let mut inner = self.inner();
        let version = inner.version(span.0);
        inner.uses += 1;
        let used = inner.uses;
        match inner.kept.get_mut(&span) {
            Some(kept) if kept.version == version => {
                kept.used = used;
                kept.totals.clone().ok_or(version)
            }
            _ => Err(version),
        }
    }

    /// Keeps `totals` of `span`, read after [`Totals::get`] gave
    /// `version`, unless its period changed since (then they may be stale).
    pub(crate) fn keep(&self, span: Span, version: Version, totals: Arc<PeriodTotals>) {
        let mut inner = self.inner();
        if inner.version(span.0) == version {
            inner.put(span, version, Some(totals));
        }
    }

    /// Makes `span` one of those the next read of its period builds (see
    /// [`Totals::along`]).
    pub(crate) fn want(&self, span: Span) {
        let mut inner = self.inner();
        if !inner.kept.contains_key(&span) {
            let version = inner.version(span.0);
            inner.put(span, version, None);
        }
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

    /// Periods whose daily counts a write changed: their kept totals are
    /// dropped.
    pub(crate) fn changed(&self, periods: Vec<u32>) {
        let changing = self.begin(periods);
        self.end(changing, None);
    }

    /// Periods whose daily counts a write is about to change: totals read
    /// from now until [`Totals::end`] are not kept (they may hold part of
    /// the write), and the kept ones are not given out.
    pub(crate) fn begin(&self, periods: Vec<u32>) -> Changing {
        let mut inner = self.inner();
        let periods = periods
            .into_iter()
            .map(|period| {
                let before = inner.version(period);
                *inner.changes.entry(period).or_default() += 1;
                (period, before, inner.version(period))
            })
            .collect();
        Changing(periods)
    }

    /// Ends the write `changing` began. With `added`, every daily count it
    /// added as `(day, account) → counts`, the totals kept before it began
    /// gain them, so that a site with traffic does not read its current
    /// period again for every report; without (it failed or wrote only
    /// part of them), or when something else changed a period meanwhile,
    /// they are dropped.
    pub(crate) fn end(&self, changing: Changing, added: Option<&HashMap<(u32, &str), TlsCounts>>) {
        let mut inner = self.inner();
        for (period, before, during) in changing.0 {
            let alone = inner.version(period) == during;
            *inner.changes.entry(period).or_default() += 1;
            let now = inner.version(period);
            for (span, kept) in inner.kept.iter_mut() {
                if span.0 != period {
                    continue;
                }
                match (added, kept.totals.as_mut()) {
                    (Some(added), Some(totals)) if alone && kept.version == before => {
                        Arc::make_mut(totals).add(*span, added);
                        kept.version = now;
                    }
                    _ => kept.totals = None,
                }
            }
        }
    }

    /// The purge removed the days before `oldest`: kept spans from it on
    /// are unchanged and stay (a purge runs at start and every ten
    /// minutes), the rest are dropped; totals being read are not kept.
    pub(crate) fn purged(&self, oldest: u32) {
        let mut inner = self.inner();
        let was = inner.all;
        inner.all += 1;
        let Inner {
            all, changes, kept, ..
        } = &mut *inner;
        for (span, kept) in kept.iter_mut() {
            let current = kept.version == (was, changes.get(&span.0).copied().unwrap_or(0));
            if current && span.1 >= oldest {
                kept.version.0 = *all;
            } else {
                kept.totals = None;
            }
        }
    }

    /// Every period's daily counts may have changed.
    pub(crate) fn changed_all(&self) {
        let mut inner = self.inner();
        inner.all += 1;
        inner.kept.values_mut().for_each(|kept| kept.totals = None);
    }
}

mod read;
#[cfg(test)]
mod tests;
