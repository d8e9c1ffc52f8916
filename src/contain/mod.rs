//! Containment: the accounts whose submissions the policy service holds,
//! defers or rejects because an alert says they look compromised.
//!
//! - `gate`: the in-memory decision. The policy service runs every
//!   submission it lets through through a replica of the account's
//!   detector state; the one that raises a containing alert contains the
//!   account at once, so the next submission is contained whatever the
//!   rate. `loader` reads the past of accounts the gate has not seen.
//! - `watch`: the record. A watcher reads the alert log after its progress
//!   mark, once a second: a firing alert of a configured kind contains its
//!   account (unless it is in `never_hold`) until an administrator releases
//!   it or `hold_hours` pass, and confirms a containment the gate began.
//!   Each change is written together with the mark, in one batch of the
//!   `holds` tree, so a restart or `kill -9` neither forgets nor repeats
//!   one; the mails go out once it is on disk.
//! - `release`: the administrator's release; `trust`: the watch after it
//!   (trusted for the rest of the incident unless it escalates).
//! - `hold`: one record; `notice`: the mails to `detect.recipients`
//!   (one per containment, reminders, the release); `subject`: what a
//!   record stops, an account or (after a `shared_ip` alert) every
//!   submission from one client address.
//!
//! The policy service's answer reads memory only: no lock it takes is ever
//! held across a write or a flush, so a slow or full disk delays no
//! answer. The counts of messages held, deferred and rejected are saved
//! with the next pass: a crash loses at most a second of them.

mod gate;
mod hold;
mod loader;
mod notice;
mod release;
mod subject;
mod trust;
mod watch;

pub(crate) use gate::Gate;
pub(crate) use hold::{Action, Hold, MAX_HELD_IDS, Released, view};
pub(crate) use loader::start_gate;
pub(crate) use notice::Notices;
pub(crate) use subject::{Subject, address_key, subject};

use crate::detect::{Alert, AlertKind};
use crate::store::{Recorded, Store, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// The tree; its key [`PROGRESS`] is the last alert sequence number read,
/// the others are `hold:` and the account.
const TREE: &str = "holds";
const PROGRESS: &[u8] = b"progress";
const PREFIX: &str = "hold:";

/// What contains an account, from `[policy]`.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Alert kinds that contain their account (their address for
    /// `shared_ip`).
    pub kinds: Vec<AlertKind>,
    /// Accounts, and `@domain`s, never contained.
    pub never_hold: Vec<String>,
    /// Client addresses never contained (a webmail or relay host).
    pub never_hold_nets: Vec<crate::event::Network>,
    /// Hours a containment lasts unless released earlier.
    pub hold_hours: u32,
    /// Seconds between reminders that an account is still contained
    /// (0: none).
    pub remind_seconds: i64,
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

    /// Whether `alert` contains its account, or its address.
    fn contains(&self, alert: &Alert) -> bool {
        if !alert.status.is_firing() || !self.kinds.contains(&alert.kind) {
            return false;
        }
        match subject::subject(&subject::alert_key(alert)) {
            Subject::Address(ip) => !self.never_hold_nets.iter().any(|n| n.contains(ip)),
            Subject::Account(a) => alert.kind != AlertKind::SharedIp && !self.exempt(a),
        }
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
    #[error("cannot start the containment thread: {0}")]
    Thread(String),
}

impl ContainError {
    /// Whether nothing was changed because the disk is (nearly) full.
    pub(crate) fn disk_full(&self) -> bool {
        matches!(self, ContainError::Store(StoreError::DiskFull { .. }))
    }
}

/// The containments. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Holds {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    tree: sled::Tree,
    settings: Settings,
    /// Mails about containments, when there are recipients.
    notices: Option<Notices>,
    /// Every containment in force, and those released or expired that are
    /// not saved yet.
    active: RwLock<HashMap<String, Hold>>,
    /// Accounts released during their incident, watched for escalation.
    trusted: RwLock<trust::Trusted>,
}

