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
        // Straight to the current layout: schema 5's and 9's steps find
        // nothing.
        let keys = hours_rekeyed(data, keys::HOURLY_V2, |hour, v| {
            vec![(hour, codec::decode_u64s::<2>(v))]
        })?;
        tracing::info!(
            keys,
            "store upgraded from schema 2: hourly counts four weeks per key"
        );
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
            "store upgraded from schema 4: hourly counts four weeks per key"
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
    // Schema 7: sender index entries may list envelope senders. Nothing
    // to convert; the number makes older releases refuse the store rather
    // than misread those entries as damage.
    if found < 8 {
        let ids = ids_shortened(data)?;
        tracing::info!(
            ids,
            "store upgraded to schema 8: idempotency keys of 64 bits"
        );
    }
    if found < 9 {
        let keys = hours_rekeyed(data, keys::HOURLY_V8, |week, v| {
            let per = keys::HOURS_PER_KEY_V8;
            let slots = codec::slots::<2>(v, per);
            slots
                .map(|(at, n)| (keys::unslot(week, at, per), n))
                .collect()
        })?;
        tracing::info!(
            keys,
            "store upgraded to schema 9: hourly counts four weeks per key"
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
    let from = match data.get(MIGRATION)? {
        Some(v) => v
            .as_ref()
            .try_into()
            .map(u32::from_be_bytes)
            .map_or(0, |d| d.saturating_add(1)),
        None => 0,
    };
    let converted = ids_rekeyed(data, from, Some(MIGRATION), |k, _, hashes| {
        hashes.push(ids::hash(seed, &String::from_utf8_lossy(&k[5..])));
    })?;
    data.remove(MIGRATION)?;
    Ok(converted)
}

/// Schemas 2–7 to 8: rewrites the blocks of 128-bit hashes (`I · day ·
/// block`) as blocks of their low 64 bits (see `ids`). Returns the number
/// of ids converted.
fn ids_shortened(data: &sled::Tree) -> Result<u64, StoreError> {
    ids_rekeyed(data, 0, None, |_, v, hashes| {
        let whole = v.chunks_exact(16).filter_map(|c| c.try_into().ok());
        hashes.extend(whole.map(|c| ids::short(u128::from_le_bytes(c))));
    })
}

/// Rewrites the ids kept under [`keys::ID_V7`] from day `from` on as the
/// current blocks (`hashes` adds the hashes of one old key and value), a
/// day per batch that removes the day's old keys and sets `progress` (when
/// given) to the day: the old keys left, after the progress, are exactly
/// what remains to convert, so an interrupted upgrade resumes where it
/// stopped. Returns the number of ids converted.
fn ids_rekeyed(
    data: &sled::Tree,
    mut from: u32,
    progress: Option<&[u8]>,
    hashes: impl Fn(&[u8], &[u8], &mut Vec<u64>),
) -> Result<u64, StoreError> {
    let mut converted = 0;
    loop {
        let first = data
            .range(keys::day_bound(keys::ID_V7, from).to_vec()..vec![keys::ID_V7 + 1])
            .next()
            .transpose()?;
        let Some(day) = first.and_then(|(k, _)| keys::split_day_key(&k).map(|(d, _)| d)) else {
            break;
        };
        let mut batch = sled::Batch::default();
        let mut day_hashes = Vec::new();
        for item in data.scan_prefix(keys::day_bound(keys::ID_V7, day)) {
            let (k, v) = item?;
            batch.remove(k.as_ref());
            hashes(&k, &v, &mut day_hashes);
        }
        converted += day_hashes.len() as u64;
        // After the removals: a batch keeps the last write of a key.
        ids::write_day(&mut batch, day, &day_hashes);
        if let Some(key) = progress {
            batch.insert(key, &day.to_be_bytes()[..]);
        }
        data.apply_batch(batch)?;
        if day == u32::MAX {
            break;
        }
        from = day + 1;
    }
    Ok(converted)
}

/// Old hourly keys converted per batch (rounded up to a whole sender).
/// Upgrading a store of 36 days × 30,000 accounts (1.4 million old keys):
/// batches of 5,000 took 21 s and 116 MiB, of 20,000 26 s and 247 MiB.
const HOURS_PER_BATCH: usize = 5_000;

/// Rewrites the hourly counts of an older layout, keys `old · sender · 0 ·
/// number` (schema 2: a key per hour; schemas 3–4: a key per UTC day, see
/// [`keys::HOURLY_V4`]; schemas 5–8: a key per week), as the current keys
/// per sender and four weeks; `hours`
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
        add_and_apply(data, batch, slots, keys::HOURS_PER_KEY)?;
        converted += taken as u64;
    }
}

/// Old daily keys converted per batch (see [`HOURS_PER_BATCH`]).
const DAYS_PER_BATCH: usize = 5_000;

/// Schema 5 to 6: the counts of a day and account (`old · day · account`)
/// become slots of the account's key for that period (`new · period ·
/// account`, see [`keys::DAYS_PER_KEY`]). Each batch removes the old keys
/// it converts and adds their counts to the new keys, reading what earlier
/// batches wrote there, so the old keys left are exactly what remains to
/// convert. Returns the number of old keys converted.
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
        add_and_apply(data, batch, periods, keys::DAYS_PER_KEY)?;
        converted += taken as u64;
    }
}

/// Adds to `batch` the new keys' slots (keys of `per` units) added to what
/// earlier batches stored there, and applies it.
fn add_and_apply<const N: usize>(
    data: &sled::Tree,
    mut batch: sled::Batch,
    slots: BTreeMap<Vec<u8>, Vec<codec::Slot<N>>>,
    per: u32,
) -> Result<(), StoreError> {
    for (key, slots) in slots {
        let stored = data.get(&key)?.unwrap_or_default();
        batch.insert(key, codec::add_slots(&stored, &slots, per));
    }
    data.apply_batch(batch)?;
    Ok(())
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
mod tests;
