//! The policy service's own count of the accounts each client address
//! submits as, so that a campaign (one address, many accounts that never
//! used it) is contained at the submission that crosses the line.
//!
//! Why: the writer's detector sees a submission only once it is folded,
//! and the alert reaches the policy service only once the watcher reads
//! it back; over parallel connections a campaign of 48 stolen accounts sent
//! all of its 192 messages in that time (`cargo bench --bench policy`).
//! Each submission the gate runs through an account's replica is also
//! counted here, with how the replica says the account stands with the
//! address (it used it before, or where it usually sends from), by the
//! detector's own code ([`detect::Addresses`]).
//!
//! The detector stays the judge. When the writer has counted the
//! submission the gate predicted on, it has said which addresses it alerted
//! on ([`AddressGate::alerted`]); if not this one, the gate's containment
//! is lifted. The gate predicts on an address at most once per cool-down,
//! as the detector alerts, so a lifted or released address is not
//! contained again by the gate's count alone.

use crate::detect::{self, Alert, DetectConfig, Standing};
use crate::event::Event;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

/// Locks the addresses are spread over.
const SHARDS: usize = 16;
/// Accounts noted per address while their past is read: far above any
/// threshold, and a bound on what one busy address costs.
const MAX_UNREAD: usize = 64;

#[derive(Default)]
struct Shard {
    seen: detect::Addresses,
    /// Addresses predicted on, until when they cool down.
    cooling: HashMap<IpAddr, i64>,
    /// Accounts (by hash) submitting from an address while their past is
    /// read, with the Unix second of their first such submission.
    unread: HashMap<IpAddr, Vec<(u64, i64)>>,
}

pub(super) struct AddressGate {
    shards: Vec<Mutex<Shard>>,
    hasher: foldhash::fast::FixedState,
    /// Addresses the writer's detector alerted on, until when they cool
    /// down.
    alerted: Mutex<HashMap<IpAddr, i64>>,
}

impl AddressGate {
    pub(super) fn new() -> AddressGate {
        AddressGate {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: foldhash::fast::FixedState::with_seed(0xadd7),
            alerted: Mutex::default(),
        }
    }

    fn shard(&self, ip: IpAddr) -> std::sync::MutexGuard<'_, Shard> {
        let at = (self.hasher.hash_one(ip) as usize) % SHARDS;
        self.shards[at]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts `ev`, submitted from `ip` by an account standing as
    /// `standing` with it (the caller weighs addresses only when the
    /// detector does); the shared_ip alert it raises, unless the address
    /// cools down after an alert of the writer's or a prediction of the
    /// gate's.
    pub(super) fn observe(
        &self,
        ev: &Event,
        ip: IpAddr,
        standing: Standing,
        cfg: &DetectConfig,
    ) -> Option<Alert> {
        let ts = ev.ts.timestamp();
        let alerted = self.writer_alerted(ip, ts);
        let mut shard = self.shard(ip);
        let Shard { seen, cooling, .. } = &mut *shard;
        let cool = |_: &str| alerted || cooling.get(&ip).is_some_and(|until| ts < *until);
        let alert = seen.observe(ev, ip, standing, &cfg.shared_ip, cool)?;
        cooling.insert(ip, cfg.shared_ip.quiet_until(ts));
        Some(alert)
    }

    /// Notes that account `hash`, whose past is being read, submits from
    /// `ip` at Unix second `ts`; whether it could be the account that
    /// completes a shared_ip alert (with those counted and those still
    /// being read), and so should wait for its past.
    pub(super) fn arriving(&self, ip: IpAddr, hash: u64, ts: i64, cfg: &DetectConfig) -> bool {
        if !cfg.enabled || !cfg.shared_ip.enabled || self.writer_alerted(ip, ts) {
            return false;
        }
        let mut shard = self.shard(ip);
        if shard.cooling.get(&ip).is_some_and(|until| ts < *until) {
            return false;
        }
        let unread = shard.unread.entry(ip).or_default();
        if !unread.iter().any(|(h, _)| *h == hash) && unread.len() < MAX_UNREAD {
            unread.push((hash, ts));
        }
        let unread = unread.len();
        let counted = shard.seen.newcomers(ip, ts, &cfg.shared_ip);
        counted + unread >= cfg.shared_ip.min_accounts as usize
    }

