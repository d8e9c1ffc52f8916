//! What sled alone costs to write the store an import leaves, on one core:
//! the floor under any import into this store layout, whatever the parser,
//! the counting and the detectors cost.
//!
//! The keys and values of the imported store are read into memory first,
//! then written into a fresh store opened as an import opens it
//! ([`open_store`] with its default 2 MiB page cache), on a thread pinned
//! to the first core
//! (sled's own threads, started from it, share the pin):
//! - as the store holds them: each account's keys (daily and hourly
//!   counts, failed logins, its index entry) in batches of 64 accounts, in
//!   account order, as the import's write-out does;
//! - the same bytes with one key per account and four-week period (daily
//!   and hourly counts and failed logins together, the index entry
//!   apart), the next layout of fewer keys;
//! - the same bytes with one key per account, the fewest keys possible.
//!
//! The other keys (ids, alerts, detector state) follow in batches of 256
//! either way.

use crate::common::open_store;
use smtp_auth_insight::store::keys;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

/// Accounts per batch, as the import's write-out (`PART_ACCOUNTS` in
/// `src/store/writer/bulk.rs`).
const PART_ACCOUNTS: usize = 64;

type Pairs = Vec<(Vec<u8>, Vec<u8>)>;
/// How a batch of accounts' keys is laid out for writing.
type Layout = fn(&[&Pairs]) -> Pairs;

/// Prints the time sled takes to write the store at `db` (a store's
/// `db` directory) into a fresh one under `scratch`, both ways.
pub fn print(db: &Path, scratch: &Path) {
    let (accounts, rest) = read(db);
    let accounts: Vec<&Pairs> = accounts.values().collect();
    let keys: usize = accounts.iter().map(|a| a.len()).sum::<usize>() + rest.len();
    let layouts: [(&str, Layout); 3] = [
        ("as stored", |part| {
            part.iter().flat_map(|a| a.iter().cloned()).collect()
        }),
        ("one key per account and period", |part| {
            part.iter().flat_map(|a| per_period(a)).collect()
        }),
        ("one key per account", |part| {
            part.iter().map(|a| one_key(a)).collect()
        }),
    ];
    for (name, layout) in layouts {
        let batches: Vec<Pairs> = accounts.chunks(PART_ACCOUNTS).map(layout).collect();
        let written: usize = batches.iter().map(Vec::len).sum::<usize>() + rest.len();
        let dir = scratch.join("floor");
        let secs = std::thread::scope(|s| {
            s.spawn(|| {
                pin_to_first_core();
                write(&dir, &batches, &rest)
            })
            .join()
            .expect("floor thread")
        });
        let _ = std::fs::remove_dir_all(&dir);
        println!(
            "sled alone, this store ({keys} keys, {} accounts) {name}: {written} keys \
             written in {secs:.2} s on one core",
            accounts.len()
        );
    }
}

/// The data tree's keys: by account those of its counts and index entry,
/// the others apart.
fn read(db: &Path) -> (BTreeMap<Vec<u8>, Pairs>, Pairs) {
    let src = sled::Config::new().path(db).open().expect("imported store");
    let data = src.open_tree("data").expect("data tree");
    let mut accounts: BTreeMap<Vec<u8>, Pairs> = BTreeMap::new();
    let mut rest = Vec::new();
    for kv in data.iter() {
        let (k, v) = kv.expect("read");
        let account = match k.first() {
            // prefix · period · account
            Some(&keys::DAILY | b'f') => k.get(5..),
            // prefix · account · 0 · span
            Some(&keys::HOURLY) => k.get(1..).and_then(|t| t.split(|&b| b == 0).next()),
            // prefix · account
            Some(&keys::SENDER) => k.get(1..),
            _ => None,
        };
        match account {
            Some(a) => accounts.entry(a.to_vec()).or_default(),
            None => &mut rest,
        }
        .push((k.to_vec(), v.to_vec()));
    }
    (accounts, rest)
}

/// An account's keys and values as one value, under its first key.
fn one_key(pairs: &Pairs) -> (Vec<u8>, Vec<u8>) {
    let key = pairs.first().map(|p| p.0.clone()).unwrap_or_default();
    let value = pairs.iter().flat_map(|(k, v)| k.iter().chain(v)).copied();
    (key, value.collect())
}

/// An account's keys and values with those of one period as one value:
/// the daily keys' period (`prefix · period · account`) and the hourly
/// keys' span (`prefix · account · 0 · span`) are both four weeks from
/// the same origin. Its index entry stays a key of its own.
fn per_period(pairs: &Pairs) -> Pairs {
    let mut periods: BTreeMap<[u8; 4], Pairs> = BTreeMap::new();
    let mut out = Pairs::new();
    for (k, v) in pairs {
        let number = match k.first() {
            Some(&keys::DAILY | b'f') => k.get(1..5),
            Some(&keys::HOURLY) => k.get(k.len().saturating_sub(4)..),
            _ => None,
        };
        match number.and_then(|n| <[u8; 4]>::try_from(n).ok()) {
            Some(n) => periods.entry(n).or_default().push((k.clone(), v.clone())),
            None => out.push((k.clone(), v.clone())),
        }
    }
    out.extend(periods.values().map(one_key));
    out
}

/// Writes the batches, then the rest, into a fresh store at `dir`, and
/// flushes it: the seconds taken.
fn write(dir: &Path, batches: &[Pairs], rest: &Pairs) -> f64 {
    let _ = std::fs::remove_dir_all(dir);
    let t = Instant::now();
    let store = open_store(dir, 2);
    let tree = store.db().open_tree("data").expect("data tree");
    for part in batches.iter().map(Vec::as_slice).chain(rest.chunks(256)) {
        let mut batch = sled::Batch::default();
        for (k, v) in part {
            batch.insert(k.as_slice(), v.as_slice());
        }
        tree.apply_batch(batch).expect("write");
    }
    store.flush().expect("flush");
    t.elapsed().as_secs_f64()
}

/// Pins the calling thread (and the threads it starts) to the first core;
/// says so when it cannot, as the figure is then not one core's.
fn pin_to_first_core() {
    // SAFETY: `set` is a plain bit set, zeroed then given one CPU; the
    // call reads it and touches nothing else.
    let pinned = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    };
    if !pinned {
        println!("could not pin to one core: the next figure is on every core");
    }
}
