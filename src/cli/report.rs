//! `report`: build a report from the store (or ask the running daemon for
//! it) and print it, write it or mail it.

use super::access::{self, Access};
use crate::config::Config;
use crate::outbox::Transport;
use crate::report::templates::Templates;
use crate::report::view::Charts;
use crate::report::{Report, ReportRequest, chart, render};
use crate::reports::{self, mail as mailer};
use anyhow::Context;
use chrono::Utc;
use clap::{Args, ValueEnum};
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub(super) struct ReportArgs {
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
    /// Mail the report (HTML and text, CSV attached) instead of printing it.
    /// Through a running daemon the mail is queued, and the command says
    /// its request id; without a daemon it is sent at once.
    #[arg(long, requires = "to")]
    send: bool,
    /// With --send through a running daemon: wait until the mail is sent,
    /// or the daemon gives up on it.
    #[arg(long, requires = "send")]
    wait: bool,
    /// Recipients; each must be allowed by mail.allowed_recipients.
    #[arg(long, value_name = "ADDR", num_args = 1..)]
    to: Vec<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Json,
    Csv,
    Html,
    Text,
}

pub(super) fn run(config: &Config, args: &ReportArgs) -> anyhow::Result<()> {
    let request = ReportRequest {
        start: args.start.clone(),
        end: args.end.clone(),
        domain: args.domain.clone(),
    };
    let report = match access::for_reading(config)? {
        Access::Local(store) => {
            // Events the daemon acknowledged before it stopped count too.
            crate::store::Writer::open(store.clone(), &config.detect)?;
            reports::build(&store, &request, config.default_days(), Utc::now())?
        }
        Access::Daemon(daemon) if args.send => {
            // The daemon mails it through its queue and relay.
            let id = daemon.mail_report(&request, &args.to)?;
            let to = args.to.join(", ");
            if !args.wait {
                println!(
                    "report to {to} queued as {id} by the running daemon \
                     (GET /api/v1/reports/{id}, or --wait, says when it is sent)"
                );
                return Ok(());
            }
            daemon.wait_sent(&id)?;
            println!("report sent to {to} (by the running daemon, request {id})");
            return Ok(());
        }
        Access::Daemon(daemon) => daemon.report(&request)?,
    };
    let templates = Templates::load(config.report.templates_dir.as_deref())?;
    if args.send {
        return send(config, &report, &templates, &args.to);
    }
    let body = match args.format {
        Format::Json => serde_json::to_string_pretty(&report)? + "\n",
        Format::Csv => render::csv(&report),
        Format::Html => templates.html(&report, usize::MAX, embedded_charts(&report))?,
        Format::Text => render::text(&report),
    };
    match &args.out {
        None => std::io::stdout().write_all(body.as_bytes())?,
        Some(path) => write_atomically(path, body.as_bytes())?,
    }
    Ok(())
}

/// Charts as data URIs, so a written HTML file shows them on its own.
fn embedded_charts(report: &Report) -> Charts {
    use base64::Engine;
    let uri = |png: Vec<u8>| {
        format!(
            "data:image/png;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(png)
        )
    };
    Charts {
        volume: uri(chart::volume_png(report)),
        tls: uri(chart::tls_png(report)),
    }
}

/// Mails the report through the configured transport.
fn send(
    config: &Config,
    report: &Report,
    templates: &Templates,
    to: &[String],
) -> anyhow::Result<()> {
    let recipients = config.mail.check_recipients(to)?;
    let top = config.top_senders();
    let message = mailer::compose(templates, &config.mail, top, report, &recipients, None)?;
    let transport = Transport::from_config(&config.mail, &config.store.data_dir)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match runtime.block_on(transport.send(&message))? {
        Some(path) => println!("report written to {}", path.display()),
        None => println!("report sent to {}", to.join(", ")),
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
