//! One account's recent hourly message counts, and the baseline they give
//! for the running hour.
//!
//! The baseline is seasonal without fitting anything: it looks at the same
//! hour on each of the last 7 days and at the same hour of the week 2-4
//! weeks back (each ±1 hour, so a 02:55 backup that sometimes ends at 03:05,
//! and DST shifts, still line up). From those ten samples:
//! - the median is the *level* expected now (an office account at 03:00 and
//!   on Sunday has a level of 0, at Tuesday 10:00 its usual rate);
//! - the second largest is a level *seen repeating* at this time (a nightly
//!   backup, a Monday newsletter): reaching it again is normal.
//!
//! The expected count is floored (by a constant and by a share of the
//! account's busy-hour level) so that a silent slot is not taken as a
//! promise of silence, and the threshold combines a minimum count, a
//! minimum ratio and a Poisson tail probability.

use super::config::{NewSenderConfig, VolumeConfig};
use super::maths::{median, poisson_upper, second_largest};

/// Hours of history the baseline looks at: 4 weeks and a day, plus the
/// ±1 hour margin.
pub(crate) const WINDOW_HOURS: u32 = 4 * 168 + 2;

/// Hourly counts, ascending by hour, zeros left out (most hours of most
/// accounts are empty).
///
/// An entry is two `u16`, the hour as an offset from `base` and the count,
/// not two `u32`: an import holds the histories of tens of thousands of
/// accounts, most of its detectors' memory. The window spans 674 hours, so
/// offsets are rebased once every 7 years of hours; a count saturates at
/// 65,535 messages in an hour, far above any level a baseline expects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    /// The hour of offset 0; no entry is older.
    base: u32,
    hours: Vec<(u16, u16)>,
    /// Busy-hour level as of the start of a day: (day, level). It reads
    /// the whole window, so it is computed once a day, not once an hour,
    /// and only from hours before that day began, so that any recomputation
    /// (after a restart) gives the same value.
    busy: std::cell::Cell<Option<(u32, u32)>>,
}

/// What one hour of the account's week is expected to look like.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Baseline {
    /// Messages expected in this hour.
    pub expected: f64,
    /// No alert below this count.
    pub min_count: f64,
    /// A level seen repeating at this time (0 when none).
    pub repeat: f64,
}

impl Baseline {
    /// The expectation for the 60 minutes ending `f` (0..=1) into this
    /// hour: the rest of the window lies in `prev`.
    pub(crate) fn blend(&self, prev: &Baseline, f: f64) -> Baseline {
        // From `b` towards `a`: equal ends give `b` exactly. (`a * f + b *
        // (1 - f)` gave 40.000000000000007 for 40 and 40 at some minutes,
        // and the threshold's ceiling made it 41.)
        let mix = |a: f64, b: f64| b + (a - b) * f;
        Baseline {
            expected: mix(self.expected, prev.expected),
            min_count: mix(self.min_count, prev.min_count),
            repeat: mix(self.repeat, prev.repeat),
        }
    }

    /// A count below this is certainly no alert; cheaper than [`Baseline::threshold`].
    pub(crate) fn lower_bound(&self, cfg: &VolumeConfig) -> u32 {
        self.min_count.max(cfg.min_ratio * self.expected).ceil() as u32
    }

    /// The count at which the window alerts: the largest of the minimum
    /// count, the minimum ratio, the Poisson tail and the repeated level.
    pub fn threshold(&self, cfg: &VolumeConfig) -> u32 {
        self.threshold_at(cfg, cfg.p_value)
    }

    /// [`Baseline::threshold`] with another Poisson tail probability.
    pub(crate) fn threshold_at(&self, cfg: &VolumeConfig, p_value: f64) -> u32 {
        let t = (self.lower_bound(cfg) as u64)
            .max(poisson_upper(self.expected, p_value))
            .max((cfg.repeat_margin * self.repeat).floor() as u64 + 1);
        u32::try_from(t).unwrap_or(u32::MAX)
    }
}

