use super::*;
use crate::store::Store;

fn totals(n: u64) -> Arc<PeriodTotals> {
    Arc::new(PeriodTotals {
        senders: vec![(sled::IVec::from(&b"a@x"[..]), TlsCounts([n, 0, 0, 0, 0]))],
        days: Vec::new(),
    })
}

/// A store keeping `days` days, with a message of "a@x" on each of them
/// up to now; the directory it lives in goes with it.
fn a_message_a_day(days: u32) -> (tempfile::TempDir, Store, chrono::DateTime<chrono::Utc>) {
    use crate::event::{Event, Tls};
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&crate::store::StoreOptions::for_test(
        dir.path(),
        "UTC",
        days,
    ))
    .unwrap();
    let now = chrono::Utc::now();
    let events: Vec<Event> = (0..u64::from(days))
        .map(|d| Event::accepted(now - chrono::Days::new(d), "a@x", Tls::V1_3))
        .collect();
    crate::store::Writer::new(store.clone())
        .apply(&[&events], &[], now)
        .unwrap();
    (dir, store, now)
}

/// Period `p` whole.
fn whole(p: u32) -> Span {
    let days = Store::period_days(p);
    (p, *days.start(), *days.end())
}

#[test]
fn the_past_periods_in_retention_are_read_ahead() {
    use crate::event::Tls;
    let (_dir, store, now) = a_message_a_day(90);
    let today = crate::event::time::day_number(store.today(now));
    let oldest = crate::event::time::day_number(store.oldest_day(now));
    let current = Store::daily_period(today);
    // Asked to stop at once, it reads nothing.
    assert_eq!(store.read_ahead(now, &[7], || true).unwrap(), 0);
    let past: Vec<u32> = (0..current)
        .rev()
        .take_while(|p| *Store::period_days(*p).start() >= oldest)
        .collect();
    assert!(past.len() >= 2, "{past:?}");
    let first = Store::daily_period(oldest);
    // The past periods, the one the window begins in (unless it is whole,
    // one of the past) and today's, each read once.
    let begins_whole = whole(first).1 == oldest;
    assert_eq!(
        store.read_ahead(now, &[7], || false).unwrap(),
        past.len() + 1 + usize::from(!begins_whole)
    );
    let messages = |span: Span| match store.totals.get(span) {
        Ok(kept) => {
            assert_eq!(kept.senders.len(), 1, "{span:?}");
            assert_eq!(kept.days.len() as u32, span.2 - span.1 + 1, "{span:?}");
            kept.days
                .iter()
                .map(|d| d.0[Tls::V1_3.index()])
                .sum::<u64>()
        }
        Err(_) => panic!("{span:?} not kept"),
    };
    for p in &past {
        assert_eq!(messages(whole(*p)), 28);
    }
    // The parts the whole window's range and the last week's begin and
    // end in: one message a day.
    let part = |p: u32, from: u32| (p, from.max(whole(p).1), today.min(whole(p).2));
    assert_eq!(
        messages(part(first, oldest)),
        u64::from(whole(first).2 - oldest + 1)
    );
    assert_eq!(
        messages(part(current, 0)),
        u64::from(today - whole(current).1 + 1)
    );
    let week = today - 6;
    for p in Store::daily_period(week)..=current {
        let span = part(p, week);
        assert_eq!(messages(span), u64::from(span.2 - span.1 + 1));
    }
    // Not the whole of a period partly older than the retention.
    assert!(begins_whole || store.totals.get(whole(first)).is_err());
    // Again, with all of it kept: nothing to read.
    assert_eq!(store.read_ahead(now, &[7], || false).unwrap(), 0);
}

#[test]
fn a_window_longer_than_what_is_kept_is_read_ahead_newest_first_and_once() {
    let (_dir, store, now) = a_message_a_day(400);
    let today = crate::event::time::day_number(store.today(now));
    let current = Store::daily_period(today);
    // Fifteen periods in the window, seven spans read of them, the newest:
    // two in today's period (the window's part and the week's), or one
    // there and two in the period before when the week begins in it; the
    // rest whole periods. One read per period.
    let read = store.read_ahead(now, &[7], || false).unwrap();
    assert!(
        (READ_AHEAD - 2..=READ_AHEAD - 1).contains(&read),
        "{read} periods"
    );
    assert!(store.totals.get(whole(current - 1)).is_ok());
    assert!(store.totals.get(whole(current - 5)).is_ok());
    assert!(store.totals.get(whole(current - 8)).is_err());
    // Again: all of it is kept, nothing is read (the daemon calls it
    // every ten minutes).
    assert_eq!(store.read_ahead(now, &[7], || false).unwrap(), 0);
}

