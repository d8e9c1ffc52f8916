//! Tests of the bulk load: equal to batch-wise folding, whole accounts
//! after a failed write-out.

use super::*;
use crate::event::Tls;
use crate::store::keys;
use crate::store::tests::{ev, store};
use crate::store::writer::injected::FAIL_AFTER_PARTS;
use chrono::TimeDelta;
use out::PART_ACCOUNTS;

/// Three past days of 1,300 accounts (many write-out batches): messages of
/// every TLS class from two IPs, failed logins, ids repeated within a
/// day, events out of time order.
fn history(now: DateTime<Utc>) -> Vec<Vec<Event>> {
    let midnight = now.date_naive().and_time(chrono::NaiveTime::MIN).and_utc();
    let mut batches = Vec::new();
    for day in (1..=3).rev() {
        let mut batch = Vec::new();
        for i in 0..1_300u32 {
            let ts = midnight - TimeDelta::days(day) + TimeDelta::minutes(i64::from(i % 300));
            let sender = format!("user{i}@d{}.example", i % 7);
            let tls = Tls::ALL[(i as usize + day as usize) % Tls::ALL.len()];
            let id = format!("mx/{day}/{}", i % 1_100);
            let mut e = ev(ts, &sender, tls, Some(&id));
            e.client_ip = Some([10, 0, 0, (i % 2) as u8].into());
            batch.push(e);
            if i % 5 == 0 {
                let mut f = ev(ts, &sender, Tls::V1_2, Some(&format!("{id}/f")));
                f.result = Outcome::AuthFailed;
                batch.push(f);
            }
        }
        batches.push(batch);
    }
    batches
}

/// The counter keys of a store, and its sender index without the
/// last-seen time (written to the minute by the batch-wise path).
type Contents = (Vec<(Vec<u8>, Vec<u8>)>, Vec<(i64, usize)>);

fn contents(s: &crate::store::Store) -> Contents {
    let counters = [keys::DAILY, keys::FAILURES, keys::HOURLY]
        .iter()
        .flat_map(|p| s.data.scan_prefix([*p]))
        .map(|kv| kv.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap())
        .collect();
    let senders = s
        .data
        .scan_prefix([keys::SENDER])
        .map(|kv| SenderInfo::decode(&kv.unwrap().1).unwrap())
        .map(|i| (i.first_seen, i.ips.len()))
        .collect();
    (counters, senders)
}

/// A bulk that has counted all `batches`, not written out.
fn counted(w: &mut Writer, batches: &[Vec<Event>], now: DateTime<Utc>) -> Bulk {
    let mut bulk = Bulk::default();
    for batch in batches {
        w.load(&mut bulk, Arc::new(batch.clone()), now).unwrap();
    }
    bulk
}

fn load_all(w: &mut Writer, batches: &[Vec<Event>], now: DateTime<Utc>) -> (u64, u64) {
    let mut bulk = Bulk::default();
    let mut total = (0, 0);
    for (i, batch) in batches.iter().enumerate() {
        let o = w.load(&mut bulk, Arc::new(batch.clone()), now).unwrap();
        total = (total.0 + o.accepted, total.1 + o.duplicates);
        if i == 1 {
            w.write_bulk(&mut bulk, now).unwrap();
        }
    }
    w.write_bulk(&mut bulk, now).unwrap();
    assert!(bulk.is_empty() && bulk.bytes() == 0);
    total
}

#[test]
fn bulk_load_stores_what_batch_wise_folding_stores() {
    same_as_batch_wise_folding("UTC");
    // Local midnight at 03:30 UTC, inside the history's hours: one hour's
    // events count on two local days.
    same_as_batch_wise_folding("America/St_Johns");
}

