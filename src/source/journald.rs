//! Following the systemd journal, where Debian 12 keeps Postfix's log when
//! rsyslog is not installed: `[[sources]] kind = "journald"`, the local
//! journal or a journal directory.
//!
//! The source runs `journalctl --output=json --follow` (as Vector's
//! journald source does) rather than linking libsystemd: no C library to
//! build against, and journalctl already follows rotation, new files and
//! vacuuming, and reads journal directories from any machine. Entries of
//! Postfix (`postfix*/…`, any `syslog_name`) and Exim (`exim`, `exim4`)
//! are turned back into the log lines their parsers read, so the journal
//! counts exactly what the log file would.
//!
//! Exactly once, as for files: the journal cursor of the last entry read
//! and the parsers' state are committed with the events they produced, in
//! the store writer's batch. A restart resumes at that cursor: journalctl
//! starts *at* it (`--cursor`) and the entry is skipped here when it is
//! still there; when it was vacuumed, journalctl starts at the next entry
//! of its place in time, which is then read, not skipped.

use super::SourceConfig;
use crate::event::Event;
use crate::ingest::Ingester;
use crate::parse::LogParser;
use crate::store::{Store, keys};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::io;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio_util::sync::CancellationToken;

/// Entries read before their events are committed, at most.
const BATCH: usize = 2_000;
/// How often a quiet journal's pending events are committed, and the
/// parsers told that time has passed.
const QUIET: Duration = Duration::from_millis(200);
/// Pause before journalctl is started again after it failed.
const RETRY: Duration = Duration::from_secs(5);
/// The journal fields the parsers need (timestamps and the cursor always
/// come with them).
const FIELDS: &str = "MESSAGE,SYSLOG_IDENTIFIER,SYSLOG_PID,_PID,_HOSTNAME";

/// Where the source is, as saved in the store.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Cursor {
    /// The journal cursor of the last entry read.
    journal: Option<String>,
    postfix: serde_json::Value,
    exim: serde_json::Value,
}

/// One journal entry as `journalctl --output=json` writes it. A field is a
/// string, or an array of bytes when it is not text.
#[derive(Debug, Deserialize)]
struct Entry {
    #[serde(rename = "__CURSOR")]
    cursor: String,
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
enum Mta {
    Postfix,
    Exim,
}

fn mta(identifier: &str) -> Option<Mta> {
    if identifier.starts_with("postfix") && identifier.contains('/') {
        Some(Mta::Postfix)
    } else if identifier == "exim" || identifier == "exim4" {
        Some(Mta::Exim)
    } else {
        None
    }
}

/// The log line an entry stands for: what rsyslog writes for Postfix
/// (RFC 3339 time, host, tag), the main log's line for Exim (its own time
/// stamp, which Exim puts in what it sends to syslog by default, else the
/// entry's time in `tz`).
fn log_line(entry: &Entry, tz: Tz) -> Option<(Mta, String)> {
    let identifier = text(&entry.identifier)?;
    let mta = mta(&identifier)?;
    let message = text(&entry.message)?;
    let usec: i64 = entry.realtime.parse().ok()?;
    let at = DateTime::<Utc>::from_timestamp_micros(usec)?;
    let line = match mta {
        Mta::Postfix => {
            let host = text(&entry.hostname).unwrap_or_else(|| "localhost".to_owned());
            let pid = text(&entry.syslog_pid).or_else(|| text(&entry.pid));
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
                && chrono::NaiveDateTime::parse_from_str(&message[..19], "%Y-%m-%d %H:%M:%S")
                    .is_ok();
            if stamped {
                message
            } else {
                let local = at.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S");
                format!("{local} {message}")
            }
        }
    };
    Some((mta, line))
}

/// A journald source: both parsers, and where it is.
pub struct Journal {
    source: SourceConfig,
    key: Vec<u8>,
    ingester: Ingester,
    tz: Tz,
    postfix: Box<dyn LogParser>,
    exim: Box<dyn LogParser>,
    /// The cursor of the last entry read.
    cursor: Option<String>,
    /// Entries read since the last commit, and the events they gave.
    read: usize,
    events: Vec<Event>,
}

impl Journal {
    /// The source, resumed where the store says it was. Reads the store:
    /// call it from a blocking thread.
    pub fn new(
        source: SourceConfig,
        store: &Store,
        ingester: Ingester,
        default_host: &str,
    ) -> io::Result<Journal> {
        let key = keys::cursor_key(&source.name());
        let saved: Cursor = match store.cursor(&key).map_err(io::Error::other)? {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(io::Error::other)?,
            None => Cursor::default(),
        };
        let mut postfix = super::postfix_parser(store.tz, source.host.as_deref());
        let mut exim = super::exim_parser(store.tz, source.host.as_deref(), default_host);
        for (parser, state) in [(&mut postfix, saved.postfix), (&mut exim, saved.exim)] {
            if !state.is_null() {
                parser.restore(state).map_err(io::Error::other)?;
            }
        }
        Ok(Journal {
            source,
            key,
            ingester,
            tz: store.tz,
            postfix,
            exim,
            cursor: saved.journal,
            read: 0,
            events: Vec::new(),
        })
    }

