//! The daemon: opens the store, starts the writer, the retention purge and
//! the HTTP API, tells systemd it is ready, and shuts down cleanly.

use crate::config::Config;
use crate::ingest::Ingester;
use crate::metrics::Metrics;
use crate::notify::MailTransport;
use crate::notify::outbox::Outbox;
use crate::report::templates::Templates;
use crate::server::{self, AppState, RateLimit};
use crate::source::tail::Follower;
use crate::store::{Store, Writer};
use crate::token;
use anyhow::Context;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;

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
) -> anyhow::Result<()> {
    let config = Arc::new(config);
    let data_dir = &config.store.data_dir;
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
    let token = token::api_token(&config)?;
    let opts = config.store_options();
    let store = tokio::task::spawn_blocking(move || Store::open(&opts)).await??;
    let templates = Arc::new(Templates::load(config.report.templates_dir.as_deref())?);
    let outbox = Outbox::open(store.db())?;
    let transport =
        MailTransport::from_config(&config.mail, data_dir).map_err(anyhow::Error::msg)?;
    let mailer = tokio::spawn(outbox.clone().run(transport, config.mail.retry()));
    let metrics = Arc::new(Metrics::default());
    let writer = {
        let (store, config) = (store.clone(), config.clone());
        tokio::task::spawn_blocking(move || Writer::open(store, &config.detect)).await??
    };
    let (ingester, writer) = Ingester::spawn(writer, metrics.clone());
    let writer_handle = ingester.clone();
    let scheduler = crate::schedule::start(crate::schedule::runner::Context {
        config: config.clone(),
        store: store.clone(),
        templates: templates.clone(),
        outbox: outbox.clone(),
        ingester: ingester.clone(),
    })
    .await?;
    let purger = tokio::spawn(purge_loop(ingester.clone()));
    let ticker = tokio::spawn(tick_loop(ingester.clone()));
    let alerter = tokio::spawn(
        crate::notify::alerts::Notifier::new(
            config.clone(),
            store.clone(),
            outbox.clone(),
            templates.clone(),
        )?
        .run(),
    );
    let stop_followers = Arc::new(AtomicBool::new(false));
    let followers = start_followers(&config, &store, &ingester, &stop_followers)?;
    let state = AppState {
        config: config.clone(),
        store,
        ingester,
        metrics,
        token: token.into(),
        templates,
        outbox,
        report_limit: Arc::new(RateLimit::new(config.server.report_requests_per_hour)),
        sessions: Arc::default(),
        dashboard: Arc::new(crate::server::dashboard::DashTemplates::new()?),
    };
    let addr = listener.local_addr()?;
    tracing::info!(address = %addr, data_dir = %data_dir.display(), "listening");
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    let watchdog = tokio::spawn(watchdog_loop());

    server::run(listener, state, shutdown).await?;

    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    watchdog.abort();
    mailer.abort();
    if let Some(mut s) = scheduler {
        let _ = s.shutdown().await;
    }
    alerter.abort();
    ticker.abort();
    let _ = ticker.await;
    purger.abort();
    let _ = purger.await;
    stop_followers.store(true, Ordering::Relaxed);
    tokio::task::spawn_blocking(move || {
        for f in followers {
            let _ = f.join();
        }
    })
    .await?;
    // The writer folds what it acknowledged, flushes and exits.
    writer_handle.stop().await;
    tokio::task::spawn_blocking(move || writer.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the store writer panicked"))?;
    tracing::info!("stopped; everything acknowledged is on disk");
    Ok(())
}

/// One thread per `[[sources]]` entry, each committing through the writer.
fn start_followers(
    config: &Config,
    store: &Store,
    ingester: &Ingester,
    stop: &Arc<AtomicBool>,
) -> anyhow::Result<Vec<std::thread::JoinHandle<()>>> {
    let host = crate::source::local_host_name();
    let mut threads = Vec::new();
    for source in &config.sources {
        let follower = Follower::new(source.clone(), store.clone(), ingester.clone(), &host)
            .with_context(|| format!("cannot resume following {}", source.path.display()))?;
        let stop = stop.clone();
        threads.push(
            std::thread::Builder::new()
                .name("follow".into())
                .spawn(move || follower.run(stop))?,
        );
    }
    Ok(threads)
}

async fn purge_loop(ingester: Ingester) {
    let mut tick = tokio::time::interval(PURGE_EVERY);
    loop {
        tick.tick().await;
        match ingester.purge().await {
            Ok(stats) if stats.total() > 0 => {
                tracing::info!(?stats, "purged data older than the retention window")
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "retention purge failed"),
        }
    }
}

/// Advances the detectors to the wall clock, so that an incident resolves
/// when its account falls silent; gives freed memory back meanwhile.
async fn tick_loop(ingester: Ingester) {
    let mut tick = tokio::time::interval(TICK_EVERY);
    loop {
        tick.tick().await;
        if ingester.tick().await.is_err() {
            return;
        }
        let _ = tokio::task::spawn_blocking(crate::memory::release_freed).await;
    }
}

/// Pings systemd's watchdog at half its interval when `WatchdogSec=` is set.
async fn watchdog_loop() {
    let mut usec = 0;
    if !sd_notify::watchdog_enabled(false, &mut usec) || usec == 0 {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_micros(usec / 2));
    loop {
        tick.tick().await;
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
    }
}
