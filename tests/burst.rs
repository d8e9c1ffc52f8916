//! A spam run is contained from the message after the one that raised its
//! alert, however fast it goes: over one connection as fast as the answers
//! come, and over eight at once, for a new account and for an established
//! one (three weeks of history) sending from an address it never used.
//! The alert's own count (`observed`) says which message raised it.

mod common;

use common::policy::*;
use common::*;
use serde_json::Value;
use std::io::{BufReader, Write};
use std::time::{Duration, Instant};

/// Sends `n` submissions of `who` from `client` down one connection at
/// once (pipelined, as fast as the daemon answers); the answers in order.
fn pipelined(site: &Site, who: &str, client: &str, series: &str, n: usize) -> Vec<String> {
    let (mut s, mut r) = connected(site);
    let all: String = (0..n)
        .map(|i| request_from("END-OF-MESSAGE", who, &format!("{series}{i:05}"), client))
        .collect();
    s.write_all(all.as_bytes()).expect("send the burst");
    (0..n).map(|_| answer(&mut r)).collect()
}

/// The same over `connections` connections started together; the answers
/// of all, and the submissions per second they were answered at.
fn parallel(
    site: &Site,
    who: &str,
    client: &str,
    connections: usize,
    each: usize,
) -> (Vec<String>, f64) {
    let start = std::sync::Arc::new(std::sync::Barrier::new(connections + 1));
    let threads: Vec<_> = (0..connections)
        .map(|c| {
            let (site_dir, who, client, start) = (
                site.data_dir(),
                who.to_owned(),
                client.to_owned(),
                start.clone(),
            );
            std::thread::spawn(move || {
                let addr = std::fs::read_to_string(site_dir.join("policy-listening")).unwrap();
                let s = std::net::TcpStream::connect(addr.trim()).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut s = s;
                let all: String = (0..each)
                    .map(|i| request_from("END-OF-MESSAGE", &who, &format!("P{c}X{i:05}"), &client))
                    .collect();
                start.wait();
                s.write_all(all.as_bytes()).unwrap();
                (0..each).map(|_| answer(&mut r)).collect::<Vec<_>>()
            })
        })
        .collect();
    start.wait();
    let began = Instant::now();
    let answers: Vec<String> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let rate = answers.len() as f64 / began.elapsed().as_secs_f64();
    (answers, rate)
}

/// The alert that opened `who`'s incident, once it is logged.
async fn opening_alert(d: &Daemon, who: &str) -> Value {
    firing_alert(d, &format!("an alert for {who}"), |a| a["sender"] == who).await
}

/// Checks a burst's answers against its alert: exactly the messages up to
/// the one that raised it (the alert counts `before` of the account's
/// messages in its window ahead of the burst) went through, every other
/// one was held.
async fn contained_after_the_alert(d: &Daemon, who: &str, answers: &[String], before: u64) {
    let alert = opening_alert(d, who).await;
    let through = answers.iter().filter(|a| *a == "action=DUNNO\n").count() as u64;
    let held = answers
        .iter()
        .filter(|a| a.starts_with("action=HOLD smtp-auth-insight: "))
        .count();
    assert_eq!(through + held as u64, answers.len() as u64, "{answers:?}");
    let observed = alert["observed"].as_u64().expect("observed");
    assert_eq!(
        through + before,
        observed,
        "the message after the alert's is held, not later: {alert}"
    );
}

fn hold_site() -> Site {
    policy_site("policy.action = \"hold\"")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_accounts_run_over_one_connection_is_held_from_the_message_after_its_alert() {
    let site = hold_site();
    let d = site.start();
    let answers = pipelined(&site, "mallory@example.com", "203.0.113.66", "M", 400);
    assert_eq!(answers[0], "action=DUNNO\n");
    contained_after_the_alert(&d, "mallory@example.com", &answers, 0).await;
    // One connection's answers come in order: a run of DUNNO, then HOLD.
    let first_held = answers.iter().position(|a| a != "action=DUNNO\n").unwrap();
    assert!(
        answers[first_held..]
            .iter()
            .all(|a| a.starts_with("action=HOLD"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_accounts_run_over_eight_connections_is_held_from_the_message_after_its_alert() {
    let site = hold_site();
    let d = site.start();
    let (answers, rate) = parallel(&site, "mallory@example.com", "203.0.113.66", 8, 100);
    assert!(rate >= 2_000.0, "{rate:.0} messages/s");
    contained_after_the_alert(&d, "mallory@example.com", &answers, 0).await;
}

/// Three weeks of an account's mail from its own address, four messages
/// an hour, ending 25 hours ago (so that no window of the run's alert
/// counts any of it); returns once the store holds it.
async fn established(d: &Daemon, who: &str) {
    let end = chrono::Utc::now() - chrono::TimeDelta::hours(25);
    let lines: Vec<String> = (0..21 * 24 * 4)
        .map(|i| {
            let ts = end - chrono::TimeDelta::minutes(15 * i);
            event_line(
                &ts.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                who,
                "TLSv1.3",
                Some(&format!("{who}-{i}")),
            )
        })
        .collect();
    let (status, body) = post_events(d, lines.join("\n")).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["accepted"], 21 * 24 * 4);
    // A report waits until the store has counted them.
    let (status, rep) = report(d, "").await;
    assert_eq!(status, 200, "{rep}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_established_accounts_run_from_a_new_address_is_held_from_the_message_after_its_alert() {
    let site = hold_site();
    let d = site.start();
    established(&d, "alice@example.com").await;
    let answers = pipelined(&site, "alice@example.com", "203.0.113.66", "A", 400);
    contained_after_the_alert(&d, "alice@example.com", &answers, 0).await;
    let alert = opening_alert(&d, "alice@example.com").await;
    assert_eq!(alert["kind"], "volume_spike", "{alert}");

    // The same over eight connections, for another established account.
    established(&d, "bob@example.com").await;
    let (answers, rate) = parallel(&site, "bob@example.com", "203.0.113.67", 8, 100);
    assert!(rate >= 2_000.0, "{rate:.0} messages/s");
    contained_after_the_alert(&d, "bob@example.com", &answers, 0).await;
}
