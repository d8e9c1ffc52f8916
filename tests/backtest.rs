//! `backtest`: logs replayed through the detectors in event-time order,
//! alerts printed as JSON lines; the same alerts as the library gives live.

mod common;

use common::dataset;
use common::*;
use serde_json::Value;
use smtp_auth_insight::detect::{DetectConfig, Detector, Fresh};
use smtp_auth_insight::event::Event;
use std::sync::Arc;

fn ndjson(events: &[&Event]) -> Vec<u8> {
    let mut out = Vec::new();
    dataset::write_ndjson(events.iter().copied(), &mut out).unwrap();
    out
}

fn backtest(site: &Site, args: &[&str]) -> String {
    let out = site.cli(&[&["backtest"][..], args].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn backtest_prints_the_alerts_live_detection_raises_whatever_the_file_order() {
    let data = dataset::generate(7, 21, 0.15);
    let site = Site::new("");
    // Two files that interleave in time, given in the "wrong" order.
    let odd: Vec<&Event> = data.events.iter().skip(1).step_by(2).collect();
    let even: Vec<&Event> = data.events.iter().step_by(2).collect();
    let a = site.dir.path().join("a.ndjson");
    let b = site.dir.path().join("b.ndjson");
    std::fs::write(&a, ndjson(&odd)).unwrap();
    std::fs::write(&b, ndjson(&even)).unwrap();
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let printed = backtest(&site, &["--format", "ndjson", b, a]);
    assert_eq!(
        printed,
        backtest(&site, &["--format", "ndjson", a, b]),
        "not stable"
    );

    // The library, fed the events in time order as the daemon's writer is.
    let mut d = Detector::new(Arc::new(DetectConfig::default()));
    let mut alerts = Vec::new();
    for e in &data.events {
        d.observe(e, &Fresh, &mut alerts);
    }
    let expected: String = alerts
        .iter()
        .filter(|a| a.status.is_firing())
        .map(|a| serde_json::to_string(a).unwrap() + "\n")
        .collect();
    assert_eq!(printed, expected);

    let lines: Vec<Value> = printed
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for l in &lines {
        for field in ["kind", "sender", "at", "observed", "expected", "detail"] {
            assert!(l.get(field).is_some(), "{field} missing: {l}");
        }
    }
    // Every brand-new spammer and big spam run of the data set is found.
    for inc in data
        .incidents
        .iter()
        .filter(|i| i.shape == "brand-new sender" || i.shape == "big spam run")
    {
        let found = lines.iter().any(|l| {
            l["sender"] == inc.sender.as_str()
                && (l["kind"] == "new_sender" || l["kind"] == "volume_spike")
        });
        assert!(found, "missed {inc:?}");
    }
    // Learning the first week hides its alerts, and only those.
    let learnt = backtest(&site, &["--format", "ndjson", "--learn-days", "7", a, b]);
    let week = data.events[0].ts + chrono::TimeDelta::days(7);
    let later: String = printed
        .lines()
        .filter(|l| {
            serde_json::from_str::<Value>(l).unwrap()["at"]
                .as_str()
                .unwrap()
                >= week
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                    .as_str()
        })
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(learnt, later);
    assert!(learnt.len() < printed.len());
    // Nothing was stored: backtest runs on throw-away state.
    assert!(!site.data_dir().join("db").exists());
}

#[test]
fn backtest_of_a_real_postfix_log_reports_each_legacy_sender_once() {
    let site = Site::new("");
    let log = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/mta/postfix-rsyslog.log"
    );
    let printed = backtest(&site, &["--format", "postfix", log, log]);
    let lines: Vec<Value> = printed
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let got: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| (l["kind"].as_str().unwrap(), l["sender"].as_str().unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            ("legacy_tls", "bob@example.com"),
            ("legacy_tls", "printer@example.com")
        ],
        "{printed}"
    );
    let missing = site.cli(&["backtest", "--format", "postfix", "/nonexistent/mail.log"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot open /nonexistent/mail.log"));
}

/// Imports `events` into a fresh store and backtests them: the alert
/// counts by kind must agree. Returns the alerts backtest printed.
fn import_matches_backtest(events: &[&Event]) -> String {
    let site = Site::new("store.retention_days = 3650\ndetect.max_age_minutes = 0");
    let file = site.dir.path().join("all.ndjson");
    std::fs::write(&file, ndjson(events)).unwrap();
    let file = file.to_str().unwrap();
    let out = site.cli(&["backtest", "--format", "ndjson", file]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let counts = stderr
        .split_once(" alerts (")
        .map(|(_, c)| c.trim_end().trim_end_matches(')').to_owned())
        .unwrap();
    let out = site.cli(&["import", "--format", "ndjson", file]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        stdout.contains(&format!("alerts raised: {counts} (")),
        "backtest: {stderr}\nimport: {stdout}"
    );
    String::from_utf8_lossy(&out_backtest(&site, file)).into_owned()
}

fn out_backtest(site: &Site, file: &str) -> Vec<u8> {
    site.cli(&["backtest", "--format", "ndjson", "--all", file])
        .stdout
}

#[test]
fn import_raises_the_alerts_backtest_prints() {
    // Logs older than the hourly retention: every account stays in memory.
    // With throttled runs, which only the longer windows see.
    let mut data = dataset::generate(11, 21, 0.15);
    common::throttled::add(&mut data, 11, 0.15);
    let printed = import_matches_backtest(&data.events.iter().collect::<Vec<_>>());
    assert!(
        printed
            .lines()
            .any(|l| l.contains("messages in the last") && !l.contains("last 60 minutes")),
        "no throttled run found:\n{printed}"
    );
    // Recent logs: idle accounts leave memory and come back from the store.
    let shift = (chrono::Utc::now() - chrono::TimeDelta::days(22)).timestamp() - dataset::START;
    let recent: Vec<Event> = data
        .events
        .iter()
        .map(|e| Event {
            ts: e.ts + chrono::TimeDelta::seconds(shift),
            ..e.clone()
        })
        .collect();
    import_matches_backtest(&recent.iter().collect::<Vec<_>>());
}
