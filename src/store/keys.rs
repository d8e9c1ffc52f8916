//! Key layout of the `data` tree. Everything lives in one tree so that one
//! sled batch commits counts, idempotency keys, the sender index and log
//! cursors atomically.
//!
//! | prefix | key                         | value                          |
//! |--------|-----------------------------|--------------------------------|
//! | `d`    | period · sender             | per day: messages per TLS      |
//! | `f`    | period · sender             | per day: failed logins         |
//! | `u`    | sender · 0x00 · span        | per hour: messages, failures   |
//! | `S`    | sender                      | first/last seen, client IPs    |
//! | `i`    | day · block number          | id hashes (see `ids`)          |
//! | `C`    | source name (log path)      | log cursor (JSON)              |
//! | `A`    | `s` sender / `c` key        | detector state / cool-down end |
//! | `L`    | sequence number             | alert (JSON), in raising order |
//! | `J`    | (the prefix alone)          | journal folding progress       |
//!
//! `day` is the day number (days since 1970-01-01 in the configured time
//! zone), `period` a day number divided by [`DAYS_PER_KEY`] (four weeks)
//! and `span` a UTC hour number divided by [`HOURS_PER_KEY`] (four weeks
//! too), all
//! big-endian `u32` so that byte order is time order and retention is a
//! range delete. Senders never contain control characters (the event model
//! refuses them), so 0x00 ends a sender.
//!
//! Counts are kept many days per key because sled holds a page-table entry
//! for every node of the tree, paged out or not, and its leaves hold at
//! most 16 keys: every key costs memory (100–300 bytes per leaf) for as
//! long as the store keeps it. With a key per account and day, 36 days of
//! the import benchmark's log were 1.4 million keys and the page table
//! alone held ≈ 30 MB. Most accounts send on a few days and in a few hours
//! of a week, so values stay small: daily counts take four weeks per key
//! (a report of 90 days × 10,000 senders is built in 204 ms, against
//! 200–274 ms with a week per key; 36 days of the import benchmark's log
//! are 276,000 keys), and so do hourly counts. sled's cost of writing a
//! key goes with the number of keys, not their bytes: the hourly counts
//! of the 100,000-account benchmark a week per key were 0.94–0.95 GB of
//! store and 2.22 GB written by its import, four weeks per key 0.87 and
//! 2.02–2.04 (`cargo bench --bench scale`, three runs and two), and the 1 GB
//! log's import on one core took 2.93–3.27 s instead of 3.14–3.37 (`cargo
//! bench --bench import`, two runs each, alternated).

pub const DAILY: u8 = b'd';
pub(crate) const FAILURES: u8 = b'f';
/// Schemas up to 5: accepted messages and failed logins, one key per day
/// and sender (read by the migration only).
pub(crate) const DAILY_V5: u8 = b'D';
pub(crate) const FAILURES_V5: u8 = b'F';
pub const HOURLY: u8 = b'u';
/// Schemas 5 to 8: hourly counts, a week per key (read by the migration
/// only).
pub(crate) const HOURLY_V8: u8 = b'w';
/// Schemas 3 and 4: hourly counts, one key per sender and UTC day (read by
/// the migration only).
pub(crate) const HOURLY_V4: u8 = b'h';
/// Schema 2's hourly counts, one key per hour (read by the migration only).
pub(crate) const HOURLY_V2: u8 = b'H';
pub const SENDER: u8 = b'S';
pub const ID: u8 = b'i';
/// Schemas 2 to 7: id hashes of 16 bytes, in blocks of 4,096 (schema 1: a
/// key per id); read by the migration only.
pub(crate) const ID_V7: u8 = b'I';
pub(crate) const CURSOR: u8 = b'C';
pub const DETECT: u8 = b'A';
pub(crate) const ALERT: u8 = b'L';
/// The alert log by account: `l · sender · 0 · seq` → the alert's time.
pub(crate) const ALERT_BY_SENDER: u8 = b'l';
pub(crate) const JOURNAL: u8 = b'J';

/// `prefix · number · text`, the shape of `d` and `f` keys (a period number)
/// and of `i` keys (a day number).
pub fn day_key(prefix: u8, day: u32, text: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(5 + text.len());
    k.push(prefix);
    k.extend_from_slice(&day.to_be_bytes());
    k.extend_from_slice(text.as_bytes());
    k
}

/// Splits a `d`/`f`/`i` key into number and text.
pub(crate) fn split_day_key(key: &[u8]) -> Option<(u32, &str)> {
    let day = u32::from_be_bytes(key.get(1..5)?.try_into().ok()?);
    Some((day, std::str::from_utf8(&key[5..]).ok()?))
}

/// Smallest key of `prefix` at or after number `day`.
pub(crate) fn day_bound(prefix: u8, day: u32) -> [u8; 5] {
    let d = day.to_be_bytes();
    [prefix, d[0], d[1], d[2], d[3]]
}

/// Days in one `d` or `f` key (see the module doc).
pub(crate) const DAYS_PER_KEY: u32 = 28;
/// Hours in one hourly key.
pub(crate) const HOURS_PER_KEY: u32 = 672;
/// Schemas 5 to 8: hours in one hourly key.
pub(crate) const HOURS_PER_KEY_V8: u32 = 168;
// A unit's place in its key is a `u16` (see [`slot`] and the slotted
// values of `codec`): a key of more units would fold them onto each other.
const _: () = assert!(DAYS_PER_KEY <= 1 << 16 && HOURS_PER_KEY <= 1 << 16);

/// The number of the key holding unit `n` (a day, an hour) in keys of
/// `per` units each, and the unit's place in that key.
pub fn slot(n: u32, per: u32) -> (u32, u16) {
    (n / per, (n % per) as u16)
}

