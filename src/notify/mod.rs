//! Notify: mails out of the daemon. `message` builds MIME (report mails),
//! `alert_mail` alert mails, `transport` delivers them over SMTP or into
//! files through the durable `outbox`; `alerts` turns the alert log into
//! mails, `webhooks` into webhook calls; `config` is `[mail]`.

pub mod alert_mail;
pub mod alerts;
pub mod config;
pub mod message;
pub mod outbox;
pub mod transport;
mod webhooks;

pub use config::MailConfig;
pub use transport::{MailTransport, SendError};
