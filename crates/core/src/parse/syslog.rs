//! The syslog line prefix shared by Postfix logs: time stamp, host, program
//! and pid. Three time stamp styles occur in the wild: classic syslog
//! (`Nov 27 00:51:17`, no year, local time), RFC 3339 from rsyslog's
//! high-precision format, and `journalctl -o short-iso`
//! (`2026-11-27T02:50:36+0000`).

use crate::event::time::bounded;
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// One syslog line's prefix, parsed, borrowing from it. Its parts are
/// bytes, read as text only where a parser uses them: most lines of a mail
/// log are passed over once their program is known, and checking them for
/// UTF-8 first was a tenth of the Postfix parser's time (perf).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogLine<'a> {
    pub ts: DateTime<Utc>,
    pub host: &'a [u8],
    /// e.g. `postfix/submission/smtpd`.
    pub program: &'a [u8],
    pub pid: u32,
    pub message: &'a [u8],
}

/// Why a line is not a syslog line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrefixError {
    Timestamp,
    Tag,
}

/// Turns year-less classic time stamps into instants: the year is the
/// reference's, unless that would put the line more than a day after the
/// reference, which happens for December lines read in January.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    pub reference: DateTime<Utc>,
    /// Zone of classic time stamps (the MTA host's local time).
    pub tz: Tz,
}

impl Clock {
    fn classic(&self, month: u32, day: u32, h: u32, m: u32, s: u32) -> Option<DateTime<Utc>> {
        let year = self.reference.with_timezone(&self.tz).year();
        let at = |y: i32| {
            let naive = NaiveDate::from_ymd_opt(y, month, day)?.and_hms_opt(h, m, s)?;
            self.tz
                .from_local_datetime(&naive)
                .earliest()
                .map(|t| t.with_timezone(&Utc))
        };
        match at(year) {
            Some(t) if t <= self.reference + chrono::TimeDelta::days(1) => Some(t),
            // Feb 29 of a year that has none, or a date "in the future".
            _ => at(year - 1),
        }
    }
}

/// `line` after `stamp` (time stamp and space), if it starts with it.
/// Compared eight bytes at a time, the last eight overlapping: the
/// comparison is made on every line, and calling `memcmp` for 16 bytes
/// cost more than the comparing.
fn strip_stamp<'a>(line: &'a [u8], stamp: &str) -> Option<&'a [u8]> {
    let (head, stamp_bytes) = (line.get(..stamp.len())?, stamp.as_bytes());
    let word = |b: &[u8], at: usize| {
        let chunk = b.get(at..at + 8).and_then(|c| <[u8; 8]>::try_from(c).ok());
        chunk.map(u64::from_ne_bytes)
    };
    let same = match stamp.len().checked_sub(8) {
        None => head == stamp_bytes,
        Some(last) => (0..last)
            .step_by(8)
            .chain([last])
            .all(|at| word(head, at) == word(stamp_bytes, at)),
    };
    same.then(|| line.get(stamp.len()..)).flatten()
}

/// Bytes of a line its time stamp and the space after it fit in: an RFC
/// 3339 stamp with nanoseconds and an offset is 36.
const STAMP_WITHIN: usize = 64;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The last time stamp parsed: a busy log has many lines per second, and
/// converting a stamp to an instant was a tenth of an import's parsing.
#[derive(Debug, Default)]
pub struct Stamps {
    text: String,
    ts: Option<DateTime<Utc>>,
}

impl Stamps {
    /// The time stamp `line` starts with and the rest after its space.
    fn parse<'a>(&mut self, line: &'a [u8], clock: &Clock) -> Option<(DateTime<Utc>, &'a [u8])> {
        if let Some(ts) = self.ts
            && let Some(rest) = strip_stamp(line, &self.text)
        {
            return Some((ts, rest));
        }
        // A new stamp (once a second in a busy log): the line's head read
        // as text up to the first byte that is not UTF-8 (a stamp is
        // ASCII, and shorter than the head).
        let head = &line[..line.len().min(STAMP_WITHIN)];
        let text = match std::str::from_utf8(head) {
            Ok(text) => text,
            Err(e) => std::str::from_utf8(&head[..e.valid_up_to()]).ok()?,
        };
        let (ts, rest) = timestamp(text, clock)?;
        // The stamp with its space: what the next line starts with.
        let len = text.len() - rest.len();
        self.text.clear();
        self.text.push_str(&text[..len]);
        self.ts = Some(ts);
        Some((ts, &line[len..]))
    }
}

