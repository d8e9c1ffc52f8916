use super::purge::PurgeCursor;
use super::*;
use crate::event::{Event, Tls};
use chrono::TimeDelta;

pub(super) fn store(dir: &std::path::Path, tz: &str, days: u32) -> Store {
    reopen(&StoreOptions::for_test(dir, tz, days)).unwrap()
}

/// Opens a store, waiting while sled's flusher thread of a handle this
/// test just dropped still holds the lock file.
pub(super) fn reopen(opts: &StoreOptions) -> Result<Store, StoreError> {
    for _ in 0..250 {
        match Store::open(opts) {
            Err(StoreError::Locked(_)) => std::thread::sleep(std::time::Duration::from_millis(20)),
            other => return other,
        }
    }
    Store::open(opts)
}

pub(super) fn ev(ts: DateTime<Utc>, sender: &str, tls: Tls, id: Option<&str>) -> Event {
    Event {
        client_ip: Some("192.0.2.1".parse().unwrap()),
        id: id.map(str::to_owned),
        ..Event::accepted(ts, sender, tls)
    }
}

fn daily(s: &Store, start: NaiveDate, end: NaiveDate) -> Vec<(u32, String, TlsCounts)> {
    let mut rows = Vec::new();
    s.for_each_daily(start, end, |d, snd, c| rows.push((d, snd.to_owned(), *c)))
        .unwrap();
    rows
}

#[test]
fn counts_accumulate_across_groups_and_ids_dedupe() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), "UTC", 30);
    let now = Utc::now();
    let a = [
        ev(now, "a@x", Tls::V1_2, Some("1")),
        ev(now, "a@x", Tls::V1_2, Some("1")),
        ev(now, "a@x", Tls::None, None),
    ];
    let b = [
        ev(now, "a@x", Tls::V1_2, Some("1")),
        ev(now, "b@y", Tls::V1_3, Some("2")),
    ];
    let out = Writer::new(s.clone()).apply(&[&a, &b], &[], now).unwrap();
    assert_eq!((out[0].accepted, out[0].duplicates), (2, 1));
    assert_eq!((out[1].accepted, out[1].duplicates), (1, 1));
    let today = s.today(now);
    let rows = daily(&s, today, today);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].1, "a@x");
    assert_eq!((rows[0].2.get(Tls::V1_2), rows[0].2.get(Tls::None)), (1, 1));
    let info = s.sender_info("a@x").unwrap().unwrap();
    assert_eq!(info.ips.len(), 1);
    assert_eq!(
        s.hourly("a@x").unwrap().iter().map(|h| h.1[0]).sum::<u64>(),
        2
    );
}

#[test]
fn too_old_events_are_skipped_and_purge_removes_old_days() {
    let dir = tempfile::tempdir().unwrap();
    let now = Utc::now();
    // Old enough for the week of its hourly key to be past, too.
    let old = now - TimeDelta::days(12);
    {
        let s = store(dir.path(), "UTC", 20);
        let out = Writer::new(s.clone())
            .apply(&[&[ev(old, "old@x", Tls::V1_0, Some("o"))]], &[], now)
            .unwrap();
        assert_eq!(out[0].accepted, 1);
        s.flush().unwrap();
    }
    let s = store(dir.path(), "UTC", 3);
    let out = Writer::new(s.clone())
        .apply(&[&[ev(old, "late@x", Tls::V1_0, None)]], &[], now)
        .unwrap();
    assert_eq!(out[0].too_old, 1);
    let stats = Writer::new(s.clone()).purge(now).unwrap();
    assert_eq!((stats.daily, stats.ids, stats.senders), (1, 1, 1));
    assert!(daily(&s, s.today(now) - Days::new(19), s.today(now)).is_empty());
    assert_eq!(s.count_keys(keys::HOURLY), 0);
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = store(dir.path(), "UTC", 3);
        s.db.open_tree("meta")
            .unwrap()
            .insert("schema_version", &99u64.to_be_bytes())
            .unwrap();
        s.flush().unwrap();
    }
    let opts = StoreOptions {
        path: dir.path().join("db"),
        tz: chrono_tz::Tz::UTC,
        retention: Retention {
            days: 3,
            hourly_days: 3,
        },
        cache_bytes: 1 << 20,
        min_free_bytes: 0,
    };
    let err = reopen(&opts).err().unwrap();
    assert!(err.to_string().contains("schema version 99"), "{err}");
}

