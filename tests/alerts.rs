//! Detection end to end: events posted to the real daemon, alerts logged,
//! mailed over real SMTP (aiosmtpd) and read back; restarts; backtest.

mod common;

use chrono::{DateTime, TimeDelta, Utc};
use common::*;
use mail_parser::MessageParser;
use serde_json::Value;
use std::time::Duration;

const DETECT: &str = "server.public_url = \"https://mail-insight.example.com/\"\n\
                      detect.recipients = [\"secops@example.com\"]\n\
                      detect.group_seconds = 1\n\
                      detect.max_age_minutes = 600\n";

fn alert_site(smtp_port: u16) -> Site {
    Site::new(&format!(
        "{DETECT}[mail]\ntransport = \"smtp\"\nport = {smtp_port}\nsecurity = \"none\"\n\
         retry_initial_seconds = 1\nretry_max_seconds = 1\nallowed_recipients = [\"@example.com\"]\n"
    ))
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Three weeks of an office account: 3 messages an hour, 09-16 UTC, weekdays.
fn quiet_history(sender: &str, now: DateTime<Utc>) -> String {
    let mut lines = Vec::new();
    let start = (now - TimeDelta::days(22)).date_naive();
    for day in 0..21 {
        let date = start + chrono::Days::new(day);
        if chrono::Datelike::weekday(&date).number_from_monday() > 5 {
            continue;
        }
        for hour in 9..17 {
            for m in [5, 25, 45] {
                let ts = date.and_hms_opt(hour, m, 0).unwrap().and_utc();
                lines.push(event_line(&rfc3339(ts), sender, "TLSv1.3", None));
            }
        }
    }
    lines.join("\n")
}

/// `n` messages from `sender` over `minutes` from `start`, from a new IP.
fn burst(sender: &str, start: DateTime<Utc>, n: i64, minutes: i64) -> String {
    (0..n)
        .map(|i| {
            let ts = start + TimeDelta::seconds(i * minutes * 60 / n);
            serde_json::json!({"ts": rfc3339(ts), "sender": sender, "tls": "TLSv1.2",
                               "client_ip": "198.51.100.77"})
            .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

async fn alerts(d: &Daemon) -> Vec<Value> {
    let v: Value = client()
        .get(d.url("/api/v1/alerts?since=2000-01-01"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["alerts"].as_array().cloned().unwrap_or_default()
}

/// The alerts that opened an incident (no `status`: firing).
async fn firing_alerts(d: &Daemon) -> Vec<Value> {
    alerts(d)
        .await
        .into_iter()
        .filter(|a| a.get("status").is_none())
        .collect()
}

/// Waits until the SMTP server holds `n` messages (30 s at most).
async fn wait_mails(smtp: &SmtpSink, n: usize) -> Vec<Vec<u8>> {
    wait_until(&format!("{n} mails"), Duration::from_secs(30), async || {
        let got = smtp.messages();
        ready(got.len() >= n, got)
    })
    .await
}

fn text_of(raw: &[u8]) -> (String, String, String) {
    let m = MessageParser::default().parse(raw).unwrap();
    (
        m.subject().unwrap_or_default().to_owned(),
        m.body_text(0).unwrap_or_default().into_owned(),
        m.body_html(0).unwrap_or_default().into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_after_a_quiet_history_is_mailed_then_resolved() {
    let smtp = SmtpSink::start();
    let site = alert_site(smtp.port);
    let d = site.start();
    let now = Utc::now();
    let (status, _) = post_events(&d, quiet_history("alice@example.com", now)).await;
    assert_eq!(status, 202);
    // A new colleague sending normally alerts nobody.
    let hire: Vec<String> = (0..12)
        .map(|i| {
            event_line(
                &rfc3339(now - TimeDelta::minutes(i * 5)),
                "hire@example.com",
                "TLSv1.3",
                None,
            )
        })
        .collect();
    assert_eq!(post_events(&d, hire.join("\n")).await.0, 202);
    assert!(
        alerts(&d).await.is_empty(),
        "quiet traffic alerted: {:?}",
        alerts(&d).await
    );

    // Three hours ago: 300 messages in 20 minutes from a new IP.
    let start = now - TimeDelta::hours(3);
    assert_eq!(
        post_events(&d, burst("alice@example.com", start, 300, 20))
            .await
            .0,
        202
    );
    let log = alerts(&d).await;
    assert_eq!(log.len(), 1, "{log:?}");
    let a = &log[0];
    assert_eq!(a["kind"], "volume_spike");
    assert_eq!(a["sender"], "alice@example.com");
    assert_eq!(a["observed"], a["threshold"]);
    assert!(a["expected"].as_f64().unwrap() < 10.0, "{a}");
    assert_eq!(a["client_ips"], serde_json::json!(["198.51.100.77"]));
    let at: DateTime<Utc> = a["at"].as_str().unwrap().parse().unwrap();
    assert!(at >= start && at < start + TimeDelta::minutes(20), "{a}");

    // The incident is over: the wall clock resolves it (ticks every 30 s),
    // and firing and resolution both reach the relay, once each.
    let texts = wait_until("the resolution mail", Duration::from_secs(60), async || {
        let texts: Vec<_> = smtp.messages().iter().map(|m| text_of(m)).collect();
        let resolved = texts
            .iter()
            .any(|(_, t, _)| t.contains("Resolved: sending volume spike"));
        ready(resolved, texts)
    })
    .await;
    let all_text: String = texts
        .iter()
        .map(|(s, t, _)| format!("{s}\n{t}\n"))
        .collect();
    // Each alert's section has a "time - status" line.
    assert_eq!(all_text.matches(" - new\n").count(), 1, "{all_text}");
    assert_eq!(all_text.matches(" - resolved\n").count(), 1, "{all_text}");
    assert!(
        all_text.contains("Sending volume spike: \"alice@example.com\""),
        "{all_text}"
    );
    assert!(
        all_text.contains("Resolved: sending volume spike: \"alice@example.com\""),
        "{all_text}"
    );
    assert!(all_text.contains("Client IPs: 198.51.100.77"), "{all_text}");
    // A command that works as it is on this server: with this daemon's
    // configuration, which is not the installed one.
    assert!(
        all_text.contains(&format!(
            "smtp-auth-insight --config {} report --start",
            site.config.display()
        )),
        "{all_text}"
    );
    assert!(
        texts
            .iter()
            .all(|(_, _, html)| html.contains("alice@example.com"))
    );
    assert!(!all_text.contains("hire@example.com"));
    let resolved: Vec<Value> = alerts(&d)
        .await
        .into_iter()
        .filter(|a| a["status"] == "resolved")
        .collect();
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0]["observed"], 300, "the peak hour's count");
    // The incident is over: the alert that opened it says so too.
    let spikes: Vec<Value> = alerts(&d)
        .await
        .into_iter()
        .filter(|a| a["kind"] == "volume_spike" && a["sender"] == "alice@example.com")
        .collect();
    assert!(spikes.len() >= 2, "{spikes:?}");
    assert!(
        spikes.iter().all(|a| a["incident"] == "resolved"),
        "{spikes:?}"
    );
    assert!(
        metrics_text(&d)
            .await
            .contains("smtp_auth_insight_alerts_total{kind=\"volume_spike\",status=\"firing\"} 1")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_mid_spike_neither_repeats_the_alert_nor_loses_its_mail() {
    let smtp = SmtpSink::start();
    let site = alert_site(smtp.port);
    let d = site.start();
    let now = Utc::now();
    assert_eq!(
        post_events(&d, quiet_history("bob@example.com", now))
            .await
            .0,
        202
    );
    let start = now - TimeDelta::minutes(10);
    assert_eq!(
        post_events(&d, burst("bob@example.com", start, 150, 5))
            .await
            .0,
        202
    );
    // Killed right after the acknowledgement: the alert is in the log, its
    // mail may or may not have been queued.
    d.kill9();
    let d = site.start();
    assert_eq!(
        post_events(
            &d,
            burst("bob@example.com", start + TimeDelta::minutes(5), 150, 5)
        )
        .await
        .0,
        202
    );
    // Reading the alert log folds every acknowledged event: the log is
    // complete; once the notifier has handled all of it, the relay holds
    // every mail it will get.
    assert!(!alerts(&d).await.is_empty());
    wait_notified(&d).await;
    let mails_after = smtp.messages();
    assert_eq!(mails_after.len(), 1, "one alert mail, not two, not none");
    let (subject, text, _) = text_of(&mails_after[0]);
    assert!(
        subject.contains("Sending volume spike: \"bob@example.com\""),
        "{subject}"
    );
    assert!(text.contains("bob@example.com"));
    let firing = firing_alerts(&d).await;
    assert_eq!(firing.len(), 1, "{firing:?}");
    // SIGTERM and back: still one.
    assert!(d.stop().success());
    let d = site.start();
    assert_eq!(
        post_events(&d, burst("bob@example.com", now, 50, 1))
            .await
            .0,
        202
    );
    let firing = firing_alerts(&d).await;
    assert_eq!(firing.len(), 1, "{firing:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_login_bursts_and_legacy_tls_are_logged_once() {
    let site = Site::new("");
    let d = site.start();
    let now = Utc::now();
    let mut lines = Vec::new();
    for i in 0..40 {
        let ts = rfc3339(now - TimeDelta::seconds(200 - i * 5));
        lines.push(format!(
            r#"{{"ts":"{ts}","sender":"<img src=x onerror=alert(1)>","tls":"TLSv1.2","result":"auth_failed","client_ip":"203.0.113.9"}}"#
        ));
        // A new account's normal traffic: below the new-sender minimum.
        if i % 2 == 0 {
            lines.push(event_line(&ts, "printer@example.com", "TLSv1", None));
        }
    }
    assert_eq!(post_events(&d, lines.join("\n")).await.0, 202);
    let log = alerts(&d).await;
    let kinds: Vec<(&str, &str)> = log
        .iter()
        .map(|a| (a["kind"].as_str().unwrap(), a["sender"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds.len(),
        3,
        "one legacy TLS alert, one per username, one per IP: {kinds:?}"
    );
    assert!(kinds.contains(&("legacy_tls", "printer@example.com")));
    assert!(kinds.contains(&("auth_failures", "<img src=x onerror=alert(1)>")));
    assert!(kinds.contains(&("auth_failures", "203.0.113.9")));
    assert_eq!(api_get(&d, "/api/v1/alerts?since=yesterday").await.0, 400);
    let unauthorized = client().get(d.url("/api/v1/alerts")).send().await.unwrap();
    assert_eq!(unauthorized.status(), 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_attacker_chosen_username_never_reaches_the_subject() {
    let smtp = SmtpSink::start();
    let site = alert_site(smtp.port);
    let d = site.start();
    let now = Utc::now();
    let phish = "urgent: your mailbox is locked, restore at https://evil.example/login";
    // Forty failures from forty addresses: one alert, for the username.
    let lines: Vec<String> = (0..40)
        .map(|i| {
            let ts = rfc3339(now - TimeDelta::seconds(200 - i * 5));
            format!(
                r#"{{"ts":"{ts}","sender":"{phish}","tls":"TLSv1.3","result":"auth_failed","client_ip":"203.0.113.{i}"}}"#
            )
        })
        .collect();
    assert_eq!(post_events(&d, lines.join("\n")).await.0, 202);
    let mails = wait_mails(&smtp, 1).await;
    assert_eq!(mails.len(), 1);
    let (subject, text, _) = text_of(&mails[0]);
    assert!(
        subject.starts_with("[smtp-auth-insight] Failed login burst: "),
        "{subject}"
    );
    assert!(
        !subject.contains("evil") && !subject.contains("urgent"),
        "{subject}"
    );
    // The body still names it, for the admin.
    assert!(text.contains(phish), "{text}");
    // Names that read differently from what they hold are refused.
    let ts = rfc3339(now);
    let (status, body) = post_events(
        &d,
        format!(r#"{{"ts":"{ts}","sender":"alice\u202emoc.live@example.com","tls":"TLSv1.3"}}"#),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("U+202E"), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn webhooks_get_every_alert_and_legacy_senders_come_in_a_daily_digest() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    // A webhook receiver on loopback, in the test process; it fails the
    // first delivery, which must be retried.
    let received: Arc<Mutex<Vec<Value>>> = Arc::default();
    let attempts = Arc::new(AtomicUsize::new(0));
    let (sink, tries) = (received.clone(), attempts.clone());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let (sink, tries) = (sink.clone(), tries.clone());
            async move {
                if tries.fetch_add(1, Ordering::SeqCst) == 0 {
                    return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                }
                sink.lock().unwrap().push(body);
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let smtp = SmtpSink::start();
    let site = Site::new(&format!(
        "{DETECT}detect.webhooks = [\"{hook}\"]\ndetect.legacy_tls.digest_hour = 0\n\
         [mail]\ntransport = \"smtp\"\nport = {}\nsecurity = \"none\"\n\
         allowed_recipients = [\"@example.com\"]\n",
        smtp.port
    ));
    // Logged by an import before the daemon runs: two legacy senders and a
    // brand-new account sending 400 messages.
    let now = Utc::now() - TimeDelta::minutes(30);
    let mut lines = vec![
        event_line(&rfc3339(now), "printer@example.com", "none", None),
        event_line(&rfc3339(now), "old-outlook@example.com", "TLSv1.1", None),
    ];
    lines.push(burst("x9@example.com", now, 400, 20));
    let file = site.dir.path().join("events.ndjson");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let import = site.cli(&["import", "--format", "ndjson", file.to_str().unwrap()]);
    assert!(import.status.success());

    let d = site.start();
    let mails = wait_mails(&smtp, 2).await;
    assert_eq!(mails.len(), 2, "an alert mail and the digest");
    let texts: Vec<(String, String, String)> = mails.iter().map(|m| text_of(m)).collect();
    let digest = texts
        .iter()
        .find(|(s, _, _)| s.contains("2 senders started using legacy TLS or no TLS"))
        .expect("the digest");
    assert!(
        digest.1.contains("printer@example.com") && digest.1.contains("old-outlook@example.com")
    );
    assert!(
        digest.1.contains("first submission with none"),
        "{}",
        digest.1
    );
    let alert = texts
        .iter()
        .find(|(s, _, _)| s.contains("New sender sending in volume: \"x9@example.com\""))
        .expect("the new-sender alert");
    assert!(
        !alert.1.contains("printer@example.com"),
        "legacy TLS belongs in the digest"
    );

    // Every logged alert handled by the webhooks: what the receiver has
    // is all it gets.
    wait_notified(&d).await;
    let posted: Vec<Value> = received
        .lock()
        .unwrap()
        .iter()
        .flat_map(|b| b.as_array().cloned().unwrap_or_default())
        .collect();
    let kinds: Vec<&str> = posted.iter().map(|a| a["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "legacy_tls").count(),
        2,
        "{posted:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "new_sender").count(),
        1,
        "{posted:?}"
    );

    assert!(
        attempts.load(Ordering::SeqCst) >= 2,
        "a refused delivery is retried"
    );

    // A restart mails and posts nothing again.
    let bodies = received.lock().unwrap().len();
    assert!(d.stop().success());
    let d = site.start();
    wait_notified(&d).await;
    assert_eq!(smtp.messages().len(), 2);
    assert_eq!(
        received.lock().unwrap().len(),
        bodies,
        "posted again after a restart"
    );
    assert_eq!(posted.len(), 3, "{posted:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn alerts_raised_together_arrive_in_one_mail() {
    let smtp = SmtpSink::start();
    let site = alert_site(smtp.port);
    let d = site.start();
    let start = Utc::now() - TimeDelta::minutes(20);
    let body = [
        burst("x1@example.com", start, 200, 10),
        burst("x2@example.com", start, 200, 10),
    ]
    .join("\n");
    assert_eq!(post_events(&d, body).await.0, 202);
    assert_eq!(alerts(&d).await.len(), 2);
    wait_notified(&d).await;
    let mails = smtp.messages();
    assert_eq!(mails.len(), 1, "one mail for both");
    let (subject, text, html) = text_of(&mails[0]);
    assert!(subject.contains("2 SMTP AUTH alerts"), "{subject}");
    for who in ["x1@example.com", "x2@example.com"] {
        assert!(
            text.contains(&format!("New sender sending in volume: {who}")),
            "{text}"
        );
        assert!(html.contains(who));
    }
}

/// Stolen passwords used in a batch: twelve accounts of three domains,
/// each with a week of mail from an address of its own, then four
/// messages each from one address none of them ever used. No account
/// crosses a threshold of its own; the address raises one shared_ip
/// alert, naming it and the accounts, mailed over SMTP.
#[tokio::test(flavor = "multi_thread")]
async fn one_address_submitting_as_many_accounts_is_one_alert_naming_them() {
    let smtp = SmtpSink::start();
    let site = alert_site(smtp.port);
    let d = site.start();
    let now = Utc::now();
    let accounts: Vec<String> = (0..12)
        .map(|i| format!("user{i}@d{}.example.com", i % 3))
        .collect();
    let mut lines = Vec::new();
    for day in 1..8 {
        for (i, who) in accounts.iter().enumerate() {
            let ts = now - TimeDelta::days(day) + TimeDelta::seconds(i as i64);
            lines.push(
                serde_json::json!({"ts": rfc3339(ts), "sender": who, "tls": "TLSv1.3",
                                   "client_ip": format!("198.51.100.{}", i + 1)})
                .to_string(),
            );
        }
    }
    let start = now - TimeDelta::minutes(30);
    for (i, who) in accounts.iter().enumerate() {
        for m in 0..4 {
            let ts = start + TimeDelta::seconds(i as i64 * 60 + m * 5);
            lines.push(
                serde_json::json!({"ts": rfc3339(ts), "sender": who, "tls": "TLSv1.2",
                                   "client_ip": "203.0.113.66"})
                .to_string(),
            );
        }
    }
    assert_eq!(post_events(&d, lines.join("\n")).await.0, 202);
    let all = alerts(&d).await;
    assert_eq!(all.len(), 1, "{all:?}");
    let a = &all[0];
    assert_eq!(a["kind"], "shared_ip");
    assert_eq!(a["sender"], "203.0.113.66");
    assert_eq!(a["client_ips"], serde_json::json!(["203.0.113.66"]));
    assert_eq!(a["observed"], 5);
    let detail = a["detail"].as_str().unwrap();
    for who in &accounts[..5] {
        assert!(detail.contains(who.as_str()), "{detail}");
    }
    let mails = wait_mails(&smtp, 1).await;
    let (subject, text, _) = text_of(&mails[0]);
    assert!(
        subject.contains("One address, many accounts: \"203.0.113.66\""),
        "{subject}"
    );
    assert!(text.contains("user0@d0.example.com"), "{text}");
    assert!(text.contains("alerts --since"), "{text}");
}
