//! Reading mail logs and event files for `import` and `backtest`: the
//! same parsers as the daemon's log sources, with skip accounting and a
//! progress line on a terminal.

use crate::config::Config;
use crate::event::{BodyError, Event};
use crate::parse::exim::Exim;
use crate::parse::lines::Lines;
use crate::parse::postfix::Postfix;
use crate::parse::syslog::Clock;
use crate::parse::{LogParser, ndjson};
use crate::source::input;
use anyhow::Context;
use chrono::Utc;
use clap::ValueEnum;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(super) enum Format {
    /// One JSON event per line (or a JSON array), as for POST /api/v1/events.
    Ndjson,
    /// Postfix mail log (syslog, rsyslog RFC 3339 or journalctl short-iso).
    Postfix,
    /// Exim main log.
    Exim,
}

/// Skipped lines described individually on stderr before only counting.
const SHOW_SKIPS: u64 = 10;

/// Refused lines by reason; kept apart from [`Stats`] because the reader
/// reports them through a second callback.
#[derive(Default)]
pub(super) struct Skips {
    pub(super) by_reason: BTreeMap<String, u64>,
    shown: u64,
}

/// Reads every file in `files` through the parser for `format`, handing
/// each event to `sink`; returns the number of lines read. `-` is stdin.
/// Stops at the first error `sink` returns.
pub(super) fn read_files(
    config: &Config,
    format: Format,
    host: Option<&str>,
    files: &[PathBuf],
    sink: &mut dyn FnMut(Event) -> std::io::Result<()>,
    skips: &mut Skips,
) -> anyhow::Result<u64> {
    let now = Utc::now();
    let mut total = 0;
    for path in files {
        let name = path.display().to_string();
        let reader = input::open(path).with_context(|| format!("cannot open {name}"))?;
        let lines = match format {
            Format::Ndjson => {
                ndjson::read_events(reader, now, &mut *sink, |err| skips.note_body(&name, err))
            }
            Format::Postfix | Format::Exim => {
                let mut parser = log_parser(config, format, host, path)?;
                read_log(reader, parser.as_mut(), &name, &mut *sink, skips)
            }
        }
        .with_context(|| format!("reading {name}"))?;
        total += lines;
    }
    Ok(total)
}

fn log_parser(
    config: &Config,
    format: Format,
    host: Option<&str>,
    path: &Path,
) -> anyhow::Result<Box<dyn LogParser>> {
    let tz = config.timezone.0;
    Ok(match format {
        Format::Exim => {
            let host = match host {
                Some(h) => h.to_owned(),
                None => crate::source::local_host_name(),
            };
            Box::new(Exim::new(tz, host))
        }
        _ => {
            // Classic syslog stamps have no year: the file's modification
            // time (its last line) anchors them.
            let reference = std::fs::metadata(path)
                .and_then(|m| m.modified())
                .map(chrono::DateTime::<Utc>::from)
                .unwrap_or_else(|_| Utc::now());
            Box::new(Postfix::new(
                Clock { reference, tz },
                host.map(str::to_owned),
            ))
        }
    })
}

/// Feeds a mail log through `parser`, with a progress line on a terminal.
pub(super) fn read_log(
    reader: Box<dyn BufRead + Send>,
    parser: &mut dyn LogParser,
    name: &str,
    sink: &mut dyn FnMut(Event) -> std::io::Result<()>,
    skips: &mut Skips,
) -> std::io::Result<u64> {
    let mut lines = Lines::new(reader);
    let mut events = Vec::new();
    let mut progress = Progress::new(name);
    while let Some(line) = lines.next_bytes()? {
        if let Err(skip) = line.and_then(|l| parser.bytes(l, &mut events)) {
            skips.note(name, lines.number, skip.label(), None);
        }
        for ev in events.drain(..) {
            sink(ev)?;
        }
        if lines.number % 65_536 == 0 {
            progress.show(lines.number, lines.bytes);
        }
    }
    parser.finish(&mut events);
    events.into_iter().try_for_each(&mut *sink)?;
    progress.done();
    Ok(lines.number)
}

/// A one-line progress display on stderr, only when it is a terminal.
struct Progress<'a> {
    name: &'a str,
    started: std::time::Instant,
    shown: bool,
    tty: bool,
}

impl<'a> Progress<'a> {
    fn new(name: &'a str) -> Self {
        let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
        Progress {
            name,
            started: std::time::Instant::now(),
            shown: false,
            tty,
        }
    }

    fn show(&mut self, lines: u64, bytes: u64) {
        if !self.tty {
            return;
        }
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        eprint!(
            "\r{}: {lines} lines, {:.0} MB, {:.0} MB/s   ",
            self.name,
            bytes as f64 / 1e6,
            bytes as f64 / 1e6 / secs
        );
        self.shown = true;
    }

    fn done(&self) {
        if self.shown {
            eprintln!();
        }
    }
}

impl Skips {
    fn note_body(&mut self, file: &str, err: BodyError) {
        let reason = match (&err, err.field()) {
            (_, Some(field)) => format!("invalid {field}"),
            (BodyError::Utf8 { .. }, _) => "not UTF-8".to_owned(),
            (BodyError::TooLong { .. }, _) => "too long".to_owned(),
            _ => "invalid JSON".to_owned(),
        };
        let line = err.line().unwrap_or(0) as u64;
        self.note(file, line, &reason, Some(&err.to_string()));
    }

    /// Counts a skipped line; the first few are described on stderr.
    fn note(&mut self, file: &str, line: u64, reason: &str, detail: Option<&str>) {
        *self.by_reason.entry(reason.to_owned()).or_default() += 1;
        if self.shown < SHOW_SKIPS {
            self.shown += 1;
            match detail {
                Some(d) => eprintln!("{file}: skipped {d}"),
                None => eprintln!("{file}: skipped line {line}: {reason}"),
            }
        }
    }
}

/// Alerts by kind, as `import` and `backtest` summarise them.
#[derive(Default)]
pub(super) struct AlertCounts(BTreeMap<&'static str, u64>);

impl AlertCounts {
    pub(super) fn add<'a>(&mut self, alerts: impl IntoIterator<Item = &'a crate::detect::Alert>) {
        for a in alerts {
            *self.0.entry(a.kind.name()).or_default() += 1;
        }
    }

    pub(super) fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// "legacy_tls: 2, new_sender: 1"
    pub(super) fn list(&self) -> String {
        let kinds: Vec<String> = self.0.iter().map(|(k, n)| format!("{k}: {n}")).collect();
        kinds.join(", ")
    }
}
