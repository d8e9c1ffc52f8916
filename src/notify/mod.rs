//! Alert notification: the alert log the store writer appends to, turned
//! into mails (`alerts`, composed by `alert_mail`) and webhook calls
//! (`webhooks`), each exactly once across crashes thanks to the outbox's
//! progress marks. `backlog` tells `/metrics` how far behind it is.

pub mod alert_mail;
pub mod alerts;
mod backlog;
mod webhooks;

pub use alerts::{Notifier, NotifierSettings, NotifyError};
pub use backlog::{Backlog, Progress};