    /// Account `hash`'s past arrived: its submissions from `ip` are
    /// counted from now on.
    pub(super) fn settled(&self, ip: IpAddr, hash: u64) {
        let mut shard = self.shard(ip);
        if let Some(unread) = shard.unread.get_mut(&ip) {
            unread.retain(|(h, _)| *h != hash);
            if unread.is_empty() {
                shard.unread.remove(&ip);
            }
        }
    }

    /// The writer's detector alerted on these addresses, each cooling
    /// down until the Unix second given.
    pub(super) fn alerted(&self, addresses: &[(IpAddr, i64)]) {
        let mut alerted = self.alerted.lock().unwrap_or_else(PoisonError::into_inner);
        for (ip, until) in addresses {
            let at = alerted.entry(*ip).or_insert(*until);
            *at = (*at).max(*until);
        }
    }

    /// Whether the writer's detector alerted on `ip` within the cool-down
    /// that reaches Unix second `ts`.
    pub(super) fn writer_alerted(&self, ip: IpAddr, ts: i64) -> bool {
        let alerted = self.alerted.lock().unwrap_or_else(PoisonError::into_inner);
        alerted.get(&ip).is_some_and(|until| ts < *until)
    }

    /// Forgets addresses idle for a whole window and cool-downs over at
    /// Unix second `now`.
    pub(super) fn prune(&self, now: i64, cfg: &DetectConfig) {
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            shard.seen.prune(now, &cfg.shared_ip);
            shard.cooling.retain(|_, until| *until > now);
            // A past never read (the loader stopped) stops counting.
            let since = now - cfg.shared_ip.window_secs();
            shard.unread.retain(|_, unread| {
                unread.retain(|(_, at)| *at > since);
                !unread.is_empty()
            });
        }
        let mut alerted = self.alerted.lock().unwrap_or_else(PoisonError::into_inner);
        alerted.retain(|_, until| *until > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Replica;
    use crate::event::Tls;

    #[test]
    fn five_new_accounts_raise_one_prediction_per_cool_down_and_a_writers_alert_silences_it() {
        let gate = AddressGate::new();
        let cfg = DetectConfig::default();
        let ip: IpAddr = "203.0.113.66".parse().unwrap();
        let now = chrono::Utc::now();
        let at = |i: i64| now + chrono::TimeDelta::seconds(i);
        let submit = |gate: &AddressGate, i: i64, who: &str| {
            let ev = Event {
                client_ip: Some(ip),
                ..Event::accepted(at(i), who, Tls::V1_3)
            };
            // Accounts never seen: no usual address, no standing with it.
            let replica = Replica::from_loaded(Default::default(), at(i).timestamp());
            let standing = replica.standing(ip, at(i).timestamp(), &cfg);
            gate.observe(&ev, ip, standing, &cfg)
        };
        // Accounts being read count towards the wait: the fifth waits.
        let ts = at(0).timestamp();
        assert!((0..4).all(|h| !gate.arriving(ip, h, ts, &cfg)));
        assert!(gate.arriving(ip, 4, ts, &cfg));
        (0..5).for_each(|h| gate.settled(ip, h));
        assert!(
            !gate.arriving(ip, 9, ts, &cfg),
            "settled ones no longer count"
        );
        gate.settled(ip, 9);

        for i in 0..4 {
            assert!(submit(&gate, i, &format!("u{i}@x")).is_none());
        }
        let alert = submit(&gate, 4, "u4@x").expect("the fifth account");
        assert_eq!(alert.sender, ip.to_string());
        assert_eq!(alert.observed, 5);
        // Once per cool-down.
        assert!(submit(&gate, 5, "u5@x").is_none());
        assert!(!gate.arriving(ip, 20, ts, &cfg), "cooling: no wait");

        // Another address the writer alerted on is not predicted on.
        let other: IpAddr = "203.0.113.77".parse().unwrap();
        gate.alerted(&[(other, ts + 3600)]);
        assert!(gate.writer_alerted(other, ts));
        assert!(!gate.writer_alerted(other, ts + 3600));
        assert!(!gate.arriving(other, 1, ts, &cfg));

        // Pruned once the cool-downs are over and the window idle.
        gate.prune(ts + 7 * 3600, &cfg);
        assert!(!gate.writer_alerted(other, ts));
        for i in 0..4 {
            let t = 8 * 3600 + i;
            assert!(submit(&gate, t, &format!("v{i}@x")).is_none());
        }
        assert!(submit(&gate, 8 * 3600 + 4, "v4@x").is_some());
    }
}