fn same_as_batch_wise_folding(tz: &str) {
    let now = Utc::now();
    let batches = history(now);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (folded, loaded) = (store(a.path(), tz, 30), store(b.path(), tz, 30));
    let mut want = (0, 0);
    let mut w = Writer::new(folded.clone());
    for batch in &batches {
        let o = w.apply(&[batch], &[], now).unwrap()[0];
        want = (want.0 + o.accepted, want.1 + o.duplicates);
    }
    let got = load_all(&mut Writer::new(loaded.clone()), &batches, now);
    assert_eq!(got, want);
    // Ids repeated within a day are duplicates (in St John's, some of
    // the repeats fall on the next local day).
    match tz {
        "UTC" => assert_eq!(want.1, 3 * 240),
        _ => assert!(want.1 > 0 && want.1 < 3 * 240, "{}", want.1),
    }
    assert_eq!(contents(&loaded), contents(&folded));
    assert_eq!(loaded.count_ids(), folded.count_ids());
    // A small budget spent on accounts with one event each: nothing is
    // written out before they hold more.
    let c = tempfile::tempdir().unwrap();
    let floored = store(c.path(), tz, 30);
    let mut bulk = Bulk::with_budget(64 << 10);
    assert!(bulk.per_account > 1);
    Writer::new(floored.clone())
        .load(&mut bulk, Arc::new(batches[0].clone()), now)
        .unwrap();
    assert!(bulk.bytes() > 64 << 10);
    assert_eq!(floored.data.scan_prefix([keys::SENDER]).count(), 0);
    // Past the ceiling, it writes out all the same: accounts that never
    // gather events (a new username for every failed login) cannot hold
    // the import's memory without bound.
    let mut w = Writer::new(floored.clone());
    let mut bulk = Bulk::with_budget(16 << 10);
    let mut most = 0;
    for i in 0..4_000 {
        let mut f = ev(
            now - TimeDelta::hours(1),
            &format!("spray{i}@x.example"),
            Tls::V1_2,
            None,
        );
        f.result = Outcome::AuthFailed;
        w.load(&mut bulk, Arc::new(vec![f]), now).unwrap();
        most = most.max(bulk.bytes());
    }
    w.write_bulk(&mut bulk, now).unwrap();
    assert!(most < CEILING * (16 << 10) + 1024, "{most}");
    let failures = floored.data.scan_prefix([keys::FAILURES]).count();
    assert!(failures >= 4_000, "{failures}");
    // With a small budget alone, the load writes out by itself as it goes.
    let c = tempfile::tempdir().unwrap();
    let budgeted = store(c.path(), tz, 30);
    let mut w = Writer::new(budgeted.clone());
    let mut bulk = Bulk::with_budget(64 << 10).without_floor();
    w.load(&mut bulk, Arc::new(batches[0].clone()), now)
        .unwrap();
    assert!(budgeted.data.scan_prefix([keys::SENDER]).count() > 0);
    assert!(bulk.bytes() < 64 << 10);
    for batch in &batches[1..] {
        w.load(&mut bulk, Arc::new(batch.clone()), now).unwrap();
    }
    w.write_bulk(&mut bulk, now).unwrap();
    assert!(contents(&budgeted) == contents(&folded));
    // Loading it all again counts nothing.
    let again = load_all(&mut Writer::new(loaded.clone()), &batches, now);
    assert_eq!(again, (0, want.0 + want.1));
}

/// The floor holds a bulk past its budget only where it would hold at
/// least [`FLOOR_FROM`] times the budget: 200 accounts with 20 events
/// each, whose floor is 200 × 32 records.
#[test]
fn the_floor_holds_past_the_budget_only_what_is_worth_it() {
    let now = Utc::now();
    let events: Vec<Event> = (0..20)
        .flat_map(|k| {
            (0..200).map(move |i| {
                let ts = now - TimeDelta::hours(2) + TimeDelta::seconds(k * 60 + i);
                ev(ts, &format!("user{i}@floor.example"), Tls::V1_2, None)
            })
        })
        .collect();
    let floor = 200 * EVENTS_PER_ACCOUNT * std::mem::size_of::<Held>();
    let written = |budget: usize| {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), "UTC", 30);
        let mut bulk = Bulk::with_budget(budget);
        Writer::new(s.clone())
            .load(&mut bulk, Arc::new(events.clone()), now)
            .unwrap();
        assert!(bulk.held.len() * std::mem::size_of::<Held>() < floor);
        s.data.scan_prefix([keys::SENDER]).count()
    };
    // The floor is 1.6 times this budget: written out at the budget.
    assert!(floor < FLOOR_FROM * (64 << 10) && floor > 64 << 10);
    assert!(written(64 << 10) > 0);
    // And 2.5 times this one: held until the accounts have their events.
    assert!(floor >= FLOOR_FROM * (40 << 10));
    assert_eq!(written(40 << 10), 0);
}

#[test]
fn a_write_out_failing_midway_keeps_whole_accounts_and_a_rerun_is_exact() {
    let now = Utc::now();
    let batches = history(now);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (whole, broken) = (store(a.path(), "UTC", 30), store(b.path(), "UTC", 30));
    load_all(&mut Writer::new(whole.clone()), &batches, now);
    // The second batch of the only write-out fails.
    let mut w = Writer::new(broken.clone());
    let mut bulk = counted(&mut w, &batches, now);
    FAIL_AFTER_PARTS.set(Some(1));
    assert!(w.write_bulk(&mut bulk, now).is_err());
    FAIL_AFTER_PARTS.set(None);
    // Each account is either whole or absent.
    let (mut whole_accounts, mut absent) = (0, 0);
    for i in 0..1_300 {
        let sender = format!("user{i}@d{}.example", i % 7);
        let hours = broken.hourly(&sender).unwrap();
        match hours.is_empty() {
            true => absent += 1,
            false => {
                assert_eq!(hours, whole.hourly(&sender).unwrap(), "{sender}");
                whole_accounts += 1;
            }
        }
    }
    assert_eq!(
        (whole_accounts, absent),
        (PART_ACCOUNTS, 1_300 - PART_ACCOUNTS)
    );
    // Ids without their counts would make the re-run skip events; counts
    // without their ids would count them twice. Neither happens.
    let mut w = Writer::new(broken.clone());
    let mut bulk = counted(&mut w, &batches, now);
    w.write_bulk(&mut bulk, now).unwrap();
    assert!(contents(&broken) == contents(&whole));
    assert_eq!(broken.count_ids(), whole.count_ids());
}

