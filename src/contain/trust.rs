//! After a release: the account is trusted for the rest of its incident,
//! unless it escalates. It escalates when it sends more than twice the
//! hourly count that raised its alert (the alert's `observed`) within an
//! hour; then it is contained again, as if by a new alert. The watch ends
//! when the incident is resolved, or `hold_hours` after the release.
//!
//! Memory only, like the policy service's answers: a restart ends the
//! watch (a compromise that goes on raises a new alert once the incident
//! resolves).

use super::{Hold, Holds};
use std::collections::HashMap;

/// How an account released from its containment is watched.
#[derive(Debug, Clone)]
pub(super) struct Trust {
    /// Unix second the watch ends.
    until: i64,
    /// Most submissions in one hour before it escalates.
    limit: u64,
    /// The hour being counted: its start and its submissions.
    window: (i64, u64),
    /// The containment it was released from.
    released: Hold,
}

/// The accounts watched after a release.
pub(super) type Trusted = HashMap<String, Trust>;

impl Holds {
    /// Watches `sender`, released from `hold` at Unix second `now`.
    pub(super) fn trust(&self, sender: &str, hold: &Hold, now: i64) {
        let hours = i64::from(self.inner.settings.hold_hours) * 3600;
        let trust = Trust {
            until: now + hours,
            limit: hold.observed.max(1).saturating_mul(2),
            window: (now, 0),
            released: hold.light(),
        };
        self.trusted().insert(sender.to_owned(), trust);
    }

    /// Ends the watch of `sender` (its incident was resolved).
    pub(super) fn end_trust(&self, sender: &str) {
        let mut trusted = self.trusted();
        if !trusted.is_empty() {
            trusted.remove(sender);
        }
    }

    /// Counts a submission of `sender` at Unix second `now` against its
    /// watch; when it is one too many, contains the account again (in
    /// memory, to be recorded and mailed by the watcher) and returns true.
    pub(super) fn escalates(&self, sender: &str, now: i64) -> bool {
        {
            let trusted = self.inner.trusted.read().unwrap_or_else(|p| p.into_inner());
            if !trusted.contains_key(sender) {
                return false;
            }
        }
        let mut trusted = self.trusted();
        let Some(t) = trusted.get_mut(sender) else {
            return false;
        };
        if now >= t.until {
            trusted.remove(sender);
            return false;
        }
        if now - t.window.0 >= 3600 {
            t.window = (now, 0);
        }
        t.window.1 += 1;
        if t.window.1 <= t.limit {
            return false;
        }
        let Some(t) = trusted.remove(sender) else {
            return false;
        };
        drop(trusted);
        let hours = self.inner.settings.hold_hours;
        let hold = Hold::escalated(&t.released, now, hours, t.window.1);
        tracing::warn!(
            sender,
            why = hold.why.as_str(),
            "account contained again after its release"
        );
        self.active().insert(sender.to_owned(), hold);
        true
    }

    fn trusted(&self) -> std::sync::RwLockWriteGuard<'_, Trusted> {
        self.inner
            .trusted
            .write()
            .unwrap_or_else(|p| p.into_inner())
    }
}
