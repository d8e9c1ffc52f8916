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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, Tls};
    use crate::store::{StoreOptions, Writer};
    use chrono::Days;

    #[test]
    fn a_report_scanned_in_slices_equals_one_scan() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&StoreOptions::for_test(dir.path(), "UTC", 30)).unwrap();
        let now = Utc::now();
        let events: Vec<Event> = (0..5_000u64)
            .map(|i| {
                let ts = now - chrono::TimeDelta::hours((i * 7919 % 480) as i64);
                Event::accepted(
                    ts,
                    format!("u{}@d{}.example", i % 97, i % 5),
                    Tls::ALL[(i % 5) as usize],
                )
            })
            .collect();
        Writer::new(store.clone())
            .apply(&[&events], &[], now)
            .unwrap();
        let today = store.today(now);
        for (days, domain) in [(20, None), (13, Some("d3.example")), (1, None), (7, None)] {
            let range = ResolvedRange {
                start: today - Days::new(days - 1),
                end: today,
                domain: domain.map(str::to_owned),
            };
            let mut one = ReportBuilder::new(range.start, range.end, range.domain.clone());
            store
                .for_each_daily(range.start, range.end, |d, s, c| one.add(d, s, c))
                .unwrap();
            let want = serde_json::to_value(one.finish("UTC")).unwrap();
            let got = serde_json::to_value(build_range(&store, &range).unwrap()).unwrap();
            assert_eq!(got, want, "{days} days, {domain:?}");
            assert!(got["summary"]["messages"].as_u64().unwrap() > 0);
        }
    }
}
