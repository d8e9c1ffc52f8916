//! Containment through the policy service of the real daemon: an alert
//! contains its account, its next submissions are held, deferred or
//! rejected per `[policy] action`, the containment survives `kill -9`, and
//! a release over the API lets mail through again.

mod common;

use common::policy::*;
use common::*;
use serde_json::Value;
use std::io::{BufReader, Write};
use std::time::{Duration, Instant};

/// A new account's burst: 60 submissions, past the new-sender minimum.
fn burst(s: &mut std::net::TcpStream, r: &mut BufReader<std::net::TcpStream>, who: &str) {
    // Queue ids are unique per MTA: one series per account.
    let series: String = who.chars().filter(char::is_ascii_alphanumeric).collect();
    for i in 0..60 {
        s.write_all(request("END-OF-MESSAGE", who, &format!("{series}{i:04}")).as_bytes())
            .unwrap();
        assert_eq!(answer(r), "action=DUNNO\n", "before any alert");
    }
}

async fn holds(d: &Daemon) -> Vec<Value> {
    let r = client()
        .get(d.url("/api/v1/holds"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["holds"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Waits until `who` is contained; returns its record.
async fn wait_contained(d: &Daemon, who: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(h) = holds(d)
            .await
            .into_iter()
            .find(|h| h["sender"] == who && h["in_force"] == true)
        {
            return h;
        }
        assert!(Instant::now() < deadline, "{who} was never contained");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn submit(
    s: &mut std::net::TcpStream,
    r: &mut BufReader<std::net::TcpStream>,
    who: &str,
    qid: &str,
) -> String {
    s.write_all(request("END-OF-MESSAGE", who, qid).as_bytes())
        .unwrap();
    answer(r)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alert_holds_the_account_until_released_also_across_kill_9() {
    let site = policy_site("policy.action = \"hold\"\npolicy.never_hold = [\"@trusted.example\"]");
    let d = site.start();
    let mut s = connect(&site);
    let mut r = BufReader::new(s.try_clone().unwrap());
    burst(&mut s, &mut r, "mallory@example.com");
    burst(&mut s, &mut r, "ops@trusted.example");
    let hold = wait_contained(&d, "mallory@example.com").await;
    assert_eq!(hold["alert"]["kind"], "new_sender", "{hold}");
    let seq = hold["alert"]["seq"].as_u64().unwrap();
    let held = format!(
        "action=HOLD smtp-auth-insight: mallory@example.com contained after new_sender alert #{seq}\n"
    );
    assert_eq!(submit(&mut s, &mut r, "mallory@example.com", "H0001"), held);
    // Others, and accounts never to hold, pass.
    assert_eq!(
        submit(&mut s, &mut r, "alice@example.com", "A0001"),
        "action=DUNNO\n"
    );
    assert_eq!(
        submit(&mut s, &mut r, "ops@trusted.example", "T0001"),
        "action=DUNNO\n"
    );
    let all = holds(&d).await;
    assert!(
        all.iter().all(|h| h["sender"] != "ops@trusted.example"),
        "{all:?}"
    );
    // A held message is accepted (into the hold queue): it counts.
    assert_eq!(wait_events(&d, 123).await, (123, 0));

    // kill -9: the containment is on disk.
    drop((s, r));
    d.kill9();
    let d = site.start();
    let mut s = connect(&site);
    let mut r = BufReader::new(s.try_clone().unwrap());
    assert_eq!(submit(&mut s, &mut r, "mallory@example.com", "H0002"), held);

    // Released over the API, who did it recorded; mail flows again.
    let released = client()
        .delete(d.url("/api/v1/holds/Mallory@Example.com"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(released.status(), 200);
    let released: Value = released.json().await.unwrap();
    assert_eq!(released["released"]["by"], "api", "{released}");
    assert_eq!(released["in_force"], false);
    assert_eq!(
        submit(&mut s, &mut r, "mallory@example.com", "H0003"),
        "action=DUNNO\n"
    );
    let again = client()
        .delete(d.url("/api/v1/holds/mallory@example.com"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);
    let record = holds(&d)
        .await
        .into_iter()
        .find(|h| h["sender"] == "mallory@example.com")
        .unwrap();
    assert!(record["held"].as_u64().unwrap() >= 1, "{record}");
    assert_eq!(record["alert"]["seq"], seq);
}

#[tokio::test(flavor = "multi_thread")]
async fn deferred_and_rejected_attempts_are_no_messages() {
    for (action, want) in [
        ("defer", "action=DEFER_IF_PERMIT 4.7.1 "),
        ("reject", "action=REJECT 5.7.1 "),
    ] {
        let site = policy_site(&format!("policy.action = \"{action}\""));
        let d = site.start();
        let mut s = connect(&site);
        let mut r = BufReader::new(s.try_clone().unwrap());
        burst(&mut s, &mut r, "mallory@example.com");
        wait_contained(&d, "mallory@example.com").await;
        for i in 0..3 {
            let got = submit(&mut s, &mut r, "mallory@example.com", &format!("D{i}"));
            assert!(got.starts_with(want), "{action}: {got}");
        }
        // Only the burst counts: 60 messages.
        assert_eq!(
            submit(&mut s, &mut r, "alice@example.com", "A1"),
            "action=DUNNO\n"
        );
        assert_eq!(wait_events(&d, 61).await, (61, 0), "{action}");
        let text = metrics_text(&d).await;
        let series = format!(
            "smtp_auth_insight_policy_total{{what=\"{}\"}}",
            if action == "defer" {
                "deferred"
            } else {
                "rejected"
            }
        );
        assert_eq!(metric(&text, &series), Some(3), "{action}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn monitor_lets_everything_through_and_counts_what_it_would_have_stopped() {
    let site = policy_site("");
    let d = site.start();
    let mut s = connect(&site);
    let mut r = BufReader::new(s.try_clone().unwrap());
    burst(&mut s, &mut r, "mallory@example.com");
    wait_contained(&d, "mallory@example.com").await;
    for i in 0..2 {
        assert_eq!(
            submit(&mut s, &mut r, "mallory@example.com", &format!("M{i}")),
            "action=DUNNO\n"
        );
    }
    let text = metrics_text(&d).await;
    assert_eq!(
        metric(&text, "smtp_auth_insight_policy_total{what=\"monitored\"}"),
        Some(2)
    );
}

#[test]
fn check_config_refuses_what_cannot_contain() {
    for (extra, key) in [
        ("policy.kinds = [\"legacy_tls\"]", "policy.kinds"),
        ("policy.hold_hours = 0", "policy.hold_hours"),
        ("policy.action = \"drop\"", "action"),
        ("policy.never_hold = [\"@\"]", "policy.never_hold"),
        ("policy.host = \"mx 1\"", "policy.host"),
    ] {
        let site = Site::new(extra);
        let out = site.cli(&["check-config"]);
        assert!(!out.status.success(), "{extra} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(key), "{extra}: {err}");
    }
}
