//! `import`: load event files into the store without the HTTP side.

use crate::config::Config;
use crate::event::{BodyError, Event};
use crate::source::{input, ndjson};
use crate::store::{IngestOutcome, Store, StoreOptions, Writer};
use anyhow::Context;
use chrono::Utc;
use clap::{Args, ValueEnum};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Input format.
    #[arg(long, value_enum)]
    format: Format,
    /// Files to read; `-` is stdin; gzip is detected and decompressed.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    /// One JSON event per line (or a JSON array), as for POST /api/v1/events.
    Ndjson,
}

/// Events applied per store batch; each batch is made durable before the next.
const BATCH: usize = 20_000;
/// Skipped lines described individually on stderr before only counting.
const SHOW_SKIPS: u64 = 10;

#[derive(Default)]
struct Stats {
    lines: u64,
    events: u64,
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
    let Format::Ndjson = args.format;
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
        let lines = ndjson::read_events(
            reader,
            now,
            |ev| {
                batch.push(ev);
                if batch.len() >= BATCH {
                    commit(&mut writer, &mut batch, &mut stats, &mut store_error)?;
                }
                Ok(())
            },
            |err| skips.note(&name, err),
        )
        .with_context(|| format!("reading {name}"));
        commit(&mut writer, &mut batch, &mut stats, &mut store_error)?;
        if let Some(e) = store_error {
            return Err(e);
        }
        stats.lines += lines?;
    }
    println!("{}", summary(&stats, &skips));
    Ok(())
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
    let result = writer
        .apply(&[batch.as_slice()], &[], Utc::now())
        .and_then(|o| writer.store().flush().map(|()| o));
    stats.events += batch.len() as u64;
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
    fn note(&mut self, file: &str, err: BodyError) {
        let reason = match (&err, err.field()) {
            (_, Some(field)) => format!("invalid {field}"),
            (BodyError::Utf8 { .. }, _) => "not UTF-8".to_owned(),
            _ => "invalid JSON".to_owned(),
        };
        *self.by_reason.entry(reason).or_default() += 1;
        if self.shown < SHOW_SKIPS {
            self.shown += 1;
            eprintln!("{file}: skipped {err}");
        }
    }
}

fn summary(s: &Stats, skips: &Skips) -> String {
    let o = &s.outcome;
    let skipped: u64 = skips.by_reason.values().sum();
    let mut line = format!(
        "read {} lines: {} events, {} counted, {} duplicates, {} older than retention; {} lines skipped",
        s.lines, s.events, o.accepted, o.duplicates, o.too_old, skipped
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
