//! The monitoring files of docs/monitoring against the real thing: the
//! Grafana dashboard and the Prometheus rules query only series the daemon
//! exports, the rules pass promtool's check and unit tests, and the
//! examples that ship events from Vector and Fluent Bit parse the real Exim
//! log into the events smtp-auth-insight's own parser finds in it.

mod common;

use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn monitoring() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/monitoring")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(monitoring().join(name)).expect(name)
}

/// The `smtp_auth_insight_*` series names in a text.
fn series_named(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (i, _) in text.match_indices("smtp_auth_insight_") {
        let name: String = text[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        names.insert(name);
    }
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn dashboard_and_rules_query_only_series_the_daemon_exports() {
    let site = Site::new("");
    let d = site.start();
    let exported: BTreeSet<String> = metrics_text(&d)
        .await
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect();
    assert!(exported.contains("smtp_auth_insight_submissions_total"));

    let dashboard: Value = serde_json::from_str(&read("grafana-dashboard.json")).unwrap();
    let mut exprs = String::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        assert_eq!(
            panel["datasource"]["uid"], "${DS_PROMETHEUS}",
            "{}",
            panel["title"]
        );
        for target in panel["targets"].as_array().unwrap() {
            exprs.push_str(target["expr"].as_str().unwrap());
            exprs.push('\n');
        }
    }
    let rules = read("prometheus-rules.yml");
    for (file, text) in [
        ("grafana-dashboard.json", &exprs),
        ("prometheus-rules.yml", &rules),
    ] {
        let queried = series_named(text);
        assert!(queried.len() >= 5, "{file}: {queried:?}");
        let missing: Vec<_> = queried.difference(&exported).collect();
        assert!(
            missing.is_empty(),
            "{file} queries {missing:?}, not in /metrics"
        );
    }
}

#[test]
fn prometheus_rules_pass_promtool_check_and_unit_tests() {
    for args in [
        ["check", "rules", "prometheus-rules.yml"],
        ["test", "rules", "prometheus-rules.test.yml"],
    ] {
        succeed(
            Command::new("promtool")
                .args(args)
                .current_dir(monitoring()),
            "promtool (apt-get install prometheus; tests/support/install-deps.sh does)",
        );
    }
}

/// What `/metrics` serves is read by Prometheus's own OpenMetrics parser
/// (promtool's backfill reads every sample into a block), after a refused
/// request gave a family a value.
#[tokio::test(flavor = "multi_thread")]
async fn prometheus_parses_the_metrics_text_as_openmetrics() {
    let site = Site::new("");
    let d = site.start();
    let (status, _) = post_events(&d, "{\"not\": \"an event\"}\n").await;
    assert_eq!(status, 400);
    let response = reqwest::get(format!("http://{}/metrics", d.addr))
        .await
        .unwrap();
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text; version=1.0.0")
    );
    let text = response.text().await.unwrap();
    assert_eq!(
        metric(
            &text,
            "smtp_auth_insight_ingest_rejected_total{reason=\"bad_request\"}"
        ),
        Some(1)
    );
    let dir = tempfile::tempdir().unwrap();
    // Backfill wants each sample's time, which a scrape would add.
    let now = chrono::Utc::now().timestamp();
    let stamped: String = text
        .lines()
        .map(|l| match l.starts_with('#') {
            true => format!("{l}\n"),
            false => format!("{l} {now}\n"),
        })
        .collect();
    std::fs::write(dir.path().join("metrics.txt"), stamped).unwrap();
    let out = succeed(
        Command::new("promtool")
            .args([
                "tsdb",
                "create-blocks-from",
                "openmetrics",
                "metrics.txt",
                "blocks",
            ])
            .current_dir(dir.path()),
        "promtool (apt-get install prometheus; tests/support/install-deps.sh does)",
    );
    // Its summary: a block, with every sample of the text as a series.
    let summary = String::from_utf8_lossy(&out.stdout).into_owned();
    let block: Vec<&str> = summary
        .lines()
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let samples = text.lines().filter(|l| !l.starts_with('#')).count();
    assert!(samples > 100, "{text}");
    assert_eq!(
        block.get(6),
        Some(&samples.to_string().as_str()),
        "{summary}"
    );
}

