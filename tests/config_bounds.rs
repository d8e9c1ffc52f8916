//! Every numeric key at its extremes: one past either end is refused by
//! check-config with the key and its range, and the daemon runs with every
//! key at its minimum, then at its maximum (events, reports, the policy
//! service and the notifier all working), never panicking.

mod common;

use common::policy::*;
use common::*;
use smtp_auth_insight::config::bounds::{BOUNDS, Bound};
use std::io::Write;
use std::time::Duration;

/// `x` as TOML for `b`.
fn value(b: &Bound, x: f64) -> String {
    if b.whole {
        format!("{}", x as i64)
    } else {
        format!("{x:?}")
    }
}

#[test]
fn one_past_either_end_of_every_range_is_refused_with_the_range() {
    for b in BOUNDS {
        let mut outside = vec![value(b, b.max + 1.0), "9223372036854775807".to_owned()];
        if b.min > 0.0 {
            outside.push(value(b, if b.whole { b.min - 1.0 } else { b.min / 2.0 }));
        }
        outside.push("-1".to_owned());
        for v in outside {
            let line = format!("{} = {v}", b.key);
            let site = Site::new("");
            std::fs::write(&site.config, &line).unwrap();
            let out = site.cli(&["check-config"]);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{line} accepted");
            assert!(
                err.contains(&format!("key `{}`: {}", b.key, b.says())),
                "{line}: {err}"
            );
            assert!(!err.contains("panicked"), "{err}");
        }
    }
}

/// The numeric keys config.example.toml documents (commented or not), as
/// dotted keys.
fn documented_numbers() -> Vec<String> {
    let mut section = String::new();
    let mut keys = Vec::new();
    for line in include_str!("../config.example.toml").lines() {
        let line = line.trim_start_matches('#').trim();
        if let Some(name) = line.strip_prefix('[') {
            section = name.trim_matches(|c| c == '[' || c == ']').to_owned();
            continue;
        }
        let Some((key, rest)) = line.split_once('=') else {
            continue;
        };
        let (key, rest) = (key.trim(), rest.trim());
        let number = rest
            .split_whitespace()
            .next()
            .is_some_and(|v| v.parse::<f64>().is_ok());
        if number && key.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
            keys.push(match section.as_str() {
                "" => key.to_owned(),
                s => format!("{s}.{key}"),
            });
        }
    }
    keys
}

#[test]
fn every_numeric_key_of_the_example_has_a_range_and_every_range_is_documented() {
    let documented = documented_numbers();
    assert!(documented.len() > 30, "{documented:?}");
    for key in &documented {
        let open_range = key.ends_with("p_value") || key.ends_with("p_value_new_ip");
        assert!(
            open_range || BOUNDS.iter().any(|b| b.key == key),
            "{key} is documented but has no range"
        );
    }
    for b in BOUNDS {
        assert!(
            documented.iter().any(|k| k == b.key),
            "{} is not documented",
            b.key
        );
    }
}

/// A site with every numeric key at `pick(bound)`, the policy service on.
fn site_at(pick: impl Fn(&Bound) -> f64) -> Site {
    let site = Site::new("");
    let mut text = format!(
        "server.listen = \"127.0.0.1:0\"\nserver.token = \"{TOKEN}\"\nstore.data_dir = {:?}\n\
         policy.listen = \"127.0.0.1:0\"\npolicy.host = \"vm\"\n",
        site.data_dir()
    );
    for b in BOUNDS {
        text.push_str(&format!("{} = {}\n", b.key, value(b, pick(b))));
    }
    std::fs::write(&site.config, text).unwrap();
    site
}

/// The daemon runs with `site`: it answers the policy service, takes or
/// (`writes: false`) refuses events, reports, and its notifier passes.
async fn runs(site: &Site, writes: bool) {
    let d = site.start();
    let (mut s, mut r) = connected(site);
    s.write_all(request("END-OF-MESSAGE", "alice@example.com", "Q1").as_bytes())
        .unwrap();
    assert_eq!(answer(&mut r), "action=DUNNO\n");
    let line = event_line(
        &chrono::Utc::now().to_rfc3339(),
        "bob@example.com",
        "TLSv1.3",
        Some("e1"),
    );
    let http = client();
    let api = |path: &str| d.url(path);
    let posted = answered(|| {
        http.post(api("/api/v1/events"))
            .bearer_auth(TOKEN)
            .body(line.clone())
            .send()
    })
    .await;
    let status = posted.status().as_u16();
    let body: serde_json::Value = posted.json().await.unwrap_or_default();
    // Each answer read whole, so that its connection serves the next.
    let answer = answered(|| http.get(api("/healthz")).send()).await;
    let health = answer.status();
    answer.bytes().await.unwrap();
    if writes {
        assert_eq!(status, 202, "{body}");
        assert_eq!(health, 200);
    } else {
        // The disk has less than min_free_mb free: refused, as it says.
        assert_eq!(status, 503, "{body}");
        assert!(
            body["error"].as_str().unwrap_or("").contains("MiB free"),
            "{body}"
        );
        assert_eq!(health, 503);
    }
    let rep = answered(|| http.get(api("/api/v1/report")).bearer_auth(TOKEN).send()).await;
    assert_eq!(rep.status(), 200);
    rep.bytes().await.unwrap();
    // The notifier (max_age_minutes, group_seconds) goes round.
    wait_until("two notifier passes", Duration::from_secs(30), async || {
        let text = answered(|| http.get(api("/metrics")).send())
            .await
            .text()
            .await
            .unwrap();
        ready(
            metric(&text, "smtp_auth_insight_notifier_passes_total").unwrap_or(0) >= 2,
            text,
        )
    })
    .await;
    drop(http);
    let log = d.log_text();
    assert!(d.stop().success(), "{log}");
    assert!(!log.contains("panicked"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_runs_with_every_key_at_its_minimum() {
    runs(&site_at(|b| b.min), true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_runs_with_every_key_at_its_maximum() {
    // store.min_free_mb at its maximum asks for 1 TiB free: writes are
    // refused, cleanly.
    runs(&site_at(|b| b.max), false).await;
}
