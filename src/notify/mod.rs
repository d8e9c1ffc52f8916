//! Notify: mails out of the daemon. `message` builds MIME (report mails),
//! `transport` delivers it over SMTP or into files; `config` is `[mail]`.

pub mod config;
pub mod message;
pub mod outbox;
pub mod transport;

pub use config::MailConfig;
pub use transport::{MailTransport, SendError};
