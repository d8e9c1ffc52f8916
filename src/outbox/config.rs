//! `[mail]`: where mail goes and who may receive reports.

use crate::secret::Secret;
use lettre::message::{Mailbox, Mailboxes, MessageBuilder, header};
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailConfig {
    /// Sender of every mail.
    pub from: String,
    /// `file` (the default: mails are written as .eml files into `dir`, so
    /// the daemon runs with no mail server) or `smtp`.
    pub transport: TransportKind,
    /// Directory of the file transport; default: `<data_dir>/mail`.
    pub dir: Option<PathBuf>,
    /// SMTP relay.
    pub host: String,
    pub port: u16,
    /// `starttls` (port 587), `tls` (implicit TLS, port 465) or `none` (a
    /// local relay on port 25).
    pub security: Security,
    /// Extra CA certificate (PEM) to trust, e.g. a relay's self-signed one.
    pub ca_file: Option<PathBuf>,
    /// AUTH user; the password comes from `password`, `password_file` or
    /// the environment variable named by `password_env`.
    pub username: Option<String>,
    pub password: Option<String>,
    pub password_file: Option<PathBuf>,
    pub password_env: Option<String>,
    pub timeout_seconds: u64,
    /// First retry delay after a temporary failure; it doubles (with
    /// jitter) up to `retry_max_seconds`.
    pub retry_initial_seconds: u64,
    pub retry_max_seconds: u64,
    /// A mail still undelivered this long after it was queued is given up.
    pub give_up_hours: u64,
    /// Who may receive reports: exact addresses or `@domain`. Empty refuses
    /// everyone, so that no request can mail company data anywhere.
    pub allowed_recipients: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    File,
    Smtp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    Starttls,
    Tls,
    None,
}

impl Default for MailConfig {
    fn default() -> Self {
        MailConfig {
            from: "smtp-auth-insight <smtp-auth-insight@localhost>".into(),
            transport: TransportKind::File,
            dir: None,
            host: "127.0.0.1".into(),
            port: 25,
            security: Security::None,
            ca_file: None,
            username: None,
            password: None,
            password_file: None,
            password_env: None,
            timeout_seconds: 30,
            retry_initial_seconds: 30,
            retry_max_seconds: 3600,
            give_up_hours: 48,
            allowed_recipients: Vec::new(),
        }
    }
}

impl MailConfig {
    pub fn retry(&self) -> super::Retry {
        super::Retry {
            initial: std::time::Duration::from_secs(self.retry_initial_seconds.max(1)),
            max_delay: std::time::Duration::from_secs(self.retry_max_seconds.max(1)),
            give_up_after: std::time::Duration::from_secs(self.give_up_hours.max(1) * 3600),
        }
    }

    pub fn password(&self) -> Secret<'_> {
        Secret {
            key: "mail.password",
            credential: "smtp-password",
            inline: self.password.as_deref(),
            file: self.password_file.as_deref(),
            env: self.password_env.as_deref(),
        }
    }

    /// `from` as a mailbox; the configuration check has refused anything
    /// else, so callers past it may rely on it.
    pub(crate) fn sender_mailbox(&self) -> Result<Mailbox, RecipientError> {
        self.from
            .parse()
            .map_err(|e: lettre::address::AddressError| {
                RecipientError::NotAnAddress(format!("{:?} ({e})", self.from))
            })
    }

    /// Checks values that need more than their type; returns the key at fault.
    pub(crate) fn check(&self) -> Result<(), (&'static str, String)> {
        if self.retry_max_seconds < self.retry_initial_seconds {
            return Err((
                "mail.retry_max_seconds",
                format!(
                    "must be at least retry_initial_seconds ({})",
                    self.retry_initial_seconds
                ),
            ));
        }
        self.sender_mailbox()
            .map_err(|e| ("mail.from", e.to_string()))?;
        self.password().check().map_err(|m| ("mail.password", m))?;
        for entry in &self.allowed_recipients {
            if !entry.is_ascii() {
                return Err((
                    "mail.allowed_recipients",
                    format!("{entry:?} is not ASCII; write the domain in its xn-- form"),
                ));
            }
            let ok = match entry.strip_prefix('@') {
                Some(domain) => !domain.is_empty() && !domain.contains('@'),
                None => entry.parse::<Mailbox>().is_ok(),
            };
            if !ok {
                return Err((
                    "mail.allowed_recipients",
                    format!("{entry:?} is neither an address nor @domain"),
                ));
            }
        }
        Ok(())
    }

    /// Refuses recipients outside the allow-list, naming the first one, and
    /// lists longer than [`MAX_RECIPIENTS`]. Repeated addresses are kept
    /// once. Linear in the number of recipients (the allow-list is a set).
    pub(crate) fn check_recipients(
        &self,
        recipients: &[String],
    ) -> Result<Vec<Mailbox>, RecipientError> {
        if recipients.is_empty() {
            return Err(RecipientError::None);
        }
        if recipients.len() > MAX_RECIPIENTS {
            return Err(RecipientError::TooMany(recipients.len()));
        }
        let allowed: std::collections::HashSet<String> = self
            .allowed_recipients
            .iter()
            .map(|a| a.to_ascii_lowercase())
            .collect();
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::with_capacity(recipients.len());
        for r in recipients {
            // Compared in ASCII only: Unicode case folding maps letters
            // that are not ASCII onto ones that are (the Kelvin sign K onto
            // k), so `\u{212A}im@` would pass an allow-list entry `kim@`
            // and reach another mailbox.
            if !r.is_ascii() {
                return Err(RecipientError::NotAscii(format!("{r:?}")));
            }
            let mailbox: Mailbox = r
                .parse()
                .map_err(|_| RecipientError::NotAnAddress(format!("{r:?}")))?;
            let addr = mailbox.email.to_string().to_ascii_lowercase();
            let (user, domain) = addr.rsplit_once('@').unwrap_or(("", &addr));
            // `%` and `!` route onwards on some MTAs (x%evil@allowed reaches
            // evil); a quoted local part may hide an `@`. Neither is a
            // mailbox anyone reads reports in.
            if user.contains(['%', '!', '"', '@', '\\']) {
                return Err(RecipientError::Routed(addr));
            }
            if !(allowed.contains(&addr) || allowed.contains(&format!("@{domain}"))) {
                return Err(RecipientError::NotAllowed(addr));
            }
            if seen.insert(addr) {
                out.push(mailbox);
            }
        }
        Ok(out)
    }
}

