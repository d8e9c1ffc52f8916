//! Replicas of the detectors' accounts for the policy service, which runs
//! an account's submissions through them as it answers (see
//! `detect::Replica`): after each fold the writer hands out the state of
//! every account whose submissions it was told about, with how far it
//! counted them, so that the policy service replays only the rest.

use crate::detect::{DetectConfig, Replica};
use crate::store::Writer;
use std::collections::HashMap;
use std::sync::Arc;

/// Submissions of the policy service in a request: per account, the number
/// of its last submission among them (numbers grow per account).
pub(crate) type Marks = Vec<(String, u64)>;

/// Where the writer hands replicas (the policy service's gate).
pub(crate) trait Replicas: Send {
    /// `sender`'s state once the store counted its submissions up to
    /// number `seq`, and the settings it is judged by.
    fn publish(&self, sender: &str, seq: u64, replica: Replica, cfg: &Arc<DetectConfig>);
    /// Accounts the store had never seen, now in its sender index.
    fn known(&self, senders: &[&str]);
    /// Client addresses the detector raised a shared_ip alert on, each
    /// with the Unix second its cool-down ends: told before the replicas
    /// of the fold that raised them.
    fn addresses(&self, alerted: &[(std::net::IpAddr, i64)]);
}

impl Writer {
    /// Hands replicas to `to` from now on.
    pub(crate) fn set_replicas(&mut self, to: Box<dyn Replicas>) {
        self.replicas = Some(to);
    }

    /// Notes the policy service's submissions in the events submitted last:
    /// their accounts' replicas go out once they are counted.
    pub fn mark(&mut self, marks: Marks) {
        if self.replicas.is_none() || marks.is_empty() {
            return;
        }
        let pending = &mut self.pending.marks;
        for (sender, seq) in marks {
            let at = pending.entry(sender).or_insert(seq);
            *at = (*at).max(seq);
        }
        if self.journal.is_none() {
            // Counted already (see `Writer::submit`).
            let marks = std::mem::take(&mut self.pending.marks);
            self.publish(marks);
        }
    }

    /// Hands out the replicas of `marks`' accounts, now counted.
    pub(super) fn publish(&mut self, marks: HashMap<String, u64>) {
        let (Some(to), Some(detector)) = (&self.replicas, &self.detector) else {
            return;
        };
        let cfg = detector.shared_config();
        let alerted: Vec<(std::net::IpAddr, i64)> = self
            .committed
            .iter()
            .filter(|a| a.kind == crate::detect::AlertKind::SharedIp && a.status.is_firing())
            .filter_map(|a| {
                let until = cfg.shared_ip.quiet_until(a.at.timestamp());
                Some((a.sender.parse().ok()?, until))
            })
            .collect();
        if !alerted.is_empty() {
            to.addresses(&alerted);
        }
        for (sender, seq) in marks {
            to.publish(&sender, seq, detector.replica(&sender, &self.store), cfg);
        }
    }

    /// Tells the replicas' owner of the accounts new to the store among
    /// those a fold just wrote (`known`: their index entries before it).
    pub(super) fn announce(&self, known: &super::fold::Known) {
        let Some(to) = &self.replicas else {
            return;
        };
        let new: Vec<&str> = known
            .iter()
            .filter(|(_, info)| info.is_none())
            .map(|(sender, _)| *sender)
            .collect();
        if !new.is_empty() {
            to.known(&new);
        }
    }
}
