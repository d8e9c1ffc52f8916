//! TLS protocol classes, with the spellings real MTAs write.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The five TLS classes every output reports, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tls {
    None,
    V1_0,
    V1_1,
    V1_2,
    V1_3,
}

impl Tls {
    /// All classes in output order (oldest protocol last but "none" first,
    /// as the reference product lists them).
    pub const ALL: [Tls; 5] = [Tls::None, Tls::V1_0, Tls::V1_1, Tls::V1_2, Tls::V1_3];

    /// Canonical key used in JSON, CSV and metrics.
    pub fn key(self) -> &'static str {
        match self {
            Tls::None => "none",
            Tls::V1_0 => "TLSv1.0",
            Tls::V1_1 => "TLSv1.1",
            Tls::V1_2 => "TLSv1.2",
            Tls::V1_3 => "TLSv1.3",
        }
    }

    /// Position in [`Tls::ALL`], used to index count arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Whether this class is legacy (no TLS, TLS 1.0, TLS 1.1): the ones a
    /// mail admin has to chase.
    pub fn is_legacy(self) -> bool {
        self < Tls::V1_2
    }

    /// Parses the spellings MTAs write: `TLSv1.2` (OpenSSL, Postfix), `TLSv1`
    /// (OpenSSL's name for 1.0), `TLS1.3` (GnuTLS, Exim), any case, plus `none`.
    /// Allocates nothing: it runs on every TLS line of a mail log.
    pub fn parse(raw: &str) -> Option<Tls> {
        let raw = raw.trim();
        if raw.eq_ignore_ascii_case("none") {
            return Some(Tls::None);
        }
        let (head, version) = (raw.get(..3)?, raw.get(3..)?);
        if !head.eq_ignore_ascii_case("tls") {
            return None;
        }
        let version = version.strip_prefix(['v', 'V']).unwrap_or(version);
        match version {
            "1" | "1.0" | "1_0" => Some(Tls::V1_0),
            "1.1" | "1_1" => Some(Tls::V1_1),
            "1.2" | "1_2" => Some(Tls::V1_2),
            "1.3" | "1_3" => Some(Tls::V1_3),
            _ => None,
        }
    }
}

impl std::fmt::Display for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.key())
    }
}

impl Serialize for Tls {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.key())
    }
}

impl<'de> Deserialize<'de> for Tls {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Tls::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("unknown TLS version {s:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mta_spellings_map_to_canonical_classes() {
        for (raw, tls) in [
            ("none", Tls::None),
            ("NONE", Tls::None),
            ("TLSv1", Tls::V1_0),
            ("TLSv1.0", Tls::V1_0),
            ("tlsv1.1", Tls::V1_1),
            ("TLS1.2", Tls::V1_2),
            ("TLSv1.3", Tls::V1_3),
            ("tls1_3", Tls::V1_3),
            (" TlSV1_2 ", Tls::V1_2),
            ("tls1.0", Tls::V1_0),
        ] {
            assert_eq!(Tls::parse(raw), Some(tls), "{raw}");
        }
        for bad in [
            "SSLv3",
            "TLSv1.4",
            "",
            "1.2",
            "TLSv",
            "ŤLSv1.2",
            "TLSvv1.2",
            "nonexistent",
        ] {
            assert_eq!(Tls::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn legacy_classes_are_below_tls_1_2() {
        let legacy: Vec<_> = Tls::ALL.iter().filter(|t| t.is_legacy()).collect();
        assert_eq!(legacy, [&Tls::None, &Tls::V1_0, &Tls::V1_1]);
    }
}
