//! Schema upgrades, run when a store is opened: each step rewrites one
//! key space of an older release in batches that can be interrupted, so a
//! store killed mid-upgrade finishes the upgrade at its next start.

use super::{SCHEMA_VERSION, StoreError, codec, ids, keys};
use std::collections::BTreeMap;
use std::path::Path;

/// Reads the store's schema version and id-hash seed (creating them in a
/// new store), upgrades an older store, and returns the seed.
pub(super) fn open_schema(
    meta: &sled::Tree,
    data: &sled::Tree,
    path: &Path,
) -> Result<u64, StoreError> {
    let stored = meta.get("id_seed")?;
    let seed = match stored.and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok()) {
        Some(bytes) => u64::from_be_bytes(bytes),
        None => {
            let seed = random_seed();
            meta.insert("id_seed", &seed.to_be_bytes())?;
            seed
        }
    };
    let found = match meta.get("schema_version")? {
        None => SCHEMA_VERSION,
        Some(v) => v
            .as_ref()
            .try_into()
            .map(u64::from_be_bytes)
            .unwrap_or(u64::MAX),
    };
    if found > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            path: path.to_path_buf(),
            found,
        });
    }
    if found < 2 {
        let ids = ids_in_blocks(data, seed)?;
        tracing::info!(
            ids,
            "store upgraded to schema 2: idempotency keys in blocks"
        );
    }
    if found < 3 {
        // Straight to the current layout: schema 5's step finds nothing.
        let keys = hours_rekeyed(data, keys::HOURLY_V2, |hour, v| {
            vec![(hour, codec::decode_u64s::<2>(v))]
        })?;
        tracing::info!(keys, "store upgraded: hourly counts a week per key");
    }
    if found < 4 {
        let alerts = alerts_by_sender(data)?;
        tracing::info!(
            alerts,
            "store upgraded to schema 4: the alert log indexed by account"
        );
    }
    if found < 5 {
        let keys = hours_rekeyed(data, keys::HOURLY_V4, |day, v| {
            let first = day.saturating_mul(24);
            let hours = codec::decode_hours(v).into_iter();
            hours
                .map(|(h, n)| (first.saturating_add(u32::from(h)), n))
                .collect()
        })?;
        tracing::info!(
            keys,
            "store upgraded to schema 5: hourly counts a week per key"
        );
    }
    if found < 6 {
        let daily = days_rekeyed(data, keys::DAILY_V5, keys::DAILY, |v| {
            codec::decode_counts(v).0
        })?;
        let failures = days_rekeyed(data, keys::FAILURES_V5, keys::FAILURES, |v| {
            codec::decode_u64s::<1>(v)
        })?;
        tracing::info!(
            daily,
            failures,
            "store upgraded to schema 6: daily counts four weeks per key"
        );
    }
    meta.insert("schema_version", &SCHEMA_VERSION.to_be_bytes())?;
    Ok(seed)
}

/// A random seed; the time and process id if the system has no randomness.
fn random_seed() -> u64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        return t ^ u64::from(std::process::id()).rotate_left(32);
    }
    u64::from_le_bytes(b)
}

/// Key of the migration's progress: days up to its value are converted.
const MIGRATION: &[u8] = b"M ids";

