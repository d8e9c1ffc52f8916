//! The Postfix and Exim parsers on logs written by the real MTAs
//! (tests/fixtures/mta): every user × TLS count exactly as sent.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::Value;
use smtp_auth_insight::event::{Event, Outcome};
use smtp_auth_insight::parse::exim::Exim;
use smtp_auth_insight::parse::lines::Lines;
use smtp_auth_insight::parse::postfix::Postfix;
use smtp_auth_insight::parse::syslog::Clock;
use smtp_auth_insight::parse::{LogParser, Skip};
use std::collections::{BTreeMap, HashSet};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/mta");

fn clock() -> Clock {
    // The fixtures were written on 2026-11-27 (UTC).
    Clock {
        reference: "2026-11-27T12:00:00Z".parse::<DateTime<Utc>>().unwrap(),
        tz: Tz::UTC,
    }
}

fn run(parser: &mut dyn LogParser, bytes: &[u8]) -> (Vec<Event>, BTreeMap<Skip, u64>) {
    let mut lines = Lines::new(bytes);
    let mut events = Vec::new();
    let mut skips = BTreeMap::new();
    while let Some(line) = lines.next_bytes().unwrap() {
        if let Err(skip) = line.and_then(|l| parser.bytes(l, &mut events)) {
            *skips.entry(skip).or_default() += 1;
        }
    }
    parser.finish(&mut events);
    (events, skips)
}

fn parse_fixture(name: &str) -> Vec<Event> {
    let bytes = std::fs::read(format!("{DIR}/{name}")).unwrap();
    let mut parser: Box<dyn LogParser> = if name.starts_with("exim") {
        Box::new(Exim::new(Tz::UTC, "mx1".into()))
    } else {
        Box::new(Postfix::new(clock(), None))
    };
    let (events, skips) = run(parser.as_mut(), &bytes);
    assert!(skips.is_empty(), "{name}: {skips:?}");
    events
}

fn expected() -> Value {
    serde_json::from_str(&std::fs::read_to_string(format!("{DIR}/expected.json")).unwrap()).unwrap()
}

/// (user -> tls -> count) of accepted messages, and (user -> count) of failures.
fn tally(events: &[Event]) -> (Value, Value) {
    let mut messages: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let mut failures: BTreeMap<String, u64> = BTreeMap::new();
    for ev in events {
        match ev.result {
            Outcome::Accepted => {
                *messages
                    .entry(ev.sender.clone())
                    .or_default()
                    .entry(ev.tls.key().into())
                    .or_default() += 1
            }
            Outcome::AuthFailed => *failures.entry(ev.sender.clone()).or_default() += 1,
        }
    }
    (
        serde_json::to_value(messages).unwrap(),
        serde_json::to_value(failures).unwrap(),
    )
}

#[test]
fn every_fixture_gives_exactly_the_submitted_counts() {
    let want = expected();
    for name in [
        "postfix-maillog-file.log",
        "postfix-rsyslog.log",
        "postfix-journal-short-iso.log",
        "exim-mainlog.log",
    ] {
        let events = parse_fixture(name);
        let (messages, failures) = tally(&events);
        assert_eq!(messages, want["messages"], "{name}");
        assert_eq!(failures, want["auth_failures"], "{name}");
        let ids: HashSet<_> = events.iter().map(|e| e.id.clone().unwrap()).collect();
        assert_eq!(ids.len(), events.len(), "{name}: ids must be unique");
        assert!(
            events
                .iter()
                .all(|e| e.client_ip == Some("127.0.0.1".parse().unwrap())),
            "{name}"
        );
        assert!(
            events
                .iter()
                .all(|e| e.ts.date_naive().to_string() == "2026-11-27"),
            "{name}"
        );
        for (user, from) in want["envelope_from_differs"].as_object().unwrap() {
            assert!(
                events
                    .iter()
                    .any(|e| &e.sender == user && e.envelope_from.as_deref() == from.as_str()),
                "{name}: {user} sent as {from}"
            );
        }
    }
}

#[test]
fn postfix_ids_are_host_and_queue_id() {
    let events = parse_fixture("postfix-maillog-file.log");
    let alice = events
        .iter()
        .find(|e| e.sender == "alice@example.com")
        .unwrap();
    let id = alice.id.as_deref().unwrap();
    assert!(id.starts_with("mx1:") && id.len() > 8, "{id}");
    assert_eq!(alice.host.as_deref(), Some("mx1"));
    // A host label replaces the syslog host name.
    let bytes = std::fs::read(format!("{DIR}/postfix-rsyslog.log")).unwrap();
    let (events, _) = run(&mut Postfix::new(clock(), Some("relay-a".into())), &bytes);
    assert!(
        events
            .iter()
            .all(|e| e.id.as_deref().unwrap().starts_with("relay-a:"))
    );
}

#[test]
fn a_message_refused_at_the_end_of_data_is_no_submission() {
    // Postfix deferred mallory's message (450 4.7.1) and rejected eve's
    // (554 5.7.1) at the end of DATA, as the policy service does with a
    // contained account; only alice's went out.
    let events = parse_fixture("postfix-end-of-data-reject.log");
    let senders: Vec<&str> = events.iter().map(|e| e.sender.as_str()).collect();
    assert_eq!(senders, ["alice@example.com"]);
}

#[test]
fn an_interrupted_connection_still_counts_its_messages() {
    // The log cut right after the client= lines, before qmgr and disconnect:
    // finish() emits what was pending.
    let text = std::fs::read_to_string(format!("{DIR}/postfix-maillog-file.log")).unwrap();
    let cut = text.find("postfix/qmgr").unwrap();
    let head = &text[..text[..cut].rfind('\n').unwrap() + 1];
    let (events, _) = run(&mut Postfix::new(clock(), None), head.as_bytes());
    assert_eq!(events.len(), head.matches("sasl_username=").count());
}

