//! Durability of the real daemon under `kill -9` at random moments.

mod common;

use chrono::Utc;
use common::*;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the poster knows about one batch.
#[derive(Clone)]
struct Sent {
    body: String,
    events: u64,
    acked: bool,
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_after_kill_counts_every_acknowledged_event_once() {
    let site = Site::new("");
    let mut rng = Rng(0xC0FFEE ^ u64::from(std::process::id()));
    let mut next_id = 0u64;
    let mut expected_total = 0u64;
    for round in 0..5 {
        let d = site.start();
        assert_eq!(
            total(&d).await,
            expected_total,
            "round {round}: before posting"
        );
        let sent: Arc<Mutex<Vec<Sent>>> = Arc::default();
        let mut posters = Vec::new();
        for _ in 0..4 {
            let url = d.url("/api/v1/events");
            let sent = sent.clone();
            let mut batches = Vec::new();
            for _ in 0..200 {
                let now = Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
                let n = 50 + rng.below(150);
                let body: Vec<String> = (0..n)
                    .map(|i| {
                        next_id += 1;
                        // Enough senders that a fold writes several parts.
                        let sender = format!("user{}@crash.example", (next_id + i) % 2_999);
                        event_line(&now, &sender, "TLSv1.2", Some(&format!("c{next_id}")))
                    })
                    .collect();
                batches.push((body.join("\n"), n));
            }
            posters.push(tokio::spawn(async move {
                let c = client();
                for (body, events) in batches {
                    let i = {
                        let mut s = sent.lock().unwrap();
                        s.push(Sent {
                            body: body.clone(),
                            events,
                            acked: false,
                        });
                        s.len() - 1
                    };
                    let resp = c.post(&url).bearer_auth(TOKEN).body(body).send().await;
                    match resp {
                        Ok(r) if r.status() == 202 => sent.lock().unwrap()[i].acked = true,
                        _ => return,
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(30 + rng.below(400))).await;
        d.kill9();
        for p in posters {
            p.await.unwrap();
        }
        let sent = sent.lock().unwrap().clone();
        let acked: u64 = sent.iter().filter(|s| s.acked).map(|s| s.events).sum();
        assert!(
            acked > 0,
            "round {round}: nothing was acknowledged before the kill"
        );

        // Restart: every acknowledged event is there; unacknowledged batches
        // may or may not have been stored, and re-sending them (as a real
        // client would) counts each event exactly once.
        let d = site.start();
        let stored = total(&d).await - expected_total;
        let mut resent_dups = 0;
        let mut resent_events = 0;
        for s in sent.iter().filter(|s| !s.acked) {
            let (status, body) = post_events(&d, s.body.clone()).await;
            assert_eq!(status, 202, "{body}");
            resent_dups += body["duplicates"].as_u64().unwrap();
            resent_events += s.events;
        }
        assert_eq!(
            stored,
            acked + resent_dups,
            "round {round}: stored {stored}, acked {acked}, of the unacked {resent_dups} were stored"
        );
        expected_total += acked + resent_events;
        assert_eq!(
            total(&d).await,
            expected_total,
            "round {round}: after re-sending"
        );
        d.kill9();
    }
    // A clean stop keeps everything too and exits 0.
    let d = site.start();
    assert_eq!(total(&d).await, expected_total);
    assert!(d.stop().success());
    let d = site.start();
    assert_eq!(total(&d).await, expected_total);
}
