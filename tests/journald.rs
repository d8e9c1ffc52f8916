//! The journald source with real journal files: the real Postfix and Exim
//! fixture lines as journal entries (journal export format, written into
//! journal files by systemd-journal-remote), followed by the real daemon
//! through journalctl; the counts equal an import of the same logs, across
//! a new journal file, a kill -9, and a vacuumed file.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/mta");
const BOOT_ID: &str = "0f3c9a1e5b7d4e2f8a6b1c3d5e7f9a0b";

/// systemd-journal-remote, which Debian keeps out of PATH.
fn journal_remote() -> PathBuf {
    [
        "/lib/systemd/systemd-journal-remote",
        "/usr/lib/systemd/systemd-journal-remote",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .expect("systemd-journal-remote (apt-get install systemd-journal-remote)")
}

/// One entry of journal export format.
fn export_entry(usec: i64, monotonic: u64, fields: &[(&str, &str)]) -> String {
    let mut entry = format!(
        "__REALTIME_TIMESTAMP={usec}\n__MONOTONIC_TIMESTAMP={monotonic}\n_BOOT_ID={BOOT_ID}\n"
    );
    for (k, v) in fields {
        entry.push_str(&format!("{k}={v}\n"));
    }
    entry.push('\n');
    entry
}

/// The id of user `name` on this machine.
fn uid_of(name: &str) -> String {
    let out = succeed(
        std::process::Command::new("id").args(["-u", name]),
        "tests/support/install-deps.sh installs postfix",
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The rsyslog fixture's lines as the journal holds Postfix's messages:
/// time, host, identifier and pid of the syslog line, the message after it,
/// and the postfix user as their writer (journald's `_UID`).
/// `shift` moves them later in time (a re-sent copy).
fn postfix_entries(shift: chrono::TimeDelta, first_monotonic: u64) -> String {
    let postfix = uid_of("postfix");
    postfix_entries_by((&postfix, "postfix", "vm"), shift, first_monotonic)
}

/// [`postfix_entries`] as written by user `uid`, with `name` in place of
/// "postfix" in their identifiers, from host `host` (so that their
/// messages' ids are new).
fn postfix_entries_by(
    (uid, name, host): (&str, &str, &str),
    shift: chrono::TimeDelta,
    first_monotonic: u64,
) -> String {
    let log = std::fs::read_to_string(format!("{FIXTURES}/postfix-rsyslog.log")).unwrap();
    let mut out = String::new();
    for (i, line) in log.lines().enumerate() {
        let (at, _, identifier, pid, message) = rsyslog_fields(line);
        let at = at + shift;
        let identifier = identifier.replacen("postfix", name, 1);
        out.push_str(&export_entry(
            at.timestamp_micros(),
            first_monotonic + i as u64,
            &[
                ("_HOSTNAME", host),
                ("SYSLOG_IDENTIFIER", &identifier),
                ("SYSLOG_PID", pid),
                ("_PID", pid),
                ("_UID", uid),
                ("MESSAGE", message),
            ],
        ));
    }
    out
}

/// The Exim main log's lines as Exim sends them to syslog (as root): its own time
/// stamp first (syslog_timestamp, the default), from its first submission
/// on (the daemon's start-up lines before it say nothing about
/// submissions; a file that starts with one shows whether resuming after
/// a vacuumed file loses the entry it starts at).
fn exim_entries(first_monotonic: u64) -> String {
    let log = std::fs::read_to_string(format!("{FIXTURES}/exim-mainlog.log")).unwrap();
    let mut out = String::new();
    let lines = log
        .lines()
        .skip_while(|l| !l.contains(" <= "))
        // A warning's continuation lines belong to its syslog entry.
        .filter(|l| !l.starts_with(' '));
    for (i, line) in lines.enumerate() {
        let at = chrono::NaiveDateTime::parse_from_str(&line[..19], "%Y-%m-%d %H:%M:%S")
            .unwrap()
            .and_utc();
        out.push_str(&export_entry(
            at.timestamp_micros(),
            first_monotonic + i as u64,
            &[
                ("_HOSTNAME", "vm"),
                ("SYSLOG_IDENTIFIER", "exim"),
                ("_PID", "2600"),
                // Exim's daemon runs as root.
                ("_UID", "0"),
                ("MESSAGE", line),
            ],
        ));
    }
    out
}

/// Writes `entries` (export format) as the journal file `file`.
fn write_journal(file: &Path, entries: &str) {
    let out = run_with_stdin(
        std::process::Command::new(journal_remote())
            .arg(format!("--output={}", file.display()))
            .arg("-"),
        entries.as_bytes(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The report of the fixtures' day from a store that imported `logs`.
fn imported(logs: &[(&str, &str)]) -> Value {
    let site = Site::new("store.retention_days = 3650\n");
    for (format, file) in logs {
        let out = site.cli(&["import", "--format", format, &format!("{FIXTURES}/{file}")]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = site.cli(&[
        "report",
        "--start",
        "2026-11-27",
        "--end",
        "2026-11-27",
        "--format",
        "json",
    ]);
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Waits until the daemon's report of the fixtures' day is `want`.
async fn counts_reach(d: &Daemon, want: &Value) {
    wait_until(
        "the journal counts what the logs did",
        Duration::from_secs(30),
        async || {
            let got = report(d, "start=2026-11-27&end=2026-11-27").await.1;
            ready(&got == want, (got, want, d.log_text()))
        },
    )
    .await;
}

fn duplicates(metrics: &str) -> u64 {
    metric(
        metrics,
        "smtp_auth_insight_events_total{outcome=\"duplicate\"}",
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_journal_counts_what_the_logs_count_across_new_files_kill_9_and_vacuum() {
    let journal = tempfile::tempdir().unwrap();
    let dir = journal.path();
    write_journal(
        &dir.join("postfix.journal"),
        &postfix_entries(chrono::TimeDelta::zero(), 1),
    );
    let site = Site::new(&format!(
        "store.retention_days = 3650\n[[sources]]\nkind = \"journald\"\ndirectory = {dir:?}\n"
    ));
    let postfix = imported(&[("postfix", "postfix-rsyslog.log")]);
    let both = imported(&[
        ("postfix", "postfix-rsyslog.log"),
        ("exim", "exim-mainlog.log"),
    ]);
    assert!(postfix["summary"]["messages"].as_u64().unwrap() > 0);

    let d = site.start();
    counts_reach(&d, &postfix).await;
    // Readable: the source looked before it followed, and said nothing.
    assert!(!d.log_text().contains("cannot read any journal entry"));
    // Killed; meanwhile Exim's entries arrive in a new file and the file the
    // cursor points into is vacuumed away.
    d.kill9();
    write_journal(&dir.join("exim.journal"), &exim_entries(10_000));
    std::fs::remove_file(dir.join("postfix.journal")).unwrap();
    let d = site.start();
    counts_reach(&d, &both).await;
    assert_eq!(duplicates(&metrics_text(&d).await), 0);

    // While it follows: Postfix's entries again in another file, later in
    // time (a re-sent copy). Its messages carry known ids (host and queue
    // id): none counts twice. A failed login carries no id: those count.
    write_journal(
        &dir.join("again.journal"),
        &postfix_entries(chrono::TimeDelta::seconds(30), 20_000),
    );
    let messages = |r: &Value| r["summary"]["messages"].as_u64().unwrap();
    let failures = |r: &Value| r["summary"]["auth_failures"].as_u64().unwrap();
    let got = wait_until(
        "both sources counted",
        Duration::from_secs(30),
        async || {
            let seen = duplicates(&metrics_text(&d).await);
            let got = report(&d, "start=2026-11-27&end=2026-11-27").await.1;
            let done = seen == messages(&postfix)
                && failures(&got) == failures(&both) + failures(&postfix);
            ready(done, (seen, got)).map(|(_, got)| got)
        },
    )
    .await;
    assert_eq!(got["senders"], both["senders"]);
    assert_eq!(messages(&got), messages(&both));
    assert!(d.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn entries_under_postfixs_name_that_postfix_did_not_write_count_nothing() {
    let journal = tempfile::tempdir().unwrap();
    let dir = journal.path();
    // Postfix's entries, and the same lines written by user 65534 as
    // `logger -t postfix/submission/smtpd` would, and under a lookalike
    // name (from other hosts, so that their messages' ids are new: were
    // they counted, the report would show them).
    let real = postfix_entries(chrono::TimeDelta::zero(), 1);
    let forged = postfix_entries_by(
        ("65534", "postfix", "forged"),
        chrono::TimeDelta::minutes(10),
        10_000,
    );
    let lookalike = postfix_entries_by(
        ("0", "postfixevil", "lookalike"),
        chrono::TimeDelta::minutes(20),
        20_000,
    );
    write_journal(
        &dir.join("mixed.journal"),
        &(real.clone() + &forged + &lookalike),
    );
    let site = Site::new(&format!(
        "store.retention_days = 3650\n[[sources]]\nkind = \"journald\"\ndirectory = {dir:?}\n"
    ));
    let want = imported(&[("postfix", "postfix-rsyslog.log")]);
    let d = site.start();
    counts_reach(&d, &want).await;
    let entries = real.matches("\n\n").count() as u64;
    wait_metrics(
        &d,
        [
            "smtp_auth_insight_journal_entries_refused_total{why=\"writer\"}",
            "smtp_auth_insight_journal_entries_refused_total{why=\"identifier\"}",
        ],
        |n| n == [Some(entries); 2],
    )
    .await;
    // Still exactly what Postfix's own lines count.
    let got = report(&d, "start=2026-11-27&end=2026-11-27").await.1;
    assert_eq!(got, want);
    let log = d.log_text();
    assert!(
        log.contains("identifier=\"postfix/submission/smtpd\" why=\"writer\"")
            && log.contains("identifier=\"postfixevil/submission/smtpd\" why=\"identifier\""),
        "{log}"
    );
}

/// A journal the daemon cannot read (here a directory without journal
/// files; on a server, a user in neither systemd-journal nor adm) is
/// named in the log at start, not followed in silence.
#[tokio::test(flavor = "multi_thread")]
async fn a_journal_nothing_can_be_read_from_is_named_in_the_log() {
    let journal = tempfile::tempdir().unwrap();
    let dir = journal.path();
    let site = Site::new(&format!(
        "[[sources]]\nkind = \"journald\"\ndirectory = {dir:?}\n"
    ));
    let d = site.start();
    d.wait_log("cannot read any journal entry: nothing is counted from this source")
        .await;
    assert!(
        d.log_text()
            .contains("is the daemon's user in group systemd-journal or adm?")
    );
}
