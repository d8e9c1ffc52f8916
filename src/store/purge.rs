//! Retention: everything older than the retention window leaves the store.

use super::codec::{self, SenderInfo};
use super::keys;
use super::{Store, StoreError};
use chrono::{DateTime, Utc};

/// Keys removed (or rewritten without their old days and hours) by one
/// purge, per kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct PurgeStats {
    pub daily: usize,
    pub failures: usize,
    pub ids: usize,
    pub hourly: usize,
    pub senders: usize,
    /// Old alerts, ended cool-downs, state of forgotten accounts.
    pub detector: usize,
}

impl PurgeStats {
    pub(crate) fn total(&self) -> usize {
        self.daily + self.failures + self.ids + self.hourly + self.senders + self.detector
    }
}

/// Removes are applied in batches of this many keys, so a purge of a large
/// backlog neither holds everything in memory nor one huge batch.
const CHUNK: usize = 10_000;

/// Keys of the sender-major spaces (hourly counts, sender index) one purge
/// looks at. Their old entries are spread over the whole key space, so a
/// purge can only find them by reading every key: done at once, that kept
/// the writer (and every acknowledgement) waiting for seconds each hour and
/// pulled the whole store through the cache on a store of 100,000 senders.
/// Each purge now goes on from where the last one stopped.
const SLICE: usize = 100_000;

/// Where the next purge goes on in the sender-major key spaces.
#[derive(Debug)]
pub(crate) struct PurgeCursor {
    /// The oldest day kept as of the last trim of the period it begins.
    trimmed: Option<u32>,
    hourly: Option<Vec<u8>>,
    senders: Option<Vec<u8>>,
    /// Keys looked at per key space and purge.
    slice: usize,
}

impl Default for PurgeCursor {
    fn default() -> Self {
        PurgeCursor::with_slice(SLICE)
    }
}

impl PurgeCursor {
    pub(crate) fn with_slice(slice: usize) -> PurgeCursor {
        PurgeCursor {
            trimmed: None,
            hourly: None,
            senders: None,
            slice: slice.max(1),
        }
    }
}

impl Store {
    /// Removes days before the retention window, hourly counts before the
    /// hourly window, and senders not seen within the retention window.
    /// Called through [`super::Writer::purge`], on the writer thread, so it
    /// never races a counter update.
    pub(super) fn purge(
        &self,
        now: DateTime<Utc>,
        cursor: &mut PurgeCursor,
    ) -> Result<PurgeStats, StoreError> {
        let oldest_day = crate::event::time::day_number(self.oldest_day(now));
        let oldest_hour = crate::event::time::hour_number(now)
            .saturating_sub(self.retention.hourly_days.saturating_mul(24));
        // A day of margin: day numbers are local, `last_seen` is UTC.
        let oldest_ts = (i64::from(oldest_day) - 1) * 86_400;
        let mut stats = PurgeStats::default();
        // Daily counts go a key's period (four weeks) at a time once it is
        // past; the period the oldest day kept falls in loses its older
        // days once per day.
        let (oldest_period, first_kept) = keys::slot(oldest_day, keys::DAYS_PER_KEY);
        for (prefix, before, slot) in [
            (keys::DAILY, oldest_period, &mut stats.daily),
            (keys::FAILURES, oldest_period, &mut stats.failures),
            (keys::ID, oldest_day, &mut stats.ids),
        ] {
            let range = self
                .data
                .range(keys::day_bound(prefix, 0)..keys::day_bound(prefix, before));
            *slot = self.remove_where(range, |_, _| true)?;
        }
        if cursor.trimmed != Some(oldest_day) {
            let period = |prefix| {
                let next = oldest_period.saturating_add(1);
                self.data
                    .range(keys::day_bound(prefix, oldest_period)..keys::day_bound(prefix, next))
            };
            let days = keys::DAYS_PER_KEY;
            stats.daily += self.rewrite_where(period(keys::DAILY), |_, v| {
                trimmed::<5>(v, days, first_kept)
            })?;
            stats.failures += self.rewrite_where(period(keys::FAILURES), |_, v| {
                trimmed::<1>(v, days, first_kept)
            })?;
            cursor.trimmed = Some(oldest_day);
        }
        let slice = cursor.slice;
        let hourly = &mut cursor.hourly;
        stats.hourly = self.rewrite_slice(keys::HOURLY, hourly, slice, |k, v| {
            let Some(number) = keys::hourly_number(k) else {
                return Edit::Keep;
            };
            let first = keys::unslot(number, 0, keys::HOURS_PER_KEY);
            let kept = oldest_hour.saturating_sub(first);
            if kept == 0 {
                return Edit::Keep;
            }
            trimmed::<2>(
                v,
                keys::HOURS_PER_KEY,
                u16::try_from(kept).unwrap_or(u16::MAX),
            )
        })?;
        stats.senders = self.rewrite_slice(keys::SENDER, &mut cursor.senders, slice, |_, v| {
            Edit::removed_if(SenderInfo::decode(v).is_none_or(|i| i.last_seen < oldest_ts))
        })?;
        stats.detector = self.purge_detector(oldest_ts, now.timestamp())?;
        Ok(stats)
    }

