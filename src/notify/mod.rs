//! Alert notification: the alert log the store writer appends to, turned
//! into mails (`alerts`, composed by `alert_mail`) and webhook calls
//! (`webhooks`), each exactly once across crashes thanks to the outbox's
//! progress marks. `backlog` tells `/metrics` how far behind it is.

pub(crate) mod alert_mail;
pub(crate) mod alerts;
mod backlog;
mod webhooks;

pub(crate) use alerts::{Notifier, NotifierSettings, NotifyError};
pub(crate) use backlog::Progress;
