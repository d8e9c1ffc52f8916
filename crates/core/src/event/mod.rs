//! The SMTP AUTH submission event: the one record every source produces and
//! the store counts.
//!
//! Validation lives here, once, so that the HTTP endpoint, `import` and the log
//! parsers all accept and refuse exactly the same things.

mod counts;
mod json;
mod net;
pub mod time;
mod tls;

pub use counts::TlsCounts;
pub(crate) use json::parse_line;
pub use json::{BodyError, parse_body};
pub use net::Network;
pub use tls::Tls;

use chrono::{DateTime, Utc};
use std::net::IpAddr;

/// Longest accepted SMTP AUTH identity, in bytes. RFC 5321 allows 64 bytes of
/// local part and 255 of domain; SASL usernames in practice stay far below.
/// Anything longer is an attack or a broken pipeline, never a mailbox.
pub const MAX_SENDER_LEN: usize = 320;

/// Longest accepted idempotency key; keys are stored, so they must stay small.
pub(crate) const MAX_ID_LEN: usize = 256;

/// Longest accepted free-text field (`host`, `envelope_from`).
pub(crate) const MAX_TEXT_LEN: usize = 320;

/// How far in the future an event may be stamped. MTA clocks drift by seconds,
/// a wrong time zone shifts by hours; a day covers both and still refuses
/// events that would sit in the store as "tomorrow" forever.
pub const MAX_FUTURE_SKEW: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// What happened to the submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The message was accepted for delivery: it counts as a sent message.
    Accepted,
    /// The login failed: it feeds the auth-failure detector, never the counts.
    AuthFailed,
}

/// One SMTP AUTH submission (or failed login), validated. Serialisable so
/// that a log parser's pending submissions survive in its saved state.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Event {
    pub ts: DateTime<Utc>,
    /// SASL username, lower-cased: the same account must not appear twice
    /// because one client spells it `Alice@Example.com`.
    pub sender: String,
    pub tls: Tls,
    pub result: Outcome,
    pub client_ip: Option<IpAddr>,
    pub host: Option<std::sync::Arc<str>>,
    /// Idempotency key: an id seen before (on the same day) is counted once.
    pub id: Option<String>,
    pub envelope_from: Option<String>,
}

impl Event {
    /// An accepted message with nothing optional set; the base that tests,
    /// benchmarks and generators fill in (`Event { .., ..Event::accepted(..) }`).
    pub fn accepted(ts: DateTime<Utc>, sender: impl Into<String>, tls: Tls) -> Event {
        Event {
            ts,
            sender: sender.into(),
            tls,
            result: Outcome::Accepted,
            client_ip: None,
            host: None,
            id: None,
            envelope_from: None,
        }
    }

    /// The sender's domain: the text after the last `@`, empty when there is none.
    pub fn domain(&self) -> &str {
        sender_domain(&self.sender)
    }
}

/// Domain part of a (lower-cased) sender: text after the last `@`, or "".
pub fn sender_domain(sender: &str) -> &str {
    sender.rsplit_once('@').map_or("", |(_, d)| d)
}

/// Why one field of an event was refused. The message is written for the
/// person who has to fix the pipeline that produced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

impl FieldError {
    pub(crate) fn new(field: &'static str, message: impl Into<String>) -> Self {
        FieldError {
            field,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "field `{}`: {}", self.field, self.message)
    }
}

impl std::error::Error for FieldError {}

/// Normalises and checks a sender identity.
pub fn normalize_sender(raw: &str) -> Result<String, FieldError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(FieldError::new("sender", "must not be empty"));
    }
    check_text("sender", trimmed, MAX_SENDER_LEN)?;
    Ok(lowercase(trimmed))
}

/// `text` lower-cased. Nearly every name and address is ASCII: lower-cased
/// byte by byte, faster than by Unicode's rules, which agree on ASCII.
pub fn lowercase(text: &str) -> String {
    into_lowercase(text.to_owned())
}

/// [`lowercase`] of a string owned already: ASCII in place.
pub fn into_lowercase(mut text: String) -> String {
    if text.is_ascii() {
        text.make_ascii_lowercase();
        text
    } else {
        text.to_lowercase()
    }
}

