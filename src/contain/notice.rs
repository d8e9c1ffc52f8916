//! The mails to `detect.recipients` when an account is contained and when
//! it is released: what happens to its mail, why, and how to end it.

use super::{ContainError, Hold};
use crate::outbox::Outbox;
use crate::report::links::sender_path;
use lettre::Message;
use lettre::message::{Mailbox, SinglePart};

/// Where the mails go and what they say about the policy service.
#[derive(Clone)]
pub struct Notices {
    pub outbox: Outbox,
    pub from: Mailbox,
    pub to: Vec<Mailbox>,
    /// The dashboard's base URL, for the account's page.
    pub base: String,
    /// The command line as this configuration is run, for `release`.
    pub cli: String,
    /// What happens to a contained account's mail ("are held in
    /// Postfix's hold queue").
    pub effect: String,
}

impl Notices {
    /// Queues the mail saying `sender` is contained.
    pub fn contained(&self, sender: &str, hold: &Hold) -> Result<(), ContainError> {
        let body = format!(
            "From now on, the messages {sender} submits {effect}.\n\n\
             Why: {kind} alert #{seq} ({at}): {why}\n\
             Since {since}, until {until} unless released earlier.\n\n\
             If the account is in safe hands again (password changed), let it send:\n\
             \x20   {cli} release {quoted}\n\
             or use the Release button on its page: {base}{page}\n",
            effect = self.effect,
            kind = hold.kind.name(),
            seq = hold.alert_seq,
            at = hold.alert_at,
            why = hold.why,
            since = super::hold::time(hold.since),
            until = super::hold::time(hold.until),
            cli = self.cli,
            quoted = crate::report::alert_view::shell_quote(sender),
            base = self.base,
            page = sender_path(sender),
        );
        let subject = format!("Contained: {sender:?} ({} alert)", hold.kind.name());
        self.send(&format!("contained-{}", hold.alert_seq), &subject, body)
    }

    /// Queues the mail saying `sender` may send again.
    pub fn released(&self, sender: &str, hold: &Hold) -> Result<(), ContainError> {
        let Some(r) = &hold.released else {
            return Ok(());
        };
        let body = format!(
            "{sender} may send again: {by} released it at {at}.\n\n\
             While contained (since {since}, after {kind} alert #{seq}): {held} messages \
             held, {deferred} attempts deferred, {rejected} rejected, {monitored} let \
             through in monitor mode.\n",
            by = r.by,
            at = super::hold::time(r.at),
            since = super::hold::time(hold.since),
            kind = hold.kind.name(),
            seq = hold.alert_seq,
            held = hold.held,
            deferred = hold.deferred,
            rejected = hold.rejected,
            monitored = hold.monitored,
        );
        let subject = format!("Released: {sender:?}");
        self.send(&format!("released-{}", hold.alert_seq), &subject, body)
    }

    fn send(&self, id: &str, subject: &str, body: String) -> Result<(), ContainError> {
        if self.to.is_empty() {
            return Ok(());
        }
        let builder = crate::outbox::address(
            Message::builder()
                .from(self.from.clone())
                .subject(format!("[smtp-auth-insight] {subject}")),
            &self.to,
        );
        let message = builder.singlepart(SinglePart::plain(body))?;
        Ok(self.outbox.enqueue(id, &message, None)?)
    }
}
