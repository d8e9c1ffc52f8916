//! Sources: where events come from on this machine. Input files (plain,
//! gzip, stdin) for `import` and `backtest`, and what the daemon follows:
//! mail log files (`tail`) and the systemd journal (`journald`); the bytes
//! become events through the parsers of `parse`.

pub(crate) mod input;
pub(crate) mod journald;
pub(crate) mod tail;

use crate::parse::LogParser;
use crate::parse::exim::Exim;
use crate::parse::postfix::Postfix;
use crate::parse::syslog::Clock;
use chrono::Utc;
use chrono_tz::Tz;
use serde::Deserialize;
use std::path::PathBuf;

/// `[[sources]]`: a mail log the daemon follows.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// `postfix` or `exim` (a log file), or `journald` (the systemd
    /// journal, where Debian 12 keeps Postfix's log when rsyslog is not
    /// installed; Postfix and Exim entries both).
    pub kind: SourceKind,
    /// The log file, e.g. /var/log/mail.log or /var/log/exim4/mainlog
    /// (`postfix`, `exim`).
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// A journal directory to read instead of the local journal, as
    /// `journalctl --directory` reads it (`journald`).
    #[serde(default)]
    pub directory: Option<PathBuf>,
    /// Host label for events and ids; default: the syslog host (Postfix) or
    /// this machine's host name (Exim).
    #[serde(default)]
    pub host: Option<String>,
    /// The users whose journal entries count besides root (`journald`):
    /// names, or numeric ids for another machine's journal. journald
    /// records who wrote each entry, and any user can write one under
    /// Postfix's name. Default: `postfix` for Postfix's entries,
    /// `Debian-exim` (or `exim`) for Exim's.
    #[serde(default)]
    pub users: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Postfix,
    Exim,
    Journald,
}

impl SourceKind {
    pub fn name(self) -> &'static str {
        match self {
            SourceKind::Postfix => "postfix",
            SourceKind::Exim => "exim",
            SourceKind::Journald => "journald",
        }
    }
}

impl SourceConfig {
    /// What the source is called in logs and its cursor's key: the file,
    /// or `journald` and its directory.
    pub fn name(&self) -> String {
        match (&self.path, &self.directory) {
            (Some(path), _) => path.display().to_string(),
            (None, Some(dir)) => format!("journald:{}", dir.display()),
            (None, None) => "journald".to_owned(),
        }
    }

    /// Checks what the kind needs; returns the key at fault.
    pub(crate) fn check(&self) -> Result<(), (&'static str, String)> {
        let kind = self.kind.name();
        match self.kind {
            SourceKind::Postfix | SourceKind::Exim => {
                if self.path.is_none() {
                    return Err((
                        "sources.path",
                        format!("a {kind} source needs the log file's path"),
                    ));
                }
                if self.directory.is_some() || self.users.is_some() {
                    let key = match self.directory {
                        Some(_) => "sources.directory",
                        None => "sources.users",
                    };
                    return Err((key, format!("is for journald sources, not {kind}")));
                }
            }
            SourceKind::Journald => {
                if self.path.is_some() {
                    return Err((
                        "sources.path",
                        "is for log files; a journald source reads the journal (directory = \"...\" for a journal directory)".to_owned(),
                    ));
                }
                if let Some(u) =
                    self.users.iter().flatten().find(|u| {
                        u.is_empty() || u.contains(|c: char| c.is_whitespace() || c == ':')
                    })
                {
                    return Err(("sources.users", format!("{u:?} is not a user name or id")));
                }
            }
        }
        Ok(())
    }

    /// The parser of a `postfix` or `exim` log (a journald source runs both).
    pub fn parser(&self, tz: Tz, default_host: &str) -> Box<dyn LogParser> {
        match self.kind {
            SourceKind::Exim => exim_parser(tz, self.host.as_deref(), default_host),
            SourceKind::Postfix | SourceKind::Journald => postfix_parser(tz, self.host.as_deref()),
        }
    }
}

/// A Postfix log's parser; `host` replaces the syslog host.
pub(crate) fn postfix_parser(tz: Tz, host: Option<&str>) -> Box<dyn LogParser> {
    let clock = Clock {
        reference: Utc::now(),
        tz,
    };
    Box::new(Postfix::new(clock, host.map(str::to_owned)))
}

/// An Exim log's parser; Exim names no host, so `host` or this machine's.
pub(crate) fn exim_parser(tz: Tz, host: Option<&str>, default_host: &str) -> Box<dyn LogParser> {
    Box::new(Exim::new(tz, host.unwrap_or(default_host).to_owned()))
}

/// This machine's host name, for logs that do not name one.
pub(crate) fn local_host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}