impl History {
    /// From stored `(hour, count)` pairs in any order (of hours more than
    /// 65,535 apart, the newest).
    pub(crate) fn from_counts(mut hours: Vec<(u32, u32)>) -> History {
        hours.retain(|&(_, c)| c > 0);
        hours.sort_unstable();
        hours.dedup_by(|b, a| {
            let same = a.0 == b.0;
            if same {
                a.1 = a.1.saturating_add(b.1);
            }
            same
        });
        let last = hours.last().map_or(0, |h| h.0);
        let base = last.saturating_sub(u32::from(u16::MAX));
        let kept = hours.partition_point(|h| h.0 < base);
        let base = hours.get(kept).map_or(0, |h| h.0);
        History {
            base,
            hours: hours[kept..]
                .iter()
                .map(|&(h, c)| ((h - base) as u16, saturated(c)))
                .collect(),
            busy: Default::default(),
        }
    }

    /// Heap memory held, in bytes.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.hours.capacity() * std::mem::size_of::<(u16, u16)>()
    }

    /// The hour of an entry.
    fn hour(&self, e: &(u16, u16)) -> u32 {
        self.base.saturating_add(u32::from(e.0))
    }

    /// The oldest hour with messages, if any.
    pub fn oldest(&self) -> Option<u32> {
        self.hours.first().map(|e| self.hour(e))
    }

    /// Adds `n` messages in `hour`; returns the hour's new count.
    pub fn add(&mut self, hour: u32, n: u32) -> u32 {
        let Some(at) = self.offset(hour) else {
            // Years older than the newest hour: no baseline looks at it.
            return n;
        };
        let n = saturated(n);
        match self.hours.last_mut() {
            Some(last) if last.0 == at => {
                last.1 = last.1.saturating_add(n);
                return u32::from(last.1);
            }
            Some(last) if last.0 < at => {}
            None => {}
            Some(_) => {
                // A late event: rare, so a binary search and insert is fine.
                return u32::from(match self.hours.binary_search_by_key(&at, |e| e.0) {
                    Ok(i) => {
                        self.hours[i].1 = self.hours[i].1.saturating_add(n);
                        self.hours[i].1
                    }
                    Err(i) => {
                        self.hours.insert(i, (at, n));
                        n
                    }
                });
            }
        }
        if self.hours.len() == self.hours.capacity() {
            // Grow by a quarter, not double: an import holds tens of
            // thousands of these lists at once, and doubling left a third
            // of their memory unused (heaptrack, import benchmark).
            self.hours.reserve_exact((self.hours.len() / 4).max(4));
        }
        self.hours.push((at, n));
        self.prune(hour);
        u32::from(n)
    }

    /// The offset of `hour`, rebasing the entries when it lies outside the
    /// offsets' range; None when it cannot be stored beside them.
    fn offset(&mut self, hour: u32) -> Option<u16> {
        let Some(first) = self.oldest() else {
            self.base = hour;
            return Some(0);
        };
        let newest = self.hours.last().map_or(first, |e| self.hour(e));
        if hour > self.base.saturating_add(u32::from(u16::MAX)) {
            self.prune(hour);
            let first = self.oldest().unwrap_or(hour);
            self.rebase(first);
        } else if hour < self.base {
            if newest - hour > u32::from(u16::MAX) {
                return None;
            }
            self.rebase(hour);
        }
        u16::try_from(hour - self.base).ok()
    }

    /// Moves offset 0 to `base`, at or before the oldest entry and within
    /// 65,535 hours of the newest.
    fn rebase(&mut self, base: u32) {
        let old = self.base;
        for e in &mut self.hours {
            e.0 = (old + u32::from(e.0) - base) as u16;
        }
        self.base = base;
    }

    /// Drops hours that no baseline from `now_hour` on looks at.
    fn prune(&mut self, now_hour: u32) {
        let oldest = now_hour.saturating_sub(WINDOW_HOURS);
        let stale = self.hours.partition_point(|e| self.hour(e) < oldest);
        if stale > 0 {
            self.hours.drain(..stale);
        }
    }

    /// Messages in the hours `from..to`.
    pub fn sum(&self, from: u32, to: u32) -> u32 {
        let lo = self.hours.partition_point(|e| self.hour(e) < from);
        self.hours[lo..]
            .iter()
            .take_while(|e| self.hour(e) < to)
            .map(|e| u32::from(e.1))
            .sum()
    }

    /// Index of dispersion (variance over mean) of the hourly counts of
    /// the hours `from..hour`, silent hours included: about 1 for counts
    /// that vary like chance, near 0 for a machine sending at a steady
    /// rate, far above 1 for a person's working hours and nights.
    pub(crate) fn dispersion(&self, from: u32, hour: u32) -> f64 {
        let lo = self.hours.partition_point(|e| self.hour(e) < from);
        let (mut n, mut sum, mut squares) = (0u32, 0f64, 0f64);
        for e in self.hours[lo..].iter().take_while(|e| self.hour(e) < hour) {
            n += 1;
            let c = f64::from(e.1);
            sum += c;
            squares += c * c;
        }
        let hours = f64::from(hour.saturating_sub(from));
        if n == 0 || hours == 0.0 {
            return f64::INFINITY;
        }
        let mean = sum / hours;
        let variance = squares / hours - mean * mean;
        variance / mean
    }

    pub fn get(&self, hour: u32) -> u32 {
        self.hours
            .binary_search_by_key(&hour, |e| self.hour(e))
            .map_or(0, |i| u32::from(self.hours[i].1))
    }

    /// Largest count of `hour - 1 ..= hour + 1`.
    fn around(&self, hour: u32) -> u32 {
        let lo = self.hours.partition_point(|e| self.hour(e) + 1 < hour);
        self.hours[lo..]
            .iter()
            .take_while(|e| self.hour(e) <= hour + 1)
            .map(|e| u32::from(e.1))
            .max()
            .unwrap_or(0)
    }

    /// Second largest hourly count before `day` began.
    fn busy(&self, day: u32) -> u32 {
        if let Some((d, level)) = self.busy.get() {
            if d == day {
                return level;
            }
        }
        let before = day * 24;
        let counts = self.hours.iter().take_while(|e| self.hour(e) < before);
        let level = second_largest(counts.map(|e| u32::from(e.1)));
        self.busy.set(Some((day, level)));
        level
    }

    /// Baseline for `hour` of an account first seen in `first_hour`; `new`
    /// when the account is still new (its own short history is not trusted).
    pub fn baseline(
        &self,
        hour: u32,
        first_hour: u32,
        cfg: &VolumeConfig,
        new: Option<&NewSenderConfig>,
    ) -> Baseline {
        let mut samples = [0u32; 10];
        let mut n = 0;
        let back = (1..=7u32)
            .map(|k| 24 * k)
            .chain((2..=4u32).map(|k| 168 * k));
        for offset in back {
            // Only slots the account existed in: a new hire's empty past
            // says nothing.
            if let Some(h) = hour.checked_sub(offset).filter(|h| h + 1 >= first_hour) {
                samples[n] = self.around(h);
                n += 1;
            }
        }
        let repeat = second_largest(samples[..n].iter().copied());
        // Fewer than 5 days of past count the missing ones as silent: one
        // day of history is not yet a habit.
        let level = median(&mut samples[..n.max(5)]);
        let busy = self.busy(hour / 24);
        let mut expected = cfg
            .floor
            .max(level)
            .max(cfg.activity_share * f64::from(busy));
        // Active: the account sends at this time of day: on at least two of
        // the sampled days, or on three of the last 28 (a light user's
        // working hours are active too, though most of them are silent).
        let active = repeat > 0
            || (1..=28u32)
                .filter_map(|k| hour.checked_sub(24 * k))
                .filter(|h| self.around(*h) > 0)
                .nth(2)
                .is_some();
        let mut min_count = if active {
            cfg.min_count_active
        } else {
            cfg.min_count
        };
        if let Some(new) = new {
            expected = expected.max(new.expected);
            min_count = min_count.max(new.min_count);
        }
        Baseline {
            expected,
            min_count: f64::from(min_count),
            repeat: f64::from(repeat),
        }
    }
}

/// A count in an entry's two bytes.
fn saturated(n: u32) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

#[cfg(test)]
mod tests;
