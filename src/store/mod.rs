//! The embedded sled store: per-(day, sender) counts by TLS class, hourly
//! series for the detector, a sender index, idempotency keys, retention.
//!
//! The store is written by one thread only (see `ingest`), which makes every
//! read-modify-write of a counter race-free without transactions; readers
//! (reports, the API) read concurrently through sled's lock-free trees.
//!
//! Two types: [`Store`], what everyone reads, and [`Writer`], the one
//! writer, whose every method lives in `writer/` (its `mod.rs` lists
//! them by file). `Store`'s methods, by file:
//!
//! | File | `Store`'s methods | What they read or keep |
//! |------|-------------------|------------------------|
//! | `mod.rs` | `open`, `today`, `oldest_day`, `for_each_daily`, `daily_of`, `failures_of`, `for_each_day`, `sender_info`, `for_each_sender`, `hourly`, `hours_from`, `for_each_failure`, `cursor`, `count_keys`, `ensure_space`, `flush`, `db`, `size_on_disk` | opening (with `migrate`, `check`), the counts by day, hour and sender, log cursors, disk space |
//! | `alerts.rs` | `open_incidents`, `last_alert_seq`, `alerts_after`, `opening_alert`, `alerts_since`, `alerts_of`, `scan_log`, `purge_detector` | the alert log and the detectors' saved state |
//! | `totals/` | `daily_run`, `daily_slots`, `daily_period`, `period_days`, `spans`, `period_totals`, `read_ahead` | the daily counts a period at a time, for reports, and the totals of the spans of days reports read, kept in memory: read ahead at start, added to by folds |
//! | `purge.rs` | `purge`, `rewrite_slice`, `remove_where`, `rewrite_where` | retention: what is older than it, removed a slice at a time |
//!
//! The rest is the format both share: `keys` (the key layout), `codec`
//! (values), `ids` and `hashes` (idempotency keys), `journal` (requests
//! acknowledged and not yet counted), `space` (free disk).

mod alerts;
mod check;
pub mod codec;
mod hashes;
mod ids;
pub mod journal;
pub mod keys;
mod migrate;
mod purge;
pub mod space;
mod totals;
pub(crate) use totals::{PeriodTotals, Span};
mod writer;

pub use alerts::Recorded;
pub use codec::SenderInfo;
pub(crate) use purge::PurgeStats;
pub use writer::{Bulk, IngestOutcome, Writer};
pub(crate) use writer::{Marks, Replicas};

use crate::event::TlsCounts;
use chrono::{DateTime, Days, NaiveDate, Utc};
use chrono_tz::Tz;
use std::path::PathBuf;

/// Version of the key layout and value encodings. Bump it, and add a
/// migration in [`Store::open`], whenever either changes.
pub(crate) const SCHEMA_VERSION: u64 = 9;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the store at {} is in use by another process (is the daemon running? stop it, or ask its HTTP API)",
        .0.display()
    )]
    Locked(PathBuf),
    #[error(
        "the store at {} has schema version {found}, newer than this release understands ({SCHEMA_VERSION}); upgrade smtp-auth-insight",
        .path.display()
    )]
    NewerSchema { path: PathBuf, found: u64 },
    #[error(
        "{} {why}: it is not a store of smtp-auth-insight, or it is damaged. \
         Restore the data directory from a backup, or move {} away to start with an empty store",
        .path.display(), .path.display()
    )]
    Foreign { path: PathBuf, why: String },
    #[error(
        "the store at {} is damaged ({why}). Restore the data directory from a backup, \
         or move {} away to start with an empty store",
        .path.display(), .path.display()
    )]
    Damaged { path: PathBuf, why: String },
    #[error(
        "only {free_mb} MiB free in {} (store.min_free_mb = {need_mb}); new events are refused \
         and acknowledged ones wait in the journal until space is freed",
        .path.display()
    )]
    DiskFull {
        path: PathBuf,
        free_mb: u64,
        need_mb: u64,
    },
    #[error("cannot read the store at {}: {source}", .path.display())]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("store: {0}")]
    Sled(#[from] sled::Error),
    #[error(
        "{0} acknowledged events are waiting to be counted and the store keeps failing; \
         refusing more until it works again (see the log for the cause)"
    )]
    Behind(usize),
    #[error("ingest journal {}: {source}", .path.display())]
    Journal {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// How long data is kept.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub days: u32,
    pub hourly_days: u32,
}

/// Settings needed to open a store (the daemon and the CLI take them
/// from `[store]` and `timezone`).
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub path: PathBuf,
    pub tz: Tz,
    pub retention: Retention,
    pub cache_bytes: u64,
    /// Writes stop below this many free bytes (0: never); see `space`.
    pub min_free_bytes: u64,
}

#[cfg(test)]
impl StoreOptions {
    /// A store in `dir` for unit tests: `days` of retention in time zone
    /// `tz`, hourly counts for the last week of them, a small cache.
    pub(crate) fn for_test(dir: &std::path::Path, tz: &str, days: u32) -> StoreOptions {
        StoreOptions {
            path: dir.join("db"),
            tz: tz.parse().expect("a time zone name"),
            retention: Retention {
                days,
                hourly_days: days.min(7),
            },
            cache_bytes: 4 << 20,
            min_free_bytes: 0,
        }
    }
}