/// A write-out behind the store thread that fails stops the load at the
/// next write-out, and loading the same events again counts each once.
#[test]
fn a_write_out_behind_that_fails_stops_the_load_and_a_rerun_is_exact() {
    let now = Utc::now();
    let batches = history(now);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (whole, broken) = (store(a.path(), "UTC", 30), store(b.path(), "UTC", 30));
    load_all(&mut Writer::new(whole.clone()), &batches, now);
    let load_behind = |fail: Option<u64>| {
        let mut w = Writer::new(broken.clone());
        w.write_behind(true);
        // Write-outs at the floor's ceiling, of two parts or more.
        let mut bulk = Bulk::with_budget(4 << 10);
        FAIL_AFTER_PARTS.set(fail);
        let loaded = batches
            .iter()
            .try_for_each(|b| w.load(&mut bulk, Arc::new(b.clone()), now).map(drop))
            .and_then(|()| w.write_bulk(&mut bulk, now));
        FAIL_AFTER_PARTS.set(None);
        assert!(w.behind.started > 0, "no write-out behind");
        loaded
    };
    // Every write-out fails after its first part.
    assert!(load_behind(Some(1)).is_err());
    let stored = broken.data.scan_prefix([keys::SENDER]).count();
    assert!(stored > 0 && stored < 1_300, "{stored} accounts stored");
    load_behind(None).unwrap();
    assert!(contents(&broken) == contents(&whole));
    assert_eq!(broken.count_ids(), whole.count_ids());
}

#[test]
fn detectors_on_their_own_thread_store_and_raise_what_they_do_on_the_writers() {
    let now = Utc::now();
    let batches = history(now);
    let cfg = Arc::new(crate::detect::DetectConfig::default());
    // Detectors on the writer's thread, on their own, or on their own and
    // ended before the last write-out (as an import ends them); write-outs
    // on the writer's thread or behind it.
    let run = |ahead: bool, stop: bool, behind: bool| {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), "UTC", 30);
        let mut w = Writer::with_detector(s.clone(), cfg.clone()).unwrap();
        if ahead {
            w.detect_ahead().unwrap();
        }
        w.write_behind(behind);
        // A small budget, its floor past it from 16 accounts: write-outs
        // in the middle of batches, at the ceiling, behind if asked.
        let mut bulk = Bulk::with_budget(4 << 10);
        let mut raised = Vec::new();
        for batch in &batches {
            w.load(&mut bulk, Arc::new(batch.clone()), now).unwrap();
            raised.extend(w.take_raised());
        }
        assert_eq!(w.behind.started > 10, behind, "write-outs behind");
        if stop {
            w.stop_detecting();
            assert!(w.detector.is_none() && w.ahead.is_none());
            // What the last write-out must still store.
            assert!(!w.stopped.senders.is_empty(), "no state left to write");
        }
        w.write_bulk(&mut bulk, now).unwrap();
        raised.extend(w.take_raised());
        assert_eq!(w.detector.is_some() || w.ahead.is_some(), !stop);
        let detected: Vec<(Vec<u8>, Vec<u8>)> = [keys::DETECT, keys::ALERT, keys::ALERT_BY_SENDER]
            .iter()
            .flat_map(|p| s.data.scan_prefix([*p]))
            .map(|kv| kv.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap())
            .collect();
        let raised: Vec<String> = raised.iter().map(|a| format!("{a:?}")).collect();
        (raised, detected, contents(&s))
    };
    let here = run(false, false, false);
    assert!(!here.0.is_empty() && !here.1.is_empty(), "no alerts raised");
    let others = [
        (true, false, false),
        (true, true, false),
        (false, true, false),
        (false, false, true),
        (true, false, true),
        (true, true, true),
        (false, true, true),
    ];
    for (ahead, stop, behind) in others {
        let other = run(ahead, stop, behind);
        let how = format!("ahead: {ahead}, stopped: {stop}, behind: {behind}");
        assert_eq!(other.0, here.0, "the alerts raised ({how})");
        assert_eq!(other.1, here.1, "detector state and alert log ({how})");
        assert_eq!(other.2, here.2, "counts ({how})");
    }
}
