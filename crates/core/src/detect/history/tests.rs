use super::*;

impl History {
    /// The entries as (hour, count).
    fn entries(&self) -> Vec<(u32, u32)> {
        self.hours
            .iter()
            .map(|e| (self.hour(e), u32::from(e.1)))
            .collect()
    }
}

const MONDAY_0H: u32 = 489_960; // 2025-11-24T00:00Z, a Monday

fn cfg() -> VolumeConfig {
    VolumeConfig::default()
}

fn threshold(b: &Baseline) -> u32 {
    b.threshold(&cfg())
}

/// An office account: `rate` messages at 09-16 on weekdays, for `weeks`.
fn office(weeks: u32, rate: u32) -> History {
    let mut h = History::default();
    for day in 0..weeks * 7 {
        if day % 7 >= 5 {
            continue;
        }
        for hour in 9..17 {
            h.add(MONDAY_0H + day * 24 + hour, rate);
        }
    }
    h
}

#[test]
fn an_office_account_at_night_alerts_on_a_modest_burst() {
    let h = office(4, 8);
    let night = h.baseline(MONDAY_0H + 28 * 24 + 3, MONDAY_0H, &cfg(), None);
    let day = h.baseline(MONDAY_0H + 28 * 24 + 10, MONDAY_0H, &cfg(), None);
    assert!(threshold(&night) <= 30, "{night:?}");
    assert!(day.expected >= 8.0, "{day:?}");
    assert!(threshold(&day) > threshold(&night));
}

#[test]
fn a_level_seen_twice_at_this_hour_is_normal() {
    let mut h = History::default();
    let at = |day: u32| MONDAY_0H + day * 24 + 2;
    h.add(at(0), 500);
    let second = h.baseline(at(1), MONDAY_0H, &cfg(), None);
    assert!(
        threshold(&second) <= 500,
        "seen once is not yet normal: {second:?}"
    );
    h.add(at(1), 500);
    let third = h.baseline(at(2), MONDAY_0H, &cfg(), None);
    assert!(threshold(&third) > 700, "seen twice is normal: {third:?}");
}

#[test]
fn a_weekly_burst_is_learnt_from_the_same_hour_of_week() {
    let mut h = History::default();
    let monday9 = |week: u32| MONDAY_0H + week * 168 + 9;
    h.add(monday9(0), 800);
    h.add(monday9(1), 800);
    h.add(monday9(2), 800);
    let b = h.baseline(monday9(3), MONDAY_0H, &cfg(), None);
    assert!(threshold(&b) > 1000, "{b:?}");
    // ... but not on Tuesday at 09:00.
    let b = h.baseline(monday9(3) + 24, MONDAY_0H, &cfg(), None);
    assert!(threshold(&b) < 800, "{b:?}");
}

#[test]
fn a_steady_account_alerts_at_a_few_times_its_rate() {
    let mut h = History::default();
    for hour in 0..28 * 24 {
        h.add(MONDAY_0H + hour, 40);
    }
    let b = h.baseline(MONDAY_0H + 28 * 24 + 5, MONDAY_0H, &cfg(), None);
    assert_eq!(b.expected, 40.0);
    assert!((80..=130).contains(&threshold(&b)), "{b:?}");
}

#[test]
fn new_accounts_get_the_new_sender_allowance() {
    let h = History::default();
    let new = NewSenderConfig::default();
    let b = h.baseline(MONDAY_0H + 10, MONDAY_0H, &cfg(), Some(&new));
    assert_eq!(threshold(&b), new.min_count.max(30));
    let old = h.baseline(MONDAY_0H + 10, MONDAY_0H, &cfg(), None);
    assert_eq!(threshold(&old), cfg().min_count);
}

#[test]
fn history_keeps_late_events_and_forgets_old_hours() {
    let mut h = History::default();
    h.add(100, 1);
    h.add(105, 2);
    assert_eq!(h.add(102, 3), 3);
    assert_eq!(h.add(105, 1), 3);
    assert_eq!((h.get(100), h.get(102), h.get(105)), (1, 3, 3));
    h.add(105 + WINDOW_HOURS + 1, 1);
    assert_eq!(h.get(100), 0);
    let h = History::from_counts(vec![(5, 1), (3, 0), (5, 2), (4, 1)]);
    assert_eq!(h.entries(), vec![(4, 1), (5, 3)]);
}

#[test]
fn offsets_rebase_and_counts_saturate() {
    let mut h = History::default();
    h.add(1_000, 70_000);
    assert_eq!(h.get(1_000), 65_535, "a count saturates");
    // A late event before the base moves the base back.
    h.add(990, 2);
    assert_eq!(h.entries(), vec![(990, 2), (1_000, 65_535)]);
    // Far later: the old hours leave and the offsets move forward.
    let later = 1_000 + 100_000;
    h.add(later, 1);
    h.add(later + 5, 4);
    assert_eq!(h.entries(), vec![(later, 1), (later + 5, 4)]);
    // An hour years before the newest has no place: not counted.
    assert_eq!(h.add(later - 70_000, 3), 3);
    assert_eq!(h.get(later - 70_000), 0);
    // From stored counts spanning more than the offsets reach.
    let h = History::from_counts(vec![(10, 1), (80_000, 2), (80_001, 3)]);
    assert_eq!(h.entries(), vec![(80_000, 2), (80_001, 3)]);
    assert_eq!(h.oldest(), Some(80_000));
}

#[test]
fn a_blend_of_equal_baselines_is_the_same_at_every_minute() {
    // A new account's hour and the hour before judge alike: its threshold
    // must not move with the minute (it was 41 instead of 40 at some).
    let cfg = crate::detect::DetectConfig::default();
    let b = Baseline {
        expected: 10.0,
        min_count: 40.0,
        repeat: 0.0,
    };
    let want = b.threshold(&cfg.volume);
    for minute in 0..60 {
        let f = f64::from(minute + 1) / 60.0;
        let blended = b.blend(&b, f);
        assert_eq!(blended.threshold(&cfg.volume), want, "minute {minute}");
        assert_eq!(blended.min_count, 40.0, "minute {minute}");
    }
}
