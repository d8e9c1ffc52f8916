//! Tests of the id blocks: dedup across folds, days and writers.

use super::super::tests::{ev, store};
use super::*;
use crate::event::{Event, Tls};
use crate::store::Writer;
use chrono::{TimeDelta, Utc};

/// Events of "a@x" `day` days ago with ids `mx1/N` for N in `ids`.
pub(in crate::store) fn events(day: i64, ids: std::ops::Range<usize>) -> Vec<Event> {
    let ts = Utc::now() - TimeDelta::days(day);
    ids.map(|i| ev(ts, "a@x", Tls::V1_3, Some(&format!("mx1/{i}"))))
        .collect()
}

#[test]
fn ids_in_blocks_dedupe_across_folds_days_and_writers() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), "UTC", 30);
    let now = Utc::now();
    let mut w = Writer::new(s.clone());
    // Two folds on one day filling more than a block, and more days
    // than the index keeps in memory.
    let first = w.apply(&[&events(0, 0..3_000)], &[], now).unwrap();
    let second = w.apply(&[&events(0, 2_000..6_000)], &[], now).unwrap();
    assert_eq!((first[0].accepted, second[0].accepted), (3_000, 3_000));
    assert_eq!(second[0].duplicates, 1_000);
    for day in 1..=DAYS_KEPT as i64 + 1 {
        w.apply(&[&events(day, 0..10)], &[], now).unwrap();
    }
    assert_eq!(s.count_ids(), 6_000 + 10 * (DAYS_KEPT + 1));
    // 6,000 ids of today: a full block and a partly filled one.
    let today = crate::event::time::day_number(s.today(now));
    let blocks = s.data.scan_prefix(keys::day_bound(keys::ID, today)).count();
    assert_eq!(blocks, 6_000usize.div_ceil(BLOCK_IDS));
    // Today's set was evicted by the older days: read back from the store.
    let again = w.apply(&[&events(0, 5_990..6_010)], &[], now).unwrap();
    assert_eq!((again[0].accepted, again[0].duplicates), (10, 10));
    // A new writer (a restart) knows them all.
    let mut w = Writer::new(s.clone());
    let again = w.apply(&[&events(3, 0..20)], &[], now).unwrap();
    assert_eq!((again[0].accepted, again[0].duplicates), (10, 10));
    assert_eq!(s.count_ids(), 6_010 + 10 * (DAYS_KEPT + 2));
}

#[test]
fn reserved_days_stay_in_memory_until_written() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), "UTC", 30);
    let mut index = IdIndex::new(s.id_seed);
    let today = crate::event::time::day_number(s.today(Utc::now()));
    let days = today - DAYS_KEPT as u32 - 2..today;
    let keys: Vec<IdKey> = days
        .flat_map(|d| (0..100).map(move |i| (d, hash(1, &i.to_string()))))
        .collect();
    assert!(keys.iter().all(|k| index.reserve(&s, *k).unwrap()));
    // More days than are kept, yet every reservation is remembered.
    assert!(!keys.iter().any(|k| index.reserve(&s, *k).unwrap()));
    let mut batch = sled::Batch::default();
    index.write_reserved(&s, &mut batch, &keys).unwrap();
    s.data.apply_batch(batch).unwrap();
    assert_eq!(s.count_ids(), keys.len());
    // Written, the days may leave memory; the store still knows them.
    index.forget();
    assert!(!keys.iter().any(|k| index.reserve(&s, *k).unwrap()));
    assert!(index.days.len() <= DAYS_KEPT);
}