/// Parses the prefix of a syslog line; `stamps` remembers the last time
/// stamp for the next line.
pub fn parse<'a>(
    line: &'a [u8],
    clock: &Clock,
    stamps: &mut Stamps,
) -> Result<SyslogLine<'a>, PrefixError> {
    let (ts, rest) = stamps.parse(line, clock).ok_or(PrefixError::Timestamp)?;
    let start = rest.iter().position(|&b| b != b' ').unwrap_or(rest.len());
    let rest = &rest[start..];
    let space = memchr::memchr(b' ', rest).ok_or(PrefixError::Tag)?;
    let (host, rest) = (&rest[..space], &rest[space + 1..]);
    let (program, pid, message) = tag(rest).ok_or(PrefixError::Tag)?;
    Ok(SyslogLine {
        ts,
        host,
        program,
        pid,
        message,
    })
}

/// `PROGRAM[PID]: MESSAGE` or `PROGRAM: MESSAGE` → its three parts. The
/// tag ends at the first `: ` and holds no space. One scan for the bytes
/// that matter: searching `: `, then `[`, then spaces, one after the
/// other was a twentieth of an import's time (perf).
fn tag(text: &[u8]) -> Option<(&[u8], u32, &[u8])> {
    let mut from = 0;
    loop {
        let at = from + memchr::memchr3(b' ', b'[', b':', text.get(from..)?)?;
        match text[at] {
            b':' if text.get(at + 1) == Some(&b' ') => {
                return Some((nonempty(&text[..at])?, 0, &text[at + 2..]));
            }
            b':' => from = at + 1,
            b'[' => {
                let close = at + memchr::memchr(b']', &text[at..])?;
                let pid = number(&text[at + 1..close])?;
                let message = text[close + 1..].strip_prefix(b": ")?;
                return Some((nonempty(&text[..at])?, pid, message));
            }
            _ => return None, // a space in the tag
        }
    }
}

/// Decimal digits as a `u32`; `None` for none, others, or overflow.
fn number(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u32, |n, &d| {
        let digit = d.checked_sub(b'0').filter(|d| *d < 10)?;
        n.checked_mul(10)?.checked_add(u32::from(digit))
    })
}

fn nonempty(s: &[u8]) -> Option<&[u8]> {
    (!s.is_empty()).then_some(s)
}

