//! `backtest`: replay logs through the detectors, in event-time order, on
//! state kept in memory only (the store is not touched), and print every
//! alert the current configuration would have raised, one JSON per line.

use super::read::{AlertCounts, Format, Skips, read_files};
use crate::config::Config;
use crate::detect::{Alert, Detector, Fresh};
use crate::event::Event;
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Args)]
pub(super) struct BacktestArgs {
    /// Input format.
    #[arg(long, value_enum)]
    format: Format,
    /// Host name for events (as for `import`).
    #[arg(long, value_name = "LABEL")]
    host: Option<String>,
    /// Also print re-notifications and resolutions of volume incidents.
    #[arg(long)]
    all: bool,
    /// Learn from the first DAYS of the logs without printing their alerts.
    /// Replay starts with no history: every account is new at first, and
    /// busy ones raise new-sender alerts the live daemon (which knows them)
    /// would not.
    #[arg(long, value_name = "DAYS", default_value_t = 0)]
    learn_days: u32,
    /// Files to read; `-` is stdin; gzip is detected and decompressed.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

pub(super) fn run(config: &Config, args: &BacktestArgs) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let mut events: Vec<Event> = Vec::new();
    let mut skips = Skips::default();
    let lines = read_files(
        config,
        args.format,
        args.host.as_deref(),
        &args.files,
        &mut |ev| {
            events.push(ev);
            Ok(())
        },
        &mut skips,
    )?;
    // Several files (rotated logs, several hosts) interleave: event time is
    // the only order in which replay equals live. Stable, so equal stamps
    // keep their log order.
    events.sort_by_key(|e| e.ts);
    let mut cfg = config.detect.clone();
    cfg.enabled = true;
    let mut detector = Detector::new(Arc::new(cfg));
    let mut alerts: Vec<Alert> = Vec::new();
    for ev in &events {
        detector.observe(ev, &Fresh, &mut alerts);
        detector.sweep(None);
    }
    if let Some(last) = events.last() {
        detector.tick(last.ts.timestamp(), &mut alerts);
    }
    let learnt_until = events
        .first()
        .map(|e| e.ts + chrono::TimeDelta::days(i64::from(args.learn_days)));
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut counts = AlertCounts::default();
    let shown = alerts
        .iter()
        .filter(|a| args.all || a.status.is_firing())
        .filter(|a| learnt_until.is_none_or(|t| a.at >= t));
    for a in shown {
        serde_json::to_writer(&mut out, a)?;
        out.write_all(b"\n")?;
        counts.add([a]);
    }
    out.flush()?;
    let span = match (events.first(), events.last()) {
        (Some(a), Some(b)) => format!(" from {} to {}", a.ts, b.ts),
        _ => String::new(),
    };
    let skipped: u64 = skips.by_reason.values().sum();
    eprintln!(
        "replayed {} events{span} ({lines} lines, {skipped} skipped) in {:.2} s: {} alerts{}",
        events.len(),
        started.elapsed().as_secs_f64(),
        counts.total(),
        if counts.total() == 0 {
            String::new()
        } else {
            format!(" ({})", counts.list())
        }
    );
    Ok(())
}
