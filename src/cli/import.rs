//! `import`: load event files into the store without the HTTP side.

use crate::config::Config;
use crate::event::{BodyError, Event, Outcome};
use crate::source::exim::Exim;
use crate::source::lines::Lines;
use crate::source::postfix::Postfix;
use crate::source::syslog::Clock;
use crate::source::{LogParser, input, ndjson};
use crate::store::{IngestOutcome, Store, StoreOptions, Writer};
use anyhow::Context;
use chrono::Utc;
use clap::{Args, ValueEnum};
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Input format.
    #[arg(long, value_enum)]
    format: Format,
    /// Host name for events and ids: replaces the syslog host of Postfix
    /// logs; Exim logs name no host, so the machine's host name is the default.
    #[arg(long, value_name = "LABEL")]
    host: Option<String>,
    /// Files to read; `-` is stdin; gzip is detected and decompressed.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    /// One JSON event per line (or a JSON array), as for POST /api/v1/events.
    Ndjson,
    /// Postfix mail log (syslog, rsyslog RFC 3339 or journalctl short-iso).
    Postfix,
    /// Exim main log.
    Exim,
}

/// Events applied per store batch. Small on purpose: sled keeps every node a
/// batch rewrites until the batch ends, and `cargo bench --bench import`
/// measured peak RSS 359 MiB with 20,000-event batches, 61 MiB with 2,000.
const BATCH: usize = 2_000;
/// Batches between flushes: import needs durability at the end (and a
/// re-run counts nothing twice thanks to ids), not after every batch.
const FLUSH_EVERY: u32 = 64;
/// Skipped lines described individually on stderr before only counting.
const SHOW_SKIPS: u64 = 10;

#[derive(Default)]
struct Stats {
    batches: u32,
    lines: u64,
    events: u64,
    failed_logins: u64,
    outcome: IngestOutcome,
}

/// Refused lines by reason; kept apart from [`Stats`] because the reader
/// reports them through a second callback.
#[derive(Default)]
struct Skips {
    by_reason: BTreeMap<String, u64>,
    shown: u64,
}

pub fn run(config: &Config, args: &ImportArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.store.data_dir).with_context(|| {
        format!(
            "cannot create data directory {}",
            config.store.data_dir.display()
        )
    })?;
    let mut writer = Writer::new(Store::open(&StoreOptions::from_config(config))?);
    let now = Utc::now();
    let mut stats = Stats::default();
    let mut skips = Skips::default();
    for path in &args.files {
        let name = path.display().to_string();
        let reader = input::open(path).with_context(|| format!("cannot open {name}"))?;
        let mut batch: Vec<Event> = Vec::with_capacity(BATCH);
        let mut store_error = None;
        let mut sink = |ev: Event| {
            batch.push(ev);
            if batch.len() >= BATCH {
                commit(&mut writer, &mut batch, &mut stats, &mut store_error)?;
            }
            Ok(())
        };
        let lines = match args.format {
            Format::Ndjson => {
                ndjson::read_events(reader, now, &mut sink, |err| skips.note_body(&name, err))
            }
            Format::Postfix | Format::Exim => {
                let mut parser = log_parser(config, args, path)?;
                read_log(reader, parser.as_mut(), &name, &mut sink, &mut skips)
            }
        }
        .with_context(|| format!("reading {name}"));
        commit(&mut writer, &mut batch, &mut stats, &mut store_error)?;
        if let Some(e) = store_error {
            return Err(e);
        }
        stats.lines += lines?;
    }
    writer.store().flush().context("flushing the store")?;
    println!("{}", summary(&stats, &skips));
    Ok(())
}

fn log_parser(
    config: &Config,
    args: &ImportArgs,
    path: &Path,
) -> anyhow::Result<Box<dyn LogParser>> {
    let tz = config.timezone.0;
    Ok(match args.format {
        Format::Exim => {
            let host = match &args.host {
                Some(h) => h.clone(),
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
            Box::new(Postfix::new(Clock { reference, tz }, args.host.clone()))
        }
    })
}

/// Feeds a mail log through `parser`, with a progress line on a terminal.
fn read_log(
    reader: Box<dyn BufRead + Send>,
    parser: &mut dyn LogParser,
    name: &str,
    sink: &mut dyn FnMut(Event) -> std::io::Result<()>,
    skips: &mut Skips,
) -> std::io::Result<u64> {
    let mut lines = Lines::new(reader);
    let mut events = Vec::new();
    let mut progress = Progress::new(name);
    while let Some(line) = lines.next_line()? {
        if let Err(skip) = line.and_then(|l| parser.line(l, &mut events)) {
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

/// Applies and flushes one batch; a store failure stops the import.
fn commit(
    writer: &mut Writer,
    batch: &mut Vec<Event>,
    stats: &mut Stats,
    error: &mut Option<anyhow::Error>,
) -> std::io::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    stats.batches += 1;
    let flush = stats.batches % FLUSH_EVERY == 0;
    let result = writer
        .apply(&[batch.as_slice()], &[], Utc::now())
        .and_then(|o| {
            if flush {
                writer.store().flush().map(|()| o)
            } else {
                Ok(o)
            }
        });
    stats.events += batch.len() as u64;
    stats.failed_logins += batch
        .iter()
        .filter(|e| e.result == Outcome::AuthFailed)
        .count() as u64;
    batch.clear();
    match result {
        Ok(outcomes) => {
            outcomes.iter().for_each(|o| stats.outcome.add(o));
            Ok(())
        }
        Err(e) => {
            *error = Some(anyhow::Error::new(e).context("storing imported events"));
            Err(std::io::Error::other("store failed"))
        }
    }
}

impl Skips {
    fn note_body(&mut self, file: &str, err: BodyError) {
        let reason = match (&err, err.field()) {
            (_, Some(field)) => format!("invalid {field}"),
            (BodyError::Utf8 { .. }, _) => "not UTF-8".to_owned(),
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

fn summary(s: &Stats, skips: &Skips) -> String {
    let o = &s.outcome;
    let skipped: u64 = skips.by_reason.values().sum();
    let mut line = format!(
        "read {} lines: {} events ({} failed logins), {} counted, {} duplicates, {} older than retention; {} lines skipped",
        s.lines, s.events, s.failed_logins, o.accepted, o.duplicates, o.too_old, skipped
    );
    if skipped > 0 {
        let reasons: Vec<String> = skips
            .by_reason
            .iter()
            .map(|(r, n)| format!("{r}: {n}"))
            .collect();
        line.push_str(&format!(" ({})", reasons.join(", ")));
    }
    line
}
