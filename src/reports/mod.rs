//! A report, from its range to the rendered mail: the daemon's side of
//! what the core's `report` module describes.
//!
//! - here: [`build`] turns a request (a range, a domain) into the report
//!   model, reading the store's daily counts, merged by `merge` without a
//!   table of every sender;
//! - `mail`: one composer for every report mail (text and HTML parts, the
//!   charts, the CSV attachment), queued in the outbox or handed to a
//!   transport.
//!
//! What a report is (the model, the ranges, the renderers to CSV, text,
//! HTML and PNG) is pure and lives in the core crate's `report`. Who asks
//! for one are the doors: the HTTP API and the dashboard
//! (`server/reports.rs`, `server/api.rs`), the schedules (`schedule`) and
//! the command line (`cli/report.rs`); each calls [`build`] and
//! [`mail::Mailer`], nothing else.

pub mod mail;
mod merge;

use crate::event::sender_domain;
use crate::event::time::day_number;
use crate::report::{Failures, RangeError, Report, ReportRequest, ResolvedRange};
use crate::store::{Store, StoreError};
use chrono::{DateTime, Utc};

/// Most threads one report scans with (one period of four weeks each at
/// most, see `merge`).
const MAX_SCAN_THREADS: usize = 4;

/// Why a report could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Range(#[from] RangeError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Builds the report for `request`, as of `now`. Blocking: it reads the
/// store on up to [`MAX_SCAN_THREADS`] threads.
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
/// The periods of the range are merged in slices on up to
/// [`MAX_SCAN_THREADS`] threads (see `merge`): reading the (period,
/// sender) keys is most of a long report's time, and periods are
/// independent until the per-sender totals are merged.
pub fn build_range(store: &Store, range: &ResolvedRange) -> Result<Report, StoreError> {
    let slices = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_SCAN_THREADS);
    let (first, last) = (day_number(range.start), day_number(range.end));
    let (daily, senders) =
        merge::totals(store, first..=last, slices as u32, range.domain.as_deref())?;
    let mut failures = Failures::new(daily.len());
    let domain = range.domain.as_deref();
    store.for_each_failure(range.start, range.end, |day, user, n| {
        if domain.is_none_or(|d| sender_domain(user) == d) {
            failures.add(day.saturating_sub(first) as usize, user, n);
        }
    })?;
    // What the policy service held, from the containment records.
    let held = crate::contain::Holds::held_in(store, first..=last)?;
    Ok(Report::assemble(
        (range.start, range.end, range.domain.clone()),
        store.tz.name(),
        daily,
        senders,
    )
    .with_failures(failures)
    .with_held(&held))
}
