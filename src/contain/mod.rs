//! Containment: the accounts whose submissions the policy service holds,
//! defers or rejects because an alert says they look compromised.
//!
//! A watcher reads the alert log after its progress mark, once a second: a
//! firing alert of a configured kind contains its account (unless it is in
//! `never_hold`) until an administrator releases it or `hold_hours` pass.
//! Each new containment is written together with the mark, in one batch
//! of the `holds` tree, so a restart or `kill -9` neither forgets nor
//! repeats one; a release is flushed before it is confirmed.
//! The counts of messages held, deferred and rejected are kept in memory
//! (the policy service's answers never wait for the disk) and saved with
//! the next pass: a crash loses at most a second of them.

mod hold;
mod notice;

pub use hold::{Action, Hold, Released, view};
pub use notice::Notices;

use crate::detect::AlertKind;
use crate::store::{Store, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the alert log is looked at.
const POLL: Duration = Duration::from_secs(1);
/// Alerts read per pass.
const BATCH: usize = 500;
/// The tree; its key [`PROGRESS`] is the last alert sequence number read,
/// the others are `hold:` and the account.
const TREE: &str = "holds";
const PROGRESS: &[u8] = b"progress";
const PREFIX: &str = "hold:";

/// What contains an account, from `[policy]`.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Alert kinds that contain their account.
    pub kinds: Vec<AlertKind>,
    /// Accounts, and `@domain`s, never contained.
    pub never_hold: Vec<String>,
    /// Hours a containment lasts unless released earlier.
    pub hold_hours: u32,
}

impl Settings {
    /// Whether `sender` may never be contained.
    fn exempt(&self, sender: &str) -> bool {
        self.never_hold.iter().any(|n| match n.strip_prefix('@') {
            Some(domain) => sender
                .rsplit_once('@')
                .is_some_and(|(_, d)| d.eq_ignore_ascii_case(domain)),
            None => n.eq_ignore_ascii_case(sender),
        })
    }
}

