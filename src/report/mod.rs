//! Reports: resolve a requested range, build the model from the store, and
//! render it (JSON, CSV, text).

pub mod chart;
mod merge;
mod model;
mod range;
pub mod render;
pub mod templates;
pub mod view;

pub use model::{DayRow, Report, ReportBuilder, SenderRow, Summary};
pub use range::{RangeError, ReportRequest, ResolvedRange, normalize_domain};

use crate::store::{Store, StoreError};
use chrono::{DateTime, Utc};

/// Why a report could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Range(#[from] RangeError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Builds the report for `request` from the store, as of `now`.
pub fn build(
    store: &Store,
    request: &ReportRequest,
    default_days: u32,
    now: DateTime<Utc>,
) -> Result<Report, ReportError> {
    let range = request.resolve(
        store.today(now),
        store.oldest_day(now),
        default_days,
        store.tz,
    )?;
    Ok(build_range(store, &range)?)
}

/// Builds the report of a range already checked.
///
/// The days are merged in slices on up to [`MAX_SCAN_THREADS`] threads
/// (see `merge`): reading the (day, sender) keys is most of a long
/// report's time, and days are independent until the per-sender totals
/// are merged.
pub fn build_range(store: &Store, range: &ResolvedRange) -> Result<Report, StoreError> {
    let days = (range.end - range.start).num_days().max(0) as u64 + 1;
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_SCAN_THREADS) as u64;
    let slices = threads.min(days / MIN_SCAN_DAYS).max(1);
    let first = crate::store::keys::day_number(range.start);
    let last = crate::store::keys::day_number(range.end);
    let (daily, senders) =
        merge::totals(store, first..=last, slices as u32, range.domain.as_deref())?;
    Ok(Report::assemble(
        (range.start, range.end, range.domain.clone()),
        store.tz.name(),
        daily,
        senders,
    ))
}

/// Most threads one report scans with.
const MAX_SCAN_THREADS: usize = 4;
/// Fewest days one scan thread gets: short ranges are not worth a thread.
const MIN_SCAN_DAYS: u64 = 3;
