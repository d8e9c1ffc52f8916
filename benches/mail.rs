//! Build, render (charts included) and queue a 7-day report for 10,000
//! senders, as the webhook and schedules do; prints time and mail size.
//!
//!     cargo bench --bench mail

mod common;

use chrono::{Days, TimeZone, Utc};
use common::*;
use smtp_auth_insight::event::{Event, Tls};
use smtp_auth_insight::outbox::{MailConfig, Outbox};
use smtp_auth_insight::report::ResolvedRange;
use smtp_auth_insight::report::templates::Templates;
use smtp_auth_insight::reports::{self, mail as mailer, mail::DEFAULT_TOP, mail::Mailer};
use smtp_auth_insight::store::Writer;
use std::sync::Arc;
use std::time::Instant;

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_store(&dir.path().join("db"), 32);
    let mut writer = Writer::new(store.clone());
    let now = Utc::now();
    let start = now.date_naive() - Days::new(6);
    let mut rng = Rng(7);
    let classes = [Tls::None, Tls::V1_0, Tls::V1_1, Tls::V1_2, Tls::V1_3];
    for d in 0..7 {
        let ts = Utc
            .from_utc_datetime(&(start + Days::new(d)).and_hms_opt(9, 0, 0).expect("time"))
            .min(now);
        let events: Vec<Event> = (0..10_000u64)
            .map(|s| {
                let tls = classes[(rng.below(100) as usize).min(99) / 20];
                Event::accepted(ts, format!("user{s}@dept{}.example.com", s % 50), tls)
            })
            .collect();
        for chunk in events.chunks(2_000) {
            writer.apply(&[chunk], &[], now).expect("apply");
        }
    }
    store.flush().expect("flush");
    let templates = Arc::new(Templates::load(None).expect("templates"));
    let outbox = Outbox::open(store.db()).expect("outbox");
    let mail = MailConfig {
        from: "bench <bench@example.com>".into(),
        ..MailConfig::default()
    };
    let mailer = Mailer::new(
        store.clone(),
        templates.clone(),
        outbox.clone(),
        Arc::new(mail.clone()),
        DEFAULT_TOP,
    );
    let to = vec!["admin@example.com".parse().expect("address")];
    let range = ResolvedRange {
        start,
        end: now.date_naive(),
        domain: None,
    };
    let mut times = Vec::new();
    for i in 0..5 {
        let t = Instant::now();
        mailer
            .queue(&format!("bench-{i}"), &range, &to, None, None)
            .expect("queue");
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let report = reports::build_range(&store, &range).expect("report");
    assert_eq!(report.summary.senders, 10_000);
    let message = mailer::compose(&templates, &mail, DEFAULT_TOP, &report, &to, None);
    let size = message.expect("message").formatted().len();
    println!(
        "7 days x 10,000 senders: build + render (2 charts) + queue {:.0} ms (median of 5); mail {:.0} KB",
        median(times),
        size as f64 / 1024.0
    );
}
