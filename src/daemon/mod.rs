//! The daemon: opens the store, starts the writer, the log followers, the
//! notifier, the mail queue, the schedules, the retention purge and the
//! HTTP side, tells systemd it is ready, and shuts down cleanly.
//!
//! Every loop is handed the same cancellation token. On SIGTERM the token
//! is cancelled and the daemon drains in order: the HTTP server finishes
//! its requests, the log followers commit what they read, the store writer
//! folds and flushes everything acknowledged, the notifier finishes its
//! pass and the mail queue its delivery. Nothing is aborted: a delivery cut
//! after the relay took the mail would send it twice after the restart.

mod parts;
mod reload;

use crate::config::Config;
use crate::ingest::Ingester;
use crate::metrics::Metrics;
use crate::outbox::{Outbox, Transport};
use crate::report::templates::Templates;
use crate::reports::mail::Mailer;
use crate::server::{self, AppState, RateLimit};
use crate::store::{Store, Writer};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Why the daemon could not start, or did not stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot create data directory {}: {source}", .path.display())]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Token(#[from] crate::server::token::TokenError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Templates(#[from] crate::report::templates::TemplateError),
    #[error("dashboard templates: {0}")]
    Dashboard(#[from] handlebars::TemplateError),
    #[error(transparent)]
    Outbox(#[from] crate::outbox::OutboxError),
    #[error(transparent)]
    Transport(#[from] crate::outbox::TransportError),
    #[error(transparent)]
    Notifier(#[from] crate::notify::NotifyError),
    #[error(transparent)]
    Schedules(#[from] crate::schedule::runner::StartError),
    #[error(transparent)]
    Contain(#[from] crate::contain::ContainError),
    #[error("detect.recipients: {0}")]
    Recipients(#[from] crate::outbox::RecipientError),
    #[error(transparent)]
    PolicyListen(#[from] crate::policy::ListenError),
    #[error("cannot resume following {path}: {source}")]
    Follow {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Users(String),
    #[error("a start-up task stopped: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("the store writer panicked")]
    WriterPanicked,
}

/// File in the data directory naming the address the API listens on.
pub(crate) const ADDRESS_FILE: &str = "listening";
/// File in the data directory naming the policy service's address.
pub(crate) const POLICY_ADDRESS_FILE: &str = "policy-listening";

/// How often old data is purged while running (also once at start-up).
const PURGE_EVERY: Duration = Duration::from_secs(600);

/// How often the detectors' clock follows the wall clock.
const TICK_EVERY: Duration = Duration::from_secs(30);

/// Runs until `shutdown` completes; returns once everything acknowledged is
/// on disk and the store is closed.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DaemonError> {
    let token = CancellationToken::new();
    // At once: SIGHUP's default action would end the process.
    let hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    crate::process::private_files();
    let data_dir = config.store.data_dir.clone();
    std::fs::create_dir_all(&data_dir).map_err(|source| DaemonError::DataDir {
        path: data_dir.clone(),
        source,
    })?;
    let api_token = server::token::api_token(config.server.token(), &data_dir)?;
    let opts = config.store_options();
    let store = tokio::task::spawn_blocking(move || Store::open(&opts)).await??;
    let templates = Arc::new(Templates::load(config.report.templates_dir.as_deref())?);
    let outbox = Outbox::open(store.db())?;
    let transport = Transport::from_config(&config.mail, &data_dir)?;
    let mail_queue = tokio::spawn(outbox.clone().run(
        transport,
        config.mail.retry(),
        token.clone(),
    ));
    let metrics = Arc::new(Metrics::default());
    let mut writer = {
        let (store, detect) = (store.clone(), config.detect.clone());
        tokio::task::spawn_blocking(move || Writer::open(store, &detect)).await??
    };
    // The accounts the policy service contains, when it runs; the writer
    // hands its gate the detectors' state of the accounts it answers for.
    let containment = match &config.policy.listen {
        Some(_) => Some(open_containment(&config, &store, &outbox, &token).await?),
        None => None,
    };
    if let Some(Containment {
        gate: Some((gate, _)),
        ..
    }) = &containment
    {
        writer.set_replicas(Box::new(gate.clone()));
    }
    let (ingester, writer) = Ingester::spawn(writer, metrics.clone())?;
    let mailer = Mailer::new(
        store.clone(),
        templates.clone(),
        outbox.clone(),
        Arc::new(config.mail.clone()),
        config.top_senders(),
    );
    let housekeeping = [
        tokio::spawn(purge_loop(ingester.clone(), token.clone())),
        tokio::spawn(tick_loop(ingester.clone(), token.clone())),
        read_ahead(&store, config.default_days(), &token),
    ];
    // The notifier's progress, read by `/metrics`.
    let progress = crate::notify::Progress::new(
        store.clone(),
        outbox.clone(),
        config.detect.webhooks.clone(),
    );
    let shared = parts::Shared {
        store: store.clone(),
        ingester: ingester.clone(),
        outbox: outbox.clone(),
        templates,
        progress: progress.clone(),
        metrics: metrics.clone(),
        holds: containment.as_ref().map(|c| c.holds.clone()),
    };
    let running = parts::Parts::start(&config, &shared, &token).await?;
    let mut settings = config.server_settings();
    settings.server.users = config
        .server
        .dashboard_users()
        .map_err(DaemonError::Users)?;
    let users = settings.server.users.clone();
    let login = tokio::task::spawn_blocking(move || {
        let guard = crate::server::dashboard::login::LoginGuard::new(&users);
        crate::process::release_freed();
        guard
    })
    .await?
    .map_err(DaemonError::Users)?;
    let holds = containment.as_ref().map(|c| c.holds.clone());
    let policy = match (&config.policy.listen, containment) {
        (Some(listen), Some(containment)) => {
            let parts = (&ingester, &metrics);
            Some(start_policy(&config, listen, containment, parts, &token).await?)
        }
        _ => None,
    };
    let state = AppState {
        holds,
        settings: Arc::new(settings),
        store: store.clone(),
        ingester: ingester.clone(),
        metrics,
        token: api_token.into(),
        mailer,
        alerts: progress,
        outbox,
        report_limit: Arc::new(RateLimit::per_hour(config.server.report_requests_per_hour)),
        sessions: Arc::default(),
        login: Arc::new(login),
        dashboard: Arc::new(crate::server::dashboard::DashTemplates::new()?),
    };
    let addr = listener.local_addr()?;
    // Where the command line finds the API while the store is ours (the
    // configured port may be 0, the address unspecified).
    write_address(&data_dir, ADDRESS_FILE, &addr.to_string())?;
    tracing::info!(address = %addr, data_dir = %data_dir.display(), "listening");
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    let watchdog = tokio::spawn(watchdog_loop(token.clone()));
    let signalled = token.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = shutdown => signalled.cancel(),
            () = signalled.cancelled() => {}
        }
    });

    let reloads = tokio::spawn(reload::run(hangups, config, running, shared, token.clone()));

    server::run(listener, state, token.clone().cancelled_owned()).await;
    token.cancel();
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    // The followers commit what they read and the schedules finish a run
    // under way while the writer still takes their counts.
    let notifier = match reloads.await {
        Ok(Some(parts)) => Some(parts.stop_inputs().await),
        Ok(None) => None,
        Err(e) => {
            tracing::error!(error = %e, "the reload task ended abnormally");
            None
        }
    };
    drain(housekeeping).await;
    // Its connections close and its queue drains into the writer.
    drain(policy).await;
    // The writer folds what it acknowledged, flushes and exits.
    ingester.stop().await;
    tokio::task::spawn_blocking(move || writer.join())
        .await?
        .map_err(|_| DaemonError::WriterPanicked)?;
    drain(notifier).await;
    drain([mail_queue, watchdog]).await;
    tracing::info!("stopped; everything acknowledged is on disk");
    Ok(())
}

/// Writes `addr` to file `name` in the data directory, atomically: where
/// the command line and tests find a port the system picked.
fn write_address(data_dir: &std::path::Path, name: &str, addr: &str) -> std::io::Result<()> {
    let tmp = data_dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, format!("{addr}\n"))
        .and_then(|()| std::fs::rename(&tmp, data_dir.join(name)))
}

/// The containments and, with the detectors on, the gate that contains
/// ahead of the alert log (with its helper thread).
struct Containment {
    holds: crate::contain::Holds,
    gate: Option<(crate::contain::Gate, std::thread::JoinHandle<()>)>,
}

/// Opens the containment records and, with the detectors on, the gate.
async fn open_containment(
    config: &Config,
    store: &Store,
    outbox: &Outbox,
    token: &CancellationToken,
) -> Result<Containment, DaemonError> {
    let (store, settings) = (store.clone(), config.policy.containment());
    let notices = config.contain_notices(outbox.clone())?;
    let detect = config
        .detect
        .enabled
        .then(|| Arc::new(config.detect.clone()));
    let token = token.clone();
    let opened = tokio::task::spawn_blocking(move || {
        let holds = crate::contain::Holds::open(&store, settings, notices)?;
        let gate = match detect {
            Some(cfg) => Some(crate::contain::start_gate(&holds, cfg, token)?),
            None => None,
        };
        Ok::<_, crate::contain::ContainError>(Containment { holds, gate })
    })
    .await??;
    Ok(opened)
}

/// Starts the policy service on `listen`: the task serves until `token`
/// is cancelled, then hands the last submissions over and saves the
/// containments' counts.
async fn start_policy(
    config: &Config,
    listen: &crate::policy::PolicyListen,
    containment: Containment,
    (ingester, metrics): (&Ingester, &Arc<Metrics>),
    token: &CancellationToken,
) -> Result<JoinHandle<()>, DaemonError> {
    let cfg = &config.policy;
    let (listener, group) =
        crate::policy::Listener::bind(listen, cfg.socket_group.as_deref()).await?;
    let addr = listener.address()?;
    write_address(&config.store.data_dir, POLICY_ADDRESS_FILE, &addr)?;
    tracing::info!(listen = %addr, host = %cfg.host, "policy service ready");
    if let Some(warning) = cfg.exposure() {
        tracing::warn!("{warning}");
    }
    let peers = cfg.peers(group);
    let Containment { holds, gate } = containment;
    let watcher = tokio::spawn(holds.clone().run(token.clone()));
    let (gate, helper) = gate.unzip();
    let (service, hand_over) =
        crate::policy::Service::new(cfg, ingester.clone(), metrics.clone(), (holds, gate));
    let limits = crate::policy::Limits {
        max_connections: cfg.max_connections,
        max_connections_per_peer: cfg.max_connections_per_peer.unwrap_or(cfg.max_connections),
        idle_timeout: Duration::from_secs(cfg.idle_timeout_seconds),
    };
    let token = token.clone();
    let task = tokio::spawn(async move {
        let handed = tokio::spawn(hand_over);
        crate::policy::run(listener, peers, service, limits, token).await;
        // Every handle of the queue is gone with the connections: the
        // hand-over ends once it is empty.
        drain([handed, watcher]).await;
        if let Some(helper) = helper
            && !matches!(
                tokio::task::spawn_blocking(move || helper.join()).await,
                Ok(Ok(()))
            )
        {
            tracing::error!("the containment helper thread ended abnormally");
        }
    });
    Ok(task)
}

/// Waits for `tasks` in order; a task that panicked is logged.
async fn drain(tasks: impl IntoIterator<Item = JoinHandle<()>>) {
    for task in tasks {
        if let Err(e) = task.await {
            tracing::error!(error = %e, "a task ended abnormally");
        }
    }
}

async fn purge_loop(ingester: Ingester, token: CancellationToken) {
    let mut tick = tokio::time::interval(PURGE_EVERY);
    loop {
        tokio::select! {
            () = token.cancelled() => return,
            _ = tick.tick() => {}
        }
        match ingester.purge().await {
            Ok(stats) if stats.total() > 0 => {
                tracing::info!(?stats, "purged data older than the retention window")
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "retention purge failed"),
        }
    }
}

/// Reads the totals the first reports after a start read in the
/// background (see the store's `totals`): the past periods in the
/// retention window, and the parts of periods that the default range and
/// the whole window begin and end in; then again every [`PURGE_EVERY`],
/// which reads only what a new day or an import left unread.
fn read_ahead(
    store: &Store,
    default_days: u32,
    token: &CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let (store, token) = (store.clone(), token.clone());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(PURGE_EVERY);
        let mut first = true;
        loop {
            tokio::select! {
                () = token.cancelled() => return,
                _ = tick.tick() => {}
            }
            let (store, stop) = (store.clone(), token.clone());
            let t = std::time::Instant::now();
            let read = tokio::task::spawn_blocking(move || {
                store.read_ahead(chrono::Utc::now(), &[default_days], || stop.is_cancelled())
            })
            .await;
            match read {
                Ok(Ok(periods)) if first || periods > 0 => tracing::info!(
                    periods,
                    seconds = t.elapsed().as_secs_f64(),
                    "periods' totals read ahead for reports"
                ),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "reading periods ahead for reports failed")
                }
                Err(e) => tracing::error!(error = %e, "reading periods ahead ended abnormally"),
            }
            first = false;
        }
    })
}

/// Advances the detectors to the wall clock, so that an incident resolves
/// when its account falls silent; gives freed memory back meanwhile.
async fn tick_loop(ingester: Ingester, token: CancellationToken) {
    let mut tick = tokio::time::interval(TICK_EVERY);
    loop {
        tokio::select! {
            () = token.cancelled() => return,
            _ = tick.tick() => {}
        }
        if ingester.tick().await.is_err() {
            return;
        }
        let _ = tokio::task::spawn_blocking(crate::process::release_freed).await;
    }
}

/// Pings systemd's watchdog at half its interval when `WatchdogSec=` is set.
async fn watchdog_loop(token: CancellationToken) {
    let mut usec = 0;
    if !sd_notify::watchdog_enabled(false, &mut usec) || usec == 0 {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_micros(usec / 2));
    loop {
        tokio::select! {
            () = token.cancelled() => return,
            _ = tick.tick() => {}
        }
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
    }
}