/// Hourly message counts of every sender, summed.
fn hourly_total(s: &Store, senders: &[String]) -> u64 {
    senders
        .iter()
        .map(|snd| s.hourly(snd).unwrap().iter().map(|h| h.1[0]).sum::<u64>())
        .sum()
}

#[test]
fn a_journaled_fold_cut_short_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), "UTC", 30);
    let now = Utc::now();
    // 3,000 senders: their S, d and w keys (in that order) make nine parts
    // of the fold; a cut after four leaves the daily counts half written.
    let senders: Vec<String> = (0..3_000).map(|i| format!("user{i}@example.com")).collect();
    let request = |from: usize, ids: bool| -> Vec<Event> {
        senders[from..from + 1_000]
            .iter()
            .enumerate()
            .map(|(i, snd)| {
                let id = ids.then(|| format!("{snd}-{i}"));
                ev(now, snd, Tls::ALL[i % 5], id.as_deref())
            })
            .collect()
    };
    let cursor = (keys::cursor_key("/var/log/mail.log"), b"42".to_vec());
    let mut w = Writer::new(s.clone());
    assert_eq!(w.recover().unwrap(), 0);
    let out = w
        .submit(
            vec![
                (request(0, true), vec![]),
                (request(1_000, false), vec![]),
                (request(2_000, true), vec![cursor.clone()]),
            ],
            now,
        )
        .unwrap();
    assert_eq!(out.iter().map(|o| o.accepted).sum::<u64>(), 3_000);
    // A repeat waiting in the journal is already a duplicate.
    let again = w.submit(vec![(request(0, true), vec![])], now).unwrap();
    assert_eq!((again[0].accepted, again[0].duplicates), (0, 1_000));
    assert_eq!(
        daily(&s, s.today(now), s.today(now)).len(),
        0,
        "not folded yet"
    );

    writer::injected::FAIL_AFTER_PARTS.set(Some(4));
    assert!(w.fold_pending(now).is_err());
    writer::injected::FAIL_AFTER_PARTS.set(None);
    let partial = daily(&s, s.today(now), s.today(now)).len();
    assert!(partial > 0 && partial < 3_000, "{partial} of 3,000 written");
    assert_eq!(s.cursor(&cursor.0).unwrap(), None, "the cursor comes last");

    // As after kill -9: a new writer replays the journal, skipping the
    // parts already written.
    drop(w);
    let mut w = Writer::new(s.clone());
    assert_eq!(w.recover().unwrap(), 3_000);
    let rows = daily(&s, s.today(now), s.today(now));
    assert_eq!(rows.len(), 3_000);
    assert!(rows.iter().all(|r| r.2.total() == 1), "each sender once");
    assert_eq!(hourly_total(&s, &senders), 3_000);
    assert_eq!(s.count_keys(keys::SENDER), 3_000);
    assert_eq!(s.count_ids(), 2_000);
    assert_eq!(s.cursor(&cursor.0).unwrap(), Some(b"42".to_vec()));
    drop(w);
    let mut w = Writer::new(s.clone());
    assert_eq!(w.recover().unwrap(), 0, "nothing counted twice");
    assert_eq!(hourly_total(&s, &senders), 3_000);

    // The same cut, retried by the same writer.
    let out = w.submit(vec![(request(0, false), vec![])], now).unwrap();
    assert_eq!(out[0].accepted, 1_000);
    writer::injected::FAIL_AFTER_PARTS.set(Some(1));
    assert!(w.fold_pending(now).is_err());
    writer::injected::FAIL_AFTER_PARTS.set(None);
    w.fold_pending(now).unwrap();
    assert_eq!(hourly_total(&s, &senders), 4_000);
    let rows = daily(&s, s.today(now), s.today(now));
    assert_eq!(rows.iter().map(|r| r.2.total()).sum::<u64>(), 4_000);
}

