//! An administrator's release: the account may send again at once; the
//! record and the mail follow.

use super::{ContainError, Hold, Holds, Released};

impl Holds {
    /// Releases `sender`'s containment, recording `by`; the account (named
    /// as events name it: `Alice@Example.com` is `alice@example.com`) and
    /// its record as released, or None when it was not contained.
    ///
    /// Refused with nothing changed when the disk has no room for the
    /// record ([`ContainError::disk_full`]). Otherwise it is in force when
    /// this returns, whatever the disk does next: the policy service lets
    /// the account's mail through from then on, and a record that could
    /// not be written is written by the watcher's next pass (blocking:
    /// call it from a blocking thread).
    pub(crate) fn release(
        &self,
        sender: &str,
        by: &str,
    ) -> Result<Option<(String, Hold)>, ContainError> {
        let now = chrono::Utc::now().timestamp();
        // A client address contained after a shared_ip alert, else an
        // account (a username may read like an address).
        let address = sender
            .parse::<std::net::IpAddr>()
            .ok()
            .map(super::address_key)
            .filter(|key| {
                let active = self.inner.active.read().unwrap_or_else(|p| p.into_inner());
                active.get(key).is_some_and(|h| h.in_force(now))
            });
        let sender = match address {
            Some(key) => key,
            None => crate::event::normalize_sender(sender)?,
        };
        self.inner.store.ensure_space()?;
        let hold = {
            let mut active = self.active();
            let Some(hold) = active.get_mut(&sender).filter(|h| h.in_force(now)) else {
                return Ok(None);
            };
            hold.released = Some(Released {
                by: by.to_owned(),
                at: now,
            });
            // Released before its alert was read: a record of its own,
            // which the watcher completes when it reads the alert.
            hold.provisional = false;
            hold.unsaved = true;
            hold.mail_due = true;
            hold.clone()
        };
        let name = super::subject(&sender).name().into_owned();
        tracing::warn!(sender = name.as_str(), by, "containment released");
        // Trusted for the rest of its incident, unless it escalates.
        if matches!(super::subject(&sender), super::Subject::Account(_)) {
            self.trust(&sender, &hold, now);
        }
        if let Err(e) = self.save(None) {
            tracing::error!(
                error = %e,
                sender = sender.as_str(),
                "the release is in force; its record is written when the disk allows"
            );
        }
        Ok(Some((sender, hold)))
    }
}
