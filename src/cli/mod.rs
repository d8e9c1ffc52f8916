//! The command line: `run`, `import`, `report`, `alerts`, `backtest`,
//! `check-config`, `hash-password`. While the daemon runs, `import`,
//! `report` and `alerts` go through its API (`remote`), since it holds
//! the store (`access`).

mod access;
mod alerts;
mod backtest;
mod holds;
mod import;
pub mod manual;
mod read;
mod remote;
mod report;
mod summary;

use crate::config::{CONFIG_ENV, Config, DEFAULT_CONFIG};
use anyhow::Context;
use clap::{FromArgMatches, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "smtp-auth-insight",
    version,
    about = "Who sends mail through SMTP AUTH, with which TLS, and whether an account looks compromised.",
    long_about = "Who sends mail through SMTP AUTH, with which TLS, and whether an account looks \
compromised. The daemon (run) follows Postfix and Exim logs or the systemd journal and takes \
events over HTTP, keeps per-sender statistics, alerts on volume spikes, new senders, \
failed-login bursts and legacy TLS, and mails reports; the other commands import, report and \
list alerts, through the running daemon when there is one."
)]
struct Cli {
    /// Configuration file (TOML). Default: /etc/smtp-auth-insight/config.toml
    /// when it exists, else built-in defaults.
    #[arg(long, global = true, env = CONFIG_ENV, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon: HTTP API, ingest, retention.
    Run,
    /// Load events from files into the store (through the daemon when it runs).
    Import(import::ImportArgs),
    /// Build a report from the store and print, write or mail it.
    Report(report::ReportArgs),
    /// List recent alerts, newest first.
    Alerts(alerts::AlertsArgs),
    /// Replay logs through the detectors and print the alerts they would raise.
    Backtest(backtest::BacktestArgs),
    /// List the accounts the policy service contains.
    Holds(holds::HoldsArgs),
    /// End an account's containment: the policy service lets it send again.
    Release(holds::ReleaseArgs),
    /// Validate the configuration and say exactly what is wrong and where.
    CheckConfig,
    /// Read a password on stdin and print its Argon2 hash for [[server.users]].
    HashPassword,
}

/// How the commands that list things (alerts, holds) print them.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ListFormat {
    /// One line per entry, for a person to read.
    Text,
    /// One JSON object per line, as the API lists them.
    Json,
}

/// The command line's definition, for the man page and the shell
/// completions the package installs (generated from it by the tests).
pub fn command() -> clap::Command {
    // Each command's --help ends with its examples, the same as its man page.
    let main = format!(
        "Configuration: the file named by --config or ${CONFIG_ENV}; without one, \
         {DEFAULT_CONFIG} when it exists; else built-in defaults. Every command names the one it \
         read on the first line of its standard error. man smtp-auth-insight.conf describes \
         every key.\n\n{}",
        manual::after_help("")
    );
    <Cli as clap::CommandFactory>::command()
        .after_long_help(main)
        .mut_subcommands(|sub| match manual::examples(sub.get_name()).is_empty() {
            true => sub,
            false => {
                let text = manual::after_help(sub.get_name());
                sub.after_long_help(text)
            }
        })
}

/// Entry point of the binary: one line on stderr and a non-zero status on error.
pub fn main() -> ExitCode {
    let cli = match Cli::from_arg_matches(&command().get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// Joins an error chain into one line ("context: cause: cause"), leaving
/// out a cause its context already quotes.
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain().map(|c| c.to_string()) {
        if line.contains(&cause) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&cause);
    }
    line.replace('\n', " ")
}

fn dispatch(cli: Cli) -> anyhow::Result<()> {
    let path = cli.config.or_else(|| {
        let installed = std::path::Path::new(DEFAULT_CONFIG);
        installed.exists().then(|| installed.to_owned())
    });
    let config = Config::load(path.as_deref())?;
    // Which file was read, first, whatever the command: a command run on a
    // server with the package installed reads its configuration (and so
    // its store), never silently.
    match &path {
        // An empty file (`--config /dev/null`) is the built-in defaults,
        // whatever is installed.
        Some(p) if std::fs::read(p).is_ok_and(|t| t.iter().all(u8::is_ascii_whitespace)) => {
            eprintln!("configuration: {} (empty: built-in defaults)", p.display())
        }
        Some(p) => eprintln!("configuration: {}", p.display()),
        None => eprintln!(
            "configuration: built-in defaults (no --config or ${CONFIG_ENV}, and no {DEFAULT_CONFIG})"
        ),
    }
    init_logging(&config);
    match cli.command {
        Command::Run => run(config),
        Command::Import(args) => import::run(&config, &args),
        Command::Report(args) => report::run(&config, &args),
        Command::Alerts(args) => alerts::run(&config, &args),
        Command::Holds(args) => holds::list(&config, &args),
        Command::Release(args) => holds::release(&config, &args),
        Command::Backtest(args) => backtest::run(&config, &args),
        Command::CheckConfig => check_config(&config),
        Command::HashPassword => hash_password(),
    }
}

fn init_logging(config: &Config) {
    // sled's own lines about a damaged store repeat, in its words, what
    // the store's error says with what to do: off unless asked for.
    let level = match config.log.level.contains("sled") {
        true => config.log.level.clone(),
        false => format!("{},sled=off", config.log.level),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

fn run(config: Config) -> anyhow::Result<()> {
    crate::process::few_arenas();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let addr = config.server.listen.0;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} (server.listen)"))?;
        crate::daemon::run(config, listener, crate::shutdown::signal()).await?;
        Ok(())
    })
}

fn hash_password() -> anyhow::Result<()> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("cannot read the password from stdin")?;
    let password = line.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        anyhow::bail!("no password on stdin (echo -n 'secret' | smtp-auth-insight hash-password)");
    }
    let hash =
        crate::server::dashboard::session::hash_password(password).map_err(anyhow::Error::msg)?;
    println!("{hash}");
    Ok(())
}

fn check_config(config: &Config) -> anyhow::Result<()> {
    // Everything `run` would refuse: secrets that cannot be read, templates
    // that do not compile or name a field that does not exist.
    config
        .mail
        .password()
        .resolve()
        .map_err(anyhow::Error::msg)?;
    crate::report::templates::Templates::load(config.report.templates_dir.as_deref())?;
    config
        .server
        .token()
        .resolve()
        .map_err(anyhow::Error::msg)?;
    config
        .server
        .dashboard_users()
        .map_err(anyhow::Error::msg)?;
    if let Some(group) = &config.policy.socket_group
        && crate::process::group_id(group).is_none()
    {
        anyhow::bail!("policy.socket_group: no group {group:?} on this system");
    }
    if let Some(warning) = config.policy.exposure() {
        eprintln!("warning: {warning}");
    }
    let from = config.source.as_ref().map_or_else(
        || "built-in defaults".to_owned(),
        |p| p.display().to_string(),
    );
    println!(
        "config OK ({from}): listen {}, data in {}, time zone {}, retention {} days",
        config.server.listen.0,
        config.store.data_dir.display(),
        config.timezone.name(),
        config.store.retention_days
    );
    print!("{}", summary::summary(config, chrono::Utc::now()));
    Ok(())
}
