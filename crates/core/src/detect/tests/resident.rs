//! Which accounts stay in memory: idle ones leave once the store can
//! bring them back, sooner when many are held, never before their
//! messages are stored; running hours leave after an idle hour.

use super::*;
use crate::detect::resident::{RESIDENT, RESIDENT_BYTES};

#[test]
fn idle_accounts_leave_memory_when_the_store_holds_all_their_hours() {
    let mut d = detector();
    let mut out = Vec::new();
    let t0 = MONDAY + 10 * 86_400;
    // "old" has counts before the store's hourly window, "recent" only within.
    d.observe(&ev(t0, "old@example.com", Tls::V1_3), &Fresh, &mut out);
    d.observe(
        &ev(t0 + 7_200, "recent@example.com", Tls::V1_3),
        &Fresh,
        &mut out,
    );
    let window_start = u32::try_from((t0 + 3_600) / 3_600).unwrap();
    d.tick(t0 + 6 * 3_600, &mut out);
    d.sweep(Some(window_start));
    assert_eq!(
        d.accounts(),
        2,
        "a few accounts stay through a short idle spell"
    );
    d.tick(t0 + 30 * 3_600, &mut out);
    assert_eq!(d.accounts(), 2);
    d.sweep(Some(window_start));
    assert_eq!(d.accounts(), 1, "the account the store can restore left");
    d.tick(t0 + 32 * 3_600, &mut out);
    d.sweep(None);
    assert_eq!(d.accounts(), 1, "nothing restorable without a store");
}

/// An import observes the next part of its log while the part before is
/// written: an account that sent after the cut being written stays in
/// memory, idle or not, as its messages may not be stored yet.
#[test]
fn accounts_that_sent_after_the_cut_committed_stay() {
    let mut d = detector();
    let mut out = Vec::new();
    let t0 = MONDAY + 10 * 86_400;
    d.observe(&ev(t0, "before@example.com", Tls::V1_3), &Fresh, &mut out);
    let cut = d.take_dirty().cut;
    d.observe(
        &ev(t0 + 60, "after@example.com", Tls::V1_3),
        &Fresh,
        &mut out,
    );
    assert_eq!(d.take_dirty().cut, cut + 1, "each cut is counted");
    let window_start = u32::try_from(t0 / 3_600).unwrap();
    d.tick(t0 + 30 * 3_600, &mut out);
    d.sweep_cut(Some(window_start), cut);
    assert_eq!(d.accounts(), 1, "the account that sent after the cut stays");
    d.tick(t0 + 31 * 3_600, &mut out);
    d.sweep_cut(Some(window_start), cut + 1);
    assert_eq!(d.accounts(), 0, "and leaves once its cut is committed");
}

#[test]
fn many_accounts_leave_memory_after_a_short_idle_spell() {
    let mut d = detector();
    let mut out = Vec::new();
    let t0 = MONDAY + 10 * 86_400;
    for i in 0..=RESIDENT {
        d.observe(
            &ev(t0, &format!("u{i}@example.com"), Tls::V1_3),
            &Fresh,
            &mut out,
        );
    }
    d.observe(
        &ev(t0 + 3 * 3_600, "busy@example.com", Tls::V1_3),
        &Fresh,
        &mut out,
    );
    let window_start = u32::try_from(t0 / 3_600).unwrap();
    d.sweep(Some(window_start));
    assert_eq!(d.accounts(), 1, "only the account active within 2 hours");
}

/// A store whose every account sent a message in each of its last four
/// weeks' hours: long histories.
struct Busy;

impl Loader for Busy {
    fn sender(&self, _: &str, from_hour: u32) -> Loaded {
        Loaded {
            hours: (from_hour..from_hour + history::WINDOW_HOURS)
                .map(|h| (h, 1))
                .collect(),
            first_seen: Some(0),
            state: None,
            ips: Vec::new(),
        }
    }
    fn cooldown(&self, _: &str) -> Option<i64> {
        None
    }
}

#[test]
fn accounts_holding_much_memory_leave_after_a_short_idle_spell() {
    let t0 = MONDAY + 40 * 86_400;
    let window_start = u32::try_from(t0 / 3_600).unwrap() - history::WINDOW_HOURS;
    let held_after_idle = |accounts: usize| {
        let mut d = detector();
        let mut out = Vec::new();
        for i in 0..accounts {
            d.observe(
                &ev(t0, &format!("u{i}@example.com"), Tls::V1_3),
                &Busy,
                &mut out,
            );
        }
        d.tick(t0 + 3 * 3_600, &mut out);
        d.sweep(Some(window_start));
        (d.accounts(), d.bytes())
    };
    // Few accounts stay through three idle hours (far below RESIDENT)...
    let (kept, bytes) = held_after_idle(100);
    assert_eq!(kept, 100);
    assert!(bytes < RESIDENT_BYTES);
    // ...but not once their histories pass the memory bound.
    let many = 2 * RESIDENT_BYTES / (bytes / 100);
    assert!(many < RESIDENT, "the count bound is not what acts here");
    assert_eq!(held_after_idle(many).0, 0);
}

#[test]
fn an_idle_account_drops_its_running_hour_without_a_sweep() {
    let mut d = detector();
    let mut out = Vec::new();
    let t0 = MONDAY + 10 * 86_400;
    for m in 0..3 {
        d.observe(
            &ev(t0 + m * 60, "a@example.com", Tls::V1_3),
            &Fresh,
            &mut out,
        );
    }
    let hot = d.bytes();
    // Another account's message two hours later moves the clock on.
    d.observe(
        &ev(t0 + 7_200, "b@example.com", Tls::V1_3),
        &Fresh,
        &mut out,
    );
    assert_eq!(d.accounts(), 2);
    assert!(
        d.bytes() < hot,
        "the idle account's window was dropped: {} vs {hot}",
        d.bytes()
    );
}