/// Most recipients one report or alert mail may have.
pub(crate) const MAX_RECIPIENTS: usize = 100;

/// `builder` addressed to every mailbox of `to` in one `To:` header (one
/// header built once, not one rebuilt per recipient).
pub fn address(builder: MessageBuilder, to: &[Mailbox]) -> MessageBuilder {
    builder.mailbox(header::To::from(to.iter().cloned().collect::<Mailboxes>()))
}

/// Why a recipient (or the sender) is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecipientError {
    #[error("no recipients")]
    None,
    #[error("{0} is not a mail address")]
    NotAnAddress(String),
    #[error(
        "{0} is not ASCII: addresses are compared letter by letter, and letters of other scripts can pass for ASCII ones; write the domain in its xn-- form"
    )]
    NotAscii(String),
    #[error("{0} is not in mail.allowed_recipients")]
    NotAllowed(String),
    #[error("{0} routes onwards ('%', '!' or a quoted local part); give the final address")]
    Routed(String),
    #[error("{0} recipients; at most {max} are allowed", max = MAX_RECIPIENTS)]
    TooMany(usize),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_list_takes_addresses_and_domains() {
        let c = MailConfig {
            allowed_recipients: vec!["boss@corp.example".into(), "@sec.example".into()],
            ..Default::default()
        };
        assert!(
            c.check_recipients(&["Boss@Corp.example".into(), "a@sec.example".into()])
                .is_ok()
        );
        let err = c.check_recipients(&["a@corp.example".into()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "a@corp.example is not in mail.allowed_recipients"
        );
        assert!(
            c.check_recipients(&["a@evil.example\r\nBcc: x@y".into()])
                .is_err()
        );
        assert!(
            MailConfig::default()
                .check_recipients(&["a@b.example".into()])
                .is_err()
        );
        for routed in [
            "x%evil.com@sec.example",
            "evil.com!x@sec.example",
            "\"x@evil.com\"@sec.example",
        ] {
            let err = c.check_recipients(&[routed.into()]);
            assert!(
                matches!(
                    err,
                    Err(RecipientError::Routed(_)) | Err(RecipientError::NotAnAddress(_))
                ),
                "{routed}: {err:?}"
            );
        }
    }

    #[test]
    fn letters_that_fold_onto_ascii_pass_no_allow_list() {
        let c = MailConfig {
            allowed_recipients: vec!["kim@corp.example".into(), "@sec.example".into()],
            ..Default::default()
        };
        // The Kelvin sign lower-cases to k; the long s upper-cases to S.
        for lookalike in [
            "\u{212A}im@corp.example",
            "kim@\u{212A}orp.example",
            "a@\u{017F}ec.example",
        ] {
            let err = c.check_recipients(&[lookalike.into()]).unwrap_err();
            assert!(
                matches!(err, RecipientError::NotAscii(_)),
                "{lookalike}: {err}"
            );
            assert!(err.to_string().contains("not ASCII"), "{err}");
        }
        let allow = MailConfig {
            allowed_recipients: vec!["\u{212A}im@corp.example".into()],
            ..Default::default()
        };
        let (key, why) = allow.check().unwrap_err();
        assert_eq!(key, "mail.allowed_recipients");
        assert!(why.contains("not ASCII"), "{why}");
    }

    #[test]
    fn recipients_are_capped_and_kept_once() {
        let c = MailConfig {
            allowed_recipients: vec!["@sec.example".into()],
            ..Default::default()
        };
        let twice = c
            .check_recipients(&["a@sec.example".into(), "A@sec.example".into()])
            .unwrap();
        assert_eq!(twice.len(), 1);
        let many: Vec<String> = (0..=MAX_RECIPIENTS)
            .map(|i| format!("u{i}@sec.example"))
            .collect();
        assert_eq!(
            c.check_recipients(&many).unwrap_err(),
            RecipientError::TooMany(MAX_RECIPIENTS + 1)
        );
        assert_eq!(
            c.check_recipients(&many[1..]).unwrap().len(),
            MAX_RECIPIENTS
        );
    }
}
