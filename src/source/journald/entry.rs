//! One journal entry: whether the MTA wrote it, and the log line it
//! stands for.
//!
//! Any local user can write to the journal under any identifier (`logger
//! -t postfix/submission/smtpd ...`), so the identifier alone proves
//! nothing. journald stamps each entry with the writer's user id (`_UID`,
//! a field the writer cannot set), and an entry counts only when that is
//! root or the MTA's own user, and its identifier is the MTA's exactly:
//! `postfix/...`, `postfix-NAME/...` (a second instance's `syslog_name`),
//! `exim` or `exim4` — not `postfixevil/x`.

pub(super) use crate::metrics::JournalRefusal as Refusal;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

/// The journal fields read (timestamps and the cursor always come).
pub(super) const FIELDS: &str = "MESSAGE,SYSLOG_IDENTIFIER,SYSLOG_PID,_PID,_HOSTNAME,_UID";

/// One journal entry as `journalctl --output=json` writes it. A field is a
/// string, or an array of bytes when it is not text.
#[derive(Debug, Deserialize)]
pub(super) struct Entry {
    #[serde(rename = "__CURSOR")]
    pub cursor: String,
    #[serde(rename = "__REALTIME_TIMESTAMP")]
    realtime: String,
    #[serde(rename = "MESSAGE", default)]
    message: Option<serde_json::Value>,
    #[serde(rename = "SYSLOG_IDENTIFIER", default)]
    identifier: Option<serde_json::Value>,
    #[serde(rename = "SYSLOG_PID", default)]
    syslog_pid: Option<serde_json::Value>,
    #[serde(rename = "_PID", default)]
    pid: Option<serde_json::Value>,
    #[serde(rename = "_HOSTNAME", default)]
    hostname: Option<serde_json::Value>,
    #[serde(rename = "_UID", default)]
    uid: Option<serde_json::Value>,
}

/// A field's text: a string, the first of several, or bytes read as UTF-8.
fn text(v: &Option<serde_json::Value>) -> Option<String> {
    match v.as_ref()? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Array(items) => match items.first()? {
            serde_json::Value::String(s) => Some(s.clone()),
            _ => {
                let bytes: Vec<u8> = items
                    .iter()
                    .filter_map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                    .collect();
                Some(String::from_utf8_lossy(&bytes).into_owned())
            }
        },
        _ => None,
    }
}

/// Which parser reads an entry, by its identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mta {
    Postfix,
    Exim,
}

/// The MTA an identifier is exactly one of: `postfix/…` and
/// `postfix-NAME/…` (a `syslog_name` of a second instance), `exim`,
/// `exim4`.
fn mta(identifier: &str) -> Option<Mta> {
    if identifier == "exim" || identifier == "exim4" {
        return Some(Mta::Exim);
    }
    let (head, service) = identifier.split_once('/')?;
    let instance_ok = |name: &str| {
        !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    let postfix = head == "postfix" || head.strip_prefix("postfix-").is_some_and(instance_ok);
    (postfix && !service.is_empty()).then_some(Mta::Postfix)
}

/// Whether an identifier looks like an MTA's without being one exactly.
fn lookalike(identifier: &str) -> bool {
    identifier.starts_with("postfix") || identifier.starts_with("exim")
}

/// The users whose entries count, besides root.
#[derive(Debug, Clone, Default)]
pub(super) struct Writers {
    pub postfix: Vec<u32>,
    pub exim: Vec<u32>,
}

impl Writers {
    fn trusts(&self, mta: Mta, uid: u32) -> bool {
        let users = match mta {
            Mta::Postfix => &self.postfix,
            Mta::Exim => &self.exim,
        };
        uid == 0 || users.contains(&uid)
    }
}

/// What an entry is to the source.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// The MTA's: its log line, for its parser.
    Line(Mta, String),
    /// Not the MTA's at all (another program): skipped.
    Other,
    /// Claims to be the MTA's but is not: its identifier, and why.
    Refused(String, Refusal),
}

impl Entry {
    /// Whether the MTA wrote the entry, and if so the log line it stands
    /// for: what rsyslog writes for Postfix (RFC 3339 time, host, tag), the
    /// main log's line for Exim (its own time stamp, which Exim puts in what
    /// it sends to syslog by default, else the entry's time in `tz`).
    pub(super) fn verdict(&self, writers: &Writers, tz: Tz) -> Verdict {
        let Some(identifier) = text(&self.identifier) else {
            return Verdict::Other;
        };
        let Some(mta) = mta(&identifier) else {
            return match lookalike(&identifier) {
                true => Verdict::Refused(identifier, Refusal::Identifier),
                false => Verdict::Other,
            };
        };
        let uid = text(&self.uid).and_then(|u| u.parse().ok());
        if !uid.is_some_and(|uid| writers.trusts(mta, uid)) {
            return Verdict::Refused(identifier, Refusal::Writer);
        }
        match self.line(mta, identifier, tz) {
            Some(line) => Verdict::Line(mta, line),
            None => Verdict::Other,
        }
    }

