//! A campaign (one client address submitting as many established accounts
//! that never used it) through the policy service of the real daemon is
//! contained at the submission that completes its shared_ip alert, however
//! fast it goes, not once the alert log is read back; and a containment
//! the policy service began that the detector does not bear out is lifted.

mod common;

use chrono::{TimeDelta, Utc};
use common::policy::*;
use common::*;
use serde_json::{Value, json};
use std::io::Write;

const ATTACKER: &str = "203.0.113.66";

fn victim(i: usize) -> String {
    format!("user{i}@d{}.example.com", i % 3)
}

/// `hours` of mail of each `(account, address)`, one message an hour,
/// ending `ago` before now, all in time order (as a log has it); the
/// accounts start a few hours apart, so that no window holds several of
/// their first messages. Returns once the store has counted it.
async fn history(d: &Daemon, who: &[(String, String)], hours: i64, ago: TimeDelta) {
    let end = Utc::now() - ago;
    let mut events: Vec<(chrono::DateTime<Utc>, String)> = who
        .iter()
        .enumerate()
        .flat_map(|(i, (account, ip))| {
            let first = hours + 3 * i as i64;
            (0..first).map(move |h| {
                let t = end - TimeDelta::hours(h);
                let ts = t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                let line = json!({"ts": ts, "sender": account, "tls": "TLSv1.3",
                                  "client_ip": ip, "id": format!("{account}-{ip}-{h}")});
                (t, line.to_string())
            })
        })
        .collect();
    events.sort();
    let lines: Vec<String> = events.into_iter().map(|(_, line)| line).collect();
    let (status, body) = post_events(d, lines.join("\n")).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        body["accepted"].as_u64(),
        Some(lines.len() as u64),
        "{body}"
    );
    // A report waits until the store has counted them.
    let (status, rep) = report(d, "").await;
    assert_eq!(status, 200, "{rep}");
}

/// `n` accounts, each with a week of mail from an address of its own.
async fn established(d: &Daemon, n: usize) -> Vec<String> {
    let who: Vec<(String, String)> = (0..n)
        .map(|i| (victim(i), format!("198.51.100.{}", i + 1)))
        .collect();
    history(d, &who, 7 * 24, TimeDelta::hours(2)).await;
    who.into_iter().map(|(account, _)| account).collect()
}

/// Sends `each` submissions of every account in `accounts` from
/// [`ATTACKER`] down one connection at once, the accounts in turn (every
/// account once before any twice); the answers in order.
fn campaign(site: &Site, accounts: &[String], each: usize, series: &str) -> Vec<String> {
    let (mut s, mut r) = connected(site);
    let all: String = (0..each * accounts.len())
        .map(|i| {
            let who = &accounts[i % accounts.len()];
            request_from("END-OF-MESSAGE", who, &format!("{series}{i:04}"), ATTACKER)
        })
        .collect();
    s.write_all(all.as_bytes()).expect("send the campaign");
    (0..each * accounts.len()).map(|_| answer(&mut r)).collect()
}

/// The firing shared_ip alert on [`ATTACKER`], once logged.
async fn address_alert(d: &Daemon) -> Value {
    firing_alert(d, "the shared_ip alert", |a| a["kind"] == "shared_ip").await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_campaign_is_held_from_the_submission_that_completes_its_alert() {
    let site = policy_site("policy.action = \"hold\"\n");
    let d = site.start();
    let accounts = established(&d, 12).await;
    let answers = campaign(&site, &accounts, 4, "C");
    // The alert needs five accounts new to the address: the first four
    // pass, the fifth and everything after are held by the address,
    // before the store writer has counted any of them.
    let min = 5;
    assert!(
        answers[..min - 1].iter().all(|a| a == "action=DUNNO\n"),
        "{answers:?}"
    );
    let held = format!("action=HOLD smtp-auth-insight: {ATTACKER} contained after shared_ip alert");
    assert!(
        answers[min - 1..].iter().all(|a| a.starts_with(&held)),
        "{answers:?}"
    );
    // The detector bears it out: the same alert, at the fifth account;
    // the containment is recorded with it and counts what it held.
    let alert = address_alert(&d).await;
    assert_eq!(alert["sender"], ATTACKER, "{alert}");
    assert_eq!(alert["observed"], min, "{alert}");
    let record = wait_contained_by(&d, "client_ip", ATTACKER).await;
    assert_eq!(record["alert"]["seq"], alert["seq"], "{record}");
    assert_eq!(record["held"], answers.len() - (min - 1), "{record}");
    // The same accounts from their own addresses pass.
    let (mut s, mut r) = connected(&site);
    assert_eq!(
        submit_from(&mut s, &mut r, &accounts[0], "O0001", "198.51.100.1"),
        "action=DUNNO\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_containment_the_detector_does_not_bear_out_is_lifted() {
    let site = policy_site("policy.action = \"hold\"\n");
    let d = site.start();
    let accounts = established(&d, 5).await;
    // Six other accounts use the attacker's address as their office's:
    // for weeks, and within the last half hour, through a path the policy
    // service does not see (here the API). To the detector the address
    // has regulars, so five newcomers are no campaign; the policy service
    // counts only the five.
    let office: Vec<(String, String)> = (0..6)
        .map(|i| (format!("office{i}@corp.example"), ATTACKER.to_owned()))
        .collect();
    history(&d, &office, 7 * 24, TimeDelta::minutes(20)).await;
    let answers = campaign(&site, &accounts, 1, "L");
    assert!(
        answers[..4].iter().all(|a| a == "action=DUNNO\n"),
        "{answers:?}"
    );
    assert!(answers[4].starts_with("action=HOLD"), "{answers:?}");
    // Once the writer has counted the fifth, the policy service hears
    // that its detector raised nothing, and lets the address go.
    d.wait_log("containment lifted").await;
    let (mut s, mut r) = connected(&site);
    assert_eq!(
        submit_from(&mut s, &mut r, &accounts[0], "L0100", ATTACKER),
        "action=DUNNO\n"
    );
    let (status, body) = api_get(&d, "/api/v1/alerts").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        !body["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|a| a["kind"] == "shared_ip"),
        "{body}"
    );
    assert!(
        holds(&d).await.iter().all(|h| h["client_ip"] != ATTACKER),
        "{:?}",
        holds(&d).await
    );
}