fn timestamp<'a>(line: &'a str, clock: &Clock) -> Option<(DateTime<Utc>, &'a str)> {
    let first = *line.as_bytes().first()?;
    if first.is_ascii_digit() {
        let (stamp, rest) = line.split_once(' ')?;
        let ts = DateTime::parse_from_rfc3339(stamp)
            .or_else(|_| DateTime::parse_from_str(stamp, "%Y-%m-%dT%H:%M:%S%z"))
            .ok()?;
        return Some((bounded(ts.with_timezone(&Utc))?, rest));
    }
    // Classic: "Nov 27 00:51:17" (day padded with a space: "Nov  7").
    let month = MONTHS.iter().position(|m| line.starts_with(m))? as u32 + 1;
    let rest = line.get(3..)?.trim_start_matches(' ');
    let (day, rest) = rest.split_once(' ')?;
    let (time, rest) = rest.split_once(' ')?;
    let mut hms = time.split(':').map(|p| p.parse::<u32>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    Some((
        bounded(clock.classic(month, day.parse().ok()?, h, m, s)?)?,
        rest,
    ))
}

/// Parses `YYYY-MM-DD HH:MM:SS` in `tz` (Exim's time stamps), returning the
/// rest of the line.
pub(crate) fn parse_exim_time(line: &str, tz: Tz) -> Option<(DateTime<Utc>, &str)> {
    let stamp = line.get(..19)?;
    let naive = NaiveDateTime::parse_from_str(stamp, "%Y-%m-%d %H:%M:%S").ok()?;
    let mut rest = line.get(19..)?;
    // With log_timezone Exim appends the offset: "2026-11-27 02:50:58 +0100".
    if let Some(offset) = rest.strip_prefix(' ').and_then(|r| r.get(..5))
        && (offset.starts_with('+') || offset.starts_with('-'))
        && offset[1..].bytes().all(|b| b.is_ascii_digit())
    {
        let fixed =
            DateTime::parse_from_str(&format!("{stamp} {offset}"), "%Y-%m-%d %H:%M:%S %z").ok()?;
        let after = &rest[6..];
        return Some((
            bounded(fixed.with_timezone(&Utc))?,
            after.strip_prefix(' ').unwrap_or(after),
        ));
    }
    rest = rest.strip_prefix(' ').unwrap_or(rest);
    let ts = tz
        .from_local_datetime(&naive)
        .earliest()?
        .with_timezone(&Utc);
    Some((bounded(ts)?, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses one line with nothing remembered.
    fn parse<'a>(line: &'a str, clock: &Clock) -> Result<SyslogLine<'a>, PrefixError> {
        super::parse(line.as_bytes(), clock, &mut Stamps::default())
    }

    fn text(bytes: &[u8]) -> &str {
        std::str::from_utf8(bytes).unwrap()
    }

    fn clock(reference: &str) -> Clock {
        Clock {
            reference: reference.parse().unwrap(),
            tz: Tz::UTC,
        }
    }

    #[test]
    fn three_time_stamp_styles() {
        let c = clock("2026-11-27T12:00:00Z");
        let classic = parse(
            "Nov 27 02:49:47 mx1 postfix/submission/smtpd[25024]: connect from x",
            &c,
        )
        .unwrap();
        assert_eq!(classic.ts.to_rfc3339(), "2026-11-27T02:49:47+00:00");
        assert_eq!(
            (text(classic.host), text(classic.program), classic.pid),
            ("mx1", "postfix/submission/smtpd", 25024)
        );
        assert_eq!(classic.message, b"connect from x");
        let rsyslog = parse(
            "2026-11-27T02:50:19.580981+01:00 vm postfix/qmgr[1]: hello",
            &c,
        )
        .unwrap();
        assert_eq!(rsyslog.ts.to_rfc3339(), "2026-11-27T01:50:19.580981+00:00");
        let journal = parse("2026-11-27T02:50:36+0000 vm postfix/smtpd[7]: hi", &c).unwrap();
        assert_eq!(journal.ts.to_rfc3339(), "2026-11-27T02:50:36+00:00");
        let padded = parse("Nov  7 02:49:47 mx1 postfix/smtpd[2]: x", &c).unwrap();
        assert_eq!(padded.ts.to_rfc3339(), "2026-11-07T02:49:47+00:00");
    }

    #[test]
    fn december_lines_read_in_january_belong_to_last_year() {
        let c = clock("2027-01-01T00:30:00Z");
        let dec = parse("Dec 31 23:59:59 mx postfix/smtpd[1]: x", &c).unwrap();
        assert_eq!(dec.ts.to_rfc3339(), "2026-12-31T23:59:59+00:00");
        let jan = parse("Jan  1 00:10:00 mx postfix/smtpd[1]: x", &c).unwrap();
        assert_eq!(jan.ts.to_rfc3339(), "2027-01-01T00:10:00+00:00");
    }

    #[test]
    fn garbage_is_refused() {
        let c = clock("2026-11-27T12:00:00Z");
        assert_eq!(parse("", &c).unwrap_err(), PrefixError::Timestamp);
        assert_eq!(
            parse("Nox 27 02:49:47 mx x: y", &c).unwrap_err(),
            PrefixError::Timestamp
        );
        assert_eq!(
            parse("Nov 27 02:49:47 mx1", &c).unwrap_err(),
            PrefixError::Tag
        );
        assert_eq!(
            parse("Nov 27 25:49:47 mx1 a[1]: b", &c).unwrap_err(),
            PrefixError::Timestamp
        );
    }

    #[test]
    fn tags_with_and_without_pid() {
        let ok = [
            ("postfix/smtpd[25]: a: b", ("postfix/smtpd", 25, "a: b")),
            ("kernel: x", ("kernel", 0, "x")),
            ("a:b[1]: m", ("a:b", 1, "m")),
            ("p[7]: ", ("p", 7, "")),
        ];
        for (line, (program, pid, message)) in ok {
            let want = (program.as_bytes(), pid, message.as_bytes());
            assert_eq!(tag(line.as_bytes()), Some(want), "{line}");
        }
        let bad = [
            "prog[12]x: m",
            "pr og: m",
            "pr[1 2]: m",
            ": m",
            "[1]: m",
            "p[]: m",
            "p[1]:m",
            "p[1",
            "no tag at all",
            "p:",
            "p[4294967296]: m",
            "p[+1]: m",
        ];
        for line in bad {
            assert_eq!(tag(line.as_bytes()), None, "{line}");
        }
        assert_eq!(number(b"4294967295"), Some(u32::MAX));
    }

    #[test]
    fn stamps_compare_whole_words_and_the_rest() {
        assert_eq!(
            strip_stamp(b"Nov 27 02:49:47 mx", "Nov 27 02:49:47 "),
            Some(&b"mx"[..])
        );
        assert_eq!(strip_stamp(b"Nov 27 02:49:48 mx", "Nov 27 02:49:47 "), None);
        assert_eq!(strip_stamp(b"Nov 27 02:49:4", "Nov 27 02:49:47 "), None);
        assert_eq!(strip_stamp(b"abc x", "abc "), Some(&b"x"[..]));
        assert_eq!(strip_stamp(b"abd x", "abc "), None);
        let rfc = "2026-11-27T02:50:19.580981+01:00 ";
        assert_eq!(
            strip_stamp(format!("{rfc}vm").as_bytes(), rfc),
            Some(&b"vm"[..])
        );
        assert_eq!(
            strip_stamp(format!("{}9 vm", &rfc[..32]).as_bytes(), rfc),
            None
        );
        assert_eq!(
            strip_stamp(b"2026-11-27T02:50:19.580982+01:00 vm", rfc),
            None
        );
    }

    #[test]
    fn exim_time_stamps_with_and_without_offset() {
        let (t, rest) = parse_exim_time("2026-11-27 02:50:58 1xWm38 <= a", Tz::UTC).unwrap();
        assert_eq!(
            (t.to_rfc3339().as_str(), rest),
            ("2026-11-27T02:50:58+00:00", "1xWm38 <= a")
        );
        let (t, rest) = parse_exim_time("2026-11-27 02:50:58 +0100 1x <= a", Tz::UTC).unwrap();
        assert_eq!(
            (t.to_rfc3339().as_str(), rest),
            ("2026-11-27T01:50:58+00:00", "1x <= a")
        );
    }

    #[test]
    fn remembered_stamps_give_what_parsing_each_line_gives() {
        let c = clock("2026-11-27T12:00:00Z");
        let lines = [
            "Nov 27 02:49:47 mx1 postfix/smtpd[1]: a",
            "Nov 27 02:49:47 mx1 postfix/smtpd[2]: b",
            "Nov 27 02:49:48 mx1 postfix/smtpd[2]: c",
            "Nov 27 02:49:48x mx1 postfix/smtpd[2]: d",
            "Nov 27 02:49:4 mx1 postfix/smtpd[2]: e",
            "Nov  7 02:49:48 mx1 postfix/smtpd[2]: f",
            "2026-11-27T02:50:19.5+01:00 vm postfix/qmgr[1]: g",
            "2026-11-27T02:50:19.5+01:00 vm postfix/qmgr[1]: h",
            "2026-11-27T02:50:19.5+01:00x vm postfix/qmgr[1]: i",
            "Nov 27 02:49:48 mx1 postfix/smtpd[2]: j",
            "Nov 27 02:49:48",
        ];
        let mut stamps = Stamps::default();
        for line in lines {
            let remembered = super::parse(line.as_bytes(), &c, &mut stamps);
            assert_eq!(remembered, parse(line, &c), "{line}");
        }
    }
}
