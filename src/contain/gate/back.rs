//! What comes back to the gate: replicas from the store writer after each
//! fold (with the addresses its detector alerted on), pasts from the
//! loader, the accounts new to the store; and what the gate forgets.

use super::{Entry, Gate};
use crate::detect::{Alert, DetectConfig, Replica};
use std::net::IpAddr;
use std::sync::Arc;

impl Gate {
    /// A replica of `sender` from the writer, which counted its submissions
    /// up to `seq`; `cfg` are the detector's settings.
    pub(crate) fn publish(
        &self,
        sender: &str,
        seq: u64,
        replica: Replica,
        cfg: &Arc<DetectConfig>,
    ) {
        if !Arc::ptr_eq(&self.cfg(), cfg) {
            // New settings (a reload): the replicas judge by them from now.
            *self.inner.cfg.write().unwrap_or_else(|p| p.into_inner()) = cfg.clone();
        }
        let mut shard = self.shard(sender).lock().unwrap_or_else(|p| p.into_inner());
        let Some(entry) = shard.get_mut(sender) else {
            return;
        };
        if seq < entry.base {
            return;
        }
        let predicted = entry.predicted.filter(|p| *p <= seq);
        let unfounded = predicted.is_some() && !replica.incident_open();
        if predicted.is_some() {
            entry.predicted = None;
        }
        entry.base = seq;
        while entry.pending.front().is_some_and(|s| s.seq <= seq) {
            entry.pending.pop_front();
        }
        // The writer counted the submissions the gate contained addresses
        // after: it has said which addresses its detector alerted on.
        let addresses = &self.inner.addresses;
        let now = chrono::Utc::now().timestamp();
        entry.addresses_predicted.retain(|(ip, at)| {
            if *at > seq {
                return true;
            }
            if !addresses.writer_alerted(*ip, now) {
                self.inner
                    .holds
                    .lift_unfounded(&crate::contain::address_key(*ip));
            }
            false
        });
        match self.replay(entry, sender, replica, cfg) {
            Some(alert) => {
                self.inner.holds.contain_now(&alert);
            }
            None if unfounded => self.inner.holds.lift_unfounded(sender),
            None => {}
        }
    }

    /// The past of `sender` read from the store (the loader's answer);
    /// ignored when the writer's replica came first.
    pub(in crate::contain) fn loaded(&self, sender: &str, replica: Replica) {
        let cfg = self.cfg();
        let mut shard = self.shard(sender).lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = shard.get_mut(sender).filter(|e| e.replica.is_none())
            && let Some(alert) = self.replay(entry, sender, replica, &cfg)
        {
            self.inner.holds.contain_now(&alert);
        }
    }

    /// Accounts new to the store.
    pub(crate) fn known(&self, senders: &[&str]) {
        self.add_known(senders.iter().map(|s| self.hash(s)).collect());
    }

    /// Accounts the store knows, by [`Gate::hash`].
    pub(in crate::contain) fn add_known(&self, hashes: Vec<u64>) {
        let mut known = self.inner.known.write().unwrap_or_else(|p| p.into_inner());
        known.extend(hashes);
    }

    /// Forgets accounts without a submission since Unix second `before`,
    /// and the oldest beyond `most` (they are read again when they come
    /// back); returns how many are held.
    pub(in crate::contain) fn evict(&self, before: i64, most: usize) -> usize {
        let per_shard = most.div_ceil(super::SHARDS);
        let mut held = 0;
        for shard in &self.inner.shards {
            let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            shard.retain(|_, e| e.used >= before || e.awaits_writer());
            if shard.len() > per_shard {
                let mut used: Vec<i64> = shard.values().map(|e| e.used).collect();
                let cut = shard.len() - per_shard;
                let (_, nth, _) = used.select_nth_unstable(cut - 1);
                let oldest_kept = *nth;
                shard.retain(|_, e| e.used > oldest_kept || e.awaits_writer());
            }
            held += shard.len();
        }
        held
    }

    /// Makes `replica` the base of `entry` and runs its pending
    /// submissions through it (and the gate's count of their addresses);
    /// the account's alert one of them raises, if any.
    fn replay(
        &self,
        entry: &mut Entry,
        sender: &str,
        mut replica: Replica,
        cfg: &DetectConfig,
    ) -> Option<Alert> {
        if let Some(arrived) = entry.arrived.take() {
            arrived.close();
            // Its past arrived: its submissions count at their addresses
            // from now on, no longer as an account being read.
            let hash = self.hash(sender);
            for ip in entry.reading_at.drain(..) {
                self.inner.addresses.settled(ip, hash);
            }
        }
        let mut raised = None;
        for sub in &entry.pending {
            let (alert, address) = self.step(&mut replica, sub, &sub.event(sender), cfg);
            if let Some(alert) = alert
                && raised.is_none()
            {
                entry.predicted = Some(sub.seq);
                raised = Some(alert);
            }
            entry.addresses_predicted.extend(address);
        }
        entry.replica = Some(replica);
        raised
    }

    /// Forgets the gate's count of addresses idle for a whole window at
    /// Unix second `now`.
    pub(in crate::contain) fn prune_addresses(&self, now: i64) {
        self.inner.addresses.prune(now, &self.cfg());
    }
}

impl Entry {
    /// Whether a containment the gate began after one of its submissions
    /// waits for the writer's word.
    fn awaits_writer(&self) -> bool {
        self.predicted.is_some() || !self.addresses_predicted.is_empty()
    }
}

impl crate::store::Replicas for Gate {
    fn publish(&self, sender: &str, seq: u64, replica: Replica, cfg: &Arc<DetectConfig>) {
        Gate::publish(self, sender, seq, replica, cfg);
    }

    fn known(&self, senders: &[&str]) {
        Gate::known(self, senders);
    }

    fn addresses(&self, alerted: &[(IpAddr, i64)]) {
        self.inner.addresses.alerted(alerted);
    }
}
