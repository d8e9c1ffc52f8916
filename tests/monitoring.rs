//! The monitoring files of docs/monitoring against the real thing: the
//! Grafana dashboard and the Prometheus rules query only series the daemon
//! exports, and the rules pass promtool's check and unit tests. (The log
//! shippers' examples: tests/shipping.rs.)

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
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