#[test]
fn the_opening_alert_of_an_incident_is_found_before_its_resolution() {
    use crate::detect::{Alert, AlertKind, AlertStatus};
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), "UTC", 30);
    let alert = |sender: &str, kind: AlertKind, status: AlertStatus| Alert {
        kind,
        sender: sender.into(),
        at: Utc::now(),
        observed: 1,
        expected: 1.0,
        detail: String::new(),
        status,
        threshold: None,
        client_ips: Vec::new(),
        tls: None,
    };
    let log = [
        alert("a@x", AlertKind::VolumeSpike, AlertStatus::Firing),
        alert("a@x", AlertKind::LegacyTls, AlertStatus::Firing),
        alert("b@x", AlertKind::VolumeSpike, AlertStatus::Firing),
        alert("a@x", AlertKind::VolumeSpike, AlertStatus::Ongoing),
        alert("a@x", AlertKind::VolumeSpike, AlertStatus::Resolved),
        alert("a@x", AlertKind::VolumeSpike, AlertStatus::Firing),
    ];
    for (i, a) in log.into_iter().enumerate() {
        let r = Recorded {
            seq: i as u64 + 1,
            recorded_ms: 0,
            alert: a,
        };
        s.data
            .insert(keys::alert_key(r.seq), serde_json::to_vec(&r).unwrap())
            .unwrap();
    }
    let found = |before, back| {
        s.opening_alert("a@x", AlertKind::VolumeSpike, before, back)
            .unwrap()
            .map(|r| r.seq)
    };
    assert_eq!(found(5, 100), Some(1), "the resolution's incident");
    assert_eq!(found(7, 100), Some(6), "a later incident");
    assert_eq!(found(5, 2), None, "beyond the look-back");
    assert_eq!(
        s.opening_alert("c@x", AlertKind::VolumeSpike, 7, 100)
            .unwrap()
            .map(|r| r.seq),
        None
    );
}

#[test]
fn purge_goes_through_the_sender_keys_a_slice_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), "UTC", 30);
    let now = Utc::now();
    let mut w = Writer::new(s.clone());
    // 10 senders with hourly counts 20 days ago (beyond the 7 hourly days,
    // and so is the week of their key) and today.
    let events: Vec<Event> = (0..10)
        .flat_map(|i| {
            let sender = format!("s{i}@x");
            [
                ev(now - TimeDelta::days(20), &sender, Tls::V1_3, None),
                ev(now, &sender, Tls::V1_3, None),
            ]
        })
        .collect();
    // Stored as if the data had arrived when it happened.
    w.apply(&[&events], &[], now - TimeDelta::days(20)).unwrap();
    assert_eq!(s.count_keys(keys::HOURLY), 20);
    w.purge_cursor = PurgeCursor::with_slice(6);
    let mut removed = Vec::new();
    for _ in 0..5 {
        removed.push(w.purge(now).unwrap().hourly);
    }
    // 20 keys in slices of 6: four purges cover them, the fifth starts over.
    assert_eq!(removed.iter().sum::<usize>(), 10, "{removed:?}");
    assert!(
        removed[0] < 10,
        "one purge looked at every key: {removed:?}"
    );
    assert_eq!(removed[4], 0);
    assert_eq!(s.count_keys(keys::HOURLY), 10);
    for i in 0..10 {
        assert_eq!(s.hourly(&format!("s{i}@x")).unwrap().len(), 1);
    }
}