#[test]
fn kept_totals_gain_what_a_fold_adds_and_equal_a_read() {
    use crate::event::{Event, Tls};
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&crate::store::StoreOptions::for_test(dir.path(), "UTC", 90)).unwrap();
    let now = chrono::Utc::now();
    let today = crate::event::time::day_number(store.today(now));
    let period = Store::daily_period(today);
    let first = *Store::period_days(period).start();
    let ago = |d: u32| now - chrono::Days::new(u64::from(d));
    let mut w = crate::store::Writer::new(store.clone());
    let events: Vec<Event> = ["a@x", "a@x2", "m@x"]
        .iter()
        .map(|s| Event::accepted(now, *s, Tls::V1_2))
        .collect();
    w.apply(&[&events], &[], now).unwrap();
    // Today's span and the whole period so far.
    let spans = [(period, today, today), (period, first, today)];
    for span in spans {
        store.period_totals(span).unwrap();
    }
    // Known accounts, new ones between and beside them ("a@x1" between
    // "a@x" and "a@x2"), and a day before today.
    let mut more = vec![
        Event::accepted(now, "a@x", Tls::V1_3),
        Event::accepted(now, "a@x1", Tls::V1_0),
        Event::accepted(now, "b@x", Tls::V1_2),
        Event::accepted(now, "0@x", Tls::V1_2),
        Event::accepted(now, "zz@x", Tls::None),
        Event::accepted(now, "b@x", Tls::V1_2),
    ];
    if today > first {
        more.push(Event::accepted(ago(1), "c@x", Tls::V1_2));
    }
    w.apply(&[&more], &[], now).unwrap();
    let kept: Vec<Arc<PeriodTotals>> = spans
        .iter()
        .map(|s| match store.totals.get(*s) {
            Ok(kept) => kept,
            Err(_) => panic!("{s:?} dropped by a fold"),
        })
        .collect();
    store.totals.changed(vec![period]);
    for (span, kept) in spans.iter().zip(kept) {
        let read = store.period_totals(*span).unwrap();
        assert_eq!(kept.senders, read.senders, "{span:?}");
        assert_eq!(kept.days, read.days, "{span:?}");
    }
    let today_senders = store.totals.get(spans[0]).ok().unwrap();
    assert_eq!(today_senders.senders.len(), 7);
    assert_eq!(today_senders.days[0].0.iter().sum::<u64>(), 9);

    // A read that began before a write is not kept; totals kept
    // before it are given out again only once it ended, and dropped
    // when it did not say what it added or another write overlapped.
    let t = Totals::default();
    let v = t.get((7, 0, 0)).err().unwrap();
    t.keep((7, 0, 0), v, totals(1));
    let racing = t.get((7, 1, 1)).err().unwrap();
    let changing = t.begin(vec![7]);
    assert!(t.get((7, 0, 0)).is_err());
    t.keep((7, 1, 1), racing, totals(9));
    let added = HashMap::from([((0, "a@x"), TlsCounts([2, 0, 0, 0, 0]))]);
    t.end(changing, Some(&added));
    assert!(t.get((7, 1, 1)).is_err());
    let Ok(after) = t.get((7, 0, 0)) else {
        panic!("dropped")
    };
    assert_eq!(after.senders[0].1, TlsCounts([3, 0, 0, 0, 0]));
    let one = t.begin(vec![7]);
    let other = t.begin(vec![7]);
    t.end(one, Some(&added));
    t.end(other, Some(&added));
    assert!(t.get((7, 0, 0)).is_err());
}

