//! The dashboard with 10,000 senders in range (7 days, every sender every
//! day, the data of `cargo bench --bench report`): server-side render time of the main page over HTTP, and the load
//! time in headless chromium (navigation timing, through chromedriver).
//!
//!     cargo bench --bench dashboard

mod common;

#[path = "../tests/common/wait.rs"]
#[allow(dead_code)] // the browser driver uses part of it
mod wait;
#[path = "../tests/common/webdriver.rs"]
mod webdriver;
use wait::{ready, wait_until};

use common::*;
use std::time::Instant;

const SENDERS: u64 = 10_000;
const DAYS: u64 = 7;

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let t = Instant::now();
    // Closed before the daemon opens it.
    let messages = populate(&open_store(&data.join("db"), 64), DAYS, SENDERS);
    println!(
        "populated {SENDERS} senders x {DAYS} days ({messages} messages) in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let daemon = Daemon::start(&data, "");
    let base = format!("http://{}", daemon.addr);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let cookie = session_cookie(&http, &base).await;
    for (name, path) in [
        ("main page, volume view", "/"),
        (
            "main page, TLS view sorted by TLSv1.0",
            "/?view=tls&sort=TLSv1.0&chart=tls",
        ),
        ("main page, one domain", "/?domain=dept7.example.com"),
        ("main page, page 100", "/?page=100"),
    ] {
        let (times, bytes) = timed_gets(15, || {
            http.get(format!("{base}{path}")).header("cookie", &cookie)
        })
        .await;
        println!(
            "server-side render over HTTP, {name}: median {:.0} ms ({} KB)",
            median(times) * 1000.0,
            bytes / 1024
        );
    }
    let b = webdriver::Driver::start().await;
    b.goto(&format!("{base}/login")).await;
    b.type_into(&b.find("#token").await, TOKEN).await;
    b.click(&b.find("#login").await).await;
    b.find("#tile-senders").await;
    let mut loads = Vec::new();
    for _ in 0..7 {
        b.goto(&format!("{base}/")).await;
        b.find("#details").await;
        let ms = b
            .script("const n = performance.getEntriesByType('navigation')[0]; return n.loadEventEnd - n.startTime")
            .await;
        loads.push(ms.as_f64().unwrap_or(f64::NAN));
    }
    println!(
        "browser load (navigation start to load event), main page: median {:.0} ms",
        median(loads)
    );
    b.quit().await;
    println!("daemon RSS {:.0} MiB", daemon.rss_mib().0);
}
