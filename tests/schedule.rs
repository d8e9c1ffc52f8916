//! Scheduled reports with the real daemon and a real SMTP server.

mod common;

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use common::*;
use mail_parser::{MessageParser, MimeHeaders};
use std::time::Duration;

fn site(port: u16, cron: &str) -> Site {
    Site::new(&format!(
        "store.retention_days = 3650\n\
         [mail]\ntransport = \"smtp\"\nport = {port}\nsecurity = \"none\"\nallowed_recipients = [\"@example.com\"]\n\
         [[schedules]]\nname = \"test\"\ncron = \"{cron}\"\nrange = \"last_7_days\"\nrecipients = [\"admin@example.com\"]\nsubject = \"Scheduled SMTP AUTH report\"\n"
    ))
}

async fn wait_for_mails(smtp: &SmtpSink, n: usize, within: Duration) {
    wait_until(&format!("{n} mails"), within, async || {
        let got = smtp.messages().len();
        ready(got >= n, got).map(drop)
    })
    .await
}

/// The slots a daemon logged as queued, in order.
fn queued_slots(d: &Daemon) -> Vec<DateTime<Utc>> {
    slots_in(&d.log_text())
}

/// The slots queued in a daemon's log text.
fn slots_in(log: &str) -> Vec<DateTime<Utc>> {
    log.lines()
        .filter(|l| l.contains("scheduled report queued"))
        .filter_map(|l| l.split("slot=").nth(1)?.split(" start=").next())
        .map(|s| {
            NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S UTC")
                .expect("a slot time")
                .and_utc()
        })
        .collect()
}

/// Waits until `d` has queued `n` slots; returns them.
async fn wait_for_slots(d: &Daemon, n: usize) -> Vec<DateTime<Utc>> {
    wait_until(
        &format!("{n} slots queued"),
        Duration::from_secs(30),
        async || {
            let slots = queued_slots(d);
            ready(slots.len() >= n, slots)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_short_cron_mails_the_report_on_every_slot() {
    let smtp = SmtpSink::start();
    let site = site(smtp.port, "*/2 * * * * *");
    let _d = site.start();
    wait_for_mails(&smtp, 3, Duration::from_secs(15)).await;
    let raw = smtp.messages();
    let msg = MessageParser::default().parse(&raw[0]).unwrap();
    assert_eq!(msg.subject().unwrap(), "Scheduled SMTP AUTH report");
    assert!(msg.body_text(0).unwrap().contains("senders used SMTP AUTH"));
    let csv = msg
        .attachments()
        .filter(|a| a.attachment_name().is_some_and(|n| n.ends_with(".csv")))
        .count();
    assert_eq!(csv, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn slots_missed_while_down_run_once_at_start_and_none_runs_twice() {
    let smtp = SmtpSink::start();
    let site = site(smtp.port, "*/6 * * * * *");
    let d = site.start();
    wait_for_slots(&d, 1).await;
    let log = d.log.clone();
    assert!(d.stop().success());
    let before = slots_in(&log.lock().unwrap().join("\n"));
    let last = *before.last().expect("a slot");
    // Down until at least two more slots have passed.
    if let Ok(left) = (last + TimeDelta::seconds(13) - Utc::now()).to_std() {
        tokio::time::sleep(left).await;
    }
    let d = site.start();
    let after = wait_for_slots(&d, 2).await;
    // One catch-up run for all the missed slots (at least last + 6 s and
    // last + 12 s), as the latest of them; then the regular slot after it.
    assert!(
        after[0] >= last + TimeDelta::seconds(12),
        "{before:?} then {after:?}"
    );
    assert_eq!(after[1], after[0] + TimeDelta::seconds(6), "{after:?}");
    let mut all: Vec<_> = before.iter().chain(&after).collect();
    all.sort();
    all.dedup();
    assert_eq!(
        all.len(),
        before.len() + after.len(),
        "a slot ran twice: {before:?} {after:?}"
    );
    // Every queued slot reaches the relay once: mails and queued runs agree
    // once the queue is empty.
    wait_until(
        "one mail for every queued slot",
        Duration::from_secs(30),
        async || {
            let queued = before.len() + queued_slots(&d).len();
            let empty =
                metric(&metrics_text(&d).await, "smtp_auth_insight_outbox_queued") == Some(0);
            let mails = smtp.messages().len();
            ready(empty && mails == queued, (mails, queued, empty))
        },
    )
    .await;
}
