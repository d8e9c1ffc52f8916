//! HTTP ingest throughput of the real daemon: 1,000-event NDJSON batches
//! posted over loopback by concurrent clients; every 202 is a durable ack.
//!
//!     cargo bench --bench ingest
//!     BENCH_EXTRA="detect.enabled = false" cargo bench --bench ingest
//!
//! Also measures JSON parsing alone on one core, to say what bounds ingest.
//! Every one of the 10,000 senders posts about 50 messages a second, so
//! every account is in an open volume incident: the detectors' worst case.

mod common;

use common::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const BATCH: usize = 1_000;
const SENDERS: u64 = 10_000;
const CONNECTIONS: usize = 8;
const SECONDS: u64 = 10;

fn main() {
    let ts = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    parse_only(&ts);
    for with_ids in [true, false] {
        run(with_ids, &ts);
    }
}

fn parse_only(ts: &str) {
    let mut rng = Rng(7);
    let body = ndjson_body(&mut rng, BATCH, SENDERS, Some(0), ts);
    let now = chrono::Utc::now();
    let started = Instant::now();
    let mut n = 0;
    while started.elapsed() < Duration::from_secs(2) {
        n += smtp_auth_insight::event::parse_body(body.as_bytes(), now)
            .expect("valid")
            .len();
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "parse only (one core): {:.0} events/s, {:.0} MB/s",
        n as f64 / secs,
        (n / BATCH * body.len()) as f64 / secs / 1e6
    );
}

fn run(with_ids: bool, ts: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    // BENCH_EXTRA adds config, e.g. "detect.enabled = false".
    let extra = std::env::var("BENCH_EXTRA").unwrap_or_default();
    let daemon = Daemon::start(&dir.path().join("data"), &extra);
    // Enough distinct bodies for the whole run, so ids never repeat.
    let mut rng = Rng(42);
    let bodies: Vec<String> = (0..3_000)
        .map(|i| {
            ndjson_body(
                &mut rng,
                BATCH,
                SENDERS,
                with_ids.then_some(i * BATCH as u64),
                ts,
            )
        })
        .collect();
    let bytes_per_body = bodies[0].len();
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicUsize::new(0));
    let accepted = Arc::new(AtomicU64::new(0));
    let url = format!("http://{}/api/v1/events", daemon.addr);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let cpu_before = daemon.cpu_seconds();
    let started = Instant::now();
    rt.block_on(async {
        let deadline = started + Duration::from_secs(SECONDS);
        let tasks: Vec<_> = (0..CONNECTIONS)
            .map(|_| {
                let (bodies, next, accepted, url) =
                    (bodies.clone(), next.clone(), accepted.clone(), url.clone());
                tokio::spawn(async move {
                    let client = reqwest::Client::new();
                    while Instant::now() < deadline {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        // Without ids a body may be posted again; with ids
                        // every body is posted once (a repeat is a duplicate).
                        let i = if with_ids { i } else { i % bodies.len() };
                        let Some(body) = bodies.get(i) else { break };
                        let resp = client
                            .post(&url)
                            .bearer_auth(TOKEN)
                            .body(body.clone())
                            .send()
                            .await
                            .expect("post");
                        assert_eq!(resp.status(), 202);
                        let v: serde_json::Value = resp.json().await.expect("json");
                        accepted.fetch_add(
                            v["accepted"].as_u64().expect("accepted"),
                            Ordering::Relaxed,
                        );
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("poster");
        }
    });
    let secs = started.elapsed().as_secs_f64();
    let cpu = daemon.cpu_seconds() - cpu_before;
    let n = accepted.load(Ordering::Relaxed);
    let (rss, peak) = daemon.rss_mib();
    println!(
        "HTTP ingest {} ids, {CONNECTIONS} connections, {BATCH}-event batches: {:.0} events/s ({:.1} MB/s), {n} events in {secs:.1} s; daemon CPU {:.2} cores; RSS {rss:.0} MiB (peak {peak:.0})",
        if with_ids { "with" } else { "without" },
        n as f64 / secs,
        (n as f64 / BATCH as f64 * bytes_per_body as f64) / secs / 1e6,
        cpu / secs,
    );
}
