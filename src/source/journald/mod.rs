//! Following the systemd journal, where Debian 12 keeps Postfix's log when
//! rsyslog is not installed: `[[sources]] kind = "journald"`, the local
//! journal or a journal directory. `entry` decides which entries the MTA
//! wrote (by journald's `_UID`, which the writer cannot set) and turns
//! them back into log lines.
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

mod entry;
mod probe;

use super::SourceConfig;
use crate::event::Event;
use crate::ingest::Ingester;
use crate::metrics::Metrics;
use entry::{Entry, FIELDS, Mta, Verdict, Writers};
use std::collections::HashSet;
use std::sync::Arc;

use crate::parse::LogParser;
use crate::store::{Store, keys};
use chrono::Utc;
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
/// Identifiers of refused entries named in the log, at most (each once).
const WARN_IDENTIFIERS: usize = 64;

/// Where the source is, as saved in the store.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Cursor {
    /// The journal cursor of the last entry read.
    journal: Option<String>,
    postfix: serde_json::Value,
    exim: serde_json::Value,
}

/// A journald source: both parsers, and where it is.
pub(crate) struct Journal {
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
    /// The users whose entries count.
    writers: Writers,
    metrics: Arc<Metrics>,
    /// Identifiers of refused entries already named in the log.
    warned: HashSet<String>,
    /// An entry was read: the journal is readable.
    seen: bool,
}

impl Journal {
    /// The source, resumed where the store says it was. Reads the store:
    /// call it from a blocking thread.
    pub(crate) fn new(
        source: SourceConfig,
        store: &Store,
        (ingester, metrics): (Ingester, Arc<Metrics>),
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
        let writers = writers(&source);
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
            writers,
            metrics,
            warned: HashSet::new(),
            seen: false,
        })
    }

    /// Follows the journal until `shutdown`; returns after the last commit.
    pub(crate) async fn run(mut self, shutdown: CancellationToken) {
        let name = self.source.name();
        tracing::info!(
            source = name,
            cursor = self.cursor.as_deref().unwrap_or("start"),
            "following the journal"
        );
        if !probe::readable(self.source.directory.as_deref()).await {
            tracing::warn!(source = name, "{}", probe::UNREADABLE);
        }
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
        let mut again =
            tokio::time::interval_at(tokio::time::Instant::now() + probe::AGAIN, probe::AGAIN);
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
                    self.seen = true;
                    if already_read.take().as_deref() == Some(entry.cursor.as_str()) {
                        continue;
                    }
                    self.entry(entry);
                    if self.read >= BATCH {
                        self.commit().await?;
                    }
                }
                // Said again every few minutes while nothing can be read.
                _ = again.tick(), if !self.seen => {
                    if !probe::readable(self.source.directory.as_deref()).await {
                        tracing::warn!(source = self.source.name(), "{}", probe::UNREADABLE);
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

    /// Feeds one entry the MTA wrote to its parser; counts one that only
    /// claims to be the MTA's, and names its identifier in the log once.
    fn entry(&mut self, entry: Entry) {
        self.read += 1;
        match entry.verdict(&self.writers, self.tz) {
            Verdict::Line(mta, line) => {
                let parser = match mta {
                    Mta::Postfix => &mut self.postfix,
                    Mta::Exim => &mut self.exim,
                };
                parser.now(Utc::now());
                // A line a parser refuses is one it cannot use: skipped,
                // as in a log file.
                let _ = parser.line(&line, &mut self.events);
            }
            Verdict::Other => {}
            Verdict::Refused(identifier, why) => {
                self.metrics.journal_refused(why);
                if self.warned.len() < WARN_IDENTIFIERS && self.warned.insert(identifier.clone()) {
                    tracing::warn!(
                        source = self.source.name(),
                        identifier,
                        why = why.label(),
                        "journal entries under an MTA's name that the MTA did not write are not \
                         counted (the writer is neither root nor one of the source's users, or \
                         the identifier only looks like the MTA's)"
                    );
                }
            }
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

/// The users whose entries count, as the source names them or by
/// default: `postfix` for Postfix's entries, `Debian-exim` (or `exim`) for
/// Exim's. A name this machine does not know is logged; another machine's
/// journal needs that machine's numeric ids.
fn writers(source: &SourceConfig) -> Writers {
    let ids = |names: &[&str], say: bool| -> Vec<u32> {
        names
            .iter()
            .filter_map(|name| {
                let id = crate::process::user_id(name);
                if id.is_none() && say {
                    tracing::warn!(
                        source = source.name(),
                        user = *name,
                        "sources.users: no such user on this machine; its entries do not count \
                         (for another machine's journal, give the numeric id)"
                    );
                }
                id
            })
            .collect()
    };
    match &source.users {
        Some(users) => {
            let names: Vec<&str> = users.iter().map(String::as_str).collect();
            let ids = ids(&names, true);
            Writers {
                postfix: ids.clone(),
                exim: ids,
            }
        }
        None => Writers {
            postfix: ids(&["postfix"], false),
            exim: ids(&["Debian-exim", "exim"], false),
        },
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
