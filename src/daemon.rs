//! The daemon: opens the store, starts the writer, the retention purge and
//! the HTTP API, tells systemd it is ready, and shuts down cleanly.

use crate::config::Config;
use crate::ingest::Ingester;
use crate::metrics::Metrics;
use crate::server::{self, AppState};
use crate::store::{Store, StoreOptions};
use crate::token;
use anyhow::Context;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// How often old data is purged while running (also once at start-up).
const PURGE_EVERY: Duration = Duration::from_secs(3600);

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
    let opts = StoreOptions::from_config(&config);
    let store = tokio::task::spawn_blocking(move || Store::open(&opts)).await??;
    let (ingester, writer) = Ingester::spawn(store.clone());
    let purger = tokio::spawn(purge_loop(ingester.clone()));
    let state = AppState {
        config: config.clone(),
        store,
        ingester,
        metrics: Arc::new(Metrics::default()),
        token: token.into(),
    };
    let addr = listener.local_addr()?;
    tracing::info!(address = %addr, data_dir = %data_dir.display(), "listening");
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    let watchdog = tokio::spawn(watchdog_loop());

    server::run(listener, state, shutdown).await?;

    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    watchdog.abort();
    purger.abort();
    let _ = purger.await;
    // The writer exits once the last Ingester handle is gone, after flushing.
    tokio::task::spawn_blocking(move || writer.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the store writer panicked"))?;
    tracing::info!("stopped; everything acknowledged is on disk");
    Ok(())
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
