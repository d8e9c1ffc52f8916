//! Containment by client address, through the policy service of the real
//! daemon: a shared_ip alert (one address submitting as many accounts
//! that never used it) contains the address for every account, while the
//! same accounts pass from their own addresses; `DELETE
//! /api/v1/holds/{address}` releases it; an address in `never_hold` is
//! never contained.

mod common;

use chrono::{TimeDelta, Utc};
use common::policy::*;
use common::*;
use serde_json::{Value, json};
use std::time::Duration;

const ATTACKER: &str = "203.0.113.66";

/// A week of mail of twelve accounts of three domains, each from its own
/// address, then four messages each from [`ATTACKER`] within the last
/// half hour: one shared_ip alert.
fn campaign() -> Vec<String> {
    let now = Utc::now();
    let ts = |t: chrono::DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut lines = Vec::new();
    for day in 1..8 {
        for i in 0..12 {
            let t = now - TimeDelta::days(day) + TimeDelta::seconds(i);
            lines.push(json!({"ts": ts(t), "sender": victim(i), "tls": "TLSv1.3",
                              "client_ip": own(i)}));
        }
    }
    for i in 0..12 {
        for m in 0..4 {
            let t = now - TimeDelta::minutes(30) + TimeDelta::seconds(i * 60 + m * 5);
            lines.push(json!({"ts": ts(t), "sender": victim(i), "tls": "TLSv1.2",
                              "client_ip": ATTACKER}));
        }
    }
    lines.iter().map(Value::to_string).collect()
}

fn victim(i: i64) -> String {
    format!("user{i}@d{}.example.com", i % 3)
}