/// Handle to the store; cheap to clone, shared by the writer and readers.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    data: sled::Tree,
    pub tz: Tz,
    pub retention: Retention,
    /// The ingest journal's file (see [`journal`]), next to the database.
    journal: PathBuf,
    /// Seed of the idempotency key hashes (see `ids`).
    id_seed: u64,
    /// The database directory, and the free space writes leave on its
    /// file system (see [`space`]).
    path: PathBuf,
    min_free: u64,
    /// Totals of periods' spans of days kept for reports (see [`totals`]).
    totals: std::sync::Arc<totals::Totals>,
}

impl Store {
    pub fn open(opts: &StoreOptions) -> Result<Store, StoreError> {
        let existed = check::before_open(&opts.path)?;
        let damaged = |why| StoreError::Damaged {
            path: opts.path.clone(),
            why,
        };
        // sled recovers a store as it opens it, and may panic on a damaged
        // one: that is a message naming the store, never a backtrace.
        let db = check::quietly(|| {
            sled::Config::new()
                .path(&opts.path)
                .cache_capacity(opts.cache_bytes)
                .mode(sled::Mode::HighThroughput)
                .open()
        })
        .map_err(damaged)?
        .map_err(|e| match e {
            sled::Error::Io(io) if io.to_string().contains("could not acquire lock") => {
                StoreError::Locked(opts.path.clone())
            }
            sled::Error::Corruption { .. } | sled::Error::Unsupported(_) if existed => {
                damaged(check::describe(&e))
            }
            other => StoreError::Sled(other),
        })?;
        if existed {
            check::after_open(&db, &opts.path)?;
        }
        let meta = db.open_tree("meta")?;
        let data = db.open_tree("data")?;
        let id_seed = migrate::open_schema(&meta, &data, &opts.path)?;
        let tz_name = opts.tz.name();
        if let Some(old) = meta.insert("timezone", tz_name.as_bytes())?
            && old.as_ref() != tz_name.as_bytes()
        {
            tracing::warn!(
                previous = %String::from_utf8_lossy(&old),
                now = tz_name,
                "time zone changed: days counted before keep the old zone's boundaries"
            );
        }
        db.flush()?;
        Ok(Store {
            db,
            data,
            tz: opts.tz,
            retention: opts.retention,
            journal: opts.path.with_extension("journal"),
            id_seed,
            path: opts.path.clone(),
            min_free: opts.min_free_bytes,
            totals: Default::default(),
        })
    }

    /// Today's date in the store's time zone.
    pub fn today(&self, now: DateTime<Utc>) -> NaiveDate {
        crate::event::time::local_date(now, self.tz)
    }

    /// Oldest day still kept: today and the `retention.days - 1` days before.
    pub(crate) fn oldest_day(&self, now: DateTime<Utc>) -> NaiveDate {
        self.today(now) - Days::new(u64::from(self.retention.days.saturating_sub(1)))
    }

    /// Calls `f(day, sender, counts)` for every (day, sender) with accepted
    /// messages in `start..=end`, in period, then sender, then day order.
    #[cfg(test)]
    pub(crate) fn for_each_daily(
        &self,
        start: NaiveDate,
        end: NaiveDate,
        mut f: impl FnMut(u32, &str, &TlsCounts),
    ) -> Result<(), StoreError> {
        self.for_each_day::<5>(keys::DAILY, start, end, |day, sender, counts| {
            f(day, sender, &TlsCounts(counts));
        })
    }

    /// Calls `f(day, account, counts)` for every day in `start..=end` of the
    /// `prefix` keys (`d`, `f`), in key order.
    fn for_each_day<const N: usize>(
        &self,
        prefix: u8,
        start: NaiveDate,
        end: NaiveDate,
        mut f: impl FnMut(u32, &str, [u64; N]),
    ) -> Result<(), StoreError> {
        let days = crate::event::time::day_number(start)..=crate::event::time::day_number(end);
        let period = |day: &u32| keys::slot(*day, keys::DAYS_PER_KEY).0;
        for item in self.period_keys(prefix, period(days.start())..=period(days.end())) {
            let (k, v) = item?;
            let Some((number, account)) = keys::split_day_key(&k) else {
                continue;
            };
            days_in::<N>(number, &v, &days, |day, counts| f(day, account, counts));
        }
        Ok(())
    }

    /// Calls `f(day, counts)` for every day in `start..=end` of one
    /// account's `prefix` keys (`d`, `f`): a lookup per period, where
    /// [`Store::for_each_daily`] reads every account's.
    fn days_of<const N: usize>(
        &self,
        prefix: u8,
        account: &str,
        start: NaiveDate,
        end: NaiveDate,
        mut f: impl FnMut(u32, [u64; N]),
    ) -> Result<(), StoreError> {
        let days = crate::event::time::day_number(start)..=crate::event::time::day_number(end);
        let period = |day: &u32| keys::slot(*day, keys::DAYS_PER_KEY).0;
        for number in period(days.start())..=period(days.end()) {
            if let Some(v) = self.data.get(keys::day_key(prefix, number, account))? {
                days_in::<N>(number, &v, &days, &mut f);
            }
        }
        Ok(())
    }