impl Holds {
    /// Opens the records in `store`'s database; loads the containments
    /// still in force.
    pub(crate) fn open(
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
                trusted: RwLock::default(),
            }),
        })
    }

    /// The messages held per account on local days `days` (day numbers),
    /// from the records in `store` (counts are saved every second).
    /// Blocking. For the reports: no `Holds` is needed, the daemon may be
    /// stopped.
    pub(crate) fn held_in(
        store: &Store,
        days: std::ops::RangeInclusive<u32>,
    ) -> Result<HashMap<String, u64>, StoreError> {
        let mut out = HashMap::new();
        let tree = store.db().open_tree(TREE)?;
        for item in tree.scan_prefix(PREFIX) {
            let (k, v) = item?;
            // The containments read them back at start: one that does not
            // is reported there, not here.
            let Ok(hold) = serde_json::from_slice::<Hold>(&v) else {
                continue;
            };
            let in_range = |per_day: &std::collections::BTreeMap<u32, u64>| -> u64 {
                per_day.range(days.clone()).map(|(_, n)| n).sum()
            };
            let key = String::from_utf8_lossy(&k[PREFIX.len()..]).into_owned();
            // A client address's held messages count for their accounts.
            let per_account: Vec<(String, u64)> = match subject(&key) {
                Subject::Address(_) => hold
                    .held_by
                    .iter()
                    .map(|(account, per_day)| (account.clone(), in_range(per_day)))
                    .collect(),
                Subject::Account(_) => vec![(key.clone(), in_range(&hold.held_days))],
            };
            for (account, n) in per_account.into_iter().filter(|(_, n)| *n > 0) {
                *out.entry(account).or_default() += n;
            }
        }
        Ok(out)
    }

    /// Until when (Unix seconds) alert `r` contains its account, for the
    /// alert mail to say so: the containment in force, or the one the
    /// watcher is about to record from the alert (it contains every
    /// firing alert of `[policy] kinds` within `hold_hours`); `None` when
    /// the alert contains nothing or the account was released since.
    /// Blocking: reads the account's record.
    pub(crate) fn announce(&self, r: &Recorded, now: i64) -> Option<i64> {
        let settings = &self.inner.settings;
        let hours = i64::from(settings.hold_hours) * 3600;
        if !settings.contains(&r.alert) || r.alert.at.timestamp() + hours <= now {
            return None;
        }
        match self.of(&subject::alert_key(&r.alert)) {
            Ok(Some(h)) if h.in_force(now) => Some(h.until),
            // Released after this alert's traffic: nothing to announce.
            Ok(Some(h))
                if h.released
                    .as_ref()
                    .is_some_and(|x| x.at >= r.alert.at.timestamp()) =>
            {
                None
            }
            // Not yet recorded (or an older one ended): the watcher
            // records it within a second, from now.
            Ok(_) => Some(now + hours),
            Err(e) => {
                tracing::warn!(error = %e, "containment: cannot read the account's record");
                None
            }
        }
    }

    /// The accounts contained at Unix second `now`, newest first, without
    /// their queue ids. Memory only: what the policy service enforces.
    pub(crate) fn contained(&self, now: i64) -> Vec<(String, Hold)> {
        let active = self.inner.active.read().unwrap_or_else(|p| p.into_inner());
        let mut all: Vec<(String, Hold)> = active
            .iter()
            .filter(|(_, h)| h.in_force(now))
            .map(|(s, h)| (s.clone(), h.light()))
            .collect();
        drop(active);
        all.sort_by_key(|h| std::cmp::Reverse(h.1.since));
        all
    }

    fn active(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Hold>> {
        self.inner.active.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The containment of `sender` in force at Unix second `now`, if any;
    /// counts `action` for it, with the message's Postfix `queue_id`.
    /// Memory only: the policy service's answer.
    pub(crate) fn check(
        &self,
        sender: &str,
        queue_id: Option<&str>,
        now: i64,
        action: Action,
    ) -> Option<Hold> {
        let contained = {
            let active = self.inner.active.read().unwrap_or_else(|p| p.into_inner());
            !active.is_empty() && active.get(sender).is_some_and(|h| h.in_force(now))
        };
        // A released account that escalates is contained again.
        if !contained && !self.escalates(sender, now) {
            return None;
        }
        let mut active = self.active();
        let hold = active.get_mut(sender).filter(|h| h.in_force(now))?;
        let day = chrono::DateTime::from_timestamp(now, 0)
            .map(|t| crate::event::time::day_number(self.inner.store.today(t)))
            .unwrap_or(0);
        hold.count(action, queue_id, day, None);
        Some(hold.light())
    }

    /// The containment of client address `ip` in force at Unix second
    /// `now`, if any; counts `action` for it. Memory only, and no work
    /// at all while nothing is contained.
    pub(crate) fn check_address(
        &self,
        ip: Option<std::net::IpAddr>,
        account: &str,
        queue_id: Option<&str>,
        now: i64,
        action: Action,
    ) -> Option<(String, Hold)> {
        let ip = ip?;
        let key = {
            let active = self.inner.active.read().unwrap_or_else(|p| p.into_inner());
            if active.is_empty() {
                return None;
            }
            let key = address_key(ip);
            if !active.get(&key).is_some_and(|h| h.in_force(now)) {
                return None;
            }
            key
        };
        let mut active = self.active();
        let hold = active.get_mut(&key).filter(|h| h.in_force(now))?;
        let day = chrono::DateTime::from_timestamp(now, 0)
            .map(|t| crate::event::time::day_number(self.inner.store.today(t)))
            .unwrap_or(0);
        hold.count(action, queue_id, day, Some(account));
        Some((key, hold.light()))
    }

    /// Contains `alert`'s account, or its address for a `shared_ip` alert,
    /// now, ahead of the alert log, when the alert is of a kind that
    /// contains and nothing contains them already; whether it did. Memory
    /// only: the watcher confirms and records it.
    pub(crate) fn contain_now(&self, alert: &Alert) -> bool {
        let settings = &self.inner.settings;
        if !settings.contains(alert) {
            return false;
        }
        let key = subject::alert_key(alert);
        let now = chrono::Utc::now().timestamp();
        let mut active = self.active();
        if active.get(key.as_ref()).is_some_and(|h| h.in_force(now)) {
            return false;
        }
        let hold = Hold::ahead(alert, now, settings.hold_hours);
        active.insert(key.clone().into_owned(), hold);
        drop(active);
        let subject = subject::subject(&key);
        tracing::warn!(
            sender = subject.name().as_ref(),
            kind = alert.kind.name(),
            why = alert.detail.as_str(),
            "{} contained",
            if matches!(subject, Subject::Address(_)) {
                "address"
            } else {
                "account"
            }
        );
        true
    }

    /// Lifts the containment the gate began under `key` (an account, or
    /// an address) when the detector, having counted the submission that
    /// was to raise the alert, raised none (it saw other traffic, or time
    /// had moved on).
    pub(crate) fn lift_unfounded(&self, key: &str) {
        let mut active = self.active();
        if !active.get(key).is_some_and(|h| h.provisional) {
            return;
        }
        let hold = active.remove(key);
        drop(active);
        let stopped = hold.map_or(0, |h| h.held + h.deferred + h.rejected + h.monitored);
        tracing::warn!(
            sender = subject::subject(key).name().as_ref(),
            stopped,
            "containment lifted: the detector raised no alert where the policy service expected one"
        );
    }

    /// Every containment on record, newest first (sled reads: call it
    /// from a blocking thread), with those in memory not saved yet.
    pub(crate) fn list(&self) -> Result<Vec<(String, Hold)>, ContainError> {
        let mut all = Vec::new();
        for item in self.inner.tree.scan_prefix(PREFIX) {
            let (k, v) = item?;
            let sender = String::from_utf8_lossy(&k[PREFIX.len()..]).into_owned();
            let hold = self.current(&sender, Some(serde_json::from_slice(&v)?));
            all.extend(hold.map(|h| (sender, h)));
        }
        {
            let active = self.inner.active.read().unwrap_or_else(|p| p.into_inner());
            for (sender, hold) in active.iter() {
                if !all.iter().any(|(s, _)| s == sender) {
                    all.push((sender.clone(), hold.clone()));
                }
            }
        }
        all.sort_by_key(|h| std::cmp::Reverse(h.1.since));
        Ok(all)
    }

    /// `sender`'s latest containment, if any (blocking).
    pub(crate) fn of(&self, sender: &str) -> Result<Option<Hold>, ContainError> {
        let stored = match self.inner.tree.get(key(sender))? {
            Some(v) => Some(serde_json::from_slice(&v)?),
            None => None,
        };
        Ok(self.current(sender, stored))
    }

    /// The record in memory when `sender`'s latest containment is held
    /// there (its counts may be newer than the disk's), else `stored`.
    fn current(&self, sender: &str, stored: Option<Hold>) -> Option<Hold> {
        let active = self.inner.active.read().unwrap_or_else(|p| p.into_inner());
        match (active.get(sender), stored) {
            (Some(h), Some(s)) if s.since > h.since => Some(s),
            (Some(h), _) => Some(h.clone()),
            (None, stored) => stored,
        }
    }
}

fn key(sender: &str) -> Vec<u8> {
    [PREFIX.as_bytes(), sender.as_bytes()].concat()
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod settings_tests {
    use super::*;

    #[test]
    fn never_hold_names_accounts_and_whole_domains_in_any_case() {
        let s = Settings {
            kinds: vec![AlertKind::VolumeSpike],
            never_hold: vec!["Monitor@Example.com".into(), "@Tickets.Example.com".into()],
            never_hold_nets: Vec::new(),
            hold_hours: 1,
            remind_seconds: 0,
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
