//! `alerts`: the alert log, newest first, from the store or from the
//! running daemon: one line per alert, or its JSON as the API gives it.

use super::ListFormat;
use super::access::{self, Access};
use crate::config::Config;
use crate::event::time::parse_since;
use crate::store::Recorded;
use anyhow::Context;
use chrono::Utc;
use clap::Args;
use std::io::Write;

#[derive(Debug, Args)]
pub(super) struct AlertsArgs {
    /// Alerts raised since this date (YYYY-MM-DD, from its start in the
    /// configured time zone) or RFC 3339 time; default: the last 7 days.
    #[arg(long)]
    since: Option<String>,
    /// Most alerts listed.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=1000))]
    limit: u64,
    #[arg(long, value_enum, default_value = "text")]
    format: ListFormat,
}

pub(super) fn run(config: &Config, args: &AlertsArgs) -> anyhow::Result<()> {
    let limit = args.limit as usize;
    let tz = config.timezone.0;
    let alerts = match access::for_reading(config)? {
        Access::Local(store) => {
            let since = match args.since.as_deref() {
                None => Utc::now() - chrono::TimeDelta::days(7),
                Some(s) => parse_since(s, tz).with_context(|| {
                    format!("--since {s:?} is neither a YYYY-MM-DD date nor an RFC 3339 time")
                })?,
            };
            // Events the daemon acknowledged before it stopped are detected too.
            crate::store::Writer::open(store.clone(), &config.detect)?;
            store.alerts_since(since, limit)?
        }
        Access::Daemon(daemon) => daemon.alerts(args.since.as_deref(), limit)?,
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for r in &alerts {
        match args.format {
            ListFormat::Json => {
                serde_json::to_writer(&mut out, r)?;
                writeln!(out)?;
            }
            ListFormat::Text => writeln!(out, "{}", line(r, tz))?,
        }
    }
    if alerts.is_empty() && matches!(args.format, ListFormat::Text) {
        writeln!(out, "no alerts")?;
    }
    out.flush()?;
    Ok(())
}

/// `2026-11-27 02:50 UTC  volume_spike  firing  alice@example.com  412 (expected 3.1)  detail`
fn line(r: &Recorded, tz: chrono_tz::Tz) -> String {
    let a = &r.alert;
    let numbers = if a.kind == crate::detect::AlertKind::LegacyTls {
        String::new()
    } else {
        format!("  {} (expected {:.1})", a.observed, a.expected)
    };
    format!(
        "{}  {}  {}  {}{numbers}  {}",
        a.at.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z"),
        a.kind.name(),
        a.status.name(),
        a.sender,
        a.detail
    )
}
