//! How to count: sled merge operators per event, or deltas aggregated in
//! memory and applied as one batch per request (what the store does).
//!
//!     cargo bench --bench store

mod common;

use chrono::Utc;
use common::*;
use smtp_auth_insight::event::Event;
use smtp_auth_insight::store::codec::{decode_counts, encode_counts};
use smtp_auth_insight::store::keys;
use smtp_auth_insight::store::{SenderInfo, Writer};
use std::time::Instant;

const EVENTS: usize = 300_000;
const BATCH: usize = 1_000;

fn events() -> Vec<Vec<Event>> {
    let ts = Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let mut rng = Rng(99);
    (0..EVENTS / BATCH)
        .map(|i| {
            let body = ndjson_body(&mut rng, BATCH, 10_000, Some((i * BATCH) as u64), &ts);
            smtp_auth_insight::event::parse_body(body.as_bytes(), Utc::now()).expect("valid")
        })
        .collect()
}

fn main() {
    let batches = events();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_store(&dir.path().join("batched"), 64);
    let mut writer = Writer::new(store.clone());
    let t = Instant::now();
    let (mut in_apply, mut in_flush) = (0.0, 0.0);
    for b in &batches {
        let a = Instant::now();
        writer.apply(&[b], &[], Utc::now()).expect("apply");
        in_apply += a.elapsed().as_secs_f64();
        let f = Instant::now();
        store.flush().expect("flush");
        in_flush += f.elapsed().as_secs_f64();
    }
    let batched = EVENTS as f64 / t.elapsed().as_secs_f64();
    eprintln!("apply {in_apply:.2} s, flush {in_flush:.2} s");

    // The same counting work with merge operators: per event, one merge each
    // for the (day, sender) counts, the hourly count and the sender index,
    // and one insert of the id (after a lookup); one flush per batch.
    let db = sled::Config::new()
        .path(dir.path().join("merge"))
        .cache_capacity(64 << 20)
        .open()
        .expect("sled");
    let tree = db.open_tree("data").expect("tree");
    tree.set_merge_operator(|k, old, delta| match k.first() {
        Some(&keys::SENDER) => {
            let mut info = old.and_then(SenderInfo::decode).unwrap_or_default();
            info.merge(&SenderInfo::decode(delta)?);
            Some(info.encode())
        }
        _ => {
            let mut c = old.map(decode_counts).unwrap_or_default();
            c.add(&decode_counts(delta));
            Some(encode_counts(&c))
        }
    });
    let t = Instant::now();
    for b in &batches {
        for ev in b {
            let day = smtp_auth_insight::event::time::day_number(
                smtp_auth_insight::event::time::local_date(ev.ts, chrono_tz::Tz::UTC),
            );
            let id = keys::day_key(keys::ID, day, ev.id.as_deref().unwrap_or(""));
            if tree.contains_key(&id).expect("get") {
                continue;
            }
            tree.insert(id, &[][..]).expect("insert");
            let mut delta = smtp_auth_insight::event::TlsCounts::default();
            delta.bump(ev.tls);
            tree.merge(
                keys::day_key(keys::DAILY, day, &ev.sender),
                encode_counts(&delta),
            )
            .expect("merge");
            tree.merge(
                keys::hourly_key(
                    &ev.sender,
                    smtp_auth_insight::event::time::hour_number(ev.ts),
                ),
                encode_counts(&delta),
            )
            .expect("merge");
            let ts = ev.ts.timestamp();
            let seen = SenderInfo {
                first_seen: ts,
                last_seen: ts,
                ips: ev.client_ip.map(|ip| vec![(ip, ts)]).unwrap_or_default(),
                envelopes: Vec::new(),
            };
            tree.merge(keys::sender_key(&ev.sender), seen.encode())
                .expect("merge");
        }
        db.flush().expect("flush");
    }
    let merged = EVENTS as f64 / t.elapsed().as_secs_f64();
    println!("{EVENTS} events in {BATCH}-event batches, flush per batch:");
    println!("  batched read-modify-write, one sled batch each: {batched:.0} events/s");
    println!(
        "  sled merge operator per event:                 {merged:.0} events/s ({:.2}x)",
        merged / batched
    );
}