/// Why a containment call failed.
#[derive(Debug, thiserror::Error)]
pub enum ContainError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the containment records: {0}")]
    Sled(#[from] sled::Error),
    #[error("a containment record does not read back: {0}")]
    Json(#[from] serde_json::Error),
    #[error("not an account name: {0}")]
    Name(#[from] crate::event::FieldError),
    #[error("the containment mail: {0}")]
    Mail(#[from] lettre::error::Error),
    #[error(transparent)]
    Outbox(#[from] crate::outbox::OutboxError),
}

/// The containments. Cheap to clone.
#[derive(Clone)]
pub struct Holds {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    tree: sled::Tree,
    settings: Settings,
    /// Mails about containments, when there are recipients.
    notices: Option<Notices>,
    /// Every containment not yet released and not expired, and those
    /// released or expired whose counts have not been saved.
    active: RwLock<HashMap<String, Hold>>,
}

impl Holds {
    /// Opens the records in `store`'s database; loads the containments
    /// still in force.
    pub fn open(
        store: &Store,
        settings: Settings,
        notices: Option<Notices>,
    ) -> Result<Holds, ContainError> {
        let tree = store.db().open_tree(TREE)?;
        let now = chrono::Utc::now().timestamp();
        let mut active = HashMap::new();
        for item in tree.scan_prefix(PREFIX) {
            let (k, v) = item?;
            let hold: Hold = serde_json::from_slice(&v)?;
            if hold.in_force(now) {
                let sender = String::from_utf8_lossy(&k[PREFIX.len()..]).into_owned();
                active.insert(sender, hold);
            }
        }
        Ok(Holds {
            inner: Arc::new(Inner {
                store: store.clone(),
                tree,
                settings,
                notices,
                active: RwLock::new(active),
            }),
        })
    }

    /// The containment of `sender` in force at Unix second `now`, if any;
    /// counts `action` for it. Memory only: the policy service's answer.
    pub fn check(&self, sender: &str, now: i64, action: Action) -> Option<Hold> {
        {
            let active = self.inner.active.read().unwrap_or_else(|p| p.into_inner());
            if active.is_empty() || !active.get(sender).is_some_and(|h| h.in_force(now)) {
                return None;
            }
        }
        let mut active = self.inner.active.write().unwrap_or_else(|p| p.into_inner());
        let hold = active.get_mut(sender).filter(|h| h.in_force(now))?;
        hold.count(action);
        Some(hold.clone())
    }

    /// Every containment on record, newest first (sled reads: call it
    /// from a blocking thread). Those in memory carry counts not saved yet.
    pub fn list(&self) -> Result<Vec<(String, Hold)>, ContainError> {
        let mut all = Vec::new();
        for item in self.inner.tree.scan_prefix(PREFIX) {
            let (k, v) = item?;
            let sender = String::from_utf8_lossy(&k[PREFIX.len()..]).into_owned();
            let hold = self.current(&sender, serde_json::from_slice(&v)?);
            all.push((sender, hold));
        }
        all.sort_by_key(|h| std::cmp::Reverse(h.1.since));
        Ok(all)
    }

    /// `sender`'s latest containment record, if any (blocking).
    pub fn of(&self, sender: &str) -> Result<Option<Hold>, ContainError> {
        match self.inner.tree.get(key(sender))? {
            Some(v) => Ok(Some(self.current(sender, serde_json::from_slice(&v)?))),
            None => Ok(None),
        }
    }

    /// The record in memory when `sender`'s containment is held there
    /// (its counts may be newer than the disk's), else `stored`.
    fn current(&self, sender: &str, stored: Hold) -> Hold {
        let active = self.inner.active.read().unwrap_or_else(|p| p.into_inner());
        match active.get(sender) {
            Some(h) if h.since == stored.since => h.clone(),
            _ => stored,
        }
    }

    /// Releases `sender`'s containment, recording `by`; the account and
    /// its record as released, or None when it was not contained. Durable when
    /// it returns (blocking: call it from a blocking thread).
    /// `sender` is normalized as events' accounts are (`Alice@Example.com`
    /// is `alice@example.com`).
    pub fn release(&self, sender: &str, by: &str) -> Result<Option<(String, Hold)>, ContainError> {
        let sender = crate::event::normalize_sender(sender)?;
        let sender = sender.as_str();
        let now = chrono::Utc::now().timestamp();
        let mut active = self.inner.active.write().unwrap_or_else(|p| p.into_inner());
        let Some(mut hold) = active.get(sender).filter(|h| h.in_force(now)).cloned() else {
            return Ok(None);
        };
        hold.released = Some(Released {
            by: by.to_owned(),
            at: now,
        });
        self.inner
            .tree
            .insert(key(sender), serde_json::to_vec(&hold)?)?;
        self.inner.tree.flush()?;
        active.remove(sender);
        drop(active);
        tracing::warn!(sender, by, "containment released");
        if let Some(n) = &self.inner.notices {
            n.released(sender, &hold)?;
        }
        Ok(Some((sender.to_owned(), hold)))
    }

    /// One look at the alert log: contains the accounts of new alerts,
    /// saves the counts; returns the new containments (blocking).
    pub fn pass(&self) -> Result<Vec<(String, Hold)>, ContainError> {
        let tree = &self.inner.tree;
        let from = tree
            .get(PROGRESS)?
            .and_then(|v| std::str::from_utf8(&v).ok()?.parse().ok())
            .unwrap_or(0);
        let records = self.inner.store.alerts_after(from, BATCH)?;
        let Some(last) = records.last().map(|r| r.seq) else {
            self.save_counts()?;
            return Ok(Vec::new());
        };
        let now = chrono::Utc::now().timestamp();
        let settings = &self.inner.settings;
        let mut new = Vec::new();
        {
            let active = self.inner.active.read().unwrap_or_else(|p| p.into_inner());
            for r in &records {
                let a = &r.alert;
                let until = a.at.timestamp() + i64::from(settings.hold_hours) * 3600;
                if !a.status.is_firing()
                    || !settings.kinds.contains(&a.kind)
                    || settings.exempt(&a.sender)
                    || until <= now
                    || active.get(&a.sender).is_some_and(|h| h.in_force(now))
                    || new.iter().any(|(s, _)| s == &a.sender)
                {
                    continue;
                }
                new.push((a.sender.clone(), Hold::new(r, now, settings.hold_hours)));
            }
        }
        let mut batch = sled::Batch::default();
        for (sender, hold) in &new {
            batch.insert(key(sender), serde_json::to_vec(hold)?);
        }
        batch.insert(PROGRESS, last.to_string().as_bytes());
        // Records and memory change under one lock: a release in between
        // would find the record on disk but not the containment in force.
        // The flush comes after (a crash before it loses the mark too, so
        // the alerts are read again).
        let mut active = self.inner.active.write().unwrap_or_else(|p| p.into_inner());
        tree.apply_batch(batch)?;
        for (sender, hold) in &new {
            tracing::warn!(
                sender,
                kind = hold.kind.name(),
                why = hold.why,
                "account contained"
            );
            active.insert(sender.clone(), hold.clone());
        }
        drop(active);
        tree.flush()?;
        // After the records are durable: a crash in between loses a mail,
        // never repeats one.
        if let Some(n) = &self.inner.notices {
            for (sender, hold) in &new {
                n.contained(sender, hold)?;
            }
        }
        self.save_counts()?;
        Ok(new)
    }

    /// Writes the counts that changed since the last save; forgets the
    /// containments no longer in force.
    fn save_counts(&self) -> Result<(), ContainError> {
        let now = chrono::Utc::now().timestamp();
        let mut active = self.inner.active.write().unwrap_or_else(|p| p.into_inner());
        let mut batch = sled::Batch::default();
        let mut any = false;
        for (sender, hold) in active.iter_mut().filter(|(_, h)| h.unsaved) {
            hold.unsaved = false;
            batch.insert(key(sender), serde_json::to_vec(&*hold)?);
            any = true;
        }
        active.retain(|_, h| h.in_force(now));
        drop(active);
        if any {
            self.inner.tree.apply_batch(batch)?;
        }
        Ok(())
    }

    /// Watches the alert log until `shutdown`, then saves the counts.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            let holds = self.clone();
            match tokio::task::spawn_blocking(move || holds.pass()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "containment: cannot read the alert log"),
                Err(e) => tracing::error!(error = %e, "containment: the pass ended abnormally"),
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(POLL) => {}
            }
        }
        let holds = self.clone();
        let saved = tokio::task::spawn_blocking(move || {
            holds.save_counts()?;
            holds.inner.tree.flush()?;
            Ok::<_, ContainError>(())
        })
        .await;
        if !matches!(saved, Ok(Ok(()))) {
            tracing::error!("containment: the last counts were not saved");
        }
    }
}

fn key(sender: &str) -> Vec<u8> {
    [PREFIX.as_bytes(), sender.as_bytes()].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_hold_names_accounts_and_whole_domains_in_any_case() {
        let s = Settings {
            kinds: vec![AlertKind::VolumeSpike],
            never_hold: vec!["Monitor@Example.com".into(), "@Tickets.Example.com".into()],
            hold_hours: 1,
        };
        assert!(s.exempt("monitor@example.com"));
        assert!(s.exempt("bot@tickets.example.com"));
        assert!(!s.exempt("bot@sub.tickets.example.com.evil"));
        assert!(!s.exempt("alice@example.com"));
        assert!(
            !s.exempt("tickets.example.com"),
            "a domain entry needs an @ before it"
        );
    }
}
