//! The first submission of an account below the minimum TLS version.

use super::{Dirty, SenderState};
use crate::detect::alert::{Alert, AlertKind, AlertStatus, whole_seconds};
use crate::detect::config::DetectConfig;
use crate::event::Event;

impl SenderState {
    /// Reports the first submission below the minimum TLS version, once.
    pub(super) fn legacy(&mut self, ev: &Event, cfg: &DetectConfig, out: &mut Vec<Alert>) -> Dirty {
        let c = &cfg.legacy_tls;
        if !c.enabled || self.persisted.legacy_reported || ev.tls >= c.min_version {
            return false;
        }
        self.persisted.legacy_reported = true;
        out.push(Alert {
            kind: AlertKind::LegacyTls,
            sender: ev.sender.clone(),
            at: whole_seconds(ev.ts),
            observed: 1,
            expected: 0.0,
            detail: format!(
                "first submission with {} (minimum is {}){}",
                ev.tls.key(),
                c.min_version.key(),
                ev.client_ip
                    .map(|ip| format!(" from {ip}"))
                    .unwrap_or_default()
            ),
            status: AlertStatus::Firing,
            threshold: None,
            client_ips: ev.client_ip.iter().map(|ip| ip.to_string()).collect(),
            tls: Some(ev.tls),
        });
        true
    }
}