/// Schema 1 to 2: rewrites the one-key-per-id layout (`I · day · id`,
/// empty value) as blocks of hashes, a day per batch with the progress
/// key in it, so an interrupted migration resumes where it stopped.
/// Returns the number of ids converted.
fn ids_in_blocks(data: &sled::Tree, seed: u64) -> Result<u64, StoreError> {
    let mut from = match data.get(MIGRATION)? {
        Some(v) => v
            .as_ref()
            .try_into()
            .map(u32::from_be_bytes)
            .map_or(0, |d| d.saturating_add(1)),
        None => 0,
    };
    let mut converted = 0;
    loop {
        let first = data
            .range(keys::day_bound(keys::ID, from).to_vec()..vec![keys::ID + 1])
            .next()
            .transpose()?;
        let Some(day) = first.and_then(|(k, _)| keys::split_day_key(&k).map(|(d, _)| d)) else {
            break;
        };
        let mut batch = sled::Batch::default();
        let mut hashes = Vec::new();
        for item in data.scan_prefix(keys::day_bound(keys::ID, day)) {
            let (k, _) = item?;
            batch.remove(k.as_ref());
            hashes.push(ids::hash(seed, &String::from_utf8_lossy(&k[5..])));
        }
        converted += hashes.len() as u64;
        // After the removals: a batch keeps the last write of a key.
        for (number, chunk) in (0u32..).zip(hashes.chunks(ids::BLOCK_IDS)) {
            let block: Vec<u8> = chunk.iter().flat_map(|h| h.to_le_bytes()).collect();
            batch.insert(&ids::block_key(day, number)[..], block);
        }
        batch.insert(MIGRATION, &day.to_be_bytes()[..]);
        data.apply_batch(batch)?;
        from = day.saturating_add(1);
        if day == u32::MAX {
            break;
        }
    }
    data.remove(MIGRATION)?;
    Ok(converted)
}

/// Old hourly keys converted per batch (rounded up to a whole sender).
/// Upgrading a store of 36 days × 30,000 accounts (1.4 million old keys):
/// batches of 5,000 took 21 s and 116 MiB, of 20,000 26 s and 247 MiB.
const HOURS_PER_BATCH: usize = 5_000;

/// Rewrites the hourly counts of an older layout, keys `old · sender · 0 ·
/// number` (schema 2: a key per hour; schemas 3–4: a key per UTC day, see
/// [`keys::HOURLY_V4`]), as the current key per sender and week; `hours`
/// reads a key's number and value as (hour, [messages, failed logins]).
/// Each batch removes all old keys of its senders and writes their new
/// ones, so the old keys left are exactly what remains to convert. Returns
/// the number of old keys converted.
fn hours_rekeyed(
    data: &sled::Tree,
    old: u8,
    hours: impl Fn(u32, &[u8]) -> Vec<(u32, [u64; 2])>,
) -> Result<u64, StoreError> {
    let mut converted = 0;
    loop {
        let mut batch = sled::Batch::default();
        let mut slots: BTreeMap<Vec<u8>, Vec<codec::Hour>> = BTreeMap::new();
        let mut taken = 0;
        let mut last_sender: Vec<u8> = Vec::new();
        for item in data.scan_prefix([old]) {
            let (k, v) = item?;
            // The prefix, the sender, 0x00, the number.
            let sender = k.len().checked_sub(5).and_then(|end| k.get(1..end));
            let (Some(sender), Some(number)) = (sender, keys::hourly_number(&k)) else {
                batch.remove(k.as_ref());
                continue;
            };
            if taken >= HOURS_PER_BATCH && sender != last_sender.as_slice() {
                break;
            }
            taken += 1;
            batch.remove(k.as_ref());
            if sender != last_sender.as_slice() {
                last_sender = sender.to_vec();
            }
            let sender = String::from_utf8_lossy(sender);
            for (hour, counts) in hours(number, &v) {
                let (number, at) = keys::slot(hour, keys::HOURS_PER_KEY);
                let key = keys::hourly_key(&sender, number);
                slots.entry(key).or_default().push((at, counts));
            }
        }
        if taken == 0 {
            data.apply_batch(batch)?;
            return Ok(converted);
        }
        for (key, mut hours) in slots {
            // Merged in hour order (several old keys may feed one new key).
            hours.sort_unstable_by_key(|h| h.0);
            let old = data.get(&key)?;
            let value = codec::add_slots(&old.unwrap_or_default(), &hours, keys::HOURS_PER_KEY);
            batch.insert(key, value);
        }
        data.apply_batch(batch)?;
        converted += taken as u64;
    }
}

/// Old daily keys converted per batch (see [`HOURS_PER_BATCH`]).
const DAYS_PER_BATCH: usize = 5_000;

