//! A site of 100,000 accounts over 90 days, generated deterministically
//! (no file in the repository): about 15 million events, each with an id,
//! as NDJSON, imported with `import --format ndjson`; then the daemon on
//! that store answers the 90-day report over HTTP and the dashboard's
//! 90-day page.
//!
//!     cargo bench --bench scale      (BENCH_SENDERS, BENCH_DAYS to shrink it)
//!
//! Prints: import time and events/s, bytes written to the disk during the
//! import (the device's counter, so anything else writing then counts
//! too), the store's size on disk (bytes per event and per sender-day),
//! the import's peak RSS, the report and the page times, and the daemon's
//! RSS after them. Needs about 10 GB of free disk. BENCH_KEEP=DIR keeps
//! the events and the store in a new directory under DIR.
//! BENCH_ORDER=account writes each account's messages of a day together
//! instead of in time order (see [`generate`]). BENCH_EXTRA
//! adds settings to the import's configuration
//! (`BENCH_EXTRA='detect.enabled = false'`: what the detectors cost).

mod common;

use chrono::{Days, Utc};
use common::*;
use std::io::{BufWriter, Write};
use std::process::Command;
use std::time::Instant;

/// xorshift64*: the same stream for the same seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Writes the NDJSON of `senders` accounts over `days` days ending
/// yesterday; returns the events written. An account sends on about 90 %
/// of days, 1 to 5 messages (about 1.66 a sender-day), from one of its
/// two devices, each with its TLS version.
///
/// Each day's events are written in time order, as a site's events come
/// (the webhook's, a log's): every account's messages interleaved with
/// everyone else's. `by_account` writes each account's messages of a day
/// together instead, at their random times (the order of the figures
/// measured before this one), which an import takes faster: an account's
/// next message finds its entries still in the processor's cache, and
/// the detectors' clock, the latest time seen, crosses fewer hours.
fn generate(path: &std::path::Path, senders: u64, days: u64, by_account: bool) -> u64 {
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path).expect("file"));
    let today = Utc::now().date_naive();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let tls = [
        "TLSv1.3", "TLSv1.2", "TLSv1.2", "TLSv1.3", "TLSv1.0", "none",
    ];
    let mut events = 0u64;
    let mut id = 0u64;
    // One day's events: (second, line).
    let mut day: Vec<(u64, String)> = Vec::new();
    for d in (1..=days).rev() {
        let date = today - Days::new(d);
        for s in 0..senders {
            if rng.below(100) >= 90 {
                continue;
            }
            let n = match rng.below(10) {
                0..=4 => 1,
                5..=7 => 2,
                8 => 3,
                _ => 4 + rng.below(2),
            };
            for _ in 0..n {
                let device = rng.below(2);
                let second = rng.below(86_400);
                id += 1;
                let line = format!(
                    "{{\"ts\":\"{date}T{:02}:{:02}:{:02}Z\",\"sender\":\"user{s}@dept{}.example.com\",\
                     \"tls\":\"{}\",\"client_ip\":\"10.{}.{}.{}\",\"id\":\"mx1:{id:010X}\"}}",
                    second / 3600,
                    second / 60 % 60,
                    second % 60,
                    s % 50,
                    tls[((s * 2 + device) % tls.len() as u64) as usize],
                    (s >> 14) & 255,
                    (s >> 6) & 255,
                    1 + (s & 63) * 4 + device,
                );
                day.push((second, line));
                events += 1;
            }
        }
        if !by_account {
            // Stable: events of the same second stay in account order.
            day.sort_by_key(|(second, _)| *second);
        }
        for (_, line) in day.drain(..) {
            writeln!(out, "{line}").expect("write");
        }
    }
    out.flush().expect("flush");
    events
}

/// Sectors written to all disks so far (`/proc/diskstats`), in bytes.
fn written_bytes() -> u64 {
    std::fs::read_to_string("/proc/diskstats")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // Whole disks only (vda, sda, nvme0n1), not their partitions.
            let name = *f.get(2)?;
            let whole = (name.starts_with("vd") || name.starts_with("sd"))
                && !name.ends_with(|c: char| c.is_ascii_digit())
                || name.starts_with("nvme") && !name.contains('p');
            whole.then(|| f.get(9)?.parse::<u64>().ok()).flatten()
        })
        .sum::<u64>()
        * 512
}

/// Peak RSS of the children waited for so far, in MiB.
fn children_peak_mib() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr());
        usage.assume_init()
    };
    usage.ru_maxrss as f64 / 1024.0
}

