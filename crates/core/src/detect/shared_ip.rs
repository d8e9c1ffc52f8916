//! One client address submitting as several accounts that never used it
//! before: stolen passwords are used in batches, a few messages each, so
//! every account stays under its own thresholds while the address gives
//! the campaign away.
//!
//! Two things that look alike stay quiet:
//! - an address shared for weeks (office NAT, webmail, a relay) has
//!   regulars: accounts that used it before. An alert needs the new
//!   accounts to be nearly all the address sees in the window
//!   (`max_known_share`);
//! - a domain moving to a new office address arrives from one old
//!   address: every account new to the address had the same usual one.
//!   Stolen accounts come from their owners' many addresses
//!   (`min_spread`: distinct usual addresses per new account).
//!
//! The window is kept in memory only; an alert's cool-down is the
//! detector's, saved with the counts.

use super::alert::{Alert, AlertKind};
use super::config::SharedIpConfig;
use crate::event::Event;
use std::net::IpAddr;

/// Accounts remembered per address and window: far above any threshold,
/// and a bound on what one busy address costs.
const MAX_ACCOUNTS: usize = 64;
/// Accounts named in an alert's detail.
const NAMED: usize = 20;

/// The key an address's alert is cooled down under.
pub(crate) fn key(ip: IpAddr) -> String {
    format!("shared_ip:{ip}")
}

/// An account new to the address: when it first sent from it, and the
/// address it usually sends from (`None`: it has no other).
#[derive(Debug)]
struct Newcomer {
    account: String,
    first: i64,
    usual: Option<IpAddr>,
}

#[derive(Debug, Default)]
struct Address {
    newcomers: Vec<Newcomer>,
    regulars: Regulars,
    last: i64,
}

/// Accounts that used an address before: hash of the name, last message
/// within the window. Most addresses are one account's own, so the first
/// is held inline: a list of its own was an allocation for every address
/// each time it came back after a window idle, about one per message an
/// import of a log observed.
#[derive(Debug, Default)]
struct Regulars {
    first: Option<(u64, i64)>,
    more: Vec<(u64, i64)>,
}

impl Regulars {
    fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.more.len()
    }

    /// Forgets those whose last message is at or before `since`.
    fn keep_after(&mut self, since: i64) {
        self.more.retain(|(_, last)| *last > since);
        if self.first.is_some_and(|(_, last)| last <= since) {
            self.first = self.more.pop();
        }
    }

    /// The account hashed `h` sent at `ts` (the first [`MAX_ACCOUNTS`]
    /// are kept).
    fn saw(&mut self, h: u64, ts: i64) {
        let len = self.len();
        let mut known = self.first.iter_mut().chain(&mut self.more);
        if let Some(r) = known.find(|(r, _)| *r == h) {
            r.1 = r.1.max(ts);
        } else if self.first.is_none() {
            self.first = Some((h, ts));
        } else if len < MAX_ACCOUNTS {
            self.more.push((h, ts));
        }
    }
}

/// How an account stands with the address it sends from, before its
/// message is counted.
#[derive(Debug, Clone, Copy)]
pub struct Standing {
    /// It used the address before the window.
    pub(crate) regular: bool,
    /// Its usual address other than this one.
    pub(crate) usual: Option<IpAddr>,
}

/// The accounts each client address submitted as within the window: the
/// detector's, and the policy service's own (fed by the replicas'
/// standings, so that a campaign is contained as it crosses the line).
#[derive(Debug, Default)]
pub struct Addresses {
    map: foldhash::HashMap<IpAddr, Address>,
}

fn hash(account: &str) -> u64 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::with_seed(0x5a17).hash_one(account)
}

