//! Parsers: mail-log lines and NDJSON event lines in, validated events out.
//!
//! Pure: a parser is fed text and returns events, with no file, clock or
//! store behind it, so `import`, `backtest` and the daemon's log followers
//! (see `source`) parse exactly alike, and tests feed them lines directly.
//!
//! - `postfix`, `exim`: the two MTAs' logs; `syslog`: the time stamps and
//!   tags in front of their lines.
//! - `ndjson`: event streams as `POST /api/v1/events` takes them.
//! - `lines`: reading lines with bounded memory.

pub mod exim;
pub mod lines;
pub mod ndjson;
pub mod postfix;
pub mod syslog;

use crate::event::Event;

/// Why a log line was not used. Lines that are valid but say nothing about
/// SMTP AUTH (deliveries, noise) are not skips.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Skip {
    /// No time stamp, host or program where the format puts them.
    NotALogLine,
    /// The bytes are not UTF-8.
    NotUtf8,
    /// Longer than any real log line ([`lines::MAX_LINE`]).
    TooLong,
    /// A login or submission line whose username the event model refuses
    /// (control characters, over-long).
    BadUsername,
}

impl Skip {
    pub fn label(self) -> &'static str {
        match self {
            Skip::NotALogLine => "not a log line",
            Skip::NotUtf8 => "not UTF-8",
            Skip::TooLong => "too long",
            Skip::BadUsername => "unusable username",
        }
    }
}

/// A mail-log parser: fed line by line, it emits events when it knows them
/// (a Postfix submission is complete only once later lines are seen).
pub trait LogParser: Send {
    fn line(&mut self, line: &str, out: &mut Vec<Event>) -> Result<(), Skip>;
    /// A line as read, not yet checked for UTF-8: a parser that passes
    /// over most lines reads what it uses as text and the rest not at all.
    /// A line it cannot use that is not UTF-8 is refused as such.
    fn bytes(&mut self, line: &[u8], out: &mut Vec<Event>) -> Result<(), Skip> {
        self.line(lines::as_text(line)?, out)
    }
    /// End of input: emits what is still pending.
    fn finish(&mut self, out: &mut Vec<Event>);
    /// The log has been quiet until `now` (unix seconds): emits what has
    /// waited long enough, as later lines would have.
    fn idle(&mut self, _now: i64, _out: &mut Vec<Event>) {}
    /// The current time, for formats whose time stamps have no year.
    fn now(&mut self, _now: chrono::DateTime<chrono::Utc>) {}
    /// State to save with a log cursor (open connections, pending
    /// submissions), so a restart resumes mid-connection.
    fn save(&self) -> serde_json::Value;
    /// Restores what [`LogParser::save`] returned.
    fn restore(&mut self, state: serde_json::Value) -> Result<(), String>;
}

/// `HOST[IP]` (as Postfix and Exim write clients) → the IP, if it parses.
pub(crate) fn bracketed_ip(s: &str) -> Option<std::net::IpAddr> {
    let open = s.find('[')?;
    let close = open + s[open..].find(']')?;
    s[open + 1..close].parse().ok()
}
