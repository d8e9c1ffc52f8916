//! SIGHUP: the configuration file is read again and, if it passes every
//! check, the parts that follow it start again with it (see `parts`).
//! A file that does not pass is logged and the running configuration
//! kept; what cannot change without a restart is named in the log.

use super::parts::{Parts, Shared};
use crate::config::Config;
use std::path::Path;
use tokio_util::sync::CancellationToken;

/// Sections read only at start-up, compared to say what a reload leaves
/// waiting for a restart.
fn restart_only(c: &Config) -> [(&'static str, String); 7] {
    [
        ("[store]", format!("{:?}", c.store)),
        ("[server]", format!("{:?}", c.server)),
        ("timezone", format!("{:?}", c.timezone)),
        ("[log]", format!("{:?}", c.log)),
        ("[report]", format!("{:?}", c.report)),
        ("detect.enabled", c.detect.enabled.to_string()),
        ("[policy]", format!("{:?}", c.policy)),
    ]
}

/// Reloads on every SIGHUP until `token` is cancelled; returns the parts
/// running then, for the shutdown to drain (none if they could not start
/// again, in which case the daemon is already shutting down).
pub(super) async fn run(
    mut hangups: tokio::signal::unix::Signal,
    mut config: Config,
    parts: Parts,
    shared: Shared,
    token: CancellationToken,
) -> Option<Parts> {
    let mut parts = parts;
    loop {
        tokio::select! {
            () = token.cancelled() => return Some(parts),
            got = hangups.recv() => if got.is_none() { return Some(parts) },
        }
        let Some(path) = config.source.clone() else {
            tracing::warn!(
                "SIGHUP: running on built-in defaults, no configuration file to read again"
            );
            continue;
        };
        let (running, new) = reload(&path, &config, parts, &shared, &token).await;
        parts = running?;
        if let Some(new) = new {
            config = new;
        }
    }
}

/// Reads `path`; on success stops `parts` and starts them again with it.
async fn reload(
    path: &Path,
    old: &Config,
    parts: Parts,
    shared: &Shared,
    token: &CancellationToken,
) -> (Option<Parts>, Option<Config>) {
    let loaded = {
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || Config::load(Some(&path))).await
    };
    let new = match loaded {
        Ok(Ok(new)) => new,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "SIGHUP: the configuration was not reloaded; the running one stays");
            return (Some(parts), None);
        }
        Err(e) => {
            tracing::error!(error = %e, "SIGHUP: reading the configuration failed");
            return (Some(parts), None);
        }
    };
    for ((section, before), (_, after)) in restart_only(old).iter().zip(restart_only(&new)) {
        if *before != after {
            tracing::warn!(section, "changed; takes effect at the next restart");
        }
    }
    if format!("{:?}", old.mail) != format!("{:?}", new.mail) {
        tracing::warn!(
            "[mail] changed: alert and scheduled mails use it now; the mail transport and \
             report orders through the API at the next restart"
        );
    }
    if let Err(e) = shared
        .ingester
        .reconfigure(std::sync::Arc::new(new.detect.clone()))
        .await
    {
        tracing::error!(error = %e, "SIGHUP: the detectors keep their thresholds");
    }
    parts.stop().await;
    match Parts::start(&new, shared, token).await {
        Ok(started) => {
            tracing::info!(
                path = %path.display(),
                sources = new.sources.len(),
                schedules = new.schedules.len(),
                alert_recipients = new.detect.recipients.len(),
                "configuration reloaded"
            );
            (Some(started), Some(new))
        }
        Err(e) => {
            // The file passed its checks but a part would not start (a log
            // file that cannot be opened, say): the old ones come back.
            tracing::error!(error = %e, "SIGHUP: the new configuration cannot run; keeping the running one");
            match Parts::start(old, shared, token).await {
                Ok(again) => (Some(again), None),
                Err(e) => {
                    tracing::error!(error = %e, "the running configuration cannot start again either; stopping");
                    token.cancel();
                    (None, None)
                }
            }
        }
    }
}
