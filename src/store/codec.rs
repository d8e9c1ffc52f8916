//! Compact value encodings: LEB128 varints, because almost every count is
//! small and disk bytes per (sender, day) is what retention costs.

use super::keys;
use crate::event::TlsCounts;
use std::net::IpAddr;

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads one varint, advancing `input`; `None` at the end or on garbage.
pub(crate) fn get_varint(input: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = input.split_first()?;
        *input = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// A run of varints; fields missing at the end read as 0, so a later release
/// can append fields without a migration.
pub(crate) fn encode_u64s(values: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * 2);
    for v in values {
        put_varint(&mut out, *v);
    }
    out
}

pub(crate) fn decode_u64s<const N: usize>(mut input: &[u8]) -> [u64; N] {
    let mut out = [0u64; N];
    for slot in out.iter_mut() {
        match get_varint(&mut input) {
            Some(v) => *slot = v,
            None => break,
        }
    }
    out
}

pub fn encode_counts(c: &TlsCounts) -> Vec<u8> {
    encode_u64s(&c.0)
}

pub fn decode_counts(input: &[u8]) -> TlsCounts {
    TlsCounts(decode_u64s::<5>(input))
}

/// One unit (a day, an hour) of a slotted value: the unit's place in its
/// key (see [`keys::slot`]) and its `N` counts.
pub(crate) type Slot<const N: usize> = (u16, [u64; N]);
/// An hour of an hourly value: [messages, failed logins].
pub(crate) type Hour = Slot<2>;

/// A slotted value (`d`, `f` and `u` keys): the units of its key with
/// counts, ascending, each as varints (place in the key, then the counts).
pub(crate) fn encode_slots<const N: usize>(slots: &[Slot<N>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(slots.len() * (N + 1));
    for (at, counts) in slots {
        put_varint(&mut out, u64::from(*at));
        for n in counts {
            put_varint(&mut out, *n);
        }
    }
    out
}

/// Inverse of [`encode_slots`] for keys of `per` units; stops at the first
/// damaged entry (a place past `per` is damage).
pub(crate) fn decode_slots<const N: usize>(input: &[u8], per: u32) -> Vec<Slot<N>> {
    slots(input, per).collect()
}

/// [`decode_slots`] without collecting them.
pub fn slots<const N: usize>(mut input: &[u8], per: u32) -> impl Iterator<Item = Slot<N>> {
    std::iter::from_fn(move || {
        let at = u16::try_from(get_varint(&mut input)?)
            .ok()
            .filter(|at| u32::from(*at) < per)?;
        let mut counts = [0; N];
        for n in &mut counts {
            *n = get_varint(&mut input)?;
        }
        Some((at, counts))
    })
}

/// The slotted value `old` (keys of `per` units) with `delta` (in any
/// order) added.
pub(crate) fn add_slots<const N: usize>(old: &[u8], delta: &[Slot<N>], per: u32) -> Vec<u8> {
    let mut slots = decode_slots::<N>(old, per);
    for (at, counts) in delta {
        match slots.binary_search_by_key(at, |e| e.0) {
            Ok(i) => {
                for (mine, n) in slots[i].1.iter_mut().zip(counts) {
                    *mine = mine.saturating_add(*n);
                }
            }
            Err(i) => slots.insert(i, (*at, *counts)),
        }
    }
    encode_slots(&slots)
}

/// An hourly value's hours (see [`decode_slots`]).
pub(crate) fn decode_hours(input: &[u8]) -> Vec<Hour> {
    decode_slots(input, keys::HOURS_PER_KEY)
}

/// Most client IPs remembered per sender: enough to show an admin where an
/// account logs in from, bounded so a spraying attacker cannot grow it.
pub(crate) const MAX_IPS: usize = 16;

/// Most envelope senders remembered per account, other than the login
/// itself: a compromised account used for spam shows the addresses it
/// sent as, and the list stays bounded whatever the spammer makes up.
pub(crate) const MAX_ENVELOPES: usize = 8;

/// Tag of an envelope sender in an encoded [`SenderInfo`] (IPs are 4 and 6).
const ENVELOPE_TAG: u8 = b'e';

/// The sender index entry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SenderInfo {
    /// Unix seconds of the first and last accepted message.
    pub first_seen: i64,
    pub last_seen: i64,
    /// Client IPs with the last time each was seen, most recent first.
    pub ips: Vec<(IpAddr, i64)>,
    /// Envelope senders (`MAIL FROM`) other than the login, with the last
    /// time each was used, most recent first.
    pub envelopes: Vec<(Box<str>, i64)>,
}

