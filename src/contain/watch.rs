//! The watcher: the alert log becomes containment records. Once a second
//! it reads the alerts after its progress mark; each firing alert of a kind
//! in `[policy] kinds` contains its account (or confirms the containment
//! the gate began for it), and what changed is written with the mark in
//! one batch, then mailed.

use super::subject::alert_key;
use super::{ContainError, Hold, Holds, PROGRESS, key};
use crate::store::Recorded;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the alert log is looked at.
const POLL: Duration = Duration::from_secs(1);
/// Alerts read per pass.
const BATCH: usize = 500;

impl Holds {
    /// One look at the alert log: contains the accounts of new alerts,
    /// saves what changed; returns the containments begun or confirmed
    /// (blocking).
    pub(crate) fn pass(&self) -> Result<Vec<(String, Hold)>, ContainError> {
        let tree = &self.inner.tree;
        let from = tree
            .get(PROGRESS)?
            .and_then(|v| std::str::from_utf8(&v).ok()?.parse().ok())
            .unwrap_or(0);
        let all = self.inner.store.alerts_after(from, BATCH)?;
        let last = all.last().map(|r| r.seq);
        // A resolved incident ends the watch of a released account.
        for r in &all {
            if r.alert.status == crate::detect::AlertStatus::Resolved {
                self.end_trust(&r.alert.sender);
            }
        }
        let now = chrono::Utc::now().timestamp();
        let hours = self.inner.settings.hold_hours;
        // Each alert that contains, with the key of what it contains.
        let records: Vec<(&Recorded, String)> = all
            .iter()
            .filter(|r| {
                let until = r.alert.at.timestamp() + i64::from(hours) * 3600;
                self.inner.settings.contains(&r.alert) && until > now
            })
            .map(|r| (r, alert_key(&r.alert).into_owned()))
            .collect();
        // Each one's record on disk, read before the lock is taken.
        let mut stored = Vec::with_capacity(records.len());
        for (_, sender) in &records {
            stored.push(match tree.get(key(sender))? {
                Some(v) => Some(serde_json::from_slice::<Hold>(&v)?),
                None => None,
            });
        }
        let mut changed = Vec::new();
        {
            let mut active = self.active();
            for ((r, sender), stored) in records.iter().zip(stored) {
                let at = r.alert.at.timestamp();
                // A release after the traffic an alert is about (the gate
                // contained the account before the alert was read) ends it:
                // the alert is noted on the record, nothing more.
                let released_since = |h: &Hold| h.released.as_ref().is_some_and(|x| x.at >= at);
                let hold = match active.get_mut(sender) {
                    Some(h) if h.in_force(now) && !h.provisional => continue,
                    Some(h) if h.in_force(now) || (released_since(h) && h.alert_seq == 0) => {
                        h.confirm(r);
                        h.clone()
                    }
                    Some(h) if released_since(h) => continue,
                    _ => match stored {
                        Some(s) if released_since(&s) && s.alert_seq != 0 => continue,
                        Some(mut s) if released_since(&s) => {
                            s.confirm(r);
                            active.insert(sender.clone(), s.clone());
                            s
                        }
                        _ => {
                            let hold = Hold::new(r, now, hours);
                            active.insert(sender.clone(), hold.clone());
                            match super::subject(sender) {
                                super::Subject::Address(ip) => tracing::warn!(
                                    address = %ip,
                                    kind = hold.kind.name(),
                                    why = hold.why.as_str(),
                                    "client address contained: every account submitting from it"
                                ),
                                super::Subject::Account(_) => tracing::warn!(
                                    sender = sender.as_str(),
                                    kind = hold.kind.name(),
                                    why = hold.why.as_str(),
                                    "account contained"
                                ),
                            }
                            hold
                        }
                    },
                };
                changed.push((sender.clone(), hold));
            }
        }
        // Reminders of the containments still in force.
        let every = self.inner.settings.remind_seconds;
        if every > 0 {
            for hold in self.active().values_mut() {
                hold.remind(now, every);
            }
        }
        self.save(last)?;
        Ok(changed)
    }

