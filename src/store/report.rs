//! Building a report from the store: the range's days merged into the
//! report model of `report` (see `merge` for how).

use super::{Store, StoreError, merge};
use crate::event::sender_domain;
use crate::event::time::day_number;
use crate::report::{Failures, RangeError, Report, ReportRequest, ResolvedRange};
use chrono::{DateTime, Utc};

/// Most threads one report scans with.
const MAX_SCAN_THREADS: usize = 4;
/// Fewest days one scan thread gets: short ranges are not worth a thread.
const MIN_SCAN_DAYS: u64 = 3;

/// Why a report could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Range(#[from] RangeError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Store {
    /// Builds the report for `request`, as of `now`.
    pub fn report(
        &self,
        request: &ReportRequest,
        default_days: u32,
        now: DateTime<Utc>,
    ) -> Result<Report, ReportError> {
        let range =
            request.resolve(self.today(now), self.oldest_day(now), default_days, self.tz)?;
        Ok(self.report_range(&range)?)
    }

    /// Builds the report of a range already checked.
    ///
    /// The days are merged in slices on up to [`MAX_SCAN_THREADS`] threads
    /// (see `merge`): reading the (day, sender) keys is most of a long
    /// report's time, and days are independent until the per-sender totals
    /// are merged.
    pub fn report_range(&self, range: &ResolvedRange) -> Result<Report, StoreError> {
        let days = (range.end - range.start).num_days().max(0) as u64 + 1;
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_SCAN_THREADS) as u64;
        let slices = threads.min(days / MIN_SCAN_DAYS).max(1);
        let (first, last) = (day_number(range.start), day_number(range.end));
        let (daily, senders) =
            merge::totals(self, first..=last, slices as u32, range.domain.as_deref())?;
        let mut failures = Failures::new(daily.len());
        let domain = range.domain.as_deref();
        self.for_each_failure(range.start, range.end, |day, user, n| {
            if domain.is_none_or(|d| sender_domain(user) == d) {
                failures.add(day.saturating_sub(first) as usize, user, n);
            }
        })?;
        Ok(Report::assemble(
            (range.start, range.end, range.domain.clone()),
            self.tz.name(),
            daily,
            senders,
        )
        .with_failures(failures))
    }
}