fn own(i: i64) -> String {
    format!("198.51.100.{}", i + 1)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shared_ip_alert_holds_every_account_from_its_address_until_released() {
    let site = policy_site("policy.action = \"hold\"\n");
    let d = site.start();
    assert_eq!(post_events(&d, campaign().join("\n")).await.0, 202);
    let record = wait_contained_by(&d, "client_ip", ATTACKER).await;
    assert!(record["sender"].is_null(), "{record}");
    assert_eq!(record["alert"]["kind"], "shared_ip");
    let seq = record["alert"]["seq"].as_u64().unwrap();

    let (mut s, mut r) = connected(&site);
    // A victim, and an account never seen, from the attacker's address.
    let held = format!(
        "action=HOLD smtp-auth-insight: {ATTACKER} contained after shared_ip alert #{seq}\n"
    );
    assert_eq!(
        submit_from(&mut s, &mut r, &victim(0), "A0001", ATTACKER),
        held
    );
    assert_eq!(
        submit_from(&mut s, &mut r, "someone@else.example", "A0002", ATTACKER),
        held
    );
    // The same victim from its own address passes.
    assert_eq!(
        submit_from(&mut s, &mut r, &victim(0), "A0003", &own(0)),
        "action=DUNNO\n"
    );
    let record = wait_contained_by(&d, "client_ip", ATTACKER).await;
    assert_eq!(record["held"], 2, "{record}");
    assert_eq!(record["held_queue_ids"], json!(["A0001", "A0002"]));
    // The reports count the held messages for their accounts (once their
    // counts are saved, within a second).
    let report = wait_until("held in the report", Duration::from_secs(30), async || {
        let (status, r) = report(&d, "").await;
        assert_eq!(status, 200, "{r}");
        ready(r["summary"]["held"] == 2, r)
    })
    .await;
    let held = |who: &str| {
        report["senders"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["sender"] == who)
            .map(|s| s["held"].clone())
    };
    assert_eq!(held(&victim(0)), Some(json!(1)), "{report}");
    assert_eq!(held("someone@else.example"), Some(json!(1)), "{report}");

    // The dashboard's card lists it by its address, for every account,
    // with no account page; its Release button releases it.
    let ok = login(&d, "", TOKEN).await;
    assert_eq!(ok.status(), 303);
    let cookie = ok.headers()["set-cookie"].to_str().unwrap().to_owned();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let page = no_redirects()
        .get(d.url("/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let card = &page[page.find("id=\"contained\"").expect("the card")..];
    assert!(
        card.contains(&format!(
            "{ATTACKER} <small>(client address: every account)</small>"
        )),
        "{card}"
    );
    let action = format!("action=\"/senders/{ATTACKER}/release\"");
    assert!(card.contains(&action), "{card}");
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a CSRF token")
        .to_owned();
    let resp = no_redirects()
        .post(d.url(&format!("/senders/{ATTACKER}/release")))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str()), ("next", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303, "{:?}", resp.text().await);
    let released = holds(&d)
        .await
        .into_iter()
        .find(|h| h["client_ip"] == ATTACKER)
        .expect("the record");
    assert_eq!(released["in_force"], false, "{released}");
    assert!(released["released"]["by"].is_string(), "{released}");
    assert_eq!(
        submit_from(&mut s, &mut r, &victim(1), "A0004", ATTACKER),
        "action=DUNNO\n"
    );
    // The command line lists it by its address.
    let out = site.cli(&["holds", "--all"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with(&format!("{ATTACKER}  since "))),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_address_in_never_hold_is_never_contained() {
    let site = policy_site("policy.action = \"hold\"\npolicy.never_hold = [\"203.0.113.0/24\"]\n");
    let d = site.start();
    let mut lines = campaign();
    // After the campaign, a new account's burst: once its containment is
    // recorded, the watcher has read the shared_ip alert before it.
    let now = Utc::now();
    for i in 0..60 {
        let t = now - TimeDelta::minutes(10) + TimeDelta::seconds(i);
        lines.push(
            json!({"ts": t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                   "sender": "spammer@x.example", "tls": "TLSv1.2", "client_ip": "192.0.2.200"})
            .to_string(),
        );
    }
    assert_eq!(post_events(&d, lines.join("\n")).await.0, 202);
    wait_contained_by(&d, "sender", "spammer@x.example").await;
    let (status, alerts) = api_get(&d, "/api/v1/alerts?since=2000-01-01").await;
    assert_eq!(status, 200);
    assert!(
        alerts["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["kind"] == "shared_ip" && a["sender"] == ATTACKER),
        "{alerts}"
    );
    assert!(
        holds(&d).await.iter().all(|h| h["client_ip"] != ATTACKER),
        "{:?}",
        holds(&d).await
    );
    let (mut s, mut r) = connected(&site);
    assert_eq!(
        submit_from(&mut s, &mut r, &victim(0), "B0001", ATTACKER),
        "action=DUNNO\n"
    );
}

/// The recipients learn it from the alert mail itself: the address is
/// contained, for any account, with the command that releases it; the
/// release mail names the client address.
#[tokio::test(flavor = "multi_thread")]
async fn the_alert_mail_says_the_address_is_contained_and_the_release_is_mailed() {
    let smtp = SmtpSink::start();
    let site = policy_site(&format!(
        "policy.action = \"hold\"\ndetect.recipients = [\"secops@example.com\"]\n\
         detect.group_seconds = 1\n[mail]\ntransport = \"smtp\"\nport = {}\n\
         security = \"none\"\nretry_initial_seconds = 1\nretry_max_seconds = 1\n\
         allowed_recipients = [\"@example.com\"]\n",
        smtp.port
    ));
    let d = site.start();
    assert_eq!(post_events(&d, campaign().join("\n")).await.0, 202);
    wait_contained_by(&d, "client_ip", ATTACKER).await;
    let first = smtp.texts(1).await;
    let (subject, body) = &first[0];
    assert!(
        subject.contains("Contained: One address, many accounts: \"203.0.113.66\""),
        "{subject}"
    );
    for words in [
        "CONTAINED: from now on, the messages any account submits from this address are \
         accepted into Postfix's hold queue",
        " release 203.0.113.66\n",
    ] {
        assert!(body.contains(words), "no {words:?} in\n{body}");
    }
    let resp = client()
        .delete(d.url(&format!("/api/v1/holds/{ATTACKER}?by=ann")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let all = smtp.texts(2).await;
    let (subject, body) = all
        .iter()
        .find(|(s, _)| s.contains("Released:"))
        .unwrap_or_else(|| panic!("no release mail in {all:?}"));
    assert!(subject.contains("Released: \"203.0.113.66\""), "{subject}");
    for words in [
        "A client address that was contained may send again.",
        "Client address: 203.0.113.66\n",
        "Released by: ann\n",
    ] {
        assert!(body.contains(words), "no {words:?} in\n{body}");
    }
}

/// With `action = "reject"` the attempt from a contained address is
/// refused with a reply naming the address, and counted on its record;
/// the same account from its own address passes.
#[tokio::test(flavor = "multi_thread")]
async fn a_contained_address_is_refused_with_a_reply_that_names_it() {
    let site = policy_site("policy.action = \"reject\"\n");
    let d = site.start();
    assert_eq!(post_events(&d, campaign().join("\n")).await.0, 202);
    wait_contained_by(&d, "client_ip", ATTACKER).await;
    let (mut s, mut r) = connected(&site);
    assert_eq!(
        submit_from(&mut s, &mut r, &victim(2), "C0001", ATTACKER),
        "action=REJECT 5.7.1 Sending from this address is suspended because it looks \
         compromised; contact the mail administrator\n"
    );
    assert_eq!(
        submit_from(&mut s, &mut r, &victim(2), "C0002", &own(2)),
        "action=DUNNO\n"
    );
    let record = wait_until("the refusal counted", Duration::from_secs(30), async || {
        let all = holds(&d).await;
        let rec = all.iter().find(|h| h["client_ip"] == ATTACKER).cloned();
        match rec {
            Some(rec) if rec["rejected"] == 1 => Ok(rec),
            _ => Err(all),
        }
    })
    .await;
    assert_eq!(record["held"], 0, "{record}");
}