/// Inverse of [`slot`].
pub(crate) fn unslot(number: u32, at: u16, per: u32) -> u32 {
    number.saturating_mul(per).saturating_add(u32::from(at))
}

/// The hourly counts of one sender in the [`HOURS_PER_KEY`] hours of key
/// `number` (see [`slot`]).
pub fn hourly_key(sender: &str, number: u32) -> Vec<u8> {
    hourly_key_in(HOURLY, sender, number)
}

/// `prefix · sender · 0 · number`: the shape of the hourly keys of this
/// layout and of the older ones the migration reads.
pub(crate) fn hourly_key_in(prefix: u8, sender: &str, number: u32) -> Vec<u8> {
    let mut k = prefix_of(prefix, sender);
    k.extend_from_slice(&number.to_be_bytes());
    k
}

/// Prefix of all hourly keys of one sender.
pub(crate) fn hourly_prefix(sender: &str) -> Vec<u8> {
    prefix_of(HOURLY, sender)
}

/// `prefix · sender · 0`, with room for a number after it.
fn prefix_of(prefix: u8, sender: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(6 + sender.len());
    k.push(prefix);
    k.extend_from_slice(sender.as_bytes());
    k.push(0);
    k
}

/// The number at the end of an hourly key: the key number (see [`slot`];
/// a week's in schemas 5–8), the UTC day in schemas 3–4, the hour in
/// schema 2.
pub(crate) fn hourly_number(key: &[u8]) -> Option<u32> {
    let tail = key.len().checked_sub(4)?;
    Some(u32::from_be_bytes(key[tail..].try_into().ok()?))
}

pub(crate) fn cursor_key(source: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + source.len());
    k.push(CURSOR);
    k.extend_from_slice(source.as_bytes());
    k
}

/// `A s sender`: an account's persisted detector state.
pub(crate) fn detect_sender_key(sender: &str) -> Vec<u8> {
    [&[DETECT, b's'][..], sender.as_bytes()].concat()
}

/// `A c key`: when an auth-failure alert under `key` stops cooling down.
pub(crate) fn cooldown_key(key: &str) -> Vec<u8> {
    [&[DETECT, b'c'][..], key.as_bytes()].concat()
}

pub(crate) fn alert_key(seq: u64) -> [u8; 9] {
    let mut k = [ALERT; 9];
    k[1..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// The `l` key of alert `seq` about `sender`.
pub(crate) fn alert_by_sender_key(sender: &str, seq: u64) -> Vec<u8> {
    let mut k = alert_by_sender_prefix(sender);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The prefix of `sender`'s `l` keys.
pub(crate) fn alert_by_sender_prefix(sender: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(sender.len() + 10);
    k.push(ALERT_BY_SENDER);
    k.extend_from_slice(sender.as_bytes());
    k.push(0);
    k
}

/// The alert number at the end of an `l` key.
pub(crate) fn alert_by_sender_seq(key: &[u8]) -> Option<u64> {
    let at = key.len().checked_sub(8)?;
    Some(u64::from_be_bytes(key.get(at..)?.try_into().ok()?))
}

pub(crate) fn alert_seq(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.get(1..9)?.try_into().ok()?))
}

/// The `J` key/value: how far folding the ingest journal got.
pub(crate) fn journal_progress(p: super::writer::fold::Progress) -> ([u8; 1], [u8; 24]) {
    let mut v = [0; 24];
    v[..8].copy_from_slice(&p.generation.to_be_bytes());
    v[8..16].copy_from_slice(&p.records.to_be_bytes());
    v[16..].copy_from_slice(&p.parts.to_be_bytes());
    ([JOURNAL], v)
}

/// Inverse of [`journal_progress`]'s value.
pub(crate) fn split_journal_progress(v: &[u8]) -> Option<super::writer::fold::Progress> {
    let at = |i: usize| Some(u64::from_be_bytes(v.get(i..i + 8)?.try_into().ok()?));
    Some(super::writer::fold::Progress {
        generation: at(0)?,
        records: at(8)?,
        parts: at(16)?,
    })
}

pub fn sender_key(sender: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + sender.len());
    k.push(SENDER);
    k.extend_from_slice(sender.as_bytes());
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_keys_sort_by_day_then_sender() {
        let a = day_key(DAILY, 20_000, "zed");
        let b = day_key(DAILY, 20_001, "abe");
        assert!(a < b);
        assert_eq!(split_day_key(&b), Some((20_001, "abe")));
        assert!(day_bound(DAILY, 20_001).as_slice() > a.as_slice());
    }

    #[test]
    fn hourly_prefix_does_not_match_longer_sender() {
        let k = hourly_key("alice2", 5);
        assert!(!k.starts_with(&hourly_prefix("alice")));
        assert_eq!(hourly_number(&hourly_key("alice", 77)), Some(77));
    }

    #[test]
    fn units_map_to_a_key_and_back() {
        for per in [DAYS_PER_KEY, HOURS_PER_KEY, HOURS_PER_KEY_V8] {
            for n in [
                0,
                6,
                7,
                167,
                168,
                255,
                256,
                671,
                672,
                673,
                489_960,
                u32::MAX,
            ] {
                let (number, at) = slot(n, per);
                assert!(u32::from(at) < per);
                assert_eq!(unslot(number, at, per), n);
            }
        }
        assert_eq!(slot(673, HOURS_PER_KEY), (1, 1));
        assert_eq!(slot(671, HOURS_PER_KEY), (0, 671));
        assert_eq!(slot(20_020, DAYS_PER_KEY), (715, 0));
    }
}
