//! The shutdown signal: SIGINT or SIGTERM (what systemd sends on stop).

use std::future::Future;

/// Completes on the first SIGINT or SIGTERM received from the moment it
/// is called, not from its first poll: the daemon hands the future to a
/// task that polls it only once the services run, and a SIGTERM in
/// between (systemd stopping a daemon that is just starting) must still
/// stop it cleanly, not kill it with the socket files left behind. Call
/// it inside the runtime.
pub(crate) fn signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate())
            .inspect_err(|e| tracing::error!(error = %e, "cannot listen for SIGTERM"))
            .ok();
        let int = signal(SignalKind::interrupt())
            .inspect_err(|e| tracing::error!(error = %e, "cannot listen for SIGINT"))
            .ok();
        async move {
            let received = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => s.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = received(int) => tracing::info!("SIGINT received, shutting down"),
                _ = received(term) => tracing::info!("SIGTERM received, shutting down"),
            }
        }
    }
    #[cfg(not(unix))]
    async {
        if tokio::signal::ctrl_c().await.is_ok() {
            tracing::info!("SIGINT received, shutting down");
        } else {
            std::future::pending::<()>().await
        }
    }
}
