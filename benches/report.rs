//! Report latency, disk bytes per (sender, day) and daemon memory for
//! populated stores: 7 days × 10,000 senders, 90 days × 10,000 senders and
//! 7 days × 100,000 senders.
//!
//!     cargo bench --bench report
//!
//! The daemon runs with the default cache (`store.cache_mb`); set
//! BENCH_CACHE_MB to compare other sizes.

mod common;

use chrono::{Days, Utc};
use common::*;
use smtp_auth_insight::report::ReportRequest;
use smtp_auth_insight::reports;
use std::time::Instant;

fn main() {
    for (days, senders) in [(7u64, 10_000u64), (90, 10_000), (7, 100_000)] {
        scenario(days, senders);
    }
}

fn scenario(days: u64, senders: u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let now = Utc::now();
    let today = now.date_naive();
    let start = today - Days::new(days - 1);
    let store = open_store(&data.join("db"), 64);
    let populate = Instant::now();
    let total = common::populate(&store, days, senders);
    let populate_secs = populate.elapsed().as_secs_f64();

    let request = ReportRequest {
        start: Some(start.to_string()),
        end: Some(today.to_string()),
        domain: None,
    };
    let mut times = Vec::new();
    let mut senders_seen = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let r = reports::build(&store, &request, 7, Utc::now()).expect("report");
        times.push(t.elapsed().as_secs_f64() * 1e3);
        senders_seen = r.summary.senders;
        assert_eq!(r.summary.messages, total);
    }
    let domain = ReportRequest {
        domain: Some("dept7.example.com".into()),
        ..request.clone()
    };
    let t = Instant::now();
    reports::build(&store, &domain, 7, Utc::now()).expect("report");
    let domain_ms = t.elapsed().as_secs_f64() * 1e3;
    drop(store);
    let bytes = disk_bytes(&data.join("db"));

    // The daemon on that store: report over HTTP and its memory.
    let cache = std::env::var("BENCH_CACHE_MB")
        .map(|mb| format!("store.cache_mb = {mb}"))
        .unwrap_or_default();
    let daemon = Daemon::start(&data, &cache);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (idle_rss, _) = daemon.rss_mib();
    let url = format!(
        "http://{}/api/v1/report?start={start}&end={today}",
        daemon.addr
    );
    let client = reqwest::blocking_client();
    let mut http = Vec::new();
    let mut json_bytes = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let body = client(&url);
        http.push(t.elapsed().as_secs_f64() * 1e3);
        json_bytes = body.len();
    }
    let (rss, _) = daemon.rss_mib();
    // The daemon gives freed memory back with its 30-second tick.
    std::thread::sleep(std::time::Duration::from_secs(32));
    let (settled, peak) = daemon.rss_mib();
    println!(
        "{days:>2} days × {senders:>6} senders ({total} events, populated in {populate_secs:.1} s): \
         build {:.0} ms (median of 5; one domain {domain_ms:.0} ms), HTTP {:.0} ms for {:.1} MB of JSON; \
         disk {:.1} MB = {:.0} bytes per (sender, day); daemon RSS {idle_rss:.0} MiB at start, {rss:.0} MiB after the reports, {settled:.0} MiB 32 s later (peak {peak:.0})",
        median(times),
        median(http),
        json_bytes as f64 / 1e6,
        bytes as f64 / 1e6,
        bytes as f64 / (days * senders) as f64,
    );
    assert_eq!(senders_seen, senders);
}

/// A tiny blocking GET on a private runtime (the bench is synchronous).
mod reqwest {
    pub fn blocking_client() -> impl Fn(&str) -> Vec<u8> {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let client = ::reqwest::Client::new();
        move |url: &str| {
            rt.block_on(async {
                let resp = client
                    .get(url)
                    .bearer_auth(super::TOKEN)
                    .send()
                    .await
                    .expect("get");
                assert_eq!(resp.status(), 200);
                resp.bytes().await.expect("body").to_vec()
            })
        }
    }
}
