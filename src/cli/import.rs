//! `import`: load event files into the store without the HTTP side.

use super::read::{AlertCounts, Format, Skips, read_files};
use crate::config::Config;
use crate::event::{Event, Outcome};
use crate::store::{IngestOutcome, Store, StoreOptions, Writer};
use anyhow::Context;
use chrono::Utc;
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Input format.
    #[arg(long, value_enum)]
    format: Format,
    /// Host name for events and ids: replaces the syslog host of Postfix
    /// logs; Exim logs name no host, so the machine's host name is the default.
    #[arg(long, value_name = "LABEL")]
    host: Option<String>,
    /// Database page cache for this import, in MiB, instead of
    /// `store.cache_mb`: a large import of many accounts runs faster with
    /// more (`cargo bench --bench import`, 1 GB Postfix log: 11–15 s at the
    /// default 8 MiB, 7.7–9.2 s at 32).
    #[arg(long, value_name = "MIB", value_parser = clap::value_parser!(u64).range(1..=65_536))]
    cache_mb: Option<u64>,
    /// Files to read; `-` is stdin; gzip is detected and decompressed.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

/// A store batch is applied once it holds this many distinct senders (each
/// a daily, an hourly and an index key) or this many events, whichever comes
/// first. sled keeps a copy of every node a batch rewrites until the batch
/// ends, so the keys a batch touches set its cost and memory, while events
/// of senders already in the batch cost almost nothing more. Measured with
/// fixed 2,000-event batches: a log where nearly every event is a new
/// sender imported 15-20 % faster with 250-event batches, while data with
/// few senders took a third longer with 500.
const BATCH_SENDERS: usize = 300;
const BATCH: usize = 20_000;
/// Batches between flushes: import needs durability at the end (and a
/// re-run counts nothing twice thanks to ids), not after every batch.
const FLUSH_EVERY: u32 = 64;
/// Batches parsed ahead of the store: enough to keep both stages busy,
/// few enough to keep memory flat.
const BATCHES_AHEAD: usize = 4;

#[derive(Default)]
struct Stats {
    batches: u32,
    lines: u64,
    events: u64,
    failed_logins: u64,
    outcome: IngestOutcome,
    /// New incidents, by kind.
    alerts: AlertCounts,
}

pub fn run(config: &Config, args: &ImportArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.store.data_dir).with_context(|| {
        format!(
            "cannot create data directory {}",
            config.store.data_dir.display()
        )
    })?;
    let mut options = StoreOptions::from_config(config);
    if let Some(mb) = args.cache_mb {
        options.cache_bytes = mb << 20;
    }
    let store = Store::open(&options)?;
    // Imported history trains the detectors like live traffic; their
    // alerts are logged (and mailed by the daemon if recent enough).
    let mut writer = Writer::open(store, &config.detect)?;
    let mut stats = Stats::default();
    // Parsing runs on a thread of its own, a few batches ahead of the
    // store: the two stages overlap on a machine with two cores.
    let (batches, ready) = std::sync::mpsc::sync_channel::<Vec<Event>>(BATCHES_AHEAD);
    let (read, stored) = std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            let mut skips = Skips::default();
            let read = read_batches(config, args, batches, &mut skips);
            (read, skips)
        });
        // A store failure ends the loop; the receiver is dropped with it,
        // which stops the reader at its next batch.
        let stored = ready
            .into_iter()
            .try_for_each(|batch| commit(&mut writer, batch, &mut stats));
        (reader.join(), stored)
    });
    let (read, skips) = read.map_err(|_| anyhow::anyhow!("the log reader failed"))?;
    stored?;
    stats.lines = read?;
    writer.store().flush().context("flushing the store")?;
    println!("{}", summary(&stats, &skips));
    Ok(())
}

/// Reads the files into batches (see [`BATCH_SENDERS`]) sent to `out`.
fn read_batches(
    config: &Config,
    args: &ImportArgs,
    out: std::sync::mpsc::SyncSender<Vec<Event>>,
    skips: &mut Skips,
) -> anyhow::Result<u64> {
    // Not sized for BATCH: most batches close at BATCH_SENDERS with far
    // fewer events, and a few batches are in flight at once.
    let mut batch: Vec<Event> = Vec::new();
    // Hashes of the batch's senders: counted without copying them.
    let hasher = std::hash::RandomState::new();
    let mut senders = std::collections::HashSet::new();
    let closed = || std::io::Error::other("the store stopped the import");
    let mut sink = |ev: Event| {
        senders.insert(std::hash::BuildHasher::hash_one(&hasher, &ev.sender));
        batch.push(ev);
        if batch.len() >= BATCH || senders.len() >= BATCH_SENDERS {
            senders.clear();
            let full = std::mem::take(&mut batch);
            out.send(full).map_err(|_| closed())?;
        }
        Ok(())
    };
    let lines = read_files(
        config,
        args.format,
        args.host.as_deref(),
        &args.files,
        &mut sink,
        skips,
    )?;
    if !batch.is_empty() {
        out.send(batch).map_err(|_| closed())?;
    }
    Ok(lines)
}

/// Applies one batch (flushing every [`FLUSH_EVERY`]); a store failure
/// stops the import.
fn commit(writer: &mut Writer, batch: Vec<Event>, stats: &mut Stats) -> anyhow::Result<()> {
    stats.batches += 1;
    stats.events += batch.len() as u64;
    stats.failed_logins += batch
        .iter()
        .filter(|e| e.result == Outcome::AuthFailed)
        .count() as u64;
    let outcomes = writer
        .apply(&[batch.as_slice()], &[], Utc::now())
        .context("storing imported events")?;
    if stats.batches % FLUSH_EVERY == 0 {
        writer.store().flush().context("storing imported events")?;
    }
    outcomes.iter().for_each(|o| stats.outcome.add(o));
    // New incidents, as `backtest` prints them.
    let raised = writer.take_raised();
    stats
        .alerts
        .add(raised.iter().filter(|a| a.status.is_firing()));
    Ok(())
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
    if s.alerts.total() > 0 {
        line.push_str(&format!(
            "\nalerts raised: {} (GET /api/v1/alerts lists them)",
            s.alerts.list()
        ));
    }
    line
}
