//! How far behind the alert log the notifier is, for `/metrics`: alerts
//! logged but not yet handled by the alert mails (queued, or passed over
//! because they are not news or go to the daily digest) and by the
//! webhooks, and how many passes it has completed. A notifier that stops
//! keeping up shows here before anyone misses a mail.

use super::alerts::{MAILED, NotifyError, webhook_mark};
use crate::metrics::Backlog;
use crate::outbox::{Outbox, marks};
use crate::store::Store;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Reads the alert log's end and the notifier's marks.
#[derive(Clone)]
pub(crate) struct Progress {
    store: Store,
    outbox: Outbox,
    /// Shared by every clone: a reload sets the new list for all.
    webhooks: Arc<std::sync::RwLock<Vec<String>>>,
    /// Counted by the notifier.
    passes: Arc<AtomicU64>,
}

impl Progress {
    pub(crate) fn new(store: Store, outbox: Outbox, webhooks: Vec<String>) -> Progress {
        Progress {
            store,
            outbox,
            webhooks: Arc::new(std::sync::RwLock::new(webhooks)),
            passes: Arc::default(),
        }
    }

    /// The webhooks of a reloaded configuration.
    pub(crate) fn set_webhooks(&self, webhooks: Vec<String>) {
        *self.webhooks.write().unwrap_or_else(|p| p.into_inner()) = webhooks;
    }

    /// The notifier completed a pass.
    pub(super) fn passed(&self) {
        self.passes.fetch_add(1, Ordering::Relaxed);
    }

    /// The backlog now (sled reads: call it from a blocking thread).
    pub(crate) fn backlog(&self) -> Result<Backlog, NotifyError> {
        let last = self.store.last_alert_seq()?;
        let behind = |mark: &str| -> Result<u64, NotifyError> {
            let at = self.outbox.marks().get(&marks::progress(mark))?;
            Ok(last.saturating_sub(at.and_then(|v| v.parse().ok()).unwrap_or(0)))
        };
        let mut webhooks = 0;
        let urls = self
            .webhooks
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for url in &urls {
            webhooks = webhooks.max(behind(&webhook_mark(url))?);
        }
        Ok(Backlog {
            mail: behind(MAILED)?,
            webhooks,
            passes: self.passes.load(Ordering::Relaxed),
        })
    }
}
