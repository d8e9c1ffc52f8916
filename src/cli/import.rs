//! `import`: load event files into the store without the HTTP side.

use super::read::{AlertCounts, Format, Skips, read_files};
use super::remote::Remote;
use crate::config::Config;
use crate::event::{Event, Outcome};
use crate::store::{Bulk, IngestOutcome, Store, StoreError, Writer};
use anyhow::Context;
use chrono::Utc;
use clap::Args;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, SyncSender};

#[derive(Debug, Args)]
pub(super) struct ImportArgs {
    /// Input format.
    #[arg(long, value_enum)]
    format: Format,
    /// Host name for events and ids: replaces the syslog host of Postfix
    /// logs; Exim logs name no host, so the machine's host name is the default.
    #[arg(long, value_name = "LABEL")]
    host: Option<String>,
    /// Database page cache for this import, in MiB [default: 2, whatever
    /// `store.cache_mb` says]. Imports write in key order and gain nothing
    /// from more.
    #[arg(long, value_name = "MIB", value_parser = clap::value_parser!(u64).range(1..=65_536))]
    cache_mb: Option<u64>,
    /// Files to read; `-` is stdin; gzip is detected and decompressed.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

/// The page cache of an import, in MiB, unless `--cache-mb` says
/// otherwise. On the import benchmark's 1 GB log, 2 against the daemon's
/// default 8 (and 4): the same time (4.2–4.6 s), ≈ 8 MiB less peak RSS.
const IMPORT_CACHE_MB: u64 = 2;

/// Events per batch handed from the parser to the store thread.
const BATCH: usize = 4_096;
/// Counts held in memory before they are written (see [`Bulk`]): the
/// larger, the fewer times an account's keys are rewritten. On the
/// benchmark's 1 GB log (30,000 accounts over four days), with an 8 MiB
/// page cache and the slower parser of the time: 8 MiB ≈ 4.7–5.3 s, 16 MiB
/// ≈ 4.5–4.7 s, with about the same peak RSS (runs vary by ±10 %). Then,
/// with per-account lists: 14 MiB against 16, five runs each, 2.33–2.85 s
/// against 2.27–2.92 s (best +3 %), peak 67–71 against 73–76 MiB; 36 days
/// of log (8 GB) 90–91 against 94–98 MiB. With 28 bytes per event held,
/// 12 MiB was about 450,000 events (786,000 at the 16 bytes of now); the
/// 1 GB log was written out twice with 12 or 14 MiB, in the same time
/// (2.11 s pinned to one core, best of three). 36 and 72 days of log (8
/// and 16 GB) peaked at 85.5 and 87.6 MiB with the detectors against
/// 90.5–94.9 and 89.9 MiB with 14 MiB: margin under the 100 MB an import
/// is to stay in. Since a floor of events per account applies only to
/// sites of many more accounts (see [`Bulk`]), the budget alone decides
/// for this log: 12 MiB took 11.06–14.10 s for 4 GB of log against
/// 8.69–11.89 s with the floor (six runs each, alternated), more
/// write-outs for about 5 MiB less than 16 MiB (80.1–83.2 MiB against
/// 84.8–87.9).
const BULK_BYTES: usize = 16 << 20;
/// Batches parsed ahead of the store: enough to keep both stages busy,
/// few enough to keep memory flat (a batch is about 1 MB; 2 instead of 4
/// took the import of 36 days of log from 96 to 95 MiB, within the 100 MB
/// the import is to stay under, in the same time).
const BATCHES_AHEAD: usize = 2;

#[derive(Default)]
struct Stats {
    lines: u64,
    events: u64,
    failed_logins: u64,
    outcome: IngestOutcome,
    /// New incidents, by kind.
    alerts: AlertCounts,
}

pub(super) fn run(config: &Config, args: &ImportArgs) -> anyhow::Result<()> {
    // The store this may create is as private as the daemon's.
    crate::process::private_files();
    std::fs::create_dir_all(&config.store.data_dir).with_context(|| {
        format!(
            "cannot create data directory {}",
            config.store.data_dir.display()
        )
    })?;
    let mut options = config.store_options();
    options.cache_bytes = args.cache_mb.unwrap_or(IMPORT_CACHE_MB) << 20;
    let store = match Store::open(&options) {
        Ok(store) => store,
        // The daemon holds the store: hand it the events.
        Err(StoreError::Locked(_)) => return through_daemon(config, args),
        Err(e) => return Err(e.into()),
    };
    // Imported history trains the detectors like live traffic; their
    // alerts are logged (and mailed by the daemon if recent enough).
    let mut writer = Writer::open(store, &config.detect)?;
    // The detectors run beside the store thread (see the writer's `ahead`).
    writer
        .detect_ahead()
        .context("starting the detectors' thread")?;
    // With a core for it, a large site's write-outs run behind the store
    // thread (pinned to one core, the import works as before).
    writer.write_behind(std::thread::available_parallelism().is_ok_and(|n| n.get() > 1));
    let mut stats = Stats::default();
    // Parsing runs on a thread of its own, a few batches ahead of the
    // store: the two stages overlap on a machine with two cores.
    let (batches, ready) = std::sync::mpsc::sync_channel::<Vec<Event>>(BATCHES_AHEAD);
    let (spent, recycled) = std::sync::mpsc::channel::<Vec<Event>>();
    let (read, stored) = std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            let mut skips = Skips::default();
            let read = read_batches(config, args, (batches, recycled), &mut skips);
            (read, skips)
        });
        // A store failure ends the loop; the receiver is dropped with it,
        // which stops the reader at its next batch.
        let mut bulk = Bulk::with_budget(BULK_BYTES);
        let mut used = Used::new(spent);
        let stored = ready
            .into_iter()
            .try_for_each(|batch| {
                let batch = Arc::new(batch);
                load(&mut writer, &mut bulk, batch.clone(), &mut stats)?;
                used.push(batch);
                Ok(())
            })
            .and_then(|()| write(&mut writer, &mut bulk, &mut stats));
        (reader.join(), stored)
    });
    let (read, skips) = read.map_err(|_| anyhow::anyhow!("the log reader failed"))?;
    stored?;
    stats.lines = read?;
    writer.store().flush().context("flushing the store")?;
    println!("{}", summary(&stats, &skips));
    Ok(())
}