    /// [`Store::rewrite_where`] over at most `slice` keys of `prefix`, from
    /// `from` on; leaves in `from` where the next call goes on (None: back
    /// to the start).
    fn rewrite_slice(
        &self,
        prefix: u8,
        from: &mut Option<Vec<u8>>,
        slice: usize,
        edit: impl Fn(&[u8], &[u8]) -> Edit,
    ) -> Result<usize, StoreError> {
        let start = from.take().unwrap_or_else(|| vec![prefix]);
        let end = [prefix + 1];
        let mut seen = 0;
        let mut next = None;
        let slice = self.data.range(start..end[..].to_vec()).take_while(|item| {
            seen += 1;
            if seen > slice {
                next = item.as_ref().ok().map(|(k, _)| k.to_vec());
            }
            seen <= slice
        });
        let edited = self.rewrite_where(slice, edit)?;
        *from = next;
        Ok(edited)
    }

    /// Removes the keys of `iter` that are `doomed`; returns how many.
    pub(super) fn remove_where(
        &self,
        iter: impl Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>,
        doomed: impl Fn(&[u8], &[u8]) -> bool,
    ) -> Result<usize, StoreError> {
        self.rewrite_where(iter, |k, v| Edit::removed_if(doomed(k, v)))
    }

    /// Applies `edit` to the keys of `iter`; returns how many it changed.
    fn rewrite_where(
        &self,
        iter: impl Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>,
        edit: impl Fn(&[u8], &[u8]) -> Edit,
    ) -> Result<usize, StoreError> {
        let mut edited = 0;
        let mut batch = sled::Batch::default();
        let mut pending = 0;
        for item in iter {
            let (k, v) = item?;
            match edit(&k, &v) {
                Edit::Keep => continue,
                Edit::Remove => batch.remove(k),
                Edit::Replace(value) => batch.insert(k, value),
            }
            pending += 1;
            if pending == CHUNK {
                self.data.apply_batch(std::mem::take(&mut batch))?;
                edited += pending;
                pending = 0;
            }
        }
        self.data.apply_batch(batch)?;
        Ok(edited + pending)
    }
}

/// What a purge does with one key.
enum Edit {
    Keep,
    Remove,
    Replace(Vec<u8>),
}

impl Edit {
    fn removed_if(doomed: bool) -> Edit {
        if doomed { Edit::Remove } else { Edit::Keep }
    }
}

/// A slotted value (keys of `per` units) without its units before place
/// `first`: removed when none is left, kept when none is dropped.
fn trimmed<const N: usize>(value: &[u8], per: u32, first: u16) -> Edit {
    let slots = codec::decode_slots::<N>(value, per);
    match slots.partition_point(|s| s.0 < first) {
        0 => Edit::Keep,
        n if n == slots.len() => Edit::Remove,
        n => Edit::Replace(codec::encode_slots(&slots[n..])),
    }
}