#[test]
fn garbage_is_skipped_and_counted_never_a_panic() {
    let mut junk: Vec<u8> = Vec::new();
    junk.extend_from_slice(b"\x00\x01\x02 binary \xff\xfe\n");
    junk.extend_from_slice(b"Nov 27 02:49:47 mx1 postfix/submission/smtpd[1]: ABC123: client=x[1.2.3.4], sasl_username=ok@example.com\n");
    junk.extend_from_slice(b"Nov 27 02:49:4");
    junk.extend_from_slice(b"\n");
    junk.extend(std::iter::repeat_n(b'A', 1 << 20));
    junk.extend_from_slice(b"\nthis is not a log line\n");
    junk.extend_from_slice(
        "Nov 27 02:49:47 mx1 postfix/smtpd[1]: X1: client=x[1.2.3.4], sasl_username=a\u{7}b\n"
            .as_bytes(),
    );
    let (events, skips) = run(&mut Postfix::new(clock(), None), &junk);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].sender, "ok@example.com");
    let want: BTreeMap<Skip, u64> = [
        (Skip::NotUtf8, 1),
        (Skip::NotALogLine, 2),
        (Skip::TooLong, 1),
        (Skip::BadUsername, 1),
    ]
    .into();
    assert_eq!(skips, want);
    let (events, skips) = run(&mut Exim::new(Tz::UTC, "mx".into()), &junk);
    assert!(events.is_empty());
    assert_eq!(skips.values().sum::<u64>(), 6);
}

#[test]
fn saved_state_resumes_mid_connection_at_any_line() {
    // Split each log at every line: parse the head, save the parser state,
    // restore it into a fresh parser, parse the tail. The events must be
    // those of one uninterrupted parse.
    for name in ["postfix-rsyslog.log", "exim-mainlog.log"] {
        let text = std::fs::read_to_string(format!("{DIR}/{name}")).unwrap();
        let fresh = || -> Box<dyn LogParser> {
            if name.starts_with("exim") {
                Box::new(Exim::new(Tz::UTC, "mx1".into()))
            } else {
                Box::new(Postfix::new(clock(), None))
            }
        };
        let (mut whole, _) = run(fresh().as_mut(), text.as_bytes());
        whole.sort_by(|a, b| a.id.cmp(&b.id));
        let cuts: Vec<usize> = text.match_indices('\n').map(|(i, _)| i + 1).collect();
        for cut in cuts {
            let mut first = fresh();
            let mut events = Vec::new();
            for line in text[..cut].lines() {
                let _ = first.line(line, &mut events);
            }
            let saved = serde_json::to_string(&first.save()).unwrap();
            let mut second = fresh();
            second
                .restore(serde_json::from_str(&saved).unwrap())
                .unwrap();
            let (rest, _) = run(second.as_mut(), &text.as_bytes()[cut..]);
            events.extend(rest);
            events.sort_by(|a, b| a.id.cmp(&b.id));
            assert_eq!(events, whole, "{name} cut at byte {cut}");
        }
    }
}

#[test]
fn bytes_that_are_not_utf8_are_refused_only_in_what_is_read() {
    // The real log with stray bytes put in three places: a cleanup line
    // (a program passed over: nothing refused, nothing lost), the first
    // qmgr `from=` (its submission still counted, without the envelope
    // sender, and that line refused) and the first submission's username
    // (that submission refused).
    let text = std::fs::read_to_string(format!("{DIR}/postfix-maillog-file.log")).unwrap();
    let (whole, skips) = run(&mut Postfix::new(clock(), None), text.as_bytes());
    assert!(skips.is_empty(), "{skips:?}");
    let spoil = |bytes: &mut Vec<u8>, marker: &str, nth: usize| {
        let at = String::from_utf8_lossy(bytes)
            .match_indices(marker)
            .nth(nth)
            .unwrap()
            .0;
        bytes.insert(at + marker.len(), 0xff);
    };
    let mut bytes = text.clone().into_bytes();
    spoil(&mut bytes, "message-id=<", 0);
    let (events, skips) = run(&mut Postfix::new(clock(), None), &bytes);
    assert!(skips.is_empty(), "{skips:?}");
    assert_eq!(events, whole);
    spoil(&mut bytes, "qmgr[25001]: 6F32CBE169: from=<", 0);
    let (events, skips) = run(&mut Postfix::new(clock(), None), &bytes);
    assert_eq!(skips, [(Skip::NotUtf8, 1)].into());
    let first = |events: &[Event]| {
        events
            .iter()
            .find(|e| e.id.as_deref() == Some("mx1:6F32CBE169"))
            .cloned()
            .unwrap()
    };
    assert_eq!(
        first(&whole).envelope_from.as_deref(),
        Some("alice@example.com")
    );
    assert_eq!(first(&events).envelope_from, None);
    assert_eq!(events.len(), whole.len());
    spoil(&mut bytes, "sasl_username=", 0);
    let (events, skips) = run(&mut Postfix::new(clock(), None), &bytes);
    // Its qmgr line, still spoilt, finds no submission waiting: not read.
    assert_eq!(skips, [(Skip::NotUtf8, 1)].into());
    assert_eq!(events.len(), whole.len() - 1);
    assert!(
        events
            .iter()
            .all(|e| e.id.as_deref() != Some("mx1:6F32CBE169"))
    );
}
