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
    /// Then hand the queue ids of the messages it had put on hold to
    /// `postsuper -H -` (found on PATH; root only): Postfix sends them. Also
    /// for an account released earlier.
    #[arg(long, conflicts_with = "delete_held")]
    requeue: bool,
    /// Then hand them to `postsuper -d -` instead: Postfix deletes them.
    #[arg(long)]
    delete_held: bool,
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
        name(h),
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

/// What a record contains: its account, or its client address (after a
/// shared_ip alert, for every account).
fn name(h: &Value) -> &str {
    h["sender"]
        .as_str()
        .or(h["client_ip"].as_str())
        .unwrap_or("")
}

pub(super) fn release(config: &Config, args: &ReleaseArgs) -> anyhow::Result<()> {
    let by = format!("{} (command line)", whoami());
    let released = match access::for_reading(config)? {
        Access::Local(store) => {
            // The release mail waits in the queue until the daemon runs.
            let outbox = crate::outbox::Outbox::open(store.db())?;
            let notices = config.contain_notices(outbox)?;
            let holds = Holds::open(&store, config.policy.containment(), notices)?;
            holds.release(&args.sender, &by)?.map(|(sender, hold)| {
                crate::contain::view(&sender, &hold, chrono::Utc::now().timestamp())
            })
        }
        Access::Daemon(daemon) => daemon.release(&args.sender, &by)?,
    };
    let postsuper = match (args.requeue, args.delete_held) {
        (true, _) => Some(Postsuper::Requeue),
        (_, true) => Some(Postsuper::Delete),
        _ => None,
    };
    let record = match (released, postsuper) {
        (Some(record), _) => {
            println!("released {}", name(&record));
            record
        }
        // The commands the release printed work afterwards too.
        (None, Some(_)) => {
            let wanted = match args.sender.parse::<std::net::IpAddr>() {
                Ok(ip) => ip.to_canonical().to_string(),
                Err(_) => crate::event::normalize_sender(&args.sender)?,
            };
            let normalized = crate::event::normalize_sender(&args.sender).unwrap_or_default();
            records(config)?
                .into_iter()
                .find(|h| name(h) == wanted || h["sender"] == normalized.as_str())
                .with_context(|| format!("{} was never contained", args.sender))?
        }
        (None, None) => anyhow::bail!("{} is not contained", args.sender),
    };
    let ids: Vec<&str> = record["held_queue_ids"]
        .as_array()
        .map(|ids| ids.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let held = record["held"].as_u64().unwrap_or(0);
    let untracked = held.saturating_sub(ids.len() as u64);
    match postsuper {
        Some(p) => p.run(&ids)?,
        None if held > 0 => {
            let cli = config.cli_command();
            let quoted = crate::report::alert_view::shell_quote(name(&record));
            println!(
                "{held} messages it submitted while contained were put in Postfix's hold queue \
                 and stay there. To send them:\n    {cli} release {quoted} --requeue\n\
                 To delete them:\n    {cli} release {quoted} --delete-held"
            );
        }
        None => {}
    }
    if untracked > 0 {
        println!(
            "{untracked} held messages have no queue id on record (more than {} were held, \
             or Postfix sent none): find them with postqueue -j",
            crate::contain::MAX_HELD_IDS
        );
    }
    Ok(())
}

/// What `postsuper` does with the held messages.
#[derive(Debug, Clone, Copy)]
enum Postsuper {
    /// `postsuper -H -`: out of the hold queue, sent as usual.
    Requeue,
    /// `postsuper -d -`: deleted.
    Delete,
}

impl Postsuper {
    /// Runs `postsuper` with `ids` on its standard input, and says how
    /// many were handed over and what it answered.
    fn run(self, ids: &[&str]) -> anyhow::Result<()> {
        let flag = match self {
            Postsuper::Requeue => "-H",
            Postsuper::Delete => "-d",
        };
        if ids.is_empty() {
            println!("no held message to hand to postsuper {flag}");
            return Ok(());
        }
        let mut child = std::process::Command::new("postsuper")
            .args([flag, "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .context("cannot run postsuper (is Postfix installed, and postsuper on PATH?)")?;
        let mut input = ids.join("\n");
        input.push('\n');
        if let Some(mut stdin) = child.stdin.take() {
            // postsuper reads every id before it answers; a broken pipe
            // shows in its exit status below.
            let _ = stdin.write_all(input.as_bytes());
        }
        let out = child.wait_with_output().context("postsuper")?;
        let said = String::from_utf8_lossy(&out.stderr).trim().to_owned()
            + String::from_utf8_lossy(&out.stdout).trim();
        println!(
            "handed {} queue ids to postsuper {flag} -; postsuper said: {}",
            ids.len(),
            if said.is_empty() { "nothing" } else { &said }
        );
        anyhow::ensure!(
            out.status.success(),
            "postsuper {flag} failed ({}); it needs root",
            out.status
        );
        if let Postsuper::Requeue = self {
            deliver_now(ids)?;
        }
        Ok(())
    }
}

/// Most messages asked for one by one (`postqueue -i`); beyond, the whole
/// queue is flushed once (`postqueue -f`).
const ONE_BY_ONE: usize = 100;

/// `postsuper -H` moves held mail to the deferred queue, which Postfix
/// looks at again only after `queue_run_delay` (5 minutes by default):
/// asks for the released messages' delivery now.
fn deliver_now(ids: &[&str]) -> anyhow::Result<()> {
    let postqueue = |args: &[&str]| -> anyhow::Result<()> {
        let out = std::process::Command::new("postqueue")
            .args(args)
            .output()
            .context("cannot run postqueue (is it on PATH?)")?;
        anyhow::ensure!(
            out.status.success(),
            "postqueue {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(())
    };
    if ids.len() <= ONE_BY_ONE {
        for id in ids {
            postqueue(&["-i", id])?;
        }
        println!("asked postqueue -i to deliver each of them now");
    } else {
        postqueue(&["-f"])?;
        println!("asked postqueue -f to deliver the queue now");
    }
    Ok(())
}

/// The user running the command, for the record.
fn whoami() -> String {
    std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "root".to_owned())
}