/// Schema 5 to 6: the counts of a day and account (`old · day · account`)
/// become slots of the account's key for that period (`new · period ·
/// account`, see [`keys::DAYS_PER_KEY`]). Each batch removes the old keys it converts and adds their
/// counts to the new keys, reading what earlier batches wrote there, so the
/// old keys left are exactly what remains to convert. Returns the number of
/// old keys converted.
fn days_rekeyed<const N: usize>(
    data: &sled::Tree,
    old: u8,
    new: u8,
    counts: impl Fn(&[u8]) -> [u64; N],
) -> Result<u64, StoreError> {
    let mut converted = 0;
    loop {
        let mut batch = sled::Batch::default();
        let mut periods: BTreeMap<Vec<u8>, Vec<codec::Slot<N>>> = BTreeMap::new();
        let mut taken = 0;
        for item in data.scan_prefix([old]).take(DAYS_PER_BATCH) {
            let (k, v) = item?;
            batch.remove(k.as_ref());
            taken += 1;
            let Some((day, account)) = keys::split_day_key(&k) else {
                continue;
            };
            let (period, at) = keys::slot(day, keys::DAYS_PER_KEY);
            let key = keys::day_key(new, period, account);
            periods.entry(key).or_default().push((at, counts(&v)));
        }
        if taken == 0 {
            return Ok(converted);
        }
        for (key, mut days) in periods {
            days.sort_unstable_by_key(|d| d.0);
            let stored = data.get(&key)?.unwrap_or_default();
            batch.insert(key, codec::add_slots(&stored, &days, keys::DAYS_PER_KEY));
        }
        data.apply_batch(batch)?;
        converted += taken as u64;
    }
}

const ALERTS_PER_BATCH: usize = 10_000;

/// Schema 3 to 4: indexes the alert log by account. Indexing an alert
/// twice changes nothing, so an interrupted upgrade simply runs again.
fn alerts_by_sender(data: &sled::Tree) -> Result<u64, StoreError> {
    let mut batch = sled::Batch::default();
    let (mut pending, mut indexed) = (0, 0);
    for item in data.scan_prefix([keys::ALERT]) {
        let (_, v) = item?;
        let Ok(r) = serde_json::from_slice::<super::Recorded>(&v) else {
            continue;
        };
        super::alerts::index_alert(&mut batch, &r);
        pending += 1;
        if pending == ALERTS_PER_BATCH {
            data.apply_batch(std::mem::take(&mut batch))?;
            indexed += pending as u64;
            pending = 0;
        }
    }
    data.apply_batch(batch)?;
    Ok(indexed + pending as u64)
}

#[cfg(test)]
mod tests {
    use super::super::ids::tests::events;
    use super::super::tests::reopen;
    use super::*;
    use crate::store::{Store, StoreOptions, Writer};
    use chrono::Utc;

    /// A store written at schema `version` by `fill`, then opened (and
    /// upgraded) by this release.
    fn upgraded(dir: &Path, version: u64, fill: impl FnOnce(&Store)) -> Store {
        let opts = StoreOptions::for_test(dir, "UTC", 30);
        {
            let s = reopen(&opts).unwrap();
            fill(&s);
            let meta = s.db.open_tree("meta").unwrap();
            meta.insert("schema_version", &version.to_be_bytes())
                .unwrap();
            s.flush().unwrap();
        }
        let s = reopen(&opts).unwrap();
        let meta = s.db.open_tree("meta").unwrap();
        let now = meta.get("schema_version").unwrap().unwrap();
        assert_eq!(now.as_ref(), &SCHEMA_VERSION.to_be_bytes());
        s
    }

    #[test]
    fn a_schema_1_store_keeps_its_ids() {
        let dir = tempfile::tempdir().unwrap();
        let now = Utc::now();
        let today = keys::day_number(keys::local_date(now, chrono_tz::Tz::UTC));
        let s = upgraded(dir.path(), 1, |s| {
            // The schema 1 layout: one empty-valued key per id.
            for day in [today - 1, today] {
                for i in 0..5_000 {
                    let key = keys::day_key(keys::ID, day, &format!("mx1/{i}"));
                    s.data.insert(key, &[][..]).unwrap();
                }
            }
        });
        assert_eq!(s.count_ids(), 10_000);
        assert_eq!(
            s.count_keys(keys::ID),
            2 * 5_000usize.div_ceil(ids::BLOCK_IDS)
        );
        let mut w = Writer::new(s.clone());
        let out = w.apply(&[&events(0, 4_990..5_010)], &[], now).unwrap();
        assert_eq!((out[0].accepted, out[0].duplicates), (10, 10));
        let out = w.apply(&[&events(1, 0..3)], &[], now).unwrap();
        assert_eq!(out[0].duplicates, 3);
    }

