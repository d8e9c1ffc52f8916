//! Value types that check themselves while the TOML is parsed, so the parser
//! reports the line of a bad value.

use serde::{Deserialize, Deserializer};
use std::net::SocketAddr;

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
