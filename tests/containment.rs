//! Containment through the policy service of the real daemon: an alert
//! contains its account, its next submissions are held, deferred or
//! rejected per `[policy] action`, the containment survives `kill -9`, and
//! a release over the API lets mail through again.

mod common;

use common::policy::*;
use common::*;
use serde_json::Value;
use std::io::{BufReader, Write};
use std::time::Duration;

/// A new account's burst: 60 submissions, past the new-sender minimum
/// (40 in an hour). The alert comes with the 40th, so the 41st and every
/// one after it are contained (unless the account may never be). Returns
/// how many were let through (`DUNNO`).
fn burst(s: &mut std::net::TcpStream, r: &mut BufReader<std::net::TcpStream>, who: &str) -> u64 {
    // Queue ids are unique per MTA: one series per account.
    let series: String = who.chars().filter(char::is_ascii_alphanumeric).collect();
    let mut through = 0;
    for i in 0..60 {
        s.write_all(request("END-OF-MESSAGE", who, &format!("{series}{i:04}")).as_bytes())
            .unwrap();
        let got = answer(r);
        if got == "action=DUNNO\n" {
            through += 1;
        }
        assert!(
            through == i + 1 || through == 40,
            "submission {}: {got} after {through} let through",
            i + 1
        );
    }
    through
}