impl Addresses {
    /// Counts `ev` (from `ip`, its account standing as `standing`); the
    /// alert it sets off, unless `cooling` says the address is quiet.
    pub fn observe(
        &mut self,
        ev: &Event,
        ip: IpAddr,
        standing: Standing,
        cfg: &SharedIpConfig,
        cooling: impl FnOnce(&str) -> bool,
    ) -> Option<Alert> {
        let ts = ev.ts.timestamp();
        let window = cfg.window_secs();
        let address = self.map.entry(ip).or_default();
        address.last = address.last.max(ts);
        address.newcomers.retain(|n| n.first > ts - window);
        address.regulars.keep_after(ts - window);
        if standing.regular {
            address.regulars.saw(hash(&ev.sender), ts);
            return None;
        }
        if address.newcomers.iter().any(|n| n.account == ev.sender)
            || address.newcomers.len() >= MAX_ACCOUNTS
        {
            return None;
        }
        address.newcomers.push(Newcomer {
            account: ev.sender.clone(),
            first: ts,
            usual: standing.usual,
        });
        let (new, regular) = (address.newcomers.len(), address.regulars.len());
        if new < cfg.min_accounts as usize
            || regular as f64 > cfg.max_known_share * (new + regular) as f64
        {
            return None;
        }
        let mut usual: Vec<Option<IpAddr>> = Vec::with_capacity(new);
        let mut spread = 0;
        for n in &address.newcomers {
            // An account with no other address is a spread of its own.
            if n.usual.is_none() || !usual.contains(&n.usual) {
                spread += 1;
                usual.push(n.usual);
            }
        }
        if (spread as f64) < cfg.min_spread * new as f64 {
            return None;
        }
        if cooling(&key(ip)) {
            return None;
        }
        let names: Vec<&str> = address
            .newcomers
            .iter()
            .take(NAMED)
            .map(|n| n.account.as_str())
            .collect();
        let more = new.saturating_sub(NAMED);
        let regulars = match regular {
            0 => "no account that used it before".to_owned(),
            1 => "1 account that used it before".to_owned(),
            r => format!("{r} accounts that used it before"),
        };
        Some(Alert {
            kind: AlertKind::SharedIp,
            sender: ip.to_string(),
            at: ev.ts,
            observed: new as u64,
            expected: 0.0,
            detail: format!(
                "{new} accounts that never used {ip} submitted from it within {} minutes \
                 ({regulars}), from {spread} different usual addresses: {}{}",
                cfg.window_minutes,
                names.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            ),
            status: Default::default(),
            threshold: Some(u64::from(cfg.min_accounts)),
            client_ips: vec![ip.to_string()],
            tls: Some(ev.tls),
        })
    }

    /// Accounts new to `ip` within the window that reaches Unix second
    /// `ts`.
    pub fn newcomers(&self, ip: IpAddr, ts: i64, cfg: &SharedIpConfig) -> usize {
        let window = cfg.window_secs();
        self.map.get(&ip).map_or(0, |a| {
            a.newcomers.iter().filter(|n| n.first > ts - window).count()
        })
    }

    /// Forgets addresses idle for a whole window.
    pub fn prune(&mut self, now: i64, cfg: &SharedIpConfig) {
        let window = cfg.window_secs();
        self.map.retain(|_, a| a.last > now - window);
    }

    /// Approximate memory held, in bytes.
    pub(crate) fn bytes(&self) -> usize {
        self.map
            .values()
            .map(|a| {
                std::mem::size_of::<(IpAddr, Address)>()
                    + a.newcomers.capacity() * std::mem::size_of::<Newcomer>()
                    + a.newcomers
                        .iter()
                        .map(|n| n.account.capacity())
                        .sum::<usize>()
                    + a.regulars.more.capacity() * 16
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::{MAX_ACCOUNTS, Regulars};

    #[test]
    fn regulars_keep_the_latest_message_and_forget_what_left_the_window() {
        let mut r = Regulars::default();
        r.saw(1, 100);
        r.saw(1, 50);
        assert_eq!((r.first, r.more.len()), (Some((1, 100)), 0));
        r.saw(2, 200);
        r.saw(3, 300);
        assert_eq!(r.len(), 3);
        // The inline one leaves first: one of the rest takes its place.
        r.keep_after(100);
        assert_eq!(r.len(), 2);
        assert!(r.first.is_some_and(|(h, _)| h == 2 || h == 3));
        r.keep_after(300);
        assert_eq!((r.first, r.len()), (None, 0));
        r.saw(4, 400);
        assert_eq!(r.first, Some((4, 400)));
    }

    #[test]
    fn regulars_stop_at_the_bound() {
        let mut r = Regulars::default();
        for h in 0..2 * MAX_ACCOUNTS as u64 {
            r.saw(h, 10);
        }
        assert_eq!(r.len(), MAX_ACCOUNTS);
        // One already known is still updated.
        r.saw(0, 20);
        assert_eq!(r.first, Some((0, 20)));
    }
}