/// Runs the shipping examples' regular expressions (Vector's and Fluent
/// Bit's, the latter's named groups in Python's spelling) over the real
/// Exim log, in Python: `{"vector"|"fluent-bit": [{sender, tls, ...}]}`.
fn example_matches() -> Value {
    let vector = read("vector.toml");
    let regexes: Vec<&str> = vector
        .split("r'")
        .skip(1)
        .filter_map(|r| r.split("')").next())
        .collect();
    assert_eq!(regexes.len(), 3, "{regexes:?}");
    let parsers = read("fluent-bit-parsers.conf");
    let fluent = parsers
        .lines()
        .find_map(|l| l.trim().strip_prefix("Regex"))
        .expect("the parser's Regex")
        .trim()
        .replace("(?<", "(?P<");
    let log = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/mta/exim-mainlog.log"
    );
    let script = r#"
import json, re, sys
line_re, auth_re, tls_re, fluent_re, log = sys.argv[1:]
out = {"vector": [], "fluent-bit": []}
for line in open(log, encoding="utf-8"):
    line = line.rstrip("\n")
    m, a = re.search(line_re, line), re.search(auth_re, line)
    if m and a:
        t = re.search(tls_re, line)
        out["vector"].append({"sender": a["user"], "tls": t["version"] if t else "none",
                              "msgid": m["msgid"], "client_ip": m["ip"], "from": m["from"]})
    f = re.search(fluent_re, line)
    if f:
        out["fluent-bit"].append({"sender": f["sender"], "tls": f["tls"] or "none",
                                  "msgid": f["msgid"], "client_ip": f["client_ip"],
                                  "from": f["envelope_from"]})
print(json.dumps(out))
"#;
    let out = succeed(
        Command::new("python3")
            .arg("-c")
            .arg(script)
            .args(&regexes)
            .arg(&fluent)
            .arg(log),
        "python3",
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn shipping_examples_find_every_submission_of_the_real_exim_log() {
    let expected: Value = serde_json::from_str(include_str!("fixtures/mta/expected.json")).unwrap();
    let matches = example_matches();
    for example in ["vector", "fluent-bit"] {
        let mut counts: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        for m in matches[example].as_array().unwrap() {
            // The TLS spellings Exim writes are ones the API accepts.
            let tls = m["tls"].as_str().unwrap().replace("TLS1.", "TLSv1.");
            let tls = if tls == "TLSv1" {
                "TLSv1.0".to_owned()
            } else {
                tls
            };
            *counts
                .entry(m["sender"].as_str().unwrap().to_owned())
                .or_default()
                .entry(tls)
                .or_default() += 1;
            assert_eq!(m["client_ip"], "127.0.0.1", "{m}");
        }
        let counts = serde_json::to_value(&counts).unwrap();
        assert_eq!(counts, expected["messages"], "{example}");
    }
    // The same message ids: events shipped by either and imported by
    // smtp-auth-insight get the same id, HOST:MESSAGE-ID.
    let ids = |example: &str| -> Vec<String> {
        matches[example]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["msgid"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids("vector"), ids("fluent-bit"));
}

#[test]
fn the_fluent_bit_script_builds_events_the_api_accepts() {
    let record = "{stamp = '2026-11-27 02:50:58', msgid = '1xWm38-0006oH-1l', \
                  sender = 'alice@example.com', tls = 'TLS1.3', client_ip = '127.0.0.1', \
                  envelope_from = 'newsletter@example.com'}";
    let program = format!(
        "dofile('smtp-auth.lua')\n\
         local _, _, ev = to_event('exim', 0, {record})\n\
         print(string.format('{{\"ts\":%q,\"sender\":%q,\"tls\":%q,\"client_ip\":%q,\"id\":%q,\"envelope_from\":%q}}', \
           ev.ts, ev.sender, ev.tls, ev.client_ip, ev.id, ev.envelope_from))"
    );
    let out = succeed(
        Command::new("lua5.4")
            .arg("-e")
            .arg(program)
            .current_dir(monitoring())
            .env("TZ", "Europe/Berlin"),
        "lua5.4 (tests/support/install-deps.sh installs it)",
    );
    let event: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(event["ts"], "2026-11-27T02:50:58+01:00");
    assert!(event["id"].as_str().unwrap().ends_with(":1xWm38-0006oH-1l"));
    // The daemon takes it as it is.
    let body = event.to_string();
    let parsed = smtp_auth_insight::event::parse_body(body.as_bytes(), chrono::Utc::now())
        .expect("an event the API accepts");
    assert_eq!(parsed[0].sender, "alice@example.com");
    assert_eq!(parsed[0].tls, smtp_auth_insight::event::Tls::V1_3);
    assert_eq!(parsed[0].ts.to_rfc3339(), "2026-11-27T01:50:58+00:00");
}
