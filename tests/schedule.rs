//! Scheduled reports with the real daemon and a real SMTP server.

mod common;

use common::*;
use mail_parser::{MessageParser, MimeHeaders};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn site(port: u16, cron: &str) -> Site {
    Site::new(&format!(
        "store.retention_days = 3650\n\
         [mail]\ntransport = \"smtp\"\nport = {port}\nsecurity = \"none\"\nallowed_recipients = [\"@example.com\"]\n\
         [[schedules]]\nname = \"test\"\ncron = \"{cron}\"\nrange = \"last_7_days\"\nrecipients = [\"admin@example.com\"]\nsubject = \"Scheduled SMTP AUTH report\"\n"
    ))
}

async fn wait_for_mails(smtp: &SmtpSink, n: usize, within: Duration) {
    let deadline = Instant::now() + within;
    while smtp.messages().len() < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} mails arrived",
            smtp.messages().len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn epoch_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
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
    wait_for_mails(&smtp, 1, Duration::from_secs(20)).await;
    assert!(d.stop().success());
    let before = smtp.messages().len();
    // Down for two or three slots, then back one second after a slot: the
    // next slot is five seconds away, ample for a slow start.
    tokio::time::sleep(Duration::from_secs(13)).await;
    while epoch_secs() % 6 != 1 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _d = site.start();
    // Counted midway between the next slot and the one after: one catch-up
    // run for all missed slots, plus the one regular slot since. A run per
    // missed slot, or the slot mailed before the stop again, would add more.
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(smtp.messages().len(), before + 2);
}