    #[test]
    fn a_schema_3_alert_log_is_indexed_by_account_and_purged_with_it() {
        use super::super::tests::log_legacy_alert;
        let dir = tempfile::tempdir().unwrap();
        let now = Utc::now();
        // "a@x" is a prefix of "a@x2"; seq 3 is older than the others.
        let log = [
            ("a@x", 30),
            ("a@x2", 20),
            ("a@x", 400),
            ("b@y", 10),
            ("a@x", 5),
        ];
        let s = upgraded(dir.path(), 3, |s| {
            for (i, (sender, hours_ago)) in log.iter().enumerate() {
                let at = now - chrono::TimeDelta::hours(*hours_ago);
                log_legacy_alert(s, i as u64 + 1, sender, at, now);
            }
        });
        let seqs = |sender, limit| -> Vec<u64> {
            let found = s.alerts_of(sender, limit).unwrap();
            found.iter().map(|r| r.seq).collect()
        };
        assert_eq!(seqs("a@x", 10), [5, 3, 1], "newest first");
        assert_eq!(seqs("a@x", 2), [5, 3]);
        assert_eq!(seqs("a@x2", 10), [2]);
        assert_eq!(seqs("nobody@x", 10), Vec::<u64>::new());
        // Purging the alerts older than 100 hours removes their entries.
        let oldest = (now - chrono::TimeDelta::hours(100)).timestamp();
        s.purge_detector(oldest, now.timestamp()).unwrap();
        assert_eq!(seqs("a@x", 10), [5, 1]);
        assert_eq!(s.count_keys(keys::ALERT_BY_SENDER), 4);
    }

    #[test]
    fn schema_2_hourly_keys_become_a_key_per_week() {
        let dir = tempfile::tempdir().unwrap();
        let day = 20_000u32;
        // (sender, hour, messages, failures); "a@x" is a prefix of "a@x2".
        let old: Vec<(String, u32, u64, u64)> = (0..3 * HOURS_PER_BATCH as u32 / 2)
            .map(|i| {
                (
                    format!("u{}@x", i / 20),
                    day * 24 + i % 20,
                    1 + u64::from(i % 7),
                    0,
                )
            })
            .chain([
                ("a@x".into(), day * 24 + 23, 4, 1),
                ("a@x".into(), (day + 1) * 24, 2, 0),
                ("a@x2".into(), day * 24 + 23, 9, 0),
            ])
            .collect();
        let s = upgraded(dir.path(), 2, |s| {
            for (sender, hour, m, f) in &old {
                let mut k = vec![keys::HOURLY_V2];
                k.extend_from_slice(sender.as_bytes());
                k.push(0);
                k.extend_from_slice(&hour.to_be_bytes());
                s.data.insert(k, codec::encode_u64s(&[*m, *f])).unwrap();
            }
        });
        assert_eq!(s.count_keys(keys::HOURLY_V2), 0);
        for sender in ["u0@x", "u17@x", "a@x", "a@x2"] {
            let mut expected: Vec<(u32, [u64; 2])> = old
                .iter()
                .filter(|o| o.0 == sender)
                .map(|o| (o.1, [o.2, o.3]))
                .collect();
            expected.sort();
            assert_eq!(s.hourly(sender).unwrap(), expected, "{sender}");
        }
        // 1,500 senders with hours on one day, "a@x" on two of one week,
        // "a@x2" on one.
        let senders = (3 * HOURS_PER_BATCH / 2).div_ceil(20);
        assert_eq!(s.count_keys(keys::HOURLY), senders + 2);
    }

