//! The detectors' side of the store: each account's persisted detector
//! state, auth-failure cool-downs, and the alert log the notifier mails
//! from and `GET /api/v1/alerts` reads.

use super::codec::SenderInfo;
use super::keys;
use super::{Store, StoreError};
use crate::detect::{Alert, AlertKind, Loaded, Loader, Persisted};
use crate::event::MAX_FUTURE_SKEW;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// An alert as logged: its place in the log and when it was recorded (wall
/// clock; alerts recorded close together are mailed together).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Recorded {
    pub seq: u64,
    pub(crate) recorded_ms: i64,
    #[serde(flatten)]
    pub alert: Alert,
}

impl Loader for Store {
    fn sender(&self, sender: &str, from_hour: u32) -> Loaded {
        // Not in the sender index: never seen (or forgotten with its
        // history and state), nothing more to read.
        match self.sender_info(sender).ok().flatten() {
            Some(info) => self.load_known(sender, &info, from_hour),
            None => Loaded::default(),
        }
    }

    fn cooldown(&self, key: &str) -> Option<i64> {
        let v = self.data.get(keys::cooldown_key(key)).ok()??;
        Some(i64::from_be_bytes(v.as_ref().try_into().ok()?))
    }
}

/// The store as a loader, with the sender index entries the writer has
/// just read for its batch: a sender the index does not know costs no read.
pub(super) struct Prefetched<'a> {
    pub store: &'a Store,
    pub senders: &'a HashMap<&'a str, Option<SenderInfo>>,
}

impl Loader for Prefetched<'_> {
    fn sender(&self, sender: &str, from_hour: u32) -> Loaded {
        match self.senders.get(sender) {
            Some(Some(info)) => self.store.load_known(sender, info, from_hour),
            Some(None) => Loaded::default(),
            None => self.store.sender(sender, from_hour),
        }
    }

    fn cooldown(&self, key: &str) -> Option<i64> {
        self.store.cooldown(key)
    }
}

