//! The gate against the writer's word: a containment it began stays when
//! the detector bears it out, and is lifted when not.

use super::loader::Loads;
use super::*;
use crate::detect::{DetectConfig, Loaded, Replica};
use crate::event::{Event, Tls};
use crate::store::StoreOptions;

fn gate(dir: &std::path::Path) -> (Gate, Holds) {
    let store = Store::open(&StoreOptions::for_test(dir, "UTC", 30)).unwrap();
    let settings = Settings {
        kinds: vec![AlertKind::VolumeSpike, AlertKind::NewSender],
        never_hold: Vec::new(),
        never_hold_nets: Vec::new(),
        hold_hours: 1,
        remind_seconds: 0,
    };
    let holds = Holds::open(&store, settings, None).unwrap();
    let (tx, _) = std::sync::mpsc::sync_channel(1);
    let gate = Gate::new(
        holds.clone(),
        Arc::new(DetectConfig::default()),
        Loads::new(tx),
    );
    (gate, holds)
}

/// A new account's 41 submissions within a minute: the 40th raises the
/// new-sender alert, the 41st is contained. Returns them.
fn run(gate: &Gate) -> Vec<Event> {
    let start = chrono::Utc::now();
    let events: Vec<Event> = (0..41)
        .map(|i| {
            Event::accepted(
                start + chrono::TimeDelta::milliseconds(i),
                "m@example.com",
                Tls::V1_3,
            )
        })
        .collect();
    let now = start.timestamp();
    for (i, ev) in events.iter().enumerate() {
        let (hold, seq) = gate.answer(ev, None, now, Action::Hold);
        assert_eq!(seq, Some(i as u64 + 1), "numbered");
        assert_eq!(hold.is_some(), i == 40, "submission {}", i + 1);
    }
    events
}

#[test]
fn a_containment_the_detector_bears_out_stays() {
    let dir = tempfile::tempdir().unwrap();
    let (gate, holds) = gate(dir.path());
    let events = run(&gate);
    // The writer counted the 41 and raised the same alert.
    let mut replica = Replica::from_loaded(Loaded::default(), events[0].ts.timestamp());
    let cfg = DetectConfig::default();
    let raised = events
        .iter()
        .filter(|e| replica.submit(e, &cfg).is_some())
        .count();
    assert_eq!(raised, 1);
    gate.publish("m@example.com", 41, replica, &Arc::new(cfg));
    let now = chrono::Utc::now().timestamp();
    assert!(
        holds
            .check("m@example.com", None, now, Action::Hold)
            .is_some()
    );
}

#[test]
fn a_containment_the_detector_does_not_bear_out_is_lifted() {
    let dir = tempfile::tempdir().unwrap();
    let (gate, holds) = gate(dir.path());
    let events = run(&gate);
    // The writer knew the account from elsewhere (a month of mail): its
    // count of the same 41 opened no incident.
    let month = Loaded {
        first_seen: Some(events[0].ts.timestamp() - 30 * 86_400),
        ..Loaded::default()
    };
    let replica = Replica::from_loaded(month, events[0].ts.timestamp());
    assert!(!replica.incident_open());
    gate.publish(
        "m@example.com",
        41,
        replica,
        &Arc::new(DetectConfig::default()),
    );
    let now = chrono::Utc::now().timestamp();
    assert!(
        holds
            .check("m@example.com", None, now, Action::Hold)
            .is_none()
    );
    assert!(holds.list().unwrap().is_empty(), "nothing on record");
}

#[test]
fn a_released_account_is_trusted_until_it_sends_twice_its_alerts_count_in_an_hour() {
    let dir = tempfile::tempdir().unwrap();
    let (gate, holds) = gate(dir.path());
    run(&gate);
    // Released during its incident (the alert counted 40 in an hour).
    let (sender, _) = holds
        .release("m@example.com", "ann")
        .unwrap()
        .expect("contained");
    let now = chrono::Utc::now().timestamp();
    for i in 0..80 {
        let got = holds.check(&sender, None, now, Action::Hold);
        assert!(got.is_none(), "submission {} after the release", i + 1);
    }
    // The 81st within the hour is one too many: contained again.
    let hold = holds
        .check(&sender, Some("Q81"), now, Action::Hold)
        .expect("escalated");
    assert!(hold.escalated && hold.in_force(now));
    // The record has its queue id (the answer's copy leaves them out).
    assert!(hold.held_queue_ids.is_empty());
    let record = holds.of(&sender).unwrap().expect("the record");
    assert_eq!(record.held_queue_ids, ["Q81"]);
    assert!(
        hold.why.contains("81 messages within an hour"),
        "{}",
        hold.why
    );
    assert!(
        hold.why
            .contains("twice the 40 that raised the new_sender alert")
    );
    // Counted from then on as any containment.
    assert!(holds.check(&sender, None, now, Action::Hold).is_some());
}

#[test]
fn the_watch_counts_by_the_hour_and_ends_with_hold_hours() {
    let dir = tempfile::tempdir().unwrap();
    let (gate, holds) = gate(dir.path());
    run(&gate);
    let (sender, _) = holds.release("m@example.com", "ann").unwrap().unwrap();
    let now = chrono::Utc::now().timestamp();
    // 80 in each of two hours: never more than 80 within one.
    for hour in 0..2 {
        for _ in 0..80 {
            assert!(
                holds
                    .check(&sender, None, now + hour * 3600, Action::Hold)
                    .is_none()
            );
        }
    }
    // hold_hours (1 here) after the release, no longer watched.
    for _ in 0..200 {
        assert!(
            holds
                .check(&sender, None, now + 3 * 3600, Action::Hold)
                .is_none()
        );
    }
}