#[test]
fn purge_trims_the_old_days_and_hours_of_a_key() {
    let dir = tempfile::tempdir().unwrap();
    // Day 6 of a daily key's period (and of an hourly key's week) at noon;
    // then 3 days kept (hourly too): day 1 goes, day 5 stays, both in the
    // same daily and hourly keys.
    let period = 725u32;
    let day = |d: u32| crate::event::time::day_date(period * keys::DAYS_PER_KEY + d);
    let noon = |d: u32| day(d).and_hms_opt(12, 0, 0).unwrap().and_utc();
    let now = noon(6);
    {
        let s = store(dir.path(), "UTC", 30);
        let events = [noon(1), noon(5)].map(|t| ev(t, "a@x", Tls::V1_2, None));
        let out = Writer::new(s.clone()).apply(&[&events], &[], now).unwrap();
        assert_eq!(out[0].accepted, 2);
        assert_eq!(
            (s.count_keys(keys::DAILY), s.count_keys(keys::HOURLY)),
            (1, 1)
        );
        s.flush().unwrap();
    }
    let s = store(dir.path(), "UTC", 3);
    let mut w = Writer::new(s.clone());
    let stats = w.purge(now).unwrap();
    assert_eq!((stats.daily, stats.hourly), (1, 1), "{stats:?}");
    let rows = daily(&s, day(0), day(6));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, crate::event::time::day_number(day(5)));
    let hours: Vec<u32> = s.hourly("a@x").unwrap().iter().map(|h| h.0).collect();
    assert_eq!(hours, [crate::event::time::hour_number(noon(5))]);
    assert_eq!(w.purge(now).unwrap().total(), 0, "nothing left to purge");
}

#[test]
fn while_folds_keep_failing_new_events_are_refused_not_piled_up() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), "UTC", 30);
    let now = Utc::now();
    let request = |n: usize| -> Vec<Event> {
        (0..1_000)
            .map(|i| ev(now, &format!("u{i}-{n}@x"), Tls::V1_3, None))
            .collect()
    };
    let mut w = Writer::new(s.clone());
    w.recover().unwrap();
    writer::injected::FAIL_AFTER_PARTS.set(Some(0));
    let mut accepted = 0;
    let refused = loop {
        match w.submit(vec![(request(accepted), vec![])], now) {
            Ok(out) => accepted += out[0].accepted as usize / 1_000,
            Err(e) => break e,
        }
        assert!(w.fold_pending(now).is_err());
        assert!(accepted <= 10, "never refused");
    };
    assert_eq!(accepted, 5);
    assert!(
        refused
            .to_string()
            .contains("5000 acknowledged events are waiting"),
        "{refused}"
    );
    writer::injected::FAIL_AFTER_PARTS.set(None);
    w.fold_pending(now).unwrap();
    assert_eq!(daily(&s, s.today(now), s.today(now)).len(), 5_000);
    assert!(w.submit(vec![(request(99), vec![])], now).is_ok());
}

/// Writes a legacy-TLS alert into the log as an older release did: the
/// record only.
pub(super) fn log_legacy_alert(
    s: &Store,
    seq: u64,
    sender: &str,
    at: DateTime<Utc>,
    recorded: DateTime<Utc>,
) {
    use crate::detect::{Alert, AlertKind, AlertStatus};
    let r = Recorded {
        seq,
        recorded_ms: recorded.timestamp_millis(),
        alert: Alert {
            kind: AlertKind::LegacyTls,
            sender: sender.into(),
            at,
            observed: 1,
            expected: 0.0,
            detail: String::new(),
            status: AlertStatus::Firing,
            threshold: None,
            client_ips: Vec::new(),
            tls: None,
        },
    };
    let v = serde_json::to_vec(&r).unwrap();
    s.data.insert(keys::alert_key(seq), v).unwrap();
}

