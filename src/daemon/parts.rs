//! The parts of the daemon that follow the configuration file and start
//! again with it on SIGHUP: the log followers (`[[sources]]`), the
//! schedules (`[[schedules]]`) and the alert notifier (`[detect]`
//! recipients and webhooks); the detectors' thresholds are handed to the
//! store writer. The store, the HTTP side and the mail transport stay as
//! they are: a change to them is logged as needing a restart.

use super::DaemonError;
use crate::config::Config;
use crate::ingest::Ingester;
use crate::notify::{Notifier, Progress};
use crate::outbox::Outbox;
use crate::report::templates::Templates;
use crate::reports::mail::Mailer;
use crate::source::SourceKind;
use crate::source::journald::Journal;
use crate::source::tail::Follower;
use crate::store::Store;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// What every generation of parts is built from.
#[derive(Clone)]
pub(super) struct Shared {
    pub store: Store,
    pub(crate) ingester: Ingester,
    pub outbox: Outbox,
    pub templates: Arc<Templates>,
    /// The notifier's progress, shared with `/metrics`.
    pub(crate) progress: Progress,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The containments, when the policy service runs.
    pub(crate) holds: Option<crate::contain::Holds>,
}

/// One generation of parts, with its own token (a child of the daemon's).
pub(super) struct Parts {
    token: CancellationToken,
    followers: Vec<JoinHandle<()>>,
    scheduler: JoinHandle<()>,
    notifier: JoinHandle<()>,
}

impl Parts {
    pub(super) async fn start(
        config: &Config,
        shared: &Shared,
        parent: &CancellationToken,
    ) -> Result<Parts, DaemonError> {
        let token = parent.child_token();
        let mailer = Mailer::new(
            shared.store.clone(),
            shared.templates.clone(),
            shared.outbox.clone(),
            Arc::new(config.mail.clone()),
            config.top_senders(),
        );
        let scheduler = crate::schedule::start(
            crate::schedule::runner::Context {
                schedules: Arc::new(config.schedules.clone()),
                tz: config.timezone.0,
                store: shared.store.clone(),
                mailer,
                outbox: shared.outbox.clone(),
                ingester: shared.ingester.clone(),
            },
            token.clone(),
        )
        .await?;
        shared.progress.set_webhooks(config.detect.webhooks.clone());
        let notifier = Notifier::new(
            config.notifier_settings(),
            shared.store.clone(),
            shared.outbox.clone(),
            shared.templates.clone(),
            shared.progress.clone(),
            shared.holds.clone(),
        )?;
        let notifier = tokio::spawn(notifier.run(token.clone()));
        let followers = start_followers(config, shared, &token).await?;
        Ok(Parts {
            token,
            followers,
            scheduler,
            notifier,
        })
    }

    /// Stops the followers (each commits what it read) and the schedules
    /// (a run under way finishes); returns the notifier, still running
    /// its pass, for the caller to wait on when it suits.
    pub(super) async fn stop_inputs(self) -> JoinHandle<()> {
        self.token.cancel();
        super::drain(self.followers).await;
        super::drain([self.scheduler]).await;
        self.notifier
    }

    /// Stops everything and waits for it.
    pub(super) async fn stop(self) {
        let notifier = self.stop_inputs().await;
        super::drain([notifier]).await;
    }
}

/// One follower per `[[sources]]` entry (a log file or the journal), each
/// committing through the writer.
async fn start_followers(
    config: &Config,
    shared: &Shared,
    token: &CancellationToken,
) -> Result<Vec<JoinHandle<()>>, DaemonError> {
    let host = crate::source::local_host_name();
    let mut tasks = Vec::new();
    for source in config.sources.clone() {
        let path = source.name();
        let (store, ingester, host) = (shared.store.clone(), shared.ingester.clone(), host.clone());
        let metrics = shared.metrics.clone();
        let follow = |source| DaemonError::Follow { path, source };
        // Each reads its cursor from the store: a blocking read.
        let task = match source.kind {
            SourceKind::Journald => {
                let journal = tokio::task::spawn_blocking(move || {
                    Journal::new(source, &store, (ingester, metrics), &host)
                })
                .await?
                .map_err(follow)?;
                tokio::spawn(journal.run(token.clone()))
            }
            SourceKind::Postfix | SourceKind::Exim => {
                let follower = tokio::task::spawn_blocking(move || {
                    Follower::new(source, store, (ingester, metrics), &host)
                })
                .await?
                .map_err(follow)?;
                tokio::spawn(follower.run(token.clone()))
            }
        };
        tasks.push(task);
    }
    Ok(tasks)
}
