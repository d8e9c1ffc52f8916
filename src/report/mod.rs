//! Reports: resolve a requested range, build the model from the store, and
//! render it (JSON, CSV, text).

pub mod chart;
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
pub fn build_range(store: &Store, range: &ResolvedRange) -> Result<Report, StoreError> {
    let mut builder = ReportBuilder::new(range.start, range.end, range.domain.clone());
    store.for_each_daily(range.start, range.end, |day, sender, counts| {
        builder.add(day, sender, counts)
    })?;
    Ok(builder.finish(store.tz.name()))
}