/// Largest request body posted to a running daemon: half its limit, at
/// most 1 MiB (a request is stored atomically; smaller ones keep the
/// daemon's memory low and its answers quick).
fn body_limit(config: &Config) -> usize {
    (config.server.max_body_bytes / 2).clamp(1024, 1 << 20)
}

/// `import` while the daemon runs: the same parsing, the events posted to
/// its API in NDJSON batches; the daemon counts them (ids keep anything
/// posted twice from counting twice) and runs the detectors.
fn through_daemon(config: &Config, args: &ImportArgs) -> anyhow::Result<()> {
    let daemon = Remote::connect(config)?;
    let limit = body_limit(config);
    let mut stats = Stats::default();
    let mut skips = Skips::default();
    let mut body: Vec<u8> = Vec::with_capacity(limit + 4096);
    let post = |body: &mut Vec<u8>, stats: &mut Stats| -> std::io::Result<()> {
        if body.is_empty() {
            return Ok(());
        }
        let answer = daemon
            .post_events(std::mem::take(body))
            .map_err(|e| std::io::Error::other(format!("{e:#}")))?;
        stats.outcome.add(&answer);
        Ok(())
    };
    let read = read_files(
        config,
        args.format,
        args.host.as_deref(),
        &args.files,
        &mut |ev| {
            stats.events += 1;
            stats.failed_logins += u64::from(ev.result == Outcome::AuthFailed);
            serde_json::to_writer(&mut body, &ev)?;
            body.push(b'\n');
            if body.len() >= limit {
                post(&mut body, &mut stats)?;
            }
            Ok(())
        },
        &mut skips,
    );
    stats.lines = read?;
    post(&mut body, &mut stats)?;
    println!(
        "{}\nposted to the running daemon, which raises and mails the alerts (smtp-auth-insight alerts lists them)",
        summary(&stats, &skips)
    );
    Ok(())
}

/// Batches of events stored and observed, handed back to the thread that
/// made them, to be emptied and filled again there. Freed on the store's
/// or the detectors' thread, each event's strings went back to the
/// parser thread's memory arena by its slow path while the parser, which
/// never freed, took every allocation by its own slow path (the 1 GB log
/// pinned to one core: 2.36 s before, 2.23–2.32 s after).
struct Used {
    batches: VecDeque<Arc<Vec<Event>>>,
    back: Sender<Vec<Event>>,
}

impl Used {
    fn new(back: Sender<Vec<Event>>) -> Used {
        Used {
            batches: VecDeque::new(),
            back,
        }
    }

    /// Keeps `batch` until nothing else holds it, and hands back those
    /// that nothing else holds any more.
    fn push(&mut self, batch: Arc<Vec<Event>>) {
        self.batches.push_back(batch);
        while let Some(batch) = self.batches.pop_front() {
            match Arc::try_unwrap(batch) {
                // The reader may have ended: the batch is freed here.
                Ok(done) => drop(self.back.send(done)),
                Err(held) => {
                    self.batches.push_front(held);
                    break;
                }
            }
        }
    }
}

/// Reads the files into batches of [`BATCH`] events sent to `out.0`,
/// refilling those `out.1` hands back.
fn read_batches(
    config: &Config,
    args: &ImportArgs,
    (out, used): (SyncSender<Vec<Event>>, Receiver<Vec<Event>>),
    skips: &mut Skips,
) -> anyhow::Result<u64> {
    let mut batch: Vec<Event> = Vec::with_capacity(BATCH);
    let closed = || std::io::Error::other("the store stopped the import");
    let mut sink = |ev: Event| {
        batch.push(ev);
        if batch.len() >= BATCH {
            let next = match used.try_recv() {
                Ok(mut again) => {
                    again.clear();
                    again
                }
                Err(_) => Vec::with_capacity(BATCH),
            };
            let full = std::mem::replace(&mut batch, next);
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

/// Counts one batch into `bulk` (written out as it fills); a store failure
/// stops the import.
fn load(
    writer: &mut Writer,
    bulk: &mut Bulk,
    batch: Arc<Vec<Event>>,
    stats: &mut Stats,
) -> anyhow::Result<()> {
    stats.events += batch.len() as u64;
    stats.failed_logins += batch
        .iter()
        .filter(|e| e.result == Outcome::AuthFailed)
        .count() as u64;
    let outcome = writer
        .load(bulk, batch, Utc::now())
        .context("storing imported events")?;
    stats.outcome.add(&outcome);
    count_alerts(writer, stats);
    Ok(())
}

/// Writes what `bulk` still holds.
fn write(writer: &mut Writer, bulk: &mut Bulk, stats: &mut Stats) -> anyhow::Result<()> {
    // Nothing is observed after the last batch: the detectors' memory
    // goes before the write-out that follows.
    writer.stop_detecting();
    writer
        .write_bulk(bulk, Utc::now())
        .context("storing imported events")?;
    count_alerts(writer, stats);
    Ok(())
}

/// Counts the new incidents committed, as `backtest` prints them.
fn count_alerts(writer: &mut Writer, stats: &mut Stats) {
    let raised = writer.take_raised();
    stats
        .alerts
        .add(raised.iter().filter(|a| a.status.is_firing()));
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
