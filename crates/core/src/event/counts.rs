//! Message counts per TLS class: the unit every aggregate, report row and
//! chart is made of.

use super::Tls;
use serde::ser::{Serialize, SerializeMap, Serializer};

/// Accepted messages per TLS class, indexed by [`Tls::index`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TlsCounts(pub [u64; 5]);

impl TlsCounts {
    pub fn add(&mut self, other: &TlsCounts) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a = a.saturating_add(b);
        }
    }

    pub fn bump(&mut self, tls: Tls) {
        self.0[tls.index()] = self.0[tls.index()].saturating_add(1);
    }

    pub fn get(&self, tls: Tls) -> u64 {
        self.0[tls.index()]
    }

    pub fn total(&self) -> u64 {
        self.0.iter().fold(0u64, |a, b| a.saturating_add(*b))
    }

    /// Messages sent without TLS or with TLS 1.0/1.1.
    pub fn legacy(&self) -> u64 {
        Tls::ALL
            .iter()
            .filter(|t| t.is_legacy())
            .map(|t| self.get(*t))
            .sum()
    }

    /// Share of `tls` in percent, 0 when there are no messages.
    pub fn percent(&self, tls: Tls) -> f64 {
        match self.total() {
            0 => 0.0,
            total => self.get(tls) as f64 * 100.0 / total as f64,
        }
    }
}

/// Serialised as an object with the five canonical keys, always all five.
impl Serialize for TlsCounts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(5))?;
        for tls in Tls::ALL {
            map.serialize_entry(tls.key(), &self.get(tls))?;
        }
        map.end()
    }
}

/// Read back from the object [`Serialize`] writes (the CLI reads reports
/// from a running daemon's API): the five canonical keys, any spelling
/// `Tls::parse` knows, a missing one as 0.
impl<'de> serde::Deserialize<'de> for TlsCounts {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = std::collections::BTreeMap::<String, u64>::deserialize(d)?;
        let mut counts = TlsCounts::default();
        for (key, n) in map {
            let tls = Tls::parse(&key)
                .ok_or_else(|| serde::de::Error::custom(format!("unknown TLS class {key:?}")))?;
            counts.0[tls.index()] = n;
        }
        Ok(counts)
    }
}