    /// Follows the journal until `shutdown`; returns after the last commit.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let name = self.source.name();
        tracing::info!(
            source = name,
            cursor = self.cursor.as_deref().unwrap_or("start"),
            "following the journal"
        );
        while !shutdown.is_cancelled() {
            if let Err(e) = self.follow(&shutdown).await {
                tracing::warn!(source = name, error = %e, "following the journal failed; starting journalctl again");
                tokio::select! {
                    () = shutdown.cancelled() => {}
                    () = tokio::time::sleep(RETRY) => {}
                }
            }
        }
    }

    /// One run of journalctl, from the saved cursor.
    async fn follow(&mut self, shutdown: &CancellationToken) -> io::Result<()> {
        let mut command = tokio::process::Command::new("journalctl");
        command.args([
            "--output=json",
            "--follow",
            "--no-tail",
            "--no-pager",
            "--quiet",
        ]);
        command.arg(format!("--output-fields={FIELDS}"));
        if let Some(dir) = &self.source.directory {
            command.arg("--directory").arg(dir);
        }
        if let Some(cursor) = &self.cursor {
            command.arg("--cursor").arg(cursor);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| io::Error::other(format!("cannot run journalctl: {e}")))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("no stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        // The saved cursor's own entry, read again when it still exists.
        let mut already_read = self.cursor.clone();
        let mut quiet = tokio::time::interval(QUIET);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => {
                    self.commit().await?;
                    let _ = child.kill().await;
                    return Ok(());
                }
                line = lines.next_line() => {
                    let Some(line) = line? else {
                        self.commit().await?;
                        return Err(ended(&mut child).await);
                    };
                    let entry: Entry = match serde_json::from_str(&line) {
                        Ok(entry) => entry,
                        Err(e) => {
                            tracing::debug!(error = %e, "skipped a journal entry that is not JSON");
                            continue;
                        }
                    };
                    if already_read.take().as_deref() == Some(entry.cursor.as_str()) {
                        continue;
                    }
                    self.entry(entry);
                    if self.read >= BATCH {
                        self.commit().await?;
                    }
                }
                _ = quiet.tick() => {
                    let now = Utc::now().timestamp();
                    self.postfix.idle(now, &mut self.events);
                    self.exim.idle(now, &mut self.events);
                    if self.read > 0 || !self.events.is_empty() {
                        self.commit().await?;
                    }
                }
            }
        }
    }

    /// Feeds one entry to its parser.
    fn entry(&mut self, entry: Entry) {
        self.read += 1;
        if let Some((mta, line)) = log_line(&entry, self.tz) {
            let parser = match mta {
                Mta::Postfix => &mut self.postfix,
                Mta::Exim => &mut self.exim,
            };
            parser.now(Utc::now());
            // A line a parser refuses is one it cannot use: skipped, as in
            // a log file.
            let _ = parser.line(&line, &mut self.events);
        }
        self.cursor = Some(entry.cursor);
    }

    /// Hands the events and the new cursor to the writer; returns once both
    /// are on disk.
    async fn commit(&mut self) -> io::Result<()> {
        let cursor = Cursor {
            journal: self.cursor.clone(),
            postfix: self.postfix.save(),
            exim: self.exim.save(),
        };
        let bytes = serde_json::to_vec(&cursor).map_err(io::Error::other)?;
        let events = std::mem::take(&mut self.events);
        self.ingester
            .ingest(events, vec![(self.key.clone(), bytes)])
            .await
            .map_err(io::Error::other)?;
        self.read = 0;
        Ok(())
    }
}

/// Why journalctl ended: its status and what it said.
async fn ended(child: &mut tokio::process::Child) -> io::Error {
    let mut said = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = stderr.read_to_string(&mut said).await;
    }
    let status = child.wait().await;
    let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
    io::Error::other(format!("journalctl ended ({status}): {}", said.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(identifier: &str, message: &str) -> Entry {
        serde_json::from_value(serde_json::json!({
            "__CURSOR": "s=1;i=1", "__REALTIME_TIMESTAMP": "1795741858123456",
            "SYSLOG_IDENTIFIER": identifier, "_PID": "26131", "_HOSTNAME": "vm",
            "MESSAGE": message,
        }))
        .unwrap()
    }

    #[test]
    fn entries_become_the_lines_their_parsers_read() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let (mta, line) = log_line(
            &entry("postfix/submission/smtpd", "connect from x[1.2.3.4]"),
            tz,
        )
        .unwrap();
        assert_eq!(mta, Mta::Postfix);
        assert_eq!(
            line,
            "2026-11-27T01:10:58.123456+00:00 vm postfix/submission/smtpd[26131]: connect from x[1.2.3.4]"
        );
        let (mta, line) = log_line(&entry("exim", "2026-11-27 03:50:58 1x <= a@b"), tz).unwrap();
        assert_eq!(mta, Mta::Exim);
        assert_eq!(line, "2026-11-27 03:50:58 1x <= a@b");
        // Without Exim's own time stamp: the entry's, in the zone.
        let (_, line) = log_line(&entry("exim4", "1x <= a@b"), tz).unwrap();
        assert_eq!(line, "2026-11-27 02:10:58 1x <= a@b");
        assert!(log_line(&entry("sshd", "Accepted password"), tz).is_none());
        assert!(log_line(&entry("postfix", "no service"), tz).is_none());
        // Bytes that are not UTF-8 are read, not dropped.
        let mut binary = entry("postfix/smtpd", "");
        binary.message = Some(serde_json::json!([104, 105, 255]));
        assert!(log_line(&binary, tz).unwrap().1.ends_with("]: hi\u{fffd}"));
    }
}