    /// One account's accepted messages per day in `start..=end`, as
    /// [`Store::for_each_daily`] gives them.
    pub(crate) fn daily_of(
        &self,
        account: &str,
        start: NaiveDate,
        end: NaiveDate,
        mut f: impl FnMut(u32, &TlsCounts),
    ) -> Result<(), StoreError> {
        self.days_of::<5>(keys::DAILY, account, start, end, |day, counts| {
            f(day, &TlsCounts(counts));
        })
    }

    /// One account's failed logins per day in `start..=end`.
    pub(crate) fn failures_of(
        &self,
        account: &str,
        start: NaiveDate,
        end: NaiveDate,
        mut f: impl FnMut(u32, u64),
    ) -> Result<(), StoreError> {
        self.days_of::<1>(keys::FAILURES, account, start, end, |day, [n]| f(day, n))
    }

    /// The `prefix` keys (`d`, `f`) of `periods`, in key order.
    fn period_keys(&self, prefix: u8, periods: std::ops::RangeInclusive<u32>) -> sled::Iter {
        let lo = keys::day_bound(prefix, *periods.start());
        let hi = keys::day_bound(prefix, periods.end().saturating_add(1));
        self.data.range(lo..hi)
    }

    /// The sender index entry of one sender.
    pub fn sender_info(&self, sender: &str) -> Result<Option<SenderInfo>, StoreError> {
        Ok(self
            .data
            .get(keys::sender_key(sender))?
            .and_then(|v| SenderInfo::decode(&v)))
    }

    /// Calls `f` with every account of the sender index.
    pub(crate) fn for_each_sender(&self, mut f: impl FnMut(&str)) -> Result<(), StoreError> {
        for item in self.data.scan_prefix([keys::SENDER]) {
            let (k, _) = item?;
            if let Ok(sender) = std::str::from_utf8(&k[1..]) {
                f(sender);
            }
        }
        Ok(())
    }

    /// Hourly (messages, failed logins) of one sender, oldest first.
    pub fn hourly(&self, sender: &str) -> Result<Vec<(u32, [u64; 2])>, StoreError> {
        self.hours_from(sender, 0, |hour, counts| (hour, counts))
    }

    /// The hours with traffic of one sender from `from_hour` on, oldest
    /// first, each mapped through `f(hour, [messages, failed logins])`.
    pub(super) fn hours_from<T>(
        &self,
        sender: &str,
        from_hour: u32,
        f: impl Fn(u32, [u64; 2]) -> T,
    ) -> Result<Vec<T>, StoreError> {
        let prefix = keys::hourly_prefix(sender);
        let mut out = Vec::new();
        let first = keys::hourly_key(sender, keys::slot(from_hour, keys::HOURS_PER_KEY).0);
        for item in self.data.range(first..) {
            let (k, v) = item?;
            if !k.starts_with(&prefix) {
                break;
            }
            let Some(number) = keys::hourly_number(&k[prefix.len()..]) else {
                continue;
            };
            for (at, counts) in codec::decode_hours(&v) {
                let hour = keys::unslot(number, at, keys::HOURS_PER_KEY);
                if hour >= from_hour {
                    out.push(f(hour, counts));
                }
            }
        }
        Ok(out)
    }

    /// Failed logins per (day, username) in `start..=end`.
    pub(crate) fn for_each_failure(
        &self,
        start: NaiveDate,
        end: NaiveDate,
        mut f: impl FnMut(u32, &str, u64),
    ) -> Result<(), StoreError> {
        self.for_each_day::<1>(keys::FAILURES, start, end, |day, user, [n]| f(day, user, n))
    }

    /// A log source's saved cursor (see `source::tail`).
    pub fn cursor(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.data.get(key)?.map(|v| v.to_vec()))
    }

    /// Number of keys of one kind (a `keys` prefix byte); for tests and stats.
    pub fn count_keys(&self, prefix: u8) -> usize {
        self.data.scan_prefix([prefix]).count()
    }

    /// Makes everything written so far durable (one fsync).
    /// Refuses a write that would leave less free space than configured.
    pub(crate) fn ensure_space(&self) -> Result<(), StoreError> {
        space::ensure(&self.path, self.min_free)
    }

    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    /// The database, for other trees of the daemon (the mail outbox).
    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    pub(crate) fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }
}

/// Calls `f(day, counts)` for the days of `days` in the value of period
/// `number` of a `d` or `f` key.
fn days_in<const N: usize>(
    number: u32,
    value: &[u8],
    days: &std::ops::RangeInclusive<u32>,
    mut f: impl FnMut(u32, [u64; N]),
) {
    for (at, counts) in codec::slots::<N>(value, keys::DAYS_PER_KEY) {
        let day = keys::unslot(number, at, keys::DAYS_PER_KEY);
        if days.contains(&day) {
            f(day, counts);
        }
    }
}

#[cfg(test)]
mod tests;