    fn line(&self, mta: Mta, identifier: String, tz: Tz) -> Option<String> {
        let message = text(&self.message)?;
        let usec: i64 = self.realtime.parse().ok()?;
        let at = DateTime::<Utc>::from_timestamp_micros(usec)?;
        Some(match mta {
            Mta::Postfix => {
                let host = text(&self.hostname).unwrap_or_else(|| "localhost".to_owned());
                let pid = text(&self.syslog_pid).or_else(|| text(&self.pid));
                let tag = match pid {
                    Some(pid) => format!("{identifier}[{pid}]"),
                    None => identifier,
                };
                format!(
                    "{} {host} {tag}: {message}",
                    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, false)
                )
            }
            Mta::Exim => {
                let stamped = message.len() > 19
                    && message.is_char_boundary(19)
                    && chrono::NaiveDateTime::parse_from_str(&message[..19], "%Y-%m-%d %H:%M:%S")
                        .is_ok();
                if stamped {
                    message
                } else {
                    let local = at.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S");
                    format!("{local} {message}")
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POSTFIX_UID: u32 = 103;

    fn writers() -> Writers {
        Writers {
            postfix: vec![POSTFIX_UID],
            exim: vec![107],
        }
    }

    fn entry(identifier: &str, uid: u32, message: &str) -> Entry {
        serde_json::from_value(serde_json::json!({
            "__CURSOR": "s=1;i=1", "__REALTIME_TIMESTAMP": "1795741858123456",
            "SYSLOG_IDENTIFIER": identifier, "_PID": "26131", "_HOSTNAME": "vm",
            "_UID": uid.to_string(), "MESSAGE": message,
        }))
        .unwrap()
    }

    fn tz() -> Tz {
        "Europe/Berlin".parse().unwrap()
    }

    #[test]
    fn entries_of_the_mta_become_the_lines_their_parsers_read() {
        let e = entry(
            "postfix/submission/smtpd",
            POSTFIX_UID,
            "connect from x[1.2.3.4]",
        );
        assert_eq!(
            e.verdict(&writers(), tz()),
            Verdict::Line(
                Mta::Postfix,
                "2026-11-27T01:10:58.123456+00:00 vm postfix/submission/smtpd[26131]: connect from x[1.2.3.4]".into()
            )
        );
        let e = entry("exim", 0, "2026-11-27 03:50:58 1x <= a@b");
        assert_eq!(
            e.verdict(&writers(), tz()),
            Verdict::Line(Mta::Exim, "2026-11-27 03:50:58 1x <= a@b".into())
        );
        // Without Exim's own time stamp: the entry's, in the zone.
        let e = entry("exim4", 107, "1x <= a@b");
        assert_eq!(
            e.verdict(&writers(), tz()),
            Verdict::Line(Mta::Exim, "2026-11-27 02:10:58 1x <= a@b".into())
        );
        // A second instance's syslog_name.
        let e = entry("postfix-out/smtpd", POSTFIX_UID, "x");
        assert!(matches!(
            e.verdict(&writers(), tz()),
            Verdict::Line(Mta::Postfix, _)
        ));
        // Bytes that are not UTF-8 are read, not dropped.
        let mut binary = entry("postfix/smtpd", POSTFIX_UID, "");
        binary.message = Some(serde_json::json!([104, 105, 255]));
        match binary.verdict(&writers(), tz()) {
            Verdict::Line(_, line) => assert!(line.ends_with("]: hi\u{fffd}"), "{line}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn what_another_user_or_program_wrote_does_not_count() {
        let forged = entry("postfix/submission/smtpd", 65534, "sasl_username=ceo");
        assert_eq!(
            forged.verdict(&writers(), tz()),
            Verdict::Refused("postfix/submission/smtpd".into(), Refusal::Writer)
        );
        let mut no_uid = entry("postfix/smtpd", 0, "x");
        no_uid.uid = None;
        assert!(matches!(
            no_uid.verdict(&writers(), tz()),
            Verdict::Refused(_, Refusal::Writer)
        ));
        // The Exim user is not Postfix's.
        let crossed = entry("postfix/smtpd", 107, "x");
        assert!(matches!(
            crossed.verdict(&writers(), tz()),
            Verdict::Refused(_, Refusal::Writer)
        ));
        for lookalike in ["postfixevil/x", "postfix-/smtpd", "postfix", "exim5"] {
            assert_eq!(
                entry(lookalike, 0, "x").verdict(&writers(), tz()),
                Verdict::Refused(lookalike.into(), Refusal::Identifier),
                "{lookalike}"
            );
        }
        assert_eq!(
            entry("sshd", 0, "Accepted password").verdict(&writers(), tz()),
            Verdict::Other
        );
    }
}
