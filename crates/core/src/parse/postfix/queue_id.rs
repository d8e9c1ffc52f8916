//! Postfix queue ids, held inline. The parser keeps every submission's
//! queue id two or three times (its connection's list, the table of
//! submissions waiting for qmgr, the list of ended connections): as
//! `String`s, those were most of the parser's allocations.

use std::fmt;

/// Longest queue id: short ids are 10–12 hex digits, long ids
/// (`enable_long_queue_ids`) about 15 characters.
pub(crate) const MAX_LEN: usize = 20;

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct QueueId {
    len: u8,
    bytes: [u8; MAX_LEN],
}

impl QueueId {
    /// `s` as a queue id: 1 to [`MAX_LEN`] ASCII letters and digits.
    pub(super) fn new(s: &[u8]) -> Option<QueueId> {
        if s.is_empty() || s.len() > MAX_LEN || !s.iter().all(|b| b.is_ascii_alphanumeric()) {
            return None;
        }
        let mut bytes = [0; MAX_LEN];
        bytes[..s.len()].copy_from_slice(s);
        Some(QueueId {
            len: s.len() as u8,
            bytes,
        })
    }

    pub(super) fn as_str(&self) -> &str {
        // Built from ASCII only (see `new`).
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl fmt::Debug for QueueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Saved as text, as the parser's state always was.
impl serde::Serialize for QueueId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for QueueId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<QueueId, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        QueueId::new(s.as_bytes())
            .ok_or_else(|| serde::de::Error::custom(format!("{s:?} is not a queue id")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_ids_round_trip_and_others_are_refused() {
        for s in ["4F1A2B3C4D", "4dHt0q1QwBz9kLm", "A", "12345678901234567890"] {
            let id = QueueId::new(s.as_bytes()).unwrap();
            assert_eq!(id.as_str(), s);
            let json = serde_json::to_string(&id).unwrap();
            assert_eq!(json, format!("\"{s}\""));
            assert_eq!(serde_json::from_str::<QueueId>(&json).unwrap(), id);
        }
        for s in ["", "NOQUEUE:", "4F1A 2B", "123456789012345678901", "ÄÖ"] {
            assert!(QueueId::new(s.as_bytes()).is_none(), "{s}");
        }
        let err = serde_json::from_str::<QueueId>("\"a b\"").unwrap_err();
        assert!(err.to_string().contains("not a queue id"), "{err}");
        assert_ne!(QueueId::new(b"AB"), QueueId::new(b"ABC"));
    }
}
