//! What the daemon's defences cost and hold:
//!
//! - opening (and reading whole, as the start-up check does) a store of
//!   90 days × 10,000 senders;
//! - 400 wrong dashboard logins at once from 400 client addresses:
//!   answers, time, the daemon's peak memory;
//! - a report order with 50,000 recipients (refused by count) and one
//!   with 100;
//! - `import` of a password spray: a Postfix log of failed logins, each
//!   under a username never seen before (BENCH_SPRAY_LINES, default
//!   2,000,000): time and peak RSS, which the import holds bounded.
//!
//!     cargo bench --bench hardening

mod common;

use common::*;
use std::io::{BufWriter, Write};
use std::time::Instant;

fn main() {
    store_check();
    let dir = tempfile::tempdir().expect("tempdir");
    let hash = password_hash("right");
    let d = Daemon::start(
        &dir.path().join("data"),
        &format!(
            "mail.allowed_recipients = [\"@example.com\"]\n[[server.users]]\nname = \"ann\"\npassword_hash = \"{hash}\"\n"
        ),
    );
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(logins(&d));
    runtime.block_on(orders(&d));
    drop(d);
    spray();
}

/// A password spray imported: failed logins from 250 addresses, 30 a
/// second, each under a new username (the line is the import benchmark's,
/// written after a real Postfix log).
fn spray() {
    let lines: u64 = env("BENCH_SPRAY_LINES", 2_000_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("mail.log");
    let mut w = BufWriter::new(std::fs::File::create(&log).expect("log"));
    let mut rng = Rng(0x5eed_5bad);
    for i in 0..lines {
        let s = i / 30;
        let (day, h, m, sec) = (1 + s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
        writeln!(
            w,
            "Dec {day:2} {h:02}:{m:02}:{sec:02} mx1 postfix/submission/smtpd[{}]: warning: unknown[203.0.113.{}]: SASL LOGIN authentication failed: UGFzc3dvcmQ6, sasl_username=s{:x}@victim.example",
            20_000 + i % 50,
            i % 250,
            rng.next()
        )
        .expect("write");
    }
    w.flush().expect("flush");
    drop(w);
    let (secs, peak, out) = import_postfix(dir.path(), &log, "", false);
    assert!(out.contains(&format!("{lines} failed logins")), "{out}");
    println!(
        "import of a password spray, {lines} failed logins under as many usernames: {secs:.1} s ({:.0} lines/s), peak RSS {peak:.0} MiB",
        lines as f64 / secs
    );
}

fn store_check() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("db");
    let store = open_store(&db, 8);
    let messages = populate(&store, 90, 10_000);
    drop(store);
    let started = Instant::now();
    let store = open_store(&db, 8);
    let took = started.elapsed();
    println!(
        "open with the start-up check, 90 days x 10,000 senders ({messages} messages, {} MB on disk): {:.0} ms",
        disk_bytes(&db) / 1_000_000,
        took.as_secs_f64() * 1000.0
    );
    drop(store);
}

fn password_hash(password: &str) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_smtp-auth-insight"))
        .arg("hash-password")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("hash-password");
    let mut stdin = child.stdin.take().expect("stdin");
    writeln!(stdin, "{password}").expect("password");
    drop(stdin);
    let out = child.wait_with_output().expect("hash");
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

async fn logins(d: &Daemon) {
    let (_, before) = d.rss_mib();
    let started = Instant::now();
    let tries: Vec<_> = (0..400u32)
        .map(|i| {
            let from = std::net::IpAddr::from([127, 0, 1 + (i / 200) as u8, 1 + (i % 200) as u8]);
            let url = format!("http://{}/login", d.addr);
            tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .local_address(from)
                    .build()
                    .expect("client");
                client
                    .post(url)
                    .form(&[("user", "ann"), ("token", "guess")])
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0)
            })
        })
        .collect();
    let mut statuses = std::collections::BTreeMap::<u16, u32>::new();
    for t in tries {
        *statuses.entry(t.await.unwrap_or(0)).or_default() += 1;
    }
    let (_, peak) = d.rss_mib();
    println!(
        "400 wrong logins at once: {statuses:?} in {:.2} s; daemon peak RSS {before:.0} MiB before, {peak:.0} MiB after",
        started.elapsed().as_secs_f64()
    );
}

async fn orders(d: &Daemon) {
    let client = reqwest::Client::new();
    for n in [50_000usize, 100] {
        let recipients: Vec<String> = (0..n).map(|i| format!("u{i}@example.com")).collect();
        let started = Instant::now();
        let status = client
            .post(format!("http://{}/api/v1/reports", d.addr))
            .bearer_auth(TOKEN)
            .json(&serde_json::json!({ "recipients": recipients }))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0);
        println!(
            "report order with {n} recipients: {status} in {:.1} ms",
            started.elapsed().as_secs_f64() * 1000.0
        );
    }
}
