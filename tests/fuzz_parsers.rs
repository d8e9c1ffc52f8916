//! The parsers against mutated input: lines of the real MTAs' logs
//! (tests/fixtures/mta) with bytes flipped, cut, spliced and hostile text
//! put in, and event bodies mangled the same way. Deterministic (a fixed
//! seed per round), and quick enough for every CI run. Whatever the input:
//! no panic, every event carries a name that the event model accepts, and
//! a parser's saved state restores into a new parser.

mod common;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use common::Rng;
use smtp_auth_insight::event::{Event, normalize_sender, parse_body};
use smtp_auth_insight::parse::LogParser;
use smtp_auth_insight::parse::exim::Exim;
use smtp_auth_insight::parse::lines::Lines;
use smtp_auth_insight::parse::postfix::Postfix;
use smtp_auth_insight::parse::syslog::Clock;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/mta");

/// Mutated lines fed to each parser.
const ROUNDS: usize = 20_000;

/// Text an attacker would try in a username or a log line.
const HOSTILE: &[&str] = &[
    "\u{202e}",
    "\u{200b}",
    "\0",
    "\r\n",
    "'$(touch /tmp/pwned)'",
    "<script>alert(1)</script>",
    "sasl_username=",
    "sasl_username=a\u{202e}b@example.com",
    "]: ",
    "TLS connection established from x[1.2.3.4]: TLSv9.9",
    "A=dovecot_plain:",
    " X=TLS1.3:",
    "99999999999999999999",
    "-262143-01-01T00:00:00Z",
];

fn now() -> DateTime<Utc> {
    "2026-11-27T12:00:00Z".parse().unwrap()
}

fn fixture_lines(name: &str) -> Vec<Vec<u8>> {
    std::fs::read(format!("{DIR}/{name}"))
        .unwrap()
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

/// One mutation of `line` (another line of the same log may be spliced in).
fn mutate(rng: &mut Rng, line: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = line.to_vec();
    let at = |rng: &mut Rng, len: usize| rng.below(len as u64 + 1) as usize;
    match rng.below(7) {
        0 => {
            for _ in 0..=rng.below(4) {
                if !out.is_empty() {
                    let i = rng.below(out.len() as u64) as usize;
                    out[i] = rng.below(256) as u8;
                }
            }
        }
        1 => out.truncate(at(rng, line.len())),
        2 => {
            let (i, j) = (at(rng, line.len()), at(rng, other.len()));
            out.truncate(i);
            out.extend_from_slice(&other[j..]);
        }
        3 => {
            let text = HOSTILE[rng.below(HOSTILE.len() as u64) as usize];
            let i = at(rng, out.len());
            out.splice(i..i, text.bytes());
        }
        4 => {
            let i = at(rng, out.len());
            out.splice(i..i, std::iter::repeat_n(b'a', 70_000));
        }
        5 => {
            // A field's value swapped for another line's.
            let i = at(rng, out.len());
            out.truncate(i);
            out.extend_from_slice(other);
        }
        _ => out.extend_from_slice(&other[at(rng, other.len())..]),
    }
    out
}

fn check_events(events: &[Event]) {
    for ev in events {
        assert_eq!(
            normalize_sender(&ev.sender).as_deref(),
            Ok(ev.sender.as_str()),
            "{ev:?}"
        );
        assert!(ev.ts.timestamp() >= 0, "{ev:?}");
    }
}

/// Feeds `ROUNDS` mutated lines of `files` to parsers made by `make`,
/// saving and restoring the state into a new parser now and then.
fn fuzz(files: &[&str], seed: u64, make: impl Fn() -> Box<dyn LogParser>) {
    let lines: Vec<Vec<u8>> = files.iter().flat_map(|f| fixture_lines(f)).collect();
    let mut rng = Rng(seed);
    let mut parser = make();
    let mut events = Vec::new();
    let mut text = Vec::new();
    for round in 0..ROUNDS {
        let line = &lines[rng.below(lines.len() as u64) as usize];
        let other = &lines[rng.below(lines.len() as u64) as usize];
        let bytes = if rng.below(4) == 0 {
            line.clone()
        } else {
            mutate(&mut rng, line, other)
        };
        text.clear();
        text.extend_from_slice(&bytes);
        text.push(b'\n');
        let mut split = Lines::new(text.as_slice());
        while let Ok(Some(read)) = split.next_line() {
            if let Ok(l) = read {
                let _ = parser.line(l, &mut events);
            }
        }
        if round % 997 == 0 {
            parser.idle(now().timestamp() + 86_400, &mut events);
            let state = parser.save();
            let mut fresh = make();
            fresh.restore(state).expect("a saved state restores");
            parser = fresh;
        }
        check_events(&events);
        events.clear();
    }
    parser.finish(&mut events);
    check_events(&events);
}

#[test]
fn postfix_survives_mutated_lines() {
    let clock = Clock {
        reference: now(),
        tz: Tz::UTC,
    };
    fuzz(
        &[
            "postfix-rsyslog.log",
            "postfix-maillog-file.log",
            "postfix-journal-short-iso.log",
        ],
        0x9051_f1c5,
        || Box::new(Postfix::new(clock, None)),
    );
}

#[test]
fn exim_survives_mutated_lines() {
    fuzz(&["exim-mainlog.log"], 0xe71d_0001, || {
        Box::new(Exim::new(Tz::UTC, "mx1".into()))
    });
}

#[test]
fn event_bodies_are_accepted_or_refused_with_a_line_never_a_panic() {
    let good: Vec<Vec<u8>> = (0..50)
        .map(|i| {
            common::event_line(
                "2026-11-27T09:00:00Z",
                &format!("user{i}@example.com"),
                ["TLSv1.3", "TLSv1.2", "none"][i % 3],
                Some(&format!("id-{i}")),
            )
            .into_bytes()
        })
        .collect();
    let mut rng = Rng(0x0bad_cafe);
    let (mut accepted, mut refused) = (0, 0);
    for _ in 0..ROUNDS / 4 {
        let n = 1 + rng.below(5) as usize;
        let mut body = Vec::new();
        for _ in 0..n {
            let line = &good[rng.below(good.len() as u64) as usize];
            let other = &good[rng.below(good.len() as u64) as usize];
            let line = if rng.below(2) == 0 {
                mutate(&mut rng, line, other)
            } else {
                line.clone()
            };
            body.extend_from_slice(&line);
            body.push(b'\n');
        }
        match parse_body(&body, now()) {
            Ok(events) => {
                accepted += 1;
                assert!(events.len() <= n);
                check_events(&events);
            }
            Err(e) => {
                refused += 1;
                // Each refusal names its line (or says the body is empty).
                let lines = body.split(|b| *b == b'\n').count();
                assert!(e.line().is_none_or(|l| (1..=lines).contains(&l)), "{e}");
            }
        }
    }
    // Both kinds came up: the mutations reach past the JSON syntax.
    assert!(accepted > 100 && refused > 100, "{accepted} / {refused}");
}