    /// Writes the records that changed (and `progress`, the last alert
    /// read) in one batch, flushed when a containment began or ended; then
    /// queues their mails. Memory is only locked to take what changed: a
    /// slow or full disk delays no answer of the policy service.
    pub(super) fn save(&self, progress: Option<u64>) -> Result<(), ContainError> {
        // One record per account: a new containment's record carries the
        // held days of the one it replaces, read before the lock is taken.
        let fresh: Vec<String> = {
            let active = self.inner.active.read().unwrap_or_else(|p| p.into_inner());
            active
                .iter()
                .filter(|(_, h)| h.unsaved && !h.provisional && !h.carried)
                .map(|(s, _)| s.clone())
                .collect()
        };
        let mut earlier = std::collections::HashMap::new();
        for sender in &fresh {
            if let Some(v) = self.inner.tree.get(key(sender))?
                && let Ok(old) = serde_json::from_slice::<Hold>(&v)
            {
                earlier.insert(sender.clone(), old);
            }
        }
        let mut batch = sled::Batch::default();
        let mut saved = Vec::new();
        let mut mails = Vec::new();
        let mut reminders = Vec::new();
        {
            let mut active = self.active();
            for (sender, hold) in active.iter_mut() {
                if !hold.unsaved || hold.provisional {
                    continue;
                }
                if !hold.carried && fresh.contains(sender) {
                    if let Some(old) = earlier.get(sender).filter(|o| o.since != hold.since) {
                        for (day, n) in &old.held_days {
                            *hold.held_days.entry(*day).or_default() += n;
                        }
                        for (account, days) in &old.held_by {
                            let mine = hold.held_by.entry(account.clone()).or_default();
                            for (day, n) in days {
                                *mine.entry(*day).or_default() += n;
                            }
                        }
                    }
                    hold.carried = true;
                }
                batch.insert(key(sender), serde_json::to_vec(&*hold)?);
                hold.unsaved = false;
                saved.push(sender.clone());
                if std::mem::take(&mut hold.mail_due) {
                    mails.push((sender.clone(), hold.clone()));
                }
                if std::mem::take(&mut hold.remind_due) {
                    reminders.push((sender.clone(), hold.clone()));
                }
            }
        }
        if saved.is_empty() && progress.is_none() {
            self.forget_ended();
            return Ok(());
        }
        if let Some(p) = progress {
            batch.insert(PROGRESS, p.to_string().as_bytes());
        }
        let tree = &self.inner.tree;
        let durable = progress.is_some() || !mails.is_empty();
        let written = self
            .inner
            .store
            .ensure_space()
            .map_err(ContainError::from)
            .and_then(|()| Ok(tree.apply_batch(batch)?))
            .and_then(|()| match durable {
                true => tree.flush().map(drop).map_err(ContainError::from),
                false => Ok(()),
            });
        if let Err(e) = written {
            // Written again by the next pass.
            let mut active = self.active();
            for sender in &saved {
                if let Some(h) = active.get_mut(sender) {
                    h.unsaved = true;
                    h.mail_due |= mails.iter().any(|(s, _)| s == sender);
                    h.remind_due |= reminders.iter().any(|(s, _)| s == sender);
                }
            }
            return Err(e);
        }
        if let Some(n) = &self.inner.notices {
            let now = chrono::Utc::now().timestamp();
            for (sender, hold) in &mails {
                let queued = match hold.released {
                    // One mail per containment: its alert's.
                    None if n.announced_by_alert_mail(hold, now) => Ok(()),
                    None => n.contained(sender, hold),
                    Some(_) => n.released(sender, hold),
                };
                if let Err(e) = queued {
                    tracing::error!(error = %e, sender = sender.as_str(), "containment mail not queued");
                }
            }
            for (sender, hold) in &reminders {
                if let Err(e) = n.reminder(sender, hold, now) {
                    tracing::error!(error = %e, sender = sender.as_str(), "reminder not queued");
                }
            }
        }
        self.forget_ended();
        Ok(())
    }

    /// Forgets the containments no longer in force whose records are saved.
    fn forget_ended(&self) {
        let now = chrono::Utc::now().timestamp();
        self.active()
            .retain(|_, h| h.in_force(now) || h.unsaved || h.mail_due);
    }

    /// Watches the alert log until `shutdown`, then saves the counts.
    pub(crate) async fn run(self, shutdown: CancellationToken) {
        let mut warned: Option<std::time::Instant> = None;
        loop {
            let holds = self.clone();
            match tokio::task::spawn_blocking(move || holds.pass()).await {
                Ok(Ok(_)) => warned = None,
                Ok(Err(e)) if e.disk_full() => {
                    if warned.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                        warned = Some(std::time::Instant::now());
                        tracing::warn!(error = %e, "containment: records wait for free space");
                    }
                }
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
            holds.save(None)?;
            holds.inner.tree.flush()?;
            Ok::<_, ContainError>(())
        })
        .await;
        if !matches!(saved, Ok(Ok(()))) {
            tracing::error!("containment: the last counts were not saved");
        }
    }
}
