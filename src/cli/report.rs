//! `report`: build a report from the store and print it or write it.

use crate::config::Config;
use crate::report::{self, ReportRequest, render};
use crate::store::{Store, StoreOptions};
use anyhow::Context;
use chrono::Utc;
use clap::{Args, ValueEnum};
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// First day (YYYY-MM-DD, inclusive); default: the last report.default_days days.
    #[arg(long)]
    start: Option<String>,
    /// Last day (YYYY-MM-DD, inclusive); default: today.
    #[arg(long)]
    end: Option<String>,
    /// Only senders of this domain; `(none)` for identities without one.
    #[arg(long)]
    domain: Option<String>,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Write to this file (atomically) instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Json,
    Csv,
    Text,
}

pub fn run(config: &Config, args: &ReportArgs) -> anyhow::Result<()> {
    let store = Store::open(&StoreOptions::from_config(config))?;
    let request = ReportRequest {
        start: args.start.clone(),
        end: args.end.clone(),
        domain: args.domain.clone(),
    };
    let report = report::build(&store, &request, config.default_days(), Utc::now())?;
    let body = match args.format {
        Format::Json => serde_json::to_string_pretty(&report)? + "\n",
        Format::Csv => render::csv(&report),
        Format::Text => render::text(&report),
    };
    match &args.out {
        None => std::io::stdout().write_all(body.as_bytes())?,
        Some(path) => write_atomically(path, body.as_bytes())?,
    }
    Ok(())
}

/// Writes through a temporary file and a rename, so a reader never sees half
/// a report and a failed write leaves the old file intact.
fn write_atomically(path: &PathBuf, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let name = path.file_name().context("--out needs a file name")?;
    let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    let mut file =
        std::fs::File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
