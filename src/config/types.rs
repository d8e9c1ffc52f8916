//! Value types that check themselves while the TOML is parsed, so the parser
//! reports the line of a bad value.

use serde::{Deserialize, Deserializer};
use std::net::SocketAddr;
use std::str::FromStr;

/// An IANA time zone name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeZone(pub chrono_tz::Tz);

impl Default for TimeZone {
    fn default() -> Self {
        TimeZone(chrono_tz::Tz::UTC)
    }
}

impl TimeZone {
    pub fn name(&self) -> &'static str {
        self.0.name()
    }
}

impl FromStr for TimeZone {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        s.parse::<chrono_tz::Tz>().map(TimeZone).map_err(|_| {
            format!(
                "unknown time zone {s:?}; use an IANA name such as \"UTC\" or \"Europe/Berlin\""
            )
        })
    }
}

impl<'de> Deserialize<'de> for TimeZone {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// A socket address to listen on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listen(pub SocketAddr);

impl Default for Listen {
    fn default() -> Self {
        Listen(SocketAddr::from(([127, 0, 0, 1], 8587)))
    }
}

impl<'de> Deserialize<'de> for Listen {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map(Listen).map_err(|_| {
            serde::de::Error::custom(format!(
                "{s:?} is not an address and port such as \"127.0.0.1:8587\" or \"[::1]:8587\""
            ))
        })
    }
}
