//! The mails to `detect.recipients` when an account is contained and when
//! it is released: what happens to its mail, why, and how to end it.

use super::{ContainError, Hold};
use crate::outbox::Outbox;
use crate::report::alert_view::{shell_quote, subject_name};
use crate::report::links::sender_path;
use lettre::Message;
use lettre::message::{Mailbox, SinglePart};

/// Where the mails go and what they say about the policy service.
#[derive(Clone)]
pub(crate) struct Notices {
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
    /// `detect.max_age_minutes`: an alert this recent is news, and its
    /// alert mail announces the containment it began (no mail of its own).
    pub alert_max_age_minutes: u64,
}

impl Notices {
    /// Whether the alert mail of `hold`'s alert announces it, at Unix
    /// second `now`: the alert is news, so the notifier mails it (see
    /// `Holds::announce`). A containment from an older alert (the daemon
    /// catching up on a log) gets a mail of its own.
    pub(crate) fn announced_by_alert_mail(&self, hold: &Hold, now: i64) -> bool {
        if hold.escalated {
            return false;
        }
        let max_age = i64::try_from(self.alert_max_age_minutes)
            .unwrap_or(i64::MAX)
            .saturating_mul(60);
        chrono::DateTime::parse_from_rfc3339(&hold.alert_at)
            .is_ok_and(|at| now - at.timestamp() <= max_age)
    }

    /// How the mails name what the containment under `key` stops.
    fn who(&self, key: &str) -> Who {
        match super::subject(key) {
            super::Subject::Account(a) => Who {
                a: "An account",
                it: "it submits",
                noun: "account",
                label: "Account",
                quoted: shell_quote(a),
                name: a.to_owned(),
                page: format!("its page: {}{}", self.base, sender_path(a)),
            },
            super::Subject::Address(ip) => Who {
                a: "A client address",
                it: "any account submits from it",
                noun: "address",
                label: "Client address",
                quoted: ip.to_string(),
                name: ip.to_string(),
                page: format!("the dashboard's main page: {}/", self.base),
            },
        }
    }

    /// How the mails say to end a containment of `who`.
    fn release(&self, who: &Who) -> String {
        format!(
            "\x20   {} release {}\nor use the Release button on {}\n",
            self.cli, who.quoted, who.page
        )
    }

    /// Queues the mail saying `sender` is contained. The account's name is
    /// chosen by whoever holds its password: the Subject shows it quoted or
    /// not at all, the body only after a label (as alert mails do).
    pub(crate) fn contained(&self, key: &str, hold: &Hold) -> Result<(), ContainError> {
        let who = self.who(key);
        let sender = &who.name;
        let body = format!(
            "{a} is contained: from now on, the messages {it} {effect}.\n\n\
             {label}: {sender}\n\
             Why: {kind} alert #{seq} ({at}): {why}\n\
             Since: {since}\n\
             Until: {until}, unless released earlier\n\n\
             If the {noun} is in safe hands again (password changed), let it send:\n\
             {release}",
            a = who.a,
            it = who.it,
            label = who.label,
            noun = who.noun,
            effect = self.effect,
            kind = hold.kind.name(),
            seq = hold.alert_seq,
            at = hold.alert_at,
            why = hold.why,
            since = super::hold::time(hold.since),
            until = super::hold::time(hold.until),
            release = self.release(&who),
        );
        let subject = format!(
            "Contained: {} ({} alert)",
            subject_name(sender),
            hold.kind.name()
        );
        self.send(&format!("contained-{}", hold.alert_seq), &subject, body)
    }

    /// Queues the reminder that `sender` is still contained, at Unix
    /// second `now`: what it has been stopped from sending so far, and how
    /// to end it.
    pub(crate) fn reminder(&self, key: &str, hold: &Hold, now: i64) -> Result<(), ContainError> {
        let who = self.who(key);
        let sender = &who.name;
        let body = format!(
            "{a} is still contained: the messages {it} {effect}.\n\n\
             {label}: {sender}\n\
             Contained since: {since}, after a {kind} alert{seq}: {why}\n\
             Until: {until}, unless released earlier\n\
             So far: {held} messages held, {deferred} attempts deferred, {rejected} \
             rejected, {monitored} let through in monitor mode.\n\n\
             Once the password is changed, let it send again:\n\
             {release}",
            a = who.a,
            it = who.it,
            label = who.label,
            effect = self.effect,
            since = super::hold::time(hold.since),
            kind = hold.kind.name(),
            seq = number(hold),
            why = hold.why,
            until = super::hold::time(hold.until),
            held = hold.held,
            deferred = hold.deferred,
            rejected = hold.rejected,
            monitored = hold.monitored,
            release = self.release(&who),
        );
        let subject = format!("Still contained: {}", subject_name(sender));
        self.send(
            &format!("reminder-{}-{now}", hold.alert_seq),
            &subject,
            body,
        )
    }

    /// Queues the mail saying `sender` may send again.
    pub(crate) fn released(&self, key: &str, hold: &Hold) -> Result<(), ContainError> {
        let Some(r) = &hold.released else {
            return Ok(());
        };
        let who = self.who(key);
        let sender = &who.name;
        // Postfix keeps held messages until told: say how.
        let held = match hold.held {
            0 => String::new(),
            n => format!(
                "\nThe {n} held messages stay in Postfix's hold queue. To send them:\n\
                 \x20   {cli} release {quoted} --requeue\n\
                 To delete them:\n\
                 \x20   {cli} release {quoted} --delete-held\n",
                cli = self.cli,
                quoted = who.quoted,
            ),
        };
        let body = format!(
            "{a} that was contained may send again.\n\n\
             {label}: {sender}\n\
             Released by: {by}\n\
             Released at: {at}\n\
             Contained since: {since}, after a {kind} alert{alert}\n\
             While contained: {count} messages held, {deferred} attempts deferred, \
             {rejected} rejected, {monitored} let through in monitor mode.\n{held}",
            a = who.a,
            label = who.label,
            by = r.by,
            at = super::hold::time(r.at),
            since = super::hold::time(hold.since),
            kind = hold.kind.name(),
            alert = number(hold),
            count = hold.held,
            deferred = hold.deferred,
            rejected = hold.rejected,
            monitored = hold.monitored,
        );
        let subject = format!("Released: {}", subject_name(sender));
        // A containment released before its alert was read has no number.
        let id = match crate::random::hex_id(8) {
            Ok(random) => format!("released-{random}"),
            Err(_) => format!("released-{}-{}", hold.since, r.at),
        };
        self.send(&id, &subject, body)
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

/// " #N" for a containment's alert, nothing while it has no number.
fn number(hold: &Hold) -> String {
    match hold.alert_seq {
        0 => String::new(),
        seq => format!(" #{seq}"),
    }
}

/// What a containment mail calls what it stops.
struct Who {
    a: &'static str,
    it: &'static str,
    noun: &'static str,
    label: &'static str,
    name: String,
    /// The name as one word for a shell.
    quoted: String,
    page: String,
}