#[test]
fn alerts_since_reads_back_only_as_far_as_the_clock_allows() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), "UTC", 30);
    let now = Utc::now();
    // (event time, recorded) in logging order; the first is an alert that
    // cannot exist (recorded 9 days before its event): the scan stops
    // before it.
    let log = [(0, 9), (8, 8), (3, 3), (30, 0), (0, 0)];
    for (i, (at_days, recorded_days)) in log.into_iter().enumerate() {
        let at = now - TimeDelta::days(at_days);
        let recorded = now - TimeDelta::days(recorded_days);
        log_legacy_alert(&s, i as u64 + 1, &format!("s{i}@x"), at, recorded);
    }
    let seqs = |since_days: i64, limit| -> Vec<u64> {
        s.alerts_since(now - TimeDelta::days(since_days), limit)
            .unwrap()
            .iter()
            .map(|r| r.seq)
            .collect()
    };
    assert_eq!(seqs(5, 10), [5, 3], "an import's old alert is left out");
    assert_eq!(seqs(5, 1), [5]);
    assert_eq!(seqs(20, 10), [5, 3, 2, 1]);
}

#[test]
fn logged_alerts_are_found_by_account() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), "UTC", 30);
    let cfg = std::sync::Arc::new(crate::detect::DetectConfig::default());
    let mut w = Writer::with_detector(s.clone(), cfg).unwrap();
    let now = Utc::now();
    let events = [
        ev(now, "old@x", Tls::V1_0, None),
        ev(now, "old@x2", Tls::None, None),
        ev(now, "new@x", Tls::V1_3, None),
    ];
    w.apply(&[&events], &[], now).unwrap();
    let kinds = |sender| -> Vec<(String, crate::detect::AlertKind)> {
        let found = s.alerts_of(sender, 10).unwrap();
        found
            .into_iter()
            .map(|r| (r.alert.sender, r.alert.kind))
            .collect()
    };
    let legacy = crate::detect::AlertKind::LegacyTls;
    assert_eq!(kinds("old@x"), [("old@x".to_owned(), legacy)]);
    assert_eq!(kinds("old@x2"), [("old@x2".to_owned(), legacy)]);
    assert!(kinds("new@x").is_empty());
}

#[test]
fn one_accounts_days_are_read_by_lookup_as_the_full_scan_gives_them() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), "UTC", 100);
    let now = Utc::now();
    // "a@x" is a prefix of "a@x2": a lookup must not mix them.
    let events: Vec<Event> = (0..3_000i64)
        .map(|i| {
            let sender = ["a@x", "a@x2", "b@y"][(i % 3) as usize];
            let e = ev(
                now - TimeDelta::hours(i * 7 % 2_300),
                sender,
                Tls::V1_2,
                None,
            );
            match i % 5 {
                0 => Event {
                    result: crate::event::Outcome::AuthFailed,
                    ..e
                },
                _ => e,
            }
        })
        .collect();
    Writer::new(s.clone()).apply(&[&events], &[], now).unwrap();
    let today = s.today(now);
    for days in [1, 20, 95] {
        let start = today - Days::new(days - 1);
        let want: Vec<_> = daily(&s, start, today)
            .into_iter()
            .filter(|r| r.1 == "a@x")
            .map(|r| (r.0, r.2))
            .collect();
        let mut got = Vec::new();
        s.daily_of("a@x", start, today, |d, c| got.push((d, *c)))
            .unwrap();
        got.sort_by_key(|r| r.0);
        assert_eq!(got, want, "{days} days");
        assert!(days == 1 || got.len() > 10, "{days} days: {}", got.len());
        let mut want = Vec::new();
        s.for_each_failure(start, today, |d, u, n| {
            if u == "a@x" {
                want.push((d, n));
            }
        })
        .unwrap();
        let mut got = Vec::new();
        s.failures_of("a@x", start, today, |d, n| got.push((d, n)))
            .unwrap();
        got.sort_by_key(|r| r.0);
        want.sort_by_key(|r| r.0);
        assert_eq!(got, want, "{days} days");
        assert!(days == 1 || !got.is_empty());
    }
}
