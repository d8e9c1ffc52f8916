//! The dashboard with 10,000 senders in range (7 days, every sender every
//! day): server-side render time of the main page over HTTP, and the load
//! time in headless chromium (navigation timing, through chromedriver).
//!
//!     cargo bench --bench dashboard

mod common;

#[path = "../tests/common/webdriver.rs"]
mod webdriver;

use chrono::{Days, TimeZone, Utc};
use common::*;
use smtp_auth_insight::event::{Event, Outcome, Tls};
use smtp_auth_insight::store::{Retention, Store, StoreOptions, Writer};
use std::time::Instant;

const SENDERS: u64 = 10_000;
const DAYS: u64 = 7;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn populate(data: &std::path::Path) {
    let store = Store::open(&StoreOptions {
        path: data.join("db"),
        tz: chrono_tz::Tz::UTC,
        retention: Retention {
            days: 90,
            hourly_days: 35,
        },
        cache_bytes: 64 << 20,
    })
    .expect("store");
    let mut writer = Writer::new(store.clone());
    let mut rng = Rng(42);
    let now = Utc::now();
    let mut events = Vec::with_capacity(20_000);
    for d in 0..DAYS {
        let date = now.date_naive() - Days::new(d);
        let noon = Utc
            .from_utc_datetime(&date.and_hms_opt(12, 0, 0).expect("time"))
            .min(now);
        for s in 0..SENDERS {
            let tls = [Tls::None, Tls::V1_0, Tls::V1_1, Tls::V1_2, Tls::V1_3][match tls(&mut rng) {
                "none" => 0,
                "TLSv1" => 1,
                "TLSv1.1" => 2,
                "TLSv1.2" => 3,
                _ => 4,
            }];
            events.push(Event {
                ts: noon,
                sender: format!("user{s}@dept{}.example.com", s % 50),
                tls,
                result: Outcome::Accepted,
                client_ip: None,
                host: None,
                id: None,
                envelope_from: None,
            });
            if events.len() == 20_000 {
                writer.apply(&[events.as_slice()], &[], now).expect("apply");
                events.clear();
            }
        }
    }
    writer.apply(&[events.as_slice()], &[], now).expect("apply");
    store.flush().expect("flush");
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let t = Instant::now();
    populate(&data);
    println!(
        "populated {SENDERS} senders x {DAYS} days in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let daemon = Daemon::start(&data, "");
    let base = format!("http://{}", daemon.addr);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let login = http
        .post(format!("{base}/login"))
        .form(&[("token", TOKEN)])
        .send()
        .await
        .expect("login");
    let cookie = login
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("session cookie")
        .to_owned();
    for (name, path) in [
        ("main page, volume view", "/"),
        (
            "main page, TLS view sorted by TLSv1.0",
            "/?view=tls&sort=TLSv1.0&chart=tls",
        ),
        ("main page, one domain", "/?domain=dept7.example.com"),
        ("main page, page 100", "/?page=100"),
    ] {
        let mut times = Vec::new();
        let mut bytes = 0;
        for _ in 0..15 {
            let t = Instant::now();
            let r = http
                .get(format!("{base}{path}"))
                .header("cookie", &cookie)
                .send()
                .await
                .expect("page");
            assert!(r.status().is_success(), "{path}: {}", r.status());
            bytes = r.bytes().await.expect("body").len();
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        println!(
            "server-side render over HTTP, {name}: median {:.0} ms ({} KB)",
            median(times),
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
