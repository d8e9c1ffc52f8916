//! The command line: import, report, check-config, exit codes and errors.

mod common;

use chrono::Utc;
use common::*;
use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn now() -> String {
    Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[test]
fn import_reads_plain_gzip_and_stdin_and_counts_what_it_skipped() {
    let site = Site::new("");
    let dir = site.dir.path();
    let ts = now();
    // Plain file: 3 good events, and garbage of every kind.
    let mut plain = Vec::new();
    for i in 0..3 {
        writeln!(
            plain,
            "{}",
            event_line(&ts, "a@one.example", "TLSv1.2", Some(&format!("p{i}")))
        )
        .unwrap();
    }
    plain.extend_from_slice(b"this is not json\n");
    plain.extend_from_slice(b"\xff\xfe\x00binary\n");
    writeln!(
        plain,
        r#"{{"ts":"{ts}","sender":"a@one.example","tls":"SSLv2"}}"#
    )
    .unwrap();
    writeln!(
        plain,
        "{{\"ts\":\"{ts}\",\"sender\":\"{}\",\"tls\":\"none\"}}",
        "x".repeat(1 << 20)
    )
    .unwrap();
    plain.extend_from_slice(b"{\"ts\":\"2026-01-01T00:00"); // truncated last line
    std::fs::write(dir.join("plain.ndjson"), &plain).unwrap();
    // Gzip file: 4 events, one a duplicate id of the plain file.
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    for i in 0..3 {
        writeln!(
            gz,
            "{}",
            event_line(&ts, "b@two.example", "TLSv1.0", Some(&format!("g{i}")))
        )
        .unwrap();
    }
    writeln!(
        gz,
        "{}",
        event_line(&ts, "a@one.example", "TLSv1.2", Some("p0"))
    )
    .unwrap();
    std::fs::write(dir.join("more.ndjson.gz"), gz.finish().unwrap()).unwrap();
    // Stdin: a JSON array of 2.
    let stdin_body = format!(
        "[{},{}]",
        event_line(&ts, "c@three.example", "none", None),
        event_line(&ts, "c@three.example", "TLSv1.3", None)
    );

    let out = run_with_stdin(
        Command::new(BIN)
            .arg("--config")
            .arg(&site.config)
            .args(["import", "--format", "ndjson"])
            .arg(dir.join("plain.ndjson"))
            .arg(dir.join("more.ndjson.gz"))
            .arg("-"),
        stdin_body.as_bytes(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        "read 13 lines: 9 events (0 failed logins), 8 counted, 1 duplicates, 0 older than retention; 5 lines skipped \
         (invalid JSON: 2, invalid tls: 1, not UTF-8: 1, too long: 1)\n\
         alerts raised: legacy_tls: 2 (GET /api/v1/alerts lists them)"
    );
    assert!(
        stderr(&out).contains("plain.ndjson: skipped line 6: field `tls`"),
        "{}",
        stderr(&out)
    );

    let out = site.cli(&["report", "--format", "json"]);
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["summary"]["messages"], 8);
    assert_eq!(r["summary"]["tls"]["TLSv1.0"], 3);
    assert_eq!(r["summary"]["senders"], 3);

    // Importing the same files again counts nothing twice (they carry ids).
    let out = site.cli(&[
        "import",
        "--format",
        "ndjson",
        dir.join("more.ndjson.gz").to_str().unwrap(),
    ]);
    assert!(
        stdout(&out).contains("0 counted, 4 duplicates"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn csv_text_and_json_reports_agree() {
    let site = Site::new("");
    let ts = now();
    let lines: Vec<String> = [
        ("=HYPERLINK(\"http://evil\")", "none"),
        ("alice@example.com", "TLSv1.3"),
        ("alice@example.com", "TLSv1.3"),
        ("alice@example.com", "TLSv1.1"),
        ("bob@example.org", "TLSv1.2"),
    ]
    .iter()
    .map(|(s, t)| event_line(&ts, s, t, None))
    .chain(
        [
            "guess@example.com",
            "guess@example.com",
            "alice@example.com",
        ]
        .map(|user| {
            serde_json::json!({"ts": ts, "sender": user, "tls": "none", "result": "auth_failed"})
                .to_string()
        }),
    )
    .collect();
    let file = site.dir.path().join("e.ndjson");
    std::fs::write(&file, lines.join("\n")).unwrap();
    assert!(
        site.cli(&["import", "--format", "ndjson", file.to_str().unwrap()])
            .status
            .success()
    );

    let json: Value =
        serde_json::from_slice(&site.cli(&["report", "--format", "json"]).stdout).unwrap();
    let out_path = site.dir.path().join("r.csv");
    let out = site.cli(&[
        "report",
        "--format",
        "csv",
        "--out",
        out_path.to_str().unwrap(),
    ]);
    assert!(
        out.status.success() && out.stdout.is_empty(),
        "{}",
        stderr(&out)
    );
    let csv = std::fs::read_to_string(&out_path).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(
        rows[0],
        "sender,domain,messages,none,none %,TLSv1.0,TLSv1.0 %,TLSv1.1,TLSv1.1 %,TLSv1.2,TLSv1.2 %,TLSv1.3,TLSv1.3 %,auth_failures"
    );
    // Every sender, then the username that only failed to log in.
    assert_eq!(
        rows.len(),
        1 + json["senders"].as_array().unwrap().len() + 1
    );
    assert_eq!(
        rows[1],
        "alice@example.com,example.com,3,0,0.0,0,0.0,1,33.3,0,0.0,2,66.7,1"
    );
    assert_eq!(
        rows.last().unwrap(),
        &"guess@example.com,example.com,0,0,0.0,0,0.0,0,0.0,0,0.0,0,0.0,2"
    );
    // The formula is defused (leading ') and quoted.
    assert!(
        rows.contains(&"\"'=hyperlink(\"\"http://evil\"\")\",,1,1,100.0,0,0.0,0,0.0,0,0.0,0,0.0,0"),
        "{csv}"
    );
    // Failed logins in the JSON: the total and the usernames, most first,
    // the one that never sent among them; not counted as messages.
    assert_eq!(json["summary"]["auth_failures"], 3);
    assert_eq!(json["summary"]["messages"], 5);
    assert_eq!(
        json["auth_failures"],
        serde_json::json!([{"sender": "guess@example.com", "count": 2},
                           {"sender": "alice@example.com", "count": 1}])
    );
    let days = json["daily"].as_array().unwrap();
    assert_eq!(
        days.iter()
            .map(|d| d["auth_failures"].as_u64().unwrap())
            .sum::<u64>(),
        3
    );

    let text = stdout(&site.cli(&["report", "--format", "text"]));
    assert!(
        text.contains("3 senders used SMTP AUTH; 5 messages."),
        "{text}"
    );
    assert!(
        text.contains("2 senders used no TLS or TLS 1.0/1.1 (marked *)."),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("* alice@example.com")),
        "{text}"
    );
    assert!(text.contains("3 failed logins by 2 usernames."), "{text}");
    let failed = text
        .split("\nFailed logins\n")
        .nth(1)
        .expect("a failed-login section");
    let guess = failed
        .lines()
        .find(|l| l.contains("guess@example.com"))
        .expect("guess");
    assert!(guess.trim_end().ends_with(" 2"), "{text}");
}

#[test]
fn check_config_says_file_line_and_key_in_one_line() {
    let site = Site::new("");
    let good = site.cli(&["check-config"]);
    assert!(good.status.success(), "{}", stderr(&good));
    assert!(stdout(&good).starts_with("config OK"));

    let bad = site.dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "timezone = \"UTC\"\n[store]\nretention_days = 30\ncache = 5\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&bad)
        .arg("check-config")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!(
            "error: {}: line 4: key `store.cache`: unknown field `cache`",
            bad.display()
        )),
        "{err}"
    );

    let missing = Command::new(BIN)
        .args(["--config", "/nonexistent/x.toml", "check-config"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("cannot read config file /nonexistent/x.toml"),
        "{}",
        stderr(&missing)
    );

    let env_token = site.dir.path().join("env.toml");
    std::fs::write(&env_token, "server.token_env = \"SAI_TEST_UNSET_VAR\"\n").unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&env_token)
        .arg("check-config")
        .env_remove("SAI_TEST_UNSET_VAR")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("SAI_TEST_UNSET_VAR"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn beside_a_running_daemon_report_alerts_and_import_go_through_its_api() {
    let site =
        Site::new("store.retention_days = 3650\n[mail]\nallowed_recipients = [\"@example.com\"]\n");
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/mta");
    let postfix = format!("{dir}/postfix-rsyslog.log");
    let exim = format!("{dir}/exim-mainlog.log");
    assert!(
        site.cli(&["import", "--format", "postfix", &postfix])
            .status
            .success()
    );
    let day = ["--start", "2026-11-27", "--end", "2026-11-27"];
    let commands: Vec<Vec<&str>> = vec![
        [&["report", "--format", "text"][..], &day].concat(),
        [&["report", "--format", "json"][..], &day].concat(),
        [
            &["report", "--format", "csv", "--domain", "example.com"][..],
            &day,
        ]
        .concat(),
        vec!["report"],
        vec!["alerts", "--since", "2026-11-01"],
        vec!["alerts", "--since", "2026-11-01", "--format", "json"],
    ];
    let stopped: Vec<String> = commands.iter().map(|c| stdout(&site.cli(c))).collect();
    assert!(stopped[4].contains("legacy_tls"), "{}", stopped[4]);

    // The daemon holds the store: the same commands print the same.
    let d = site.start();
    for (command, before) in commands.iter().zip(&stopped) {
        let out = site.cli(command);
        assert!(out.status.success(), "{command:?}: {}", stderr(&out));
        assert_eq!(&stdout(&out), before, "{command:?}");
    }

    // An import is handed to the daemon, which counts it.
    let before = report(&d, "start=2026-11-27&end=2026-11-27").await.1;
    let out = site.cli(&["import", "--format", "exim", "--host", "mx2", &exim]);
    assert!(out.status.success(), "{}", stderr(&out));
    let said = stdout(&out);
    assert!(said.contains("posted to the running daemon"), "{said}");
    let after = report(&d, "start=2026-11-27&end=2026-11-27").await.1;
    let sent = |r: &Value| r["summary"]["messages"].as_u64().unwrap();
    assert_eq!(
        sent(&after),
        2 * sent(&before),
        "the Exim log's messages again"
    );
    assert!(
        said.contains(&format!("{} counted, 0 duplicates", sent(&before) + 4)),
        "messages and failed logins: {said}"
    );
    // The same log again: every event a duplicate.
    let again = stdout(&site.cli(&["import", "--format", "exim", "--host", "mx2", &exim]));
    assert!(again.contains(" 0 counted, "), "{again}");

    // A report mailed by the daemon (file transport: data/mail): queued,
    // and with --wait, sent when the command returns.
    let mails = || {
        std::fs::read_dir(site.data_dir().join("mail"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let send = |wait: &[&str]| {
        let args = [
            &["report", "--send", "--to", "admin@example.com"][..],
            wait,
            &day,
        ]
        .concat();
        let out = site.cli(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    let queued = send(&[]);
    assert!(
        queued.starts_with("report to admin@example.com queued as "),
        "{queued}"
    );
    wait_until_blocking(
        "the queued report written",
        std::time::Duration::from_secs(30),
        || ready(mails() == 1, mails()),
    );
    let sent = send(&["--wait"]);
    assert!(
        sent.starts_with("report sent to admin@example.com (by the running daemon, request "),
        "{sent}"
    );
    assert_eq!(mails(), 2);
    drop(d);
}

#[test]
fn read_only_commands_never_create_a_store() {
    let site = Site::new("");
    for command in [
        &["report"][..],
        &["alerts"],
        &["report", "--format", "json"],
    ] {
        let out = site.cli(command);
        assert_eq!(out.status.code(), Some(1), "{command:?}");
        let err = stderr(&out);
        let data = site.data_dir();
        assert!(
            err.contains(&format!(
                "no store at {} (store.data_dir = {}, from {})",
                data.join("db").display(),
                data.display(),
                site.config.display()
            )),
            "{err}"
        );
        assert!(err.contains("--config"), "{err}");
        assert!(!data.exists(), "{command:?} created {}", data.display());
    }
}

#[test]
fn import_of_real_postfix_and_exim_logs_counts_what_was_sent_once() {
    // The fixtures are from 2026-11-27: keep them inside retention whenever
    // the tests run.
    let site = Site::new("store.retention_days = 3650");
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/mta");
    let postfix = format!("{dir}/postfix-journal-short-iso.log");
    let exim = format!("{dir}/exim-mainlog.log");
    let out = site.cli(&["import", "--format", "postfix", &postfix]);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(
        lines,
        [
            "read 156 lines: 22 events (4 failed logins), 22 counted, 0 duplicates, 0 older than retention; 0 lines skipped",
            // bob (TLSv1.1, none) and printer (TLSv1.0, none): once each.
            "alerts raised: legacy_tls: 2 (GET /api/v1/alerts lists them)"
        ]
    );
    let out = site.cli(&["import", "--format", "exim", "--host", "exim1", &exim]);
    assert!(
        stdout(&out).contains("22 events (4 failed logins), 22 counted"),
        "{}",
        stdout(&out)
    );
    // The same accounts through Exim: their legacy TLS was reported already.
    assert!(!stdout(&out).contains("alerts raised"), "{}", stdout(&out));
    // Importing both again counts nothing (also with another page cache).
    let out = site.cli(&[
        "import",
        "--format",
        "postfix",
        "--cache-mb",
        "64",
        &postfix,
    ]);
    assert!(
        stdout(&out).contains("0 counted, 22 duplicates"),
        "{}",
        stdout(&out)
    );
    let out = site.cli(&["import", "--format", "exim", "--host", "exim1", &exim]);
    assert!(
        stdout(&out).contains("0 counted, 22 duplicates"),
        "{}",
        stdout(&out)
    );
    let out = site.cli(&["import", "--format", "postfix", "--cache-mb", "0", &postfix]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--cache-mb"), "{}", stderr(&out));

    let out = site.cli(&[
        "report",
        "--start",
        "2026-11-27",
        "--end",
        "2026-11-27",
        "--format",
        "json",
    ]);
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{dir}/expected.json")).unwrap())
            .unwrap();
    for row in r["senders"].as_array().unwrap() {
        let want = &expected["messages"][row["sender"].as_str().unwrap()];
        for (tls, n) in row["tls"].as_object().unwrap() {
            assert_eq!(
                n.as_u64().unwrap(),
                2 * want[tls].as_u64().unwrap_or(0),
                "{} {tls}",
                row["sender"]
            );
        }
    }
    assert_eq!(r["summary"]["messages"], 36);
    assert_eq!(r["summary"]["senders"], 4);
}

#[test]
fn templates_can_be_replaced_and_a_typo_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let builtin = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/templates/report.html.hbs"
    ))
    .unwrap();
    std::fs::write(
        dir.path().join("report.html.hbs"),
        builtin.replace("<body", "<body data-brand=\"ACME Mail Ops\""),
    )
    .unwrap();
    let site = Site::new(&format!("report.templates_dir = {:?}", dir.path()));
    assert!(site.cli(&["check-config"]).status.success());
    let events = site.dir.path().join("one.ndjson");
    std::fs::write(
        &events,
        event_line(&now(), "alice@example.com", "TLSv1.3", None),
    )
    .unwrap();
    assert!(
        site.cli(&["import", "--format", "ndjson", events.to_str().unwrap()])
            .status
            .success()
    );
    let html = stdout(&site.cli(&["report", "--format", "html"]));
    assert!(
        html.contains("data-brand=\"ACME Mail Ops\""),
        "override not used"
    );

    // A misspelt field is an error when the templates are loaded, not an
    // empty spot in a mail: check-config, run and report all refuse.
    std::fs::write(
        dir.path().join("report.html.hbs"),
        builtin.replace("{{senders}} senders used", "{{sendrs}} senders used"),
    )
    .unwrap();
    for args in [&["check-config"][..], &["report", "--format", "html"][..]] {
        let out = site.cli(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = stderr(&out);
        assert!(
            err.contains("template report.html.hbs") && err.contains("sendrs"),
            "{args:?}: {err}"
        );
    }
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&site.config)
        .arg("run")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("sendrs"), "{}", stderr(&out));
}

/// An import killed with SIGKILL at a random moment, then run again to the
/// end, counts every event exactly once: the counts of an account are
/// written together with the ids of its events.
#[test]
fn an_import_killed_midway_and_run_again_counts_every_event_once() {
    let site = Site::new("");
    let path = site.dir.path().join("events.ndjson");
    // 15,000 senders over three days: the import's last write-out, in
    // batches of whole accounts, is a good part of its time.
    let (senders, per_sender) = (15_000u64, 2u64);
    let mut text = String::new();
    let today = Utc::now().date_naive();
    for i in 0..senders * per_sender {
        let day = today - chrono::Days::new(i % 3);
        let ts = format!("{day}T{:02}:{:02}:00Z", i % 24, i % 60);
        let tls = ["TLSv1.3", "TLSv1.2", "none"][(i % 3) as usize];
        let account = i % senders;
        let sender = format!("u{account}@d{}.example", account % 7);
        text.push_str(&event_line(&ts, &sender, tls, Some(&format!("mx:{i}"))));
        text.push('\n');
    }
    std::fs::write(&path, text).unwrap();
    let path = path.to_str().unwrap();
    let import = || {
        Command::new(BIN)
            .arg("--config")
            .arg(&site.config)
            .args(["import", "--format", "ndjson", path])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    // How long a whole import takes here, then imports killed at random
    // points of that time.
    let other = Site::new("");
    let started = std::time::Instant::now();
    let out = other.cli(&["import", "--format", "ndjson", path]);
    assert!(out.status.success(), "{}", stderr(&out));
    let whole = started.elapsed();
    let mut rng = Rng(Utc::now().timestamp_nanos_opt().unwrap_or(1) as u64 | 1);
    let mut partial = Vec::new();
    for _ in 0..3 {
        let mut child = import();
        let at = whole.mul_f64(0.3 + rng.below(65) as f64 / 100.0);
        std::thread::sleep(at);
        child.kill().unwrap();
        child.wait().unwrap();
        partial.push(report_totals(&site));
    }
    // Whatever was counted when it was killed, each account was whole:
    // both its messages or neither. (The file is far below the import's
    // memory budget, so every account is written in the last write-out.)
    for (messages, counted) in &partial {
        assert_eq!(*messages, per_sender * counted, "{partial:?}");
    }
    let out = site.cli(&["import", "--format", "ndjson", path]);
    assert!(out.status.success(), "{}", stderr(&out));
    let total = senders * per_sender;
    assert_eq!(
        report_totals(&site),
        (total, senders),
        "counted after each kill: {partial:?}"
    );
    assert_eq!(report_totals(&other), (total, senders));
}

/// Messages and senders of the last three days, from `report`.
fn report_totals(site: &Site) -> (u64, u64) {
    let today = Utc::now().date_naive();
    let start = (today - chrono::Days::new(2)).to_string();
    let end = today.to_string();
    let args = [
        "report", "--start", &start, "--end", &end, "--format", "json",
    ];
    let out = site.cli(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let summary = &r["summary"];
    (
        summary["messages"].as_u64().unwrap(),
        summary["senders"].as_u64().unwrap(),
    )
}

/// Every command says first which configuration it read: the file named,
/// or without one the installed file when it exists, else the built-in
/// defaults.
#[test]
fn every_command_names_the_configuration_it_read_first() {
    let site = Site::new("");
    for args in [&["check-config"][..], &["alerts"], &["holds"]] {
        let out = site.cli(args);
        let first = stderr(&out).lines().next().unwrap_or_default().to_owned();
        assert_eq!(
            first,
            format!("configuration: {}", site.config.display()),
            "{args:?}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .arg("check-config")
        .current_dir(dir.path())
        .env_remove("SMTP_AUTH_INSIGHT_CONFIG")
        .output()
        .unwrap();
    let first = stderr(&out).lines().next().unwrap_or_default().to_owned();
    let installed = std::path::Path::new("/etc/smtp-auth-insight/config.toml");
    let want = match installed.exists() {
        true => "configuration: /etc/smtp-auth-insight/config.toml".to_owned(),
        false => "configuration: built-in defaults (no --config or \
                  $SMTP_AUTH_INSIGHT_CONFIG, and no /etc/smtp-auth-insight/config.toml)"
            .to_owned(),
    };
    assert_eq!(first, want);
    // README's first command: built-in defaults whatever is installed.
    let out = Command::new(BIN)
        .args(["--config", "/dev/null", "check-config"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let first = stderr(&out).lines().next().unwrap_or_default().to_owned();
    assert_eq!(first, "configuration: /dev/null (empty: built-in defaults)");
    assert!(stdout(&out).contains("data in ./data"), "{}", stdout(&out));
}

/// check-config says what the daemon will do: its inputs, where mail goes,
/// who is alerted, the policy service, when each schedule runs next.
#[test]
fn check_config_says_what_the_daemon_will_do() {
    let site = Site::new(
        "timezone = \"Europe/Berlin\"\n\
         detect.recipients = [\"secops@example.com\"]\n\
         policy.listen = \"127.0.0.1:0\"\npolicy.action = \"hold\"\n\
         [mail]\ntransport = \"smtp\"\nhost = \"relay.example.com\"\nport = 587\n\
         from = \"insight@example.com\"\nallowed_recipients = [\"@example.com\"]\n\
         [[sources]]\nkind = \"postfix\"\npath = \"/var/log/mail.log\"\n\
         [[sources]]\nkind = \"journald\"\n\
         [[schedules]]\nname = \"weekly\"\ncron = \"0 7 * * Mon\"\nrange = \"previous_week\"\n\
         recipients = [\"boss@example.com\"]\n",
    );
    let out = site.cli(&["check-config"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let said = stdout(&out);
    for line in [
        "source postfix: /var/log/mail.log\n",
        "source journald: the system journal\n",
        "mail: SMTP relay relay.example.com:587 (no TLS), from insight@example.com\n",
        "alert mails: to secops@example.com\n",
        "policy service: 127.0.0.1:0, action hold, containing on volume_spike, new_sender and \
         shared_ip alerts for 24 h, a reminder every 4 h\n",
        "schedule weekly: \"0 7 * * Mon\" in Europe/Berlin, to boss@example.com; next run ",
    ] {
        assert!(said.contains(line), "no {line:?} in\n{said}");
    }
    // The next Monday, 07:00 there.
    let next = said
        .split("next run ")
        .nth(1)
        .and_then(|s| s.lines().next())
        .unwrap_or_default();
    let when = chrono::NaiveDateTime::parse_from_str(&next[..16], "%Y-%m-%d %H:%M").unwrap();
    use chrono::Datelike;
    assert_eq!(when.weekday(), chrono::Weekday::Mon, "{next}");
    assert_eq!(when.time().to_string(), "07:00:00", "{next}");
    // Defaults say so too.
    let plain = stdout(&Site::new("").cli(&["check-config"]));
    for line in [
        "sources: none",
        "mail: written as .eml files to ",
        "alert mails: none",
        "policy service: off",
        "schedules: none",
    ] {
        assert!(plain.contains(line), "no {line:?} in\n{plain}");
    }
}
