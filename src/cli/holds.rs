//! `holds` and `release`: the accounts the policy service contains, and
//! ending a containment, through the running daemon (or the store when
//! the daemon is stopped).

use super::ListFormat;
use super::access::{self, Access};
use crate::config::Config;
use crate::contain::Holds;
use anyhow::Context;
use clap::Args;
use serde_json::Value;
use std::io::Write;

#[derive(Debug, Args)]
pub(super) struct HoldsArgs {
    /// Also list containments that ended (released or expired).
    #[arg(long)]
    all: bool,
    #[arg(long, value_enum, default_value = "text")]
    format: ListFormat,
}

#[derive(Debug, Args)]
pub(super) struct ReleaseArgs {
    /// The account (SASL username) to let send again.
    sender: String,
}

/// The records, as the API shows them.
fn records(config: &Config) -> anyhow::Result<Vec<Value>> {
    match access::for_reading(config)? {
        Access::Local(store) => {
            let holds = Holds::open(&store, config.policy.containment(), None)?;
            let now = chrono::Utc::now().timestamp();
            Ok(holds
                .list()?
                .iter()
                .map(|(s, h)| crate::contain::view(s, h, now))
                .collect())
        }
        Access::Daemon(daemon) => daemon.holds(),
    }
}

pub(super) fn list(config: &Config, args: &HoldsArgs) -> anyhow::Result<()> {
    let records: Vec<Value> = records(config)?
        .into_iter()
        .filter(|h| args.all || h["in_force"] == true)
        .collect();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for h in &records {
        match args.format {
            ListFormat::Json => writeln!(out, "{h}")?,
            ListFormat::Text => writeln!(out, "{}", line(h))?,
        }
    }
    if records.is_empty() && matches!(args.format, ListFormat::Text) {
        writeln!(out, "no account is contained")?;
    }
    out.flush()?;
    Ok(())
}

/// `alice@example.com  since 2026-12-03T10:00:00Z  until ...  new_sender #12  held 5, deferred 0, rejected 0`
fn line(h: &Value) -> String {
    let state = match &h["released"] {
        Value::Null if h["in_force"] == true => format!("until {}", text(&h["until"])),
        Value::Null => format!("ended {}", text(&h["until"])),
        r => format!("released {} by {}", text(&r["at"]), text(&r["by"])),
    };
    // No number while the alert is being recorded.
    let seq = match h["alert"]["seq"].as_u64() {
        Some(seq) => format!(" #{seq}"),
        None => String::new(),
    };
    format!(
        "{}  since {}  {state}  {} alert{seq}  held {}, deferred {}, rejected {}, monitored {}",
        text(&h["sender"]),
        text(&h["since"]),
        text(&h["alert"]["kind"]),
        h["held"],
        h["deferred"],
        h["rejected"],
        h["monitored"],
    )
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

pub(super) fn release(config: &Config, args: &ReleaseArgs) -> anyhow::Result<()> {
    let by = format!("{} (command line)", whoami());
    let record = match access::for_reading(config)? {
        Access::Local(store) => {
            // The release mail waits in the queue until the daemon runs.
            let outbox = crate::outbox::Outbox::open(store.db())?;
            let notices = config.contain_notices(outbox)?;
            let holds = Holds::open(&store, config.policy.containment(), notices)?;
            let (sender, hold) = holds
                .release(&args.sender, &by)?
                .with_context(|| format!("{} is not contained", args.sender))?;
            crate::contain::view(&sender, &hold, chrono::Utc::now().timestamp())
        }
        Access::Daemon(daemon) => daemon.release(&args.sender, &by)?,
    };
    println!("released {}", text(&record["sender"]));
    Ok(())
}

/// The user running the command, for the record.
fn whoami() -> String {
    std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "root".to_owned())
}
