//! The client IPs an account has used: a run from an address it never
//! used is judged on its own (an attacker's machine), and a phone's
//! ever-changing carrier address must not push out the office's.

use super::SenderState;
use crate::detect::shared_ip::Standing;
use std::net::IpAddr;

/// Client IPs an account used, at most this many (the least recently used
/// one makes room).
const KNOWN_IPS: usize = 16;

/// A client IP of the account, first and last seen (Unix seconds; 0 when
/// it came from the store, where only the last sighting is kept).
#[derive(Debug, Clone, Copy)]
pub(super) struct KnownIp {
    ip: IpAddr,
    first: u32,
    last: u32,
    /// Messages from it since it was first seen (while in memory).
    count: u16,
}

/// Unix seconds as kept per client IP: four bytes instead of eight make
/// the sixteen IPs an account may hold a third smaller (until 2106).
fn secs(ts: i64) -> u32 {
    ts.clamp(0, i64::from(u32::MAX)) as u32
}

impl SenderState {
    /// Client IPs the store knows for the account (all long known).
    pub(crate) fn with_ips(mut self, ips: impl IntoIterator<Item = IpAddr>) -> SenderState {
        self.ips = ips
            .into_iter()
            .take(KNOWN_IPS)
            .map(|ip| KnownIp {
                ip,
                first: 0,
                last: 0,
                count: 0,
            })
            .collect();
        self
    }

    /// Records a message from `ip`; whether the account first used it
    /// within the last hour.
    pub(super) fn note_ip(&mut self, ip: IpAddr, ts: i64) -> bool {
        if let Some(k) = self.ips.iter_mut().find(|k| k.ip == ip) {
            k.last = k.last.max(secs(ts));
            k.count = k.count.saturating_add(1);
            return ts - i64::from(k.first) < 3600;
        }
        let known = KnownIp {
            ip,
            first: secs(ts),
            last: secs(ts),
            count: 1,
        };
        if self.ips.len() < KNOWN_IPS {
            self.ips.push(known);
        } else if let Some(oldest) = self
            .ips
            // A phone's carrier address, used once or twice, makes room
            // before the office or home address the account keeps coming
            // back to (which would otherwise return as "new").
            .iter_mut()
            .min_by_key(|k| (k.count > 2, k.last))
        {
            *oldest = known;
        }
        true
    }

    /// How the account stands with `ip` before a message from it at `ts`
    /// is counted: whether it used it before the last `window` seconds, and
    /// the address it sends from most, other than `ip`.
    pub(crate) fn standing(&self, ip: IpAddr, ts: i64, window: i64) -> Standing {
        let regular = self
            .ips
            .iter()
            .any(|k| k.ip == ip && ts - i64::from(k.first) >= window);
        let usual = self
            .ips
            .iter()
            .filter(|k| k.ip != ip)
            .max_by_key(|k| (k.count, k.last))
            .map(|k| k.ip);
        Standing { regular, usual }
    }

    /// Messages sent from client IPs the account first used at or after
    /// Unix second `since` (counted while in memory).
    pub(super) fn sent_from_ips_first_used_since(&self, since: i64) -> u32 {
        self.ips
            .iter()
            .filter(|k| i64::from(k.first) >= since)
            .map(|k| u32::from(k.count))
            .sum()
    }
}
