//! Retention: everything older than the retention window leaves the store.

use super::codec::SenderInfo;
use super::keys;
use super::{Store, StoreError};
use chrono::{DateTime, Utc};

/// Keys removed by one purge, per kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeStats {
    pub daily: usize,
    pub failures: usize,
    pub ids: usize,
    pub hourly: usize,
    pub senders: usize,
    /// Old alerts, ended cool-downs, state of forgotten accounts.
    pub detector: usize,
}

impl PurgeStats {
    pub fn total(&self) -> usize {
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
pub struct PurgeCursor {
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
    pub fn with_slice(slice: usize) -> PurgeCursor {
        PurgeCursor {
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
        let oldest_day = keys::day_number(self.oldest_day(now));
        let oldest_hour =
            keys::hour_number(now).saturating_sub(self.retention.hourly_days.saturating_mul(24));
        // A day of margin: day numbers are local, `last_seen` is UTC.
        let oldest_ts = (i64::from(oldest_day) - 1) * 86_400;
        let mut stats = PurgeStats::default();
        // Counts go a week at a time, once the week's last day is past
        // (reports reach no further back than the oldest day kept).
        let oldest_week = keys::slot(oldest_day, keys::DAYS_PER_KEY).0;
        for (prefix, before, slot) in [
            (keys::DAILY, oldest_week, &mut stats.daily),
            (keys::FAILURES, oldest_week, &mut stats.failures),
            (keys::ID, oldest_day, &mut stats.ids),
        ] {
            let range = self
                .data
                .range(keys::day_bound(prefix, 0)..keys::day_bound(prefix, before));
            *slot = self.remove_where(range, |_, _| true)?;
        }
        let slice = cursor.slice;
        // A key goes once all its hours are before the window (readers
        // ask for the hours they need, so the older ones it holds until
        // then are never seen).
        stats.hourly = self.remove_slice(keys::HOURLY, &mut cursor.hourly, slice, |k, _| {
            keys::hourly_number(k).is_some_and(|n| {
                keys::unslot(n.saturating_add(1), 0, keys::HOURS_PER_KEY) <= oldest_hour
            })
        })?;
        stats.senders = self.remove_slice(keys::SENDER, &mut cursor.senders, slice, |_, v| {
            SenderInfo::decode(v).is_none_or(|i| i.last_seen < oldest_ts)
        })?;
        stats.detector = self.purge_detector(oldest_ts, now.timestamp())?;
        Ok(stats)
    }

    /// [`Store::remove_where`] over at most `slice` keys of `prefix`, from
    /// `from` on; leaves in `from` where the next call goes on (None: back
    /// to the start).
    fn remove_slice(
        &self,
        prefix: u8,
        from: &mut Option<Vec<u8>>,
        slice: usize,
        doomed: impl Fn(&[u8], &[u8]) -> bool,
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
        let removed = self.remove_where(slice, doomed)?;
        *from = next;
        Ok(removed)
    }

    pub(super) fn remove_where(
        &self,
        iter: impl Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>,
        doomed: impl Fn(&[u8], &[u8]) -> bool,
    ) -> Result<usize, StoreError> {
        let mut removed = 0;
        let mut batch = sled::Batch::default();
        let mut pending = 0;
        for item in iter {
            let (k, v) = item?;
            if doomed(&k, &v) {
                batch.remove(k);
                pending += 1;
                if pending == CHUNK {
                    self.data.apply_batch(std::mem::take(&mut batch))?;
                    removed += pending;
                    pending = 0;
                }
            }
        }
        self.data.apply_batch(batch)?;
        Ok(removed + pending)
    }
}