/// `DELETE /api/v1/holds/{path}` (path may carry `?by=`).
async fn release_api(d: &Daemon, path: &str) -> reqwest::Response {
    client()
        .delete(d.url(&format!("/api/v1/holds/{path}")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
}

/// `who`'s containment record.
async fn record(d: &Daemon, who: &str) -> Value {
    holds(d)
        .await
        .into_iter()
        .find(|h| h["sender"] == who)
        .unwrap_or_else(|| panic!("no record of {who}"))
}

/// Waits until `who`'s containment is recorded with its alert; returns
/// its record.
async fn wait_contained(d: &Daemon, who: &str) -> Value {
    wait_contained_by(d, "sender", who).await
}

/// A submission of `who` from the default client address; its answer.
fn submit(
    s: &mut std::net::TcpStream,
    r: &mut BufReader<std::net::TcpStream>,
    who: &str,
    qid: &str,
) -> String {
    submit_from(s, r, who, qid, "192.0.2.10")
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alert_holds_the_account_until_released_also_across_kill_9() {
    let site = policy_site("policy.action = \"hold\"\npolicy.never_hold = [\"@trusted.example\"]");
    let d = site.start();
    let (mut s, mut r) = connected(&site);
    burst(&mut s, &mut r, "mallory@example.com");
    assert_eq!(
        burst(&mut s, &mut r, "ops@trusted.example"),
        60,
        "never held"
    );
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
    let (mut s, mut r) = connected(&site);
    assert_eq!(submit(&mut s, &mut r, "mallory@example.com", "H0002"), held);

    // Released over the API, who did it recorded; mail flows again.
    let released = release_api(&d, "Mallory@Example.com").await;
    assert_eq!(released.status(), 200);
    let released: Value = released.json().await.unwrap();
    assert_eq!(released["released"]["by"], "api", "{released}");
    assert_eq!(
        released["sender"], "mallory@example.com",
        "named as in the records"
    );
    assert_eq!(released["in_force"], false);
    assert_eq!(
        submit(&mut s, &mut r, "mallory@example.com", "H0003"),
        "action=DUNNO\n"
    );
    let again = release_api(&d, "mallory@example.com").await;
    assert_eq!(again.status(), 404);
    let record = record(&d, "mallory@example.com").await;
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
        let (mut s, mut r) = connected(&site);
        let through = burst(&mut s, &mut r, "mallory@example.com");
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
        // Only what was let through counts: the burst up to its
        // containment, and Alice's message.
        assert_eq!(
            wait_events(&d, through + 1).await,
            (through + 1, 0),
            "{action}"
        );
        let text = metrics_text(&d).await;
        let series = format!(
            "smtp_auth_insight_policy_total{{what=\"{}\"}}",
            if action == "defer" {
                "deferred"
            } else {
                "rejected"
            }
        );
        assert_eq!(metric(&text, &series), Some(60 - through + 3), "{action}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn monitor_lets_everything_through_and_counts_what_it_would_have_stopped() {
    let site = policy_site("");
    let d = site.start();
    let (mut s, mut r) = connected(&site);
    assert_eq!(burst(&mut s, &mut r, "mallory@example.com"), 60);
    wait_contained(&d, "mallory@example.com").await;
    for i in 0..2 {
        assert_eq!(
            submit(&mut s, &mut r, "mallory@example.com", &format!("M{i}")),
            "action=DUNNO\n"
        );
    }
    // The two above, and any of the burst's last ones after the alert.
    let text = metrics_text(&d).await;
    let monitored = metric(&text, "smtp_auth_insight_policy_total{what=\"monitored\"}");
    assert!(monitored >= Some(2), "{monitored:?}");
    let record = record(&d, "mallory@example.com").await;
    assert_eq!(record["monitored"].as_u64(), monitored, "{record}");
    // The command line beside the daemon lists and releases it.
    let out = site.cli(&["holds"]);
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && listed.starts_with("mallory@example.com  since "),
        "{listed}"
    );
    assert!(listed.contains("new_sender alert #"), "{listed}");
    let out = site.cli(&["release", "mallory@example.com"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "released mallory@example.com\n"
    );
    let out = site.cli(&["release", "mallory@example.com"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not contained"));
    // With the daemon stopped, from the store: the record says who.
    assert!(d.stop().success());
    let out = site.cli(&["holds", "--all", "--format", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let record: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        record["released"]["by"]
            .as_str()
            .unwrap()
            .ends_with("(command line)"),
        "{record}"
    );
    let out = site.cli(&["holds"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "no account is contained\n"
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

#[tokio::test(flavor = "multi_thread")]
async fn a_real_postfix_holds_or_defers_a_contained_account_until_it_is_released() {
    use common::postfix::Postfix;
    for action in ["hold", "defer"] {
        let logs = tempfile::tempdir().unwrap();
        let spool = common::postfix::Spool::new();
        let site = policy_site_in(&spool, None, &format!("policy.action = \"{action}\""));
        let d = site.start();
        let postfix = spool.start(
            &main_cf_lines(),
            &[
                ("mallory@example.com", "stolen"),
                ("alice@example.com", "secret"),
            ],
            &logs.path().join("mail.log"),
        );
        // A new account's burst, past the new-sender minimum (40 in an
        // hour): the 40th raises the alert, the 41st on are contained.
        for i in 0..45 {
            let answer = postfix.submit("mallory@example.com", "stolen");
            let contained = i >= 40;
            let ok = match (action, contained) {
                ("defer", true) => answer.starts_with("450 4.7.1 "),
                _ => answer.starts_with("250 2.0.0 Ok: queued as"),
            };
            assert!(ok, "{action}: message {}: {answer}", i + 1);
        }
        wait_contained(&d, "mallory@example.com").await;
        let answer = postfix.submit("mallory@example.com", "stolen");
        if action == "hold" {
            assert!(answer.starts_with("250 2.0.0 Ok: queued as"), "{answer}");
            let qid = Postfix::queue_id(&answer).unwrap();
            let queue = postfix.queue();
            let held = queue.iter().find(|m| m["queue_id"] == qid);
            assert_eq!(
                held.map(|m| m["queue_name"].clone()),
                Some(Value::from("hold")),
                "{queue:?}"
            );
        } else {
            assert!(
                answer.starts_with("450 4.7.1 ")
                    && answer.contains("Sending from this account is paused"),
                "{answer}"
            );
        }
        // Others are not touched.
        let answer = postfix.submit("alice@example.com", "secret");
        assert!(answer.starts_with("250 2.0.0 Ok: queued as"), "{answer}");
        // Released: the next message goes out (discarded here), not held.
        // The command says what became of the held ones, and what to do.
        let out = site.cli(&["release", "mallory@example.com"]);
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{said}");
        let advice = [
            "6 messages it submitted while contained were put in Postfix's hold queue",
            "release mallory@example.com --requeue\n",
            "release mallory@example.com --delete-held\n",
        ];
        for words in advice {
            assert_eq!(said.contains(words), action == "hold", "{words:?}: {said}");
        }
        let answer = postfix.submit("mallory@example.com", "stolen");
        assert!(answer.starts_with("250 2.0.0 Ok: queued as"), "{answer}");
        let qid = Postfix::queue_id(&answer).unwrap().to_owned();
        wait_until(
            &format!("{qid} leaves the queue after the release"),
            Duration::from_secs(30),
            async || {
                let queue = postfix.queue();
                ready(!queue.iter().any(|m| m["queue_id"] == qid.as_str()), queue)
            },
        )
        .await;
        // What the hold queue holds is what the record says was held: the
        // burst's last messages after the alert, and the one above.
        let queue = postfix.queue();
        let held: Vec<&Value> = queue.iter().filter(|m| m["queue_name"] == "hold").collect();
        assert!(
            held.iter().all(|m| m["sender"] == "mallory@example.com"),
            "{held:?}"
        );
        let record = record(&d, "mallory@example.com").await;
        assert_eq!(
            record["held"].as_u64(),
            Some(held.len() as u64),
            "{action}: {record}"
        );
        let want = if action == "hold" { 5 + 1 } else { 0 };
        assert_eq!(held.len(), want, "{action}: {held:?}");
        // Reports count them as sent (Postfix accepted them) and as held.
        let rep = wait_until(
            "the held in the report",
            Duration::from_secs(30),
            async || {
                let (_, rep) = report(&d, "").await;
                ready(rep["summary"]["held"] == want, rep)
            },
        )
        .await;
        let row = rep["senders"]
            .as_array()
            .and_then(|rows| rows.iter().find(|r| r["sender"] == "mallory@example.com"))
            .cloned()
            .unwrap_or_default();
        assert_eq!(row["held"], want, "{rep}");
        let shown = |format: &str| {
            let out = site.cli(&["report", "--format", format]);
            assert!(out.status.success());
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let (text, csv) = (shown("text"), shown("csv"));
        let header = csv.lines().next().unwrap_or_default();
        if want > 0 {
            assert!(
                text.contains("6 of them put in Postfix's hold queue"),
                "{text}"
            );
            assert!(text.contains("  held 6\n"), "{text}");
            assert!(header.ends_with(",auth_failures,held"), "{header}");
            assert!(csv.contains("mallory@example.com,example.com,"), "{csv}");
            let mallory = csv
                .lines()
                .find(|l| l.starts_with("mallory@"))
                .unwrap_or_default();
            assert!(mallory.ends_with(",6"), "{mallory}");
        } else {
            assert!(!text.contains("hold queue"), "{text}");
            assert!(header.ends_with(",auth_failures"), "{header}");
        }
        if action == "defer" {
            assert!(record["deferred"].as_u64() >= Some(1), "{record}");
        }
    }
}

/// The queue ids of `who`'s messages in Postfix's hold queue, sorted.
fn in_hold(postfix: &common::postfix::Postfix, who: &str) -> Vec<String> {
    let mut ids: Vec<String> = postfix
        .queue()
        .iter()
        .filter(|m| m["queue_name"] == "hold" && m["sender"] == who)
        .filter_map(|m| m["queue_id"].as_str().map(str::to_owned))
        .collect();
    ids.sort();
    ids
}

/// A real Postfix relaying to a real SMTP server: after a release,
/// `release --requeue` hands the held messages' queue ids to postsuper and
/// they reach the relay; `--delete-held` deletes them. The ids on record
/// are exactly what the hold queue holds.
#[tokio::test(flavor = "multi_thread")]
async fn release_requeue_sends_the_held_mail_on_and_delete_held_removes_it() {
    use common::postfix::Postfix;
    let relay = SmtpSink::start();
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("mail.log");
    let spool = common::postfix::Spool::new();
    let site = policy_site_in(&spool, None, "policy.action = \"hold\"");
    let d = site.start();
    let postfix = spool.start(
        &format!(
            "{}\ndefault_transport = smtp\nrelayhost = [127.0.0.1]:{}\n\
             smtp_tls_security_level = none",
            main_cf_lines(),
            relay.port
        ),
        &[
            ("mallory@example.com", "stolen"),
            ("eve@example.com", "stolen"),
        ],
        &log,
    );
    for (who, flag) in [
        ("mallory@example.com", "--requeue"),
        ("eve@example.com", "--delete-held"),
    ] {
        // The 40th raises the alert; the 41st to 45th are held.
        let mut held = Vec::new();
        for i in 0..45 {
            let answer = postfix.submit(who, "stolen");
            let qid = Postfix::queue_id(&answer).unwrap_or_else(|| panic!("{answer}"));
            if i >= 40 {
                held.push(qid.to_owned());
            }
        }
        wait_contained(&d, who).await;
        let mut sorted = held.clone();
        sorted.sort();
        assert_eq!(in_hold(&postfix, who), sorted);
        let out = site.cli_env(&["release", who, flag], &[("MAIL_CONFIG", &postfix.conf())]);
        let said = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{said}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let postsuper = if flag == "--requeue" { "-H" } else { "-d" };
        for words in [
            format!("released {who}\n"),
            format!("handed 5 queue ids to postsuper {postsuper} -; postsuper said: "),
        ] {
            assert!(said.contains(&words), "no {words:?} in {said}");
        }
        // Oldest first, as answered.
        assert_eq!(
            record(&d, who).await["held_queue_ids"],
            serde_json::json!(held)
        );
        assert_eq!(in_hold(&postfix, who), Vec::<String>::new(), "{said}");
        if flag == "--requeue" {
            assert!(
                said.contains("asked postqueue -i to deliver each of them now"),
                "{said}"
            );
            // Each reaches the relay (Postfix's Received line names its id).
            wait_until(
                "the requeued mail at the relay",
                Duration::from_secs(60),
                async || {
                    let at_relay: Vec<String> = relay
                        .messages()
                        .iter()
                        .map(|m| String::from_utf8_lossy(m).into_owned())
                        .collect();
                    let missing: Vec<&String> = held
                        .iter()
                        .filter(|id| !at_relay.iter().any(|m| m.contains(&format!(" id {id}"))))
                        .collect();
                    let log = std::fs::read_to_string(&log).unwrap_or_default();
                    let tail: Vec<&str> = log.lines().rev().take(4).collect();
                    let n = at_relay.len();
                    ready(
                        missing.is_empty(),
                        format!("{missing:?}, {n} mails at the relay; the log ends {tail:?}"),
                    )
                },
            )
            .await;
        } else {
            // Gone from the queue, each logged as removed by postsuper.
            wait_until(
                "postsuper's removals in the log",
                Duration::from_secs(30),
                async || {
                    let text = std::fs::read_to_string(&log).unwrap_or_default();
                    let missing: Vec<&String> = held
                        .iter()
                        .filter(|id| !text.contains(&format!("{id}: removed")))
                        .collect();
                    ready(missing.is_empty(), format!("{missing:?}"))
                },
            )
            .await;
            assert!(postfix.queue().iter().all(|m| m["sender"] != who));
        }
    }
    // Asked again, after the release: nothing left to hand over twice
    // would fail; postsuper is simply told the same ids.
    let out = site.cli(&["release", "nobody@example.com", "--requeue"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nobody@example.com was never contained")
    );
}

/// A containment's end as mails show it (UTC, to the minute).
fn until_minute(hold: &Value) -> String {
    let until = hold["until"].as_str().unwrap_or_default();
    chrono::DateTime::parse_from_rfc3339(until)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

/// A site whose mails go to `smtp`, alert recipients secops@example.com,
/// with `extra` keys.
fn mailing_site_with(smtp: &SmtpSink, extra: &str) -> Site {
    policy_site(&format!(
        "policy.action = \"hold\"\nserver.public_url = \"https://mail-insight.example.com/\"\n\
         detect.recipients = [\"secops@example.com\"]\ndetect.group_seconds = 1\n{extra}\n\
         [mail]\ntransport = \"smtp\"\nport = {}\nsecurity = \"none\"\n\
         retry_initial_seconds = 1\nretry_max_seconds = 1\nallowed_recipients = [\"@example.com\"]\n",
        smtp.port
    ))
}

/// A daemon mailing to `smtp` (with `extra` keys) in which a burst on one
/// policy connection, left open, contained `who`; its record.
struct Contained {
    /// Kept: its directory holds the daemon's data.
    _site: Site,
    d: Daemon,
    s: std::net::TcpStream,
    r: BufReader<std::net::TcpStream>,
    hold: Value,
}

async fn contained_on(smtp: &SmtpSink, extra: &str, who: &str) -> Contained {
    let site = mailing_site_with(smtp, extra);
    let d = site.start();
    let (mut s, mut r) = connected(&site);
    burst(&mut s, &mut r, who);
    let hold = wait_contained(&d, who).await;
    Contained {
        _site: site,
        d,
        s,
        r,
        hold,
    }
}

/// After a release the account is trusted for the rest of its incident,
/// unless it sends more than twice the hourly count that raised its alert
/// (40 here) within an hour: the 81st submission is contained again, and
/// the recipients get a mail of its own saying why.
#[tokio::test(flavor = "multi_thread")]
async fn a_released_account_that_escalates_is_contained_again() {
    let smtp = SmtpSink::start();
    let mut c = contained_on(&smtp, "", "mallory@example.com").await;
    let (d, s, r) = (&c.d, &mut c.s, &mut c.r);
    smtp.texts(1).await;
    assert_eq!(release_api(d, "mallory@example.com").await.status(), 200);
    for i in 1..=81 {
        s.write_all(
            request("END-OF-MESSAGE", "mallory@example.com", &format!("E{i:03}")).as_bytes(),
        )
        .unwrap();
        let got = answer(r);
        match i {
            81 => assert!(got.starts_with("action=HOLD"), "{i}: {got}"),
            _ => assert_eq!(got, "action=DUNNO\n", "{i} after the release"),
        }
    }
    let record = wait_until(
        "the new containment recorded",
        Duration::from_secs(30),
        async || {
            let record = record(d, "mallory@example.com").await;
            ready(record["in_force"] == true && record["held"] == 1, record)
        },
    )
    .await;
    let why = record["alert"]["detail"].as_str().unwrap_or_default();
    assert!(
        why.contains("escalated after its release: 81 messages within an hour"),
        "{why}"
    );
    assert_eq!(record["held_queue_ids"], serde_json::json!(["E081"]));
    let mail = wait_until("its mail", Duration::from_secs(60), async || {
        let mails = smtp.texts(1).await;
        let found = mails
            .iter()
            .find(|(s, _)| s.starts_with("[smtp-auth-insight] Contained: \"mallory@example.com\""))
            .map(|(_, b)| b.clone());
        found.ok_or(mails.len())
    })
    .await;
    assert!(mail.contains("escalated after its release"), "{mail}");
}

/// While an account stays contained, a reminder every
/// `policy.remind_hours` (here 3.6 s): what was stopped so far, how to end
/// it; the record keeps when the last went.
#[tokio::test(flavor = "multi_thread")]
async fn a_contained_account_is_recalled_every_remind_hours() {
    let smtp = SmtpSink::start();
    let c = contained_on(&smtp, "policy.remind_hours = 0.001", "mallory@example.com").await;
    let d = c.d;
    let subject = "[smtp-auth-insight] Still contained: \"mallory@example.com\"";
    let reminders = wait_until("two reminders", Duration::from_secs(60), async || {
        let mails = smtp.texts(1).await;
        let reminders: Vec<String> = mails
            .into_iter()
            .filter(|(s, _)| s == subject)
            .map(|(_, body)| body)
            .collect();
        ready(reminders.len() >= 2, reminders)
    })
    .await;
    for words in [
        "An account is still contained: the messages it submits are accepted into \
         Postfix's hold queue",
        "Account: mallory@example.com\n",
        "So far: 20 messages held",
        " release mallory@example.com\n",
    ] {
        assert!(
            reminders[0].contains(words),
            "no {words:?} in {}",
            reminders[0]
        );
    }
    let record = record(&d, "mallory@example.com").await;
    assert!(record["in_force"] == true, "{record}");
    assert_eq!(release_api(&d, "mallory@example.com").await.status(), 200);
}

/// Waits until `smtp` holds `n` mails; their subjects and text bodies.
#[tokio::test(flavor = "multi_thread")]
async fn containment_and_release_are_mailed_to_the_alert_recipients() {
    let smtp = SmtpSink::start();
    let c = contained_on(&smtp, "", "mallory@example.com").await;
    let (d, hold) = (&c.d, &c.hold);
    let contained = |text: String| metric(&text, "smtp_auth_insight_contained_accounts");
    assert_eq!(contained(metrics_text(d).await), Some(1));
    // Released once its alert mail, which says it is contained, is out.
    smtp.texts(1).await;
    let released = release_api(d, "mallory@example.com?by=ann").await;
    assert_eq!(released.status(), 200);
    assert_eq!(contained(metrics_text(d).await), Some(0));
    // The queue ids of the 20 messages answered HOLD, oldest first.
    let record: Value = released.json().await.unwrap();
    let want: Vec<String> = (40..60)
        .map(|i| format!("malloryexamplecom{i:04}"))
        .collect();
    assert_eq!(record["held"], 20, "{record}");
    assert_eq!(
        record["held_queue_ids"],
        serde_json::json!(want),
        "{record}"
    );
    // One mail per containment, its alert's, then the release's; once
    // the queue is empty nothing else is on its way.
    let mails = smtp.texts(2).await;
    wait_notified(d).await;
    assert_eq!(smtp.messages().len(), 2, "{mails:?}");
    let body = |prefix: &str| {
        mails
            .iter()
            .find(|(s, _)| s.starts_with(prefix))
            .map(|(_, b)| b.clone())
            .unwrap_or_else(|| panic!("no {prefix:?} mail in {mails:?}"))
    };
    let contained = body(
        "[smtp-auth-insight] Contained: New sender sending in volume: \"mallory@example.com\"",
    );
    for words in [
        "New sender sending in volume: mallory@example.com\n",
        "CONTAINED: from now on, the messages this account submits are accepted into \
         Postfix's hold queue",
        &format!("until {} ", until_minute(hold)),
        "    smtp-auth-insight --config ",
        " release mallory@example.com\n",
        "https://mail-insight.example.com/senders/mallory%40example.com",
    ] {
        assert!(contained.contains(words), "no {words:?} in\n{contained}");
    }
    let released = body("[smtp-auth-insight] Released: \"mallory@example.com\"");
    for words in [
        "Account: mallory@example.com\n",
        "Released by: ann\n",
        "The 20 held messages stay in Postfix's hold queue",
        "release mallory@example.com --requeue\n",
        "release mallory@example.com --delete-held\n",
    ] {
        assert!(released.contains(words), "no {words:?} in\n{released}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_attackers_account_name_reaches_no_subject_and_the_body_only_after_a_label() {
    let smtp = SmtpSink::start();
    let name = "urgent: your mailbox is locked, restore at https://evil.example/login";
    let c = contained_on(&smtp, "", name).await;
    let d = &c.d;
    let path = name
        .replace(' ', "%20")
        .replace('/', "%2F")
        .replace(':', "%3A");
    // The alert mail (which says the account is contained), then the
    // release's.
    smtp.texts(1).await;
    let released = release_api(d, &path).await;
    assert_eq!(released.status(), 200);
    let mails = smtp.texts(2).await;
    for (subject, body) in &mails {
        assert!(
            !subject.contains("urgent") && !subject.contains("evil"),
            "{subject}"
        );
        assert!(
            subject.contains("a name with unusual characters"),
            "{subject}"
        );
        let label = if subject.contains("Released") {
            assert!(body.contains(&format!("Account: {name}\n")), "{body}");
            "Account: "
        } else {
            assert!(
                subject.starts_with("[smtp-auth-insight] Contained: "),
                "{subject}"
            );
            assert!(body.contains("CONTAINED: from now on"), "{body}");
            "New sender sending in volume: "
        };
        for line in body.lines().filter(|l| l.contains("evil")) {
            assert!(
                line.starts_with(label)
                    || line.contains("release 'urgent: your mailbox")
                    || line.contains("/senders/urgent%3A"),
                "the name outside its label or a quoted command: {line}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_main_page_and_the_senders_page_show_containments_and_their_release_buttons_end_them() {
    use common::webdriver::Driver;
    let hash = password_hash("s3cret pass");
    // [[server.users]] is a table array: it comes last.
    let site = policy_site(&format!(
        "policy.action = \"reject\"\n[[server.users]]\nname = \"ann\"\npassword_hash = \"{hash}\"\n"
    ));
    let d = site.start();
    let (mut s, mut r) = connected(&site);
    burst(&mut s, &mut r, "mallory@example.com");
    let hold = wait_contained(&d, "mallory@example.com").await;
    // Without a session the button does nothing.
    let refused = no_redirects()
        .post(d.url("/senders/mallory%40example.com/release"))
        .form(&[("csrf", "x")])
        .send()
        .await
        .unwrap();
    assert_ne!(refused.status(), 200);
    assert_eq!(holds(&d).await[0]["in_force"], true);

    let b = Driver::start().await;
    b.goto(&d.url("/login")).await;
    b.type_into(&b.find("#user").await, "ann").await;
    b.type_into(&b.find("#token").await, "s3cret pass").await;
    b.click(&b.find("#login").await).await;
    b.wait_text("#tile-senders", |t| !t.is_empty()).await;
    // The main page's card lists the contained accounts, newest first.
    burst(&mut s, &mut r, "eve@example.com");
    wait_contained(&d, "eve@example.com").await;
    b.goto(&d.url("/")).await;
    let card = b.wait_text("#contained", |t| t.contains("eve@")).await;
    for words in [
        "Contained accounts",
        "mallory@example.com",
        "new_sender",
        "first seen",
    ] {
        assert!(card.contains(words), "no {words:?} in {card}");
    }
    // Their alerts show where the incident stands, not "new" for ever.
    let listed = b.text(&b.find("#alerts").await).await;
    assert!(
        listed.contains("(open)") && !listed.contains("(new)"),
        "{listed}"
    );
    let rows = b.find_all("#contained-accounts tbody tr").await;
    assert_eq!(rows.len(), 2);
    assert!(b.text(&rows[0]).await.starts_with("eve@example.com"));
    // Released from the card: back on the main page, one row left.
    b.click(
        &b.find("#contained-accounts tbody tr:first-child .release")
            .await,
    )
    .await;
    b.wait_text("#contained", |t| !t.contains("eve@")).await;
    assert!(b.url().await.ends_with('/'), "{}", b.url().await);
    assert_eq!(b.find_all("#contained-accounts tbody tr").await.len(), 1);
    let eve = record(&d, "eve@example.com").await;
    assert_eq!(eve["released"]["by"], "ann (dashboard)", "{eve}");
    b.goto(&d.url("/senders/mallory%40example.com")).await;
    let shown = b
        .wait_text("#containment", |t| t.contains("Contained"))
        .await;
    let alert = format!("new_sender alert #{}", hold["alert"]["seq"]);
    assert!(shown.contains(&alert), "{shown}");
    b.screenshot("containment").await;
    b.click(&b.find("#release").await).await;
    let after = b
        .wait_text("#containment", |t| t.contains("Contained earlier"))
        .await;
    assert!(after.contains("by ann (dashboard)"), "{after}");
    assert!(b.find_all("#release").await.is_empty(), "the button stays");
    // No account contained: no card.
    b.goto(&d.url("/")).await;
    b.wait_text("#tile-senders", |t| !t.is_empty()).await;
    assert!(b.find_all("#contained").await.is_empty(), "the card stays");
    // Mail flows again.
    let got = {
        s.write_all(request("END-OF-MESSAGE", "mallory@example.com", "R1").as_bytes())
            .unwrap();
        answer(&mut r)
    };
    assert_eq!(got, "action=DUNNO\n");
}
