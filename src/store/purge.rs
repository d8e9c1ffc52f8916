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

impl Store {
    /// Removes days before the retention window, hourly counts before the
    /// hourly window, and senders not seen within the retention window.
    /// Called through [`super::Writer::purge`], on the writer thread, so it
    /// never races a counter update.
    pub(super) fn purge(&self, now: DateTime<Utc>) -> Result<PurgeStats, StoreError> {
        let oldest_day = keys::day_number(self.oldest_day(now));
        let oldest_hour =
            keys::hour_number(now).saturating_sub(self.retention.hourly_days.saturating_mul(24));
        // A day of margin: day numbers are local, `last_seen` is UTC.
        let oldest_ts = (i64::from(oldest_day) - 1) * 86_400;
        let mut stats = PurgeStats::default();
        for (prefix, slot) in [
            (keys::DAILY, &mut stats.daily),
            (keys::FAILURES, &mut stats.failures),
            (keys::ID, &mut stats.ids),
        ] {
            let range = self
                .data
                .range(keys::day_bound(prefix, 0)..keys::day_bound(prefix, oldest_day));
            *slot = self.remove_where(range, |_, _| true)?;
        }
        stats.hourly = self.remove_where(self.data.scan_prefix([keys::HOURLY]), |k, _| {
            keys::hourly_hour(k).is_some_and(|h| h < oldest_hour)
        })?;
        stats.senders = self.remove_where(self.data.scan_prefix([keys::SENDER]), |_, v| {
            SenderInfo::decode(v).is_none_or(|i| i.last_seen < oldest_ts)
        })?;
        stats.detector = self.purge_detector(oldest_ts, now.timestamp())?;
        Ok(stats)
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