impl SenderInfo {
    /// The summary of an account's first accepted message, at `ts`.
    pub fn first(ts: i64) -> SenderInfo {
        SenderInfo {
            first_seen: ts,
            last_seen: ts,
            ips: Vec::new(),
            envelopes: Vec::new(),
        }
    }

    /// Notes one more accepted message of `login`, at `ts` from `ip`, sent
    /// as `envelope` (noted only when it is not the login itself).
    pub(crate) fn note(
        &mut self,
        login: &str,
        ts: i64,
        ip: Option<IpAddr>,
        envelope: Option<&str>,
    ) {
        self.first_seen = self.first_seen.min(ts);
        self.last_seen = self.last_seen.max(ts);
        if let Some(ip) = ip {
            self.note_ip(ip, ts);
        }
        if let Some(from) = envelope.filter(|e| !e.eq_ignore_ascii_case(login)) {
            self.note_envelope(from, ts);
        }
    }

    /// Folds another observation summary into this one.
    pub fn merge(&mut self, other: &SenderInfo) {
        if self.first_seen == 0 || (other.first_seen != 0 && other.first_seen < self.first_seen) {
            self.first_seen = other.first_seen;
        }
        self.last_seen = self.last_seen.max(other.last_seen);
        for (ip, seen) in &other.ips {
            self.note_ip(*ip, *seen);
        }
        for (from, seen) in &other.envelopes {
            self.note_envelope(from, *seen);
        }
    }

    pub(crate) fn note_envelope(&mut self, from: &str, seen: i64) {
        match self.envelopes.iter_mut().find(|(e, _)| &**e == from) {
            Some(entry) => entry.1 = entry.1.max(seen),
            None => {
                self.envelopes.reserve_exact(1);
                self.envelopes.push((from.into(), seen));
            }
        }
        self.envelopes
            .sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        self.envelopes.truncate(MAX_ENVELOPES);
    }

