//! What a containment stops: an account, or every submission from one
//! client address (a `shared_ip` alert). Both are kept in the same records
//! under a key: the account's name, or the address after a control
//! character, which no account name may hold (events refuse it), so the
//! two never meet even when a username reads like an address.

use crate::detect::{Alert, AlertKind};
use std::borrow::Cow;
use std::net::IpAddr;

/// Starts the key of an address's containment.
const ADDRESS: char = '\u{1}';

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Subject<'a> {
    Account(&'a str),
    Address(IpAddr),
}

/// The key of `ip`'s containment.
pub(crate) fn address_key(ip: IpAddr) -> String {
    format!("{ADDRESS}{}", ip.to_canonical())
}

/// What the containment under `key` stops.
pub(crate) fn subject(key: &str) -> Subject<'_> {
    match key.strip_prefix(ADDRESS).and_then(|a| a.parse().ok()) {
        Some(ip) => Subject::Address(ip),
        None => Subject::Account(key),
    }
}

/// The key of the containment `alert` begins: its address for a
/// `shared_ip` alert, else its account.
pub(crate) fn alert_key(alert: &Alert) -> Cow<'_, str> {
    match (alert.kind, alert.sender.parse::<IpAddr>()) {
        (AlertKind::SharedIp, Ok(ip)) => Cow::Owned(address_key(ip)),
        _ => Cow::Borrowed(&alert.sender),
    }
}

impl Subject<'_> {
    /// How logs, answers and the command line name it: the account, or
    /// the address.
    pub(crate) fn name(&self) -> Cow<'_, str> {
        match self {
            Subject::Account(a) => Cow::Borrowed(a),
            Subject::Address(ip) => Cow::Owned(ip.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_key_never_reads_as_an_account_and_back() {
        let ip: IpAddr = "203.0.113.66".parse().unwrap();
        let key = address_key(ip);
        assert_eq!(subject(&key), Subject::Address(ip));
        // A username that reads like an address stays an account.
        assert_eq!(subject("203.0.113.66"), Subject::Account("203.0.113.66"));
        assert!(crate::event::normalize_sender(&key).is_err());
        // IPv4 written as IPv6 is the IPv4 address.
        let mapped: IpAddr = "::ffff:203.0.113.66".parse().unwrap();
        assert_eq!(address_key(mapped), key);
    }
}
