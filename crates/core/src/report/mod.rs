//! What people read: the report model (summary, days, per-sender table),
//! the requested range resolved against the calendar, and the renderers
//! (JSON, CSV, text, HTML through templates, PNG charts), with the views
//! that report and alert templates see and the links into the dashboard.
//! Pure: the daemon's `reports` builds the model from the store, everything here
//! turns a model or an alert into something to read.

pub mod alert_view;
pub mod chart;
pub mod links;
mod model;
mod range;
pub mod render;
pub mod templates;
pub mod view;

pub use model::{DayRow, FailureRow, Failures, Report, ReportBuilder, SenderRow, Summary};
pub use range::{RangeError, ReportRequest, ResolvedRange, normalize_domain};