/// Refuses control characters (CR/LF would let a sender name forge mail
/// headers or log lines; no MTA writes them in a username) and overlong text.
pub fn check_text(field: &'static str, s: &str, max: usize) -> Result<(), FieldError> {
    if s.len() > max {
        return Err(FieldError::new(
            field,
            format!("is {} bytes long; the limit is {max}", s.len()),
        ));
    }
    // Nearly all text is ASCII: its control characters are its control
    // bytes, and no invisible or direction-changing character is ASCII.
    // (Every event's sender passes here: decoding characters was a tenth
    // of the Postfix parser's time, perf.)
    if s.is_ascii() {
        return match s.bytes().find(u8::is_ascii_control) {
            Some(b) => Err(control(field, char::from(b))),
            None => Ok(()),
        };
    }
    if let Some(c) = s.chars().find(|c| c.is_control()) {
        return Err(control(field, c));
    }
    if let Some(c) = s.chars().find(|c| is_invisible(*c)) {
        return Err(FieldError::new(
            field,
            format!(
                "contains the invisible or direction-changing character U+{:04X}",
                c as u32
            ),
        ));
    }
    Ok(())
}

fn control(field: &'static str, c: char) -> FieldError {
    FieldError::new(
        field,
        format!("contains the control character U+{:04X}", c as u32),
    )
}

/// Characters that change how the text around them reads without being
/// seen: bidirectional overrides and isolates (which can show
/// `moc.evil@alice` as `alice@live.com`), zero-width spaces and joiners,
/// the soft hyphen, the byte order mark. No MTA writes them in a username.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}'
        | '\u{FEFF}')
}

/// Parses an RFC 3339 timestamp with any offset, refusing ones too far ahead
/// of `now` and ones before 1970 (the store counts days from the epoch).
pub(crate) fn parse_ts(raw: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, FieldError> {
    let ts = DateTime::parse_from_rfc3339(raw.trim())
        .map_err(|e| {
            FieldError::new(
                "ts",
                format!(
                    "{raw:?} is not an RFC 3339 timestamp ({e}); expected e.g. 2026-11-20T09:15:02Z"
                ),
            )
        })?
        .with_timezone(&Utc);
    if ts.timestamp() < 0 {
        return Err(FieldError::new("ts", format!("{raw:?} is before 1970")));
    }
    if ts > now + MAX_FUTURE_SKEW {
        return Err(FieldError::new(
            "ts",
            format!("{raw:?} is more than 24 hours in the future"),
        ));
    }
    Ok(ts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sender_is_trimmed_and_lower_cased() {
        assert_eq!(
            normalize_sender(" Alice@Example.COM ").unwrap(),
            "alice@example.com"
        );
    }

    #[test]
    fn ascii_text_is_checked_and_lower_cased_as_by_unicode_rules() {
        // Every ASCII byte in a name, and the same name with a non-ASCII
        // character after it: the ASCII path agrees with the general one.
        for b in 0u8..128 {
            let name = format!("A{}z@Example.COM", char::from(b));
            let general = format!("{name}\u{e9}");
            match (normalize_sender(&name), normalize_sender(&general)) {
                (Ok(ascii), Ok(other)) => {
                    assert_eq!(ascii, name.trim().to_lowercase());
                    assert_eq!(format!("{ascii}\u{e9}"), other);
                }
                (Err(ascii), Err(other)) => assert_eq!(ascii.message, other.message),
                (ascii, other) => panic!("byte {b}: {ascii:?} against {other:?}"),
            }
        }
    }

    #[test]
    fn domain_is_text_after_last_at() {
        assert_eq!(sender_domain("a@b@c.example"), "c.example");
        assert_eq!(sender_domain("scanner"), "");
    }

    #[test]
    fn hostile_senders_are_refused_with_reason() {
        let crlf = normalize_sender("a\r\nBcc: x@evil").unwrap_err();
        assert!(crlf.message.contains("U+000D"), "{crlf}");
        let long = normalize_sender(&"a".repeat(10_000)).unwrap_err();
        assert!(long.message.contains("10000 bytes"), "{long}");
        // Markup is not a reason to refuse: failed-login usernames are
        // attacker-chosen and must still be counted; outputs escape them.
        assert_eq!(normalize_sender("<script>").unwrap(), "<script>");
        for hidden in [
            "alice\u{202E}moc.live@x",
            "al\u{200B}ice@x",
            "\u{2066}a@x",
            "a\u{FEFF}@x",
        ] {
            let e = normalize_sender(hidden).unwrap_err();
            assert!(
                e.to_string().contains("invisible or direction-changing"),
                "{e}"
            );
        }
    }

    #[test]
    fn timestamps_with_offsets_convert_to_utc() {
        let now = Utc::now();
        let ts = parse_ts("2026-11-20T11:15:02+02:00", now).unwrap();
        assert_eq!(ts.to_rfc3339(), "2026-11-20T09:15:02+00:00");
        assert!(parse_ts("2026-11-20 09:15", now).is_err());
        assert!(parse_ts("1969-12-31T23:59:59Z", now).is_err());
        let future = (now + chrono::TimeDelta::days(3)).to_rfc3339();
        assert!(
            parse_ts(&future, now)
                .unwrap_err()
                .message
                .contains("future")
        );
    }
}