impl Store {
    /// History and saved state of a sender the index knows.
    fn load_known(&self, sender: &str, info: &SenderInfo, from_hour: u32) -> Loaded {
        // A read error leaves the account without history: it then alerts
        // more readily, never less, and the error is logged.
        let hours = self.hours_since(sender, from_hour).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot read an account's history");
            Vec::new()
        });
        let state = self
            .data
            .get(keys::detect_sender_key(sender))
            .ok()
            .flatten()
            .and_then(|v| serde_json::from_slice::<Persisted>(&v).ok());
        Loaded {
            hours,
            first_seen: Some(info.first_seen),
            state,
            ips: info.ips.iter().map(|(ip, _)| *ip).collect(),
        }
    }

    /// `(hour, messages)` of one sender from `from_hour` on.
    fn hours_since(&self, sender: &str, from_hour: u32) -> Result<Vec<(u32, u32)>, StoreError> {
        self.hours_from(sender, from_hour, |hour, [messages, _]| {
            (hour, u32::try_from(messages).unwrap_or(u32::MAX))
        })
    }

    /// Accounts whose volume incident was open when the daemon stopped.
    pub(crate) fn open_incidents(&self) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        for item in self.data.scan_prefix([keys::DETECT, b's']) {
            let (k, v) = item?;
            let open = serde_json::from_slice::<Persisted>(&v).is_ok_and(|p| p.spike.is_some());
            if let (true, Ok(sender)) = (open, std::str::from_utf8(&k[2..])) {
                out.push(sender.to_owned());
            }
        }
        Ok(out)
    }

    /// Sequence number of the last logged alert (0 when none).
    pub(crate) fn last_alert_seq(&self) -> Result<u64, StoreError> {
        Ok(self
            .data
            .scan_prefix([keys::ALERT])
            .next_back()
            .transpose()?
            .and_then(|(k, _)| keys::alert_seq(&k))
            .unwrap_or(0))
    }

    /// Logged alerts after sequence number `seq`, oldest first, at most `limit`.
    pub(crate) fn alerts_after(&self, seq: u64, limit: usize) -> Result<Vec<Recorded>, StoreError> {
        let lo = keys::alert_key(seq.saturating_add(1));
        let hi = keys::alert_key(u64::MAX);
        let mut out = Vec::new();
        for item in self.data.range(lo..=hi).take(limit) {
            let (_, v) = item?;
            if let Ok(r) = serde_json::from_slice::<Recorded>(&v) {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// The newest firing alert of `sender` and `kind` among the `look_back`
    /// alerts logged before sequence number `before`: the one that opened
    /// the incident a reminder or resolution belongs to.
    pub fn opening_alert(
        &self,
        sender: &str,
        kind: AlertKind,
        before: u64,
        look_back: u64,
    ) -> Result<Option<Recorded>, StoreError> {
        let lo = keys::alert_key(before.saturating_sub(look_back));
        let hi = keys::alert_key(before);
        for item in self.data.range(lo..hi).rev() {
            let (_, v) = item?;
            if let Ok(r) = serde_json::from_slice::<Recorded>(&v) {
                let a = &r.alert;
                if a.status.is_firing() && a.kind == kind && a.sender == sender {
                    return Ok(Some(r));
                }
            }
        }
        Ok(None)
    }

    /// Logged alerts raised at or after `since`, newest first, at most `limit`.
    /// The log is read back only to alerts recorded a day before `since`:
    /// an alert's time is its event's, and events are at most
    /// [`MAX_FUTURE_SKEW`] ahead of the clock that recorded them.
    pub(crate) fn alerts_since(
        &self,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Recorded>, StoreError> {
        let recorded_from = (since - MAX_FUTURE_SKEW).timestamp_millis();
        self.scan_log(
            limit,
            |r| r.alert.at >= since,
            |r| r.recorded_ms < recorded_from,
        )
    }

    /// Logged alerts about `sender` (an account, or a client IP for a
    /// failed-login burst), newest first, at most `limit`: read through
    /// the log's index by account, not by decoding the whole log.
    pub(crate) fn alerts_of(
        &self,
        sender: &str,
        limit: usize,
    ) -> Result<Vec<Recorded>, StoreError> {
        let mut out = Vec::new();
        let index = self.data.scan_prefix(keys::alert_by_sender_prefix(sender));
        for item in index.rev() {
            let (k, _) = item?;
            let Some(seq) = keys::alert_by_sender_seq(&k) else {
                continue;
            };
            let Some(v) = self.data.get(keys::alert_key(seq))? else {
                continue;
            };
            if let Ok(r) = serde_json::from_slice::<Recorded>(&v) {
                out.push(r);
                if out.len() == limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// The log newest first: what `keep` accepts, at most `limit`, until an
    /// alert for which `done` holds.
    fn scan_log(
        &self,
        limit: usize,
        keep: impl Fn(&Recorded) -> bool,
        done: impl Fn(&Recorded) -> bool,
    ) -> Result<Vec<Recorded>, StoreError> {
        let mut out = Vec::new();
        for item in self.data.scan_prefix([keys::ALERT]).rev() {
            let (_, v) = item?;
            let Ok(r) = serde_json::from_slice::<Recorded>(&v) else {
                continue;
            };
            if done(&r) {
                break;
            }
            if keep(&r) {
                out.push(r);
                if out.len() == limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Removes alerts raised before `oldest_ts` and cool-downs that ended,
    /// plus detector state of accounts no longer in the sender index.
    pub(super) fn purge_detector(&self, oldest_ts: i64, now: i64) -> Result<usize, StoreError> {
        let alerts = self.remove_where(self.data.scan_prefix([keys::ALERT]), |_, v| {
            serde_json::from_slice::<Recorded>(v).is_ok_and(|r| r.alert.at.timestamp() < oldest_ts)
        })?;
        self.remove_where(self.data.scan_prefix([keys::ALERT_BY_SENDER]), |_, v| {
            <[u8; 8]>::try_from(v).is_ok_and(|b| i64::from_be_bytes(b) < oldest_ts)
        })?;
        let cooldowns = self
            .remove_where(self.data.scan_prefix([keys::DETECT, b'c']), |_, v| {
                <[u8; 8]>::try_from(v).is_ok_and(|b| i64::from_be_bytes(b) < now)
            })?;
        let states = self.remove_where(self.data.scan_prefix([keys::DETECT, b's']), |k, v| {
            let open = serde_json::from_slice::<Persisted>(v).is_ok_and(|p| p.spike.is_some());
            !open
                && !self
                    .data
                    .contains_key(keys::sender_key(std::str::from_utf8(&k[2..]).unwrap_or("")))
                    .unwrap_or(true)
        })?;
        Ok(alerts + cooldowns + states)
    }
}

/// Adds the index entry of a logged alert to `batch`.
pub(super) fn index_alert(batch: &mut sled::Batch, r: &Recorded) {
    let at = r.alert.at.timestamp().to_be_bytes();
    batch.insert(keys::alert_by_sender_key(&r.alert.sender, r.seq), &at[..]);
}

/// Encodes what the detector reports dirty into `batch`.
pub(super) fn save_dirty(batch: &mut sled::Batch, dirty: &crate::detect::Dirty) {
    for (sender, p) in &dirty.senders {
        let key = keys::detect_sender_key(sender);
        if *p == Persisted::default() {
            batch.remove(key);
        } else {
            batch.insert(key, serde_json::to_vec(p).unwrap_or_default());
        }
    }
    for (key, until) in &dirty.cooldowns {
        batch.insert(keys::cooldown_key(key), &until.to_be_bytes()[..]);
    }
}
