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

/// Writes the slotted hourly keys of an older layout: `u{i}@x` for each
/// of `senders`, each `number` in `numbers`, with `hours_of(i, number)`.
fn insert_old_slots(
    s: &Store,
    prefix: u8,
    senders: u32,
    numbers: std::ops::Range<u32>,
    hours_of: impl Fn(u32, u32) -> Vec<codec::Hour>,
) {
    for i in 0..senders {
        for n in numbers.clone() {
            let k = keys::hourly_key_in(prefix, &format!("u{i}@x"), n);
            s.data
                .insert(k, codec::encode_slots(&hours_of(i, n)))
                .unwrap();
        }
    }
}

/// Hours and their counts, in order, those of the same hour added up.
fn summed(hours: impl IntoIterator<Item = (u32, [u64; 2])>) -> Vec<(u32, [u64; 2])> {
    let mut all: Vec<_> = hours.into_iter().collect();
    all.sort();
    all.dedup_by(|b, a| {
        let same = a.0 == b.0;
        if same {
            a.1 = [a.1[0] + b.1[0], a.1[1] + b.1[1]];
        }
        same
    });
    all
}

#[test]
fn a_schema_1_store_keeps_its_ids() {
    let dir = tempfile::tempdir().unwrap();
    let now = Utc::now();
    let today =
        crate::event::time::day_number(crate::event::time::local_date(now, chrono_tz::Tz::UTC));
    let s = upgraded(dir.path(), 1, |s| {
        // The schema 1 layout: one empty-valued key per id.
        for day in [today - 1, today] {
            for i in 0..5_000 {
                let key = keys::day_key(keys::ID_V7, day, &format!("mx1/{i}"));
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
fn a_schema_7_store_keeps_its_ids_in_half_the_space() {
    let dir = tempfile::tempdir().unwrap();
    let now = Utc::now();
    let today =
        crate::event::time::day_number(crate::event::time::local_date(now, chrono_tz::Tz::UTC));
    let s = upgraded(dir.path(), 7, |s| {
        // Schemas 2–7: blocks of 4,096 128-bit hashes of the ids
        // `mx1/N` (what `ids::tests::events` posts), seeded per store.
        for day in [today - 1, today] {
            let hashes: Vec<u8> = (0..5_000)
                .flat_map(|i| {
                    let id = format!("mx1/{i}");
                    xxhash_rust::xxh3::xxh3_128_with_seed(id.as_bytes(), s.id_seed).to_le_bytes()
                })
                .collect();
            for (n, block) in (0u32..).zip(hashes.chunks(4_096 * 16)) {
                let mut key = keys::day_bound(keys::ID_V7, day).to_vec();
                key.extend_from_slice(&n.to_be_bytes());
                s.data.insert(key, block).unwrap();
            }
        }
    });
    assert_eq!(s.count_keys(keys::ID_V7), 0, "old blocks removed");
    assert_eq!(s.count_ids(), 10_000);
    let bytes: usize = s
        .data
        .scan_prefix([keys::ID])
        .map(|kv| kv.unwrap().1.len())
        .sum();
    assert_eq!(bytes, 10_000 * 8);
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
fn schema_2_hourly_keys_become_a_key_per_four_weeks() {
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
            let k = keys::hourly_key_in(keys::HOURLY_V2, sender, *hour);
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
    // 1,500 senders with hours on one day, "a@x" on two of one key,
    // "a@x2" on one.
    let senders = (3 * HOURS_PER_BATCH / 2).div_ceil(20);
    assert_eq!(s.count_keys(keys::HOURLY), senders + 2);
}

#[test]
fn schema_5_daily_keys_become_a_key_per_period() {
    use crate::event::TlsCounts;
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
    let (first, last) = (
        crate::event::time::day_date(days.start),
        crate::event::time::day_date(days.end - 1),
    );
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
fn schema_4_hourly_keys_a_day_each_become_a_key_per_four_weeks() {
    let dir = tempfile::tempdir().unwrap();
    // Days 20,018-20,021: four weeks end after 20,019 (hour 480,480).
    let days = 20_018u32..20_022;
    let senders = 6_000u32;
    let hours_of = |i: u32, day: u32| -> Vec<codec::Hour> {
        vec![
            ((i % 24) as u16, [u64::from(1 + i % 5), 0]),
            (23, [1, u64::from(day % 3)]),
        ]
    };
    let s = upgraded(dir.path(), 4, |s| {
        insert_old_slots(s, keys::HOURLY_V4, senders, days.clone(), hours_of);
    });
    assert_eq!(s.count_keys(keys::HOURLY_V4), 0);
    // Two keys per sender, converted over several batches.
    assert!(senders as usize * days.len() > HOURS_PER_BATCH);
    assert_eq!(s.count_keys(keys::HOURLY), 2 * senders as usize);
    for i in [0, 17, 5_999] {
        let expected = summed(days.clone().flat_map(|day| {
            let hours = hours_of(i, day).into_iter();
            hours.map(move |(h, n)| (day * 24 + u32::from(h), n))
        }));
        assert_eq!(s.hourly(&format!("u{i}@x")).unwrap(), expected, "u{i}@x");
    }
}

#[test]
fn schema_8_hourly_keys_a_week_each_become_a_key_per_four_weeks() {
    let dir = tempfile::tempdir().unwrap();
    // Weeks 2,858-2,861: four weeks end after week 2,859 (hour 480,480).
    let weeks = 2_858u32..2_862;
    let senders = 2_000u32;
    let per = keys::HOURS_PER_KEY_V8;
    let hours_of = |i: u32, week: u32| -> Vec<codec::Hour> {
        vec![
            ((i % 168) as u16, [u64::from(1 + i % 5), 0]),
            (167, [1, u64::from(week % 3)]),
        ]
    };
    let expected = |i: u32| {
        summed(weeks.clone().flat_map(|w| {
            let hours = hours_of(i, w).into_iter();
            hours.map(move |(at, n)| (keys::unslot(w, at, per), n))
        }))
    };
    let s = upgraded(dir.path(), 8, |s| {
        insert_old_slots(s, keys::HOURLY_V8, senders, weeks.clone(), hours_of);
        // An account a stopped upgrade converted already: its keys are in
        // the new layout, none left in the old.
        let mut slots: BTreeMap<Vec<u8>, Vec<codec::Hour>> = BTreeMap::new();
        for (hour, n) in expected(7) {
            let (number, at) = keys::slot(hour, keys::HOURS_PER_KEY);
            slots
                .entry(keys::hourly_key("done@x", number))
                .or_default()
                .push((at, n));
        }
        for (k, v) in slots {
            s.data.insert(k, codec::encode_slots(&v)).unwrap();
        }
    });
    assert_eq!(s.count_keys(keys::HOURLY_V8), 0);
    // Over several batches; two keys per account.
    assert!(senders as usize * weeks.len() > HOURS_PER_BATCH);
    assert_eq!(s.count_keys(keys::HOURLY), 2 * (senders as usize + 1));
    for i in [0, 7, 167, 1_999] {
        assert_eq!(s.hourly(&format!("u{i}@x")).unwrap(), expected(i), "u{i}@x");
    }
    assert_eq!(s.hourly("done@x").unwrap(), expected(7), "counted once");
}