    #[test]
    fn schema_5_daily_keys_become_a_key_per_period() {
        use crate::counts::TlsCounts;
        let dir = tempfile::tempdir().unwrap();
        // Days 20,018-20,021 span two periods (20,020 begins one); 12,000
        // daily keys take several batches.
        let days = 20_018u32..20_022;
        let counts = |i: u32, day: u32| TlsCounts([u64::from(i % 3), 1, 0, 0, u64::from(day % 2)]);
        let s = upgraded(dir.path(), 5, |s| {
            for day in days.clone() {
                for i in 0..3_000 {
                    let k = keys::day_key(keys::DAILY_V5, day, &format!("u{i}@x"));
                    s.data
                        .insert(k, codec::encode_counts(&counts(i, day)))
                        .unwrap();
                }
                for i in 0..10u64 {
                    let k = keys::day_key(keys::FAILURES_V5, day, &format!("f{i}@x"));
                    s.data.insert(k, codec::encode_u64s(&[i + 1])).unwrap();
                }
            }
        });
        for old in [keys::DAILY_V5, keys::FAILURES_V5] {
            assert_eq!(s.count_keys(old), 0);
        }
        assert_eq!(s.count_keys(keys::DAILY), 2 * 3_000);
        assert_eq!(s.count_keys(keys::FAILURES), 2 * 10);
        let (first, last) = (keys::day_date(days.start), keys::day_date(days.end - 1));
        let mut rows = Vec::new();
        s.for_each_daily(first, last, |d, snd, c| rows.push((d, snd.to_owned(), *c)))
            .unwrap();
        rows.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        let mut want: Vec<_> = days
            .clone()
            .flat_map(|d| (0..3_000).map(move |i| (d, format!("u{i}@x"), counts(i, d))))
            .collect();
        want.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        assert!(rows == want, "daily counts changed by the upgrade");
        let mut failures = 0;
        s.for_each_failure(first, last, |_, user, n| {
            assert_eq!(n, 1 + user[1..user.len() - 2].parse::<u64>().unwrap());
            failures += 1;
        })
        .unwrap();
        assert_eq!(failures, 4 * 10);
    }

    #[test]
    fn schema_4_hourly_keys_a_day_each_become_a_key_per_week() {
        let dir = tempfile::tempdir().unwrap();
        // Days 20,004-20,007: a week ends after 20,005 (hour 480,144).
        let days = 20_004u32..20_008;
        let senders = 6_000u32;
        let hours_of = |i: u32, day: u32| -> Vec<codec::Hour> {
            vec![
                ((i % 24) as u8, [u64::from(1 + i % 5), 0]),
                (23, [1, u64::from(day % 3)]),
            ]
        };
        let s = upgraded(dir.path(), 4, |s| {
            for i in 0..senders {
                for day in days.clone() {
                    let mut k = vec![keys::HOURLY_V4];
                    k.extend_from_slice(format!("u{i}@x").as_bytes());
                    k.push(0);
                    k.extend_from_slice(&day.to_be_bytes());
                    s.data
                        .insert(k, codec::encode_slots(&hours_of(i, day)))
                        .unwrap();
                }
            }
        });
        assert_eq!(s.count_keys(keys::HOURLY_V4), 0);
        // Two weeks per sender, converted over several batches.
        assert!(senders as usize * days.len() > HOURS_PER_BATCH);
        assert_eq!(s.count_keys(keys::HOURLY), 2 * senders as usize);
        for i in [0, 17, 5_999] {
            let mut expected: Vec<(u32, [u64; 2])> = days
                .clone()
                .flat_map(|day| {
                    let hours = hours_of(i, day).into_iter();
                    hours.map(move |(h, n)| (day * 24 + u32::from(h), n))
                })
                .collect();
            expected.sort();
            expected.dedup_by(|b, a| {
                let same = a.0 == b.0;
                if same {
                    a.1 = [a.1[0] + b.1[0], a.1[1] + b.1[1]];
                }
                same
            });
            assert_eq!(s.hourly(&format!("u{i}@x")).unwrap(), expected, "u{i}@x");
        }
    }
}