#[test]
fn totals_read_before_a_change_are_never_kept() {
    let t = Totals::default();
    let v = t.get((7, 0, 0)).err().unwrap();
    t.keep((7, 0, 0), v, totals(1));
    assert!(t.get((7, 0, 0)).is_ok());
    // Read, then the writer changes the period before they are kept.
    let v = t.get((8, 0, 0)).err().unwrap();
    t.changed(vec![8]);
    t.keep((8, 0, 0), v, totals(2));
    assert!(t.get((8, 0, 0)).is_err());
    // A change drops what is kept; the purge drops everything.
    t.changed(vec![7]);
    assert!(t.get((7, 0, 0)).is_err());
    let v = t.get((7, 0, 0)).err().unwrap();
    t.keep((7, 0, 0), v, totals(3));
    let v9 = t.get((9, 0, 0)).err().unwrap();
    t.changed_all();
    t.keep((9, 0, 0), v9, totals(4));
    assert!(t.get((7, 0, 0)).is_err() && t.get((9, 0, 0)).is_err());
}

#[test]
fn the_purge_drops_only_the_spans_with_days_it_removed() {
    let t = Totals::default();
    for span in [(7, 10, 20), (7, 15, 20), (8, 21, 30)] {
        let v = t.get(span).err().unwrap();
        t.keep(span, v, totals(1));
    }
    let reading = t.get((8, 25, 30)).err().unwrap();
    t.purged(15);
    assert!(t.get((7, 10, 20)).is_err());
    assert!(t.get((7, 15, 20)).is_ok() && t.get((8, 21, 30)).is_ok());
    // What was being read may hold removed days' counts.
    t.keep((8, 25, 30), reading, totals(2));
    assert!(t.get((8, 25, 30)).is_err());
}

#[test]
fn at_most_the_spans_used_most_lately_are_kept() {
    let t = Totals::default();
    let kept = |t: &Totals| -> Vec<u32> {
        // (`get` marks every kept one used, in period order.)
        (0..30).filter(|p| t.get((*p, 0, 6)).is_ok()).collect()
    };
    for p in 10..10 + KEPT_SPANS as u32 + 2 {
        let v = t.get((p, 0, 6)).err().unwrap();
        t.keep((p, 0, 6), v, totals(u64::from(p)));
    }
    let first = kept(&t);
    assert_eq!(first.len(), KEPT_SPANS);
    assert_eq!(first[0], 12, "the first kept went first");
    // A span given out stays; a new one pushes out the one used least
    // lately, whatever its period (the ones left of the day before).
    assert!(t.get((12, 0, 6)).is_ok());
    let v = t.get((3, 0, 6)).err().unwrap();
    t.keep((3, 0, 6), v, totals(3));
    let now = kept(&t);
    assert!(
        now.contains(&3) && now.contains(&12) && !now.contains(&13),
        "{now:?}"
    );
    // A span wanted (to be built by the next read of its period) takes a
    // place too.
    t.want((40, 0, 1));
    assert_eq!(t.along((40, 2, 3)), [(40, 2, 3), (40, 0, 1)]);
    let kept = kept(&t);
    // Spans of one period are kept apart and dropped together.
    let last = kept[kept.len() - 1];
    let v = t.get((last, 1, 6)).err().unwrap();
    t.keep((last, 1, 6), v, totals(1));
    assert!(t.get((last, 1, 6)).is_ok() && t.get((last, 0, 6)).is_ok());
    t.changed(vec![last]);
    assert!(t.get((last, 1, 6)).is_err() && t.get((last, 0, 6)).is_err());
    // Read again, the period gives both in one pass, the asked one first.
    assert_eq!(
        t.along((last, 2, 3)),
        [(last, 2, 3), (last, 1, 6), (last, 0, 6)]
    );
    assert_eq!(t.along((last, 0, 6)), [(last, 0, 6), (last, 1, 6)]);
}

#[test]
fn the_spans_of_a_range_tile_its_days_one_period_each() {
    let first = *Store::period_days(40).start() + 5;
    for last in [first, first + 1, first + 30, first + 89] {
        let spans: Vec<Span> = Store::spans(first..=last).collect();
        let days: Vec<u32> = spans.iter().flat_map(|s| s.1..=s.2).collect();
        assert_eq!(days, (first..=last).collect::<Vec<_>>(), "{first}..={last}");
        for (period, from, to) in &spans {
            let whole = Store::period_days(*period);
            assert!(whole.contains(from) && whole.contains(to), "{period}");
        }
        let periods: Vec<u32> = spans.iter().map(|s| s.0).collect();
        assert!(periods.windows(2).all(|w| w[1] == w[0] + 1), "{periods:?}");
    }
}