#[tokio::main]
async fn main() {
    let senders = env("BENCH_SENDERS", 100_000);
    let days = env("BENCH_DAYS", 90);
    // BENCH_KEEP=DIR keeps the store there for a look afterwards.
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = match std::env::var_os("BENCH_KEEP") {
        Some(keep) => {
            std::fs::create_dir_all(&keep).expect("BENCH_KEEP");
            tempfile::tempdir_in(keep).expect("tempdir").keep()
        }
        None => dir.path().to_path_buf(),
    };
    let events_file = dir.join("events.ndjson");
    let t = Instant::now();
    let by_account = std::env::var("BENCH_ORDER").is_ok_and(|o| o == "account");
    let events = generate(&events_file, senders, days, by_account);
    println!(
        "generated {senders} senders x {days} days{}: {events} events with ids, {:.1} GB of NDJSON, in {:.1} s",
        if by_account {
            ", each account's messages of a day together"
        } else {
            ", in time order"
        },
        std::fs::metadata(&events_file)
            .map(|m| m.len())
            .unwrap_or(0) as f64
            / 1e9,
        t.elapsed().as_secs_f64()
    );
    let data = dir.join("data");
    let config = dir.join("import.toml");
    std::fs::write(
        &config,
        // Today is a day of the retention too: the oldest day generated
        // is `days` days back.
        format!(
            "store.data_dir = {data:?}\nstore.retention_days = {}\n{}\n",
            days + 1,
            std::env::var("BENCH_EXTRA").unwrap_or_default()
        ),
    )
    .expect("config");
    let _ = Command::new("sync").status();
    let before = written_bytes();
    let t = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_smtp-auth-insight"))
        .arg("--config")
        .arg(&config)
        .args(["import", "--format", "ndjson"])
        .arg(&events_file)
        .output()
        .expect("import");
    let secs = t.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = Command::new("sync").status();
    let written = written_bytes().saturating_sub(before);
    let store = disk_bytes(&data);
    println!(
        "import: {secs:.1} s, {:.0} events/s, peak RSS {:.0} MiB; {}",
        events as f64 / secs,
        children_peak_mib(),
        String::from_utf8_lossy(&out.stdout).trim()
    );
    println!(
        "disk: {:.2} GB written during the import ({:.1}x the store); store {:.2} GB = {:.0} bytes per event, {:.0} per sender-day",
        written as f64 / 1e9,
        written as f64 / store.max(1) as f64,
        store as f64 / 1e9,
        store as f64 / events as f64,
        store as f64 / (senders * days) as f64
    );
    if std::env::var_os("BENCH_KEEP").is_none() {
        let _ = std::fs::remove_file(&events_file);
    }

    let daemon = Daemon::start(&data, &format!("store.retention_days = {}", days + 1));
    let base = format!("http://{}", daemon.addr);
    // The totals the first reports read, built in the background after a
    // start (the past periods, the parts the ranges begin and end in).
    let read_ahead = daemon.wait_log("read ahead");
    println!(
        "read ahead at start: {}",
        read_ahead.split("reports ").nth(1).unwrap_or(&read_ahead)
    );
    let today = Utc::now().date_naive();
    let start = today - Days::new(days);
    let http = ::reqwest::Client::builder()
        .redirect(::reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let report = || {
        http.get(format!("{base}/api/v1/report?start={start}&end={today}"))
            .bearer_auth(TOKEN)
    };
    let (times, json_bytes) = timed_gets(4, report).await;
    println!(
        "{days}-day report over HTTP: first {:.2} s, then {:.2} s (median of 3; {:.0} MB of JSON)",
        times[0],
        median(times[1..].to_vec()),
        json_bytes as f64 / 1e6
    );
    let cookie = session_cookie(&http, &base).await;
    let page = || {
        http.get(format!("{base}/?start={start}&end={today}"))
            .header("cookie", &cookie)
    };
    let (times, _) = timed_gets(3, page).await;
    let page_time = median(times);
    // A site with traffic: a message into today before each report and
    // page. The post returns once the message is journaled; the report
    // counts it first (a reader folds what is pending), which changes
    // today's period, so its four weeks are read again each time.
    let mut live = [Vec::new(), Vec::new()];
    for round in 0..3 {
        let event = format!(
            "{{\"ts\":\"{}\",\"sender\":\"live{round}@scale.example\",\"tls\":\"TLSv1.3\",\"result\":\"accepted\"}}\n",
            Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        let posted = http
            .post(format!("{base}/api/v1/events"))
            .bearer_auth(TOKEN)
            .header("content-type", "application/x-ndjson")
            .body(event)
            .send()
            .await
            .expect("post");
        assert!(posted.status().is_success(), "{}", posted.status());
        live[0].extend(timed_gets(1, report).await.0);
        live[1].extend(timed_gets(1, page).await.0);
    }
    let (rss, peak) = daemon.rss_mib();
    println!(
        "dashboard's {days}-day page: {page_time:.2} s (median of 3); daemon RSS {rss:.0} MiB (peak {peak:.0})"
    );
    let [report_time, page_time] = live.map(median);
    println!(
        "after a message into today, each time (median of 3): report {report_time:.2} s, page {page_time:.2} s"
    );
}