    pub(crate) fn note_ip(&mut self, ip: IpAddr, seen: i64) {
        match self.ips.iter_mut().find(|(i, _)| *i == ip) {
            Some(entry) => entry.1 = entry.1.max(seen),
            None => {
                // Grown one at a time: at most MAX_IPS + 1, not twice that.
                self.ips.reserve_exact(1);
                self.ips.push((ip, seen));
            }
        }
        self.ips.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        self.ips.truncate(MAX_IPS);
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.ips.len() * 10);
        put_varint(&mut out, self.first_seen.max(0) as u64);
        put_varint(&mut out, self.last_seen.max(0) as u64);
        for (ip, seen) in &self.ips {
            match ip {
                IpAddr::V4(v4) => {
                    out.push(4);
                    out.extend_from_slice(&v4.octets());
                }
                IpAddr::V6(v6) => {
                    out.push(6);
                    out.extend_from_slice(&v6.octets());
                }
            }
            put_varint(&mut out, seen.max(&0).unsigned_abs());
        }
        for (from, seen) in &self.envelopes {
            out.push(ENVELOPE_TAG);
            put_varint(&mut out, from.len() as u64);
            out.extend_from_slice(from.as_bytes());
            put_varint(&mut out, seen.max(&0).unsigned_abs());
        }
        out
    }

    pub fn decode(mut input: &[u8]) -> Option<SenderInfo> {
        let first_seen = get_varint(&mut input)? as i64;
        let last_seen = get_varint(&mut input)? as i64;
        let mut ips = Vec::new();
        let mut envelopes = Vec::new();
        while let Some((&tag, rest)) = input.split_first() {
            let len = match tag {
                4 => 4,
                6 => 16,
                ENVELOPE_TAG => {
                    input = rest;
                    let len = usize::try_from(get_varint(&mut input)?).ok()?;
                    let text = std::str::from_utf8(input.get(..len)?).ok()?;
                    input = &input[len..];
                    envelopes.push((text.into(), get_varint(&mut input)? as i64));
                    continue;
                }
                _ => return None,
            };
            let octets = rest.get(..len)?;
            let ip = if len == 4 {
                IpAddr::from(<[u8; 4]>::try_from(octets).ok()?)
            } else {
                IpAddr::from(<[u8; 16]>::try_from(octets).ok()?)
            };
            input = &rest[len..];
            ips.push((ip, get_varint(&mut input)? as i64));
        }
        Some(SenderInfo {
            first_seen,
            last_seen,
            ips,
            envelopes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        for v in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let enc = encode_u64s(&[v, 7]);
            assert_eq!(decode_u64s::<2>(&enc), [v, 7]);
        }
        assert_eq!(decode_u64s::<3>(&encode_u64s(&[5])), [5, 0, 0]);
    }

    #[test]
    fn sender_info_round_trips_and_bounds_ips() {
        let mut info = SenderInfo::default();
        for i in 0..40u8 {
            info.merge(&SenderInfo {
                first_seen: 1000 + i64::from(i),
                last_seen: 1000 + i64::from(i),
                ips: vec![(IpAddr::from([10, 0, 0, i]), 1000 + i64::from(i))],
                envelopes: vec![(format!("x{i}@spam.example").into(), 1000 + i64::from(i))],
            });
        }
        info.note_ip("2001:db8::1".parse().unwrap(), 5000);
        assert_eq!(info.first_seen, 1000);
        assert_eq!(info.last_seen, 1039);
        assert_eq!(info.ips.len(), MAX_IPS);
        assert_eq!(info.ips[0].0.to_string(), "2001:db8::1");
        assert_eq!(info.envelopes.len(), MAX_ENVELOPES);
        assert_eq!(&*info.envelopes[0].0, "x39@spam.example");
        assert_eq!(SenderInfo::decode(&info.encode()), Some(info.clone()));
        // The login itself is not noted; another address is, once.
        info.note("a@b.example", 6000, None, Some("A@B.example"));
        info.note("a@b.example", 6000, None, Some("x39@spam.example"));
        assert_eq!(info.envelopes.len(), MAX_ENVELOPES);
        assert_eq!(info.envelopes[0], ("x39@spam.example".into(), 6000));
        // An entry of an older release (IPs only) still decodes.
        let older = SenderInfo {
            envelopes: Vec::new(),
            ..info.clone()
        };
        assert_eq!(SenderInfo::decode(&older.encode()), Some(older));
        // A cut envelope entry is damage, not a panic.
        let bytes = info.encode();
        assert_eq!(SenderInfo::decode(&bytes[..bytes.len() - 3]), None);
    }

    #[test]
    fn hours_of_a_key_add_up_in_order() {
        let add = |old: &[u8], delta: &[Hour]| add_slots(old, delta, keys::HOURS_PER_KEY);
        let v = add(&[], &[(9, [3, 0]), (17, [1, 2])]);
        let v = add(
            &v,
            &[(0, [1, 0]), (9, [2, 1]), (300, [2, 0]), (671, [5, 0])],
        );
        assert_eq!(
            decode_hours(&v),
            vec![
                (0, [1, 0]),
                (9, [5, 1]),
                (17, [1, 2]),
                (300, [2, 0]),
                (671, [5, 0])
            ]
        );
        // A damaged tail keeps what came before it; an hour past the key's
        // last (671) is damage.
        let mut bad = encode_slots(&[(4, [1, 1])]);
        put_varint(&mut bad, 672);
        bad.extend_from_slice(&[1, 1]);
        assert_eq!(decode_hours(&bad), vec![(4, [1, 1])]);
        assert_eq!(decode_hours(&[0x80]), vec![]);
    }
}
