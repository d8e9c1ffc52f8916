//! Networks of client addresses (`192.0.2.0/24`, `::1`), for the lists of
//! peers and addresses the configuration names.

use std::net::IpAddr;

/// An address and the number of leading bits that must match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    /// Whether `ip` lies in the network. An IPv4 address written as IPv6
    /// (`::ffff:127.0.0.1`, as a dual-stack socket reports it) counts as
    /// the IPv4 one.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => bits(u32::from(net), u32::from(ip), self.prefix),
            (IpAddr::V6(net), IpAddr::V6(ip)) => bits(u128::from(net), u128::from(ip), self.prefix),
            _ => false,
        }
    }

    /// Whether every address of the network is a loopback address.
    pub fn is_loopback(&self) -> bool {
        match self.addr {
            IpAddr::V4(a) => a.is_loopback() && self.prefix >= 8,
            IpAddr::V6(a) => a.is_loopback() && self.prefix == 128,
        }
    }
}

/// Whether the first `prefix` bits of `a` and `b` agree.
fn bits<T>(a: T, b: T, prefix: u8) -> bool
where
    T: std::ops::BitXor<Output = T> + std::ops::Shr<u32, Output = T> + PartialEq + From<u8>,
{
    let width = (std::mem::size_of::<T>() * 8) as u32;
    let prefix = u32::from(prefix);
    prefix == 0 || (a ^ b) >> (width - prefix) == T::from(0)
}

impl std::str::FromStr for Network {
    type Err = String;

    fn from_str(s: &str) -> Result<Network, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an address or network such as \"192.0.2.0/24\""))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0 to {max}"))?,
        };
        Ok(Network {
            addr: addr.to_canonical(),
            prefix,
        })
    }
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl<'de> serde::Deserialize<'de> for Network {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Network {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_hold_the_addresses_of_their_prefix() {
        assert!(net("127.0.0.0/8").contains(ip("127.9.8.7")));
        assert!(!net("127.0.0.0/8").contains(ip("128.0.0.1")));
        assert!(
            net("127.0.0.0/8").contains(ip("::ffff:127.0.0.1")),
            "a v4-mapped address"
        );
        assert!(net("::1").contains(ip("::1")));
        assert!(!net("::1").contains(ip("::2")));
        assert!(net("2001:db8::/32").contains(ip("2001:db8:ffff::1")));
        assert!(!net("2001:db8::/32").contains(ip("2001:db9::1")));
        assert!(net("0.0.0.0/0").contains(ip("203.0.113.5")));
        assert!(!net("0.0.0.0/0").contains(ip("::1")), "families apart");
        assert!(net("192.0.2.7").contains(ip("192.0.2.7")));
        assert!(!net("192.0.2.7").contains(ip("192.0.2.8")));
    }

    #[test]
    fn what_is_no_network_is_named() {
        for bad in [
            "",
            "localhost",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/x",
            "1.2.3.4/",
        ] {
            let e = bad.parse::<Network>().unwrap_err();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
    }

    #[test]
    fn loopback_networks_are_told_apart() {
        assert!(net("127.0.0.0/8").is_loopback());
        assert!(net("::1").is_loopback());
        assert!(!net("0.0.0.0/0").is_loopback());
        assert!(!net("10.0.0.0/8").is_loopback());
    }
}
