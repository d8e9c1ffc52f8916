//! Webhooks: every group of alerts the mail would carry, posted as a JSON
//! array to each configured URL, in order and at least once.
//!
//! Each URL has its own progress mark in the outbox tree: a URL that is
//! down holds back only its own deliveries, which are retried (5 s, then
//! doubling to 10 min) until it answers 2xx, also across restarts. The
//! receiver may see a group again after a crash between its answer and the
//! mark: alerts carry `at`, `sender` and `kind` to recognise it.

use super::alerts::{BATCH, Notifier};
use crate::store::Recorded;
use chrono::Utc;
use std::time::{Duration, Instant};

const FIRST_RETRY: Duration = Duration::from_secs(5);
const LAST_RETRY: Duration = Duration::from_secs(600);

/// When a failing URL is tried again.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    next: Instant,
    delay: Duration,
}

impl Notifier {
    /// Posts the next due group to every webhook not backing off.
    pub(super) async fn webhooks(&mut self) {
        let urls = self.config.detect.webhooks.clone();
        for url in urls {
            if self
                .webhook_backoff
                .get(&url)
                .is_some_and(|b| Instant::now() < b.next)
            {
                continue;
            }
            match self.webhook(&url).await {
                Ok(()) => {
                    self.webhook_backoff.remove(&url);
                }
                Err(e) => {
                    let delay = self
                        .webhook_backoff
                        .get(&url)
                        .map_or(FIRST_RETRY, |b| (b.delay * 2).min(LAST_RETRY));
                    tracing::warn!(url, error = %e, retry_in_s = delay.as_secs(), "webhook delivery failed");
                    let next = Instant::now() + delay;
                    self.webhook_backoff.insert(url, Backoff { next, delay });
                }
            }
        }
    }

    /// One group for one URL, if one is due; the mark moves on success.
    async fn webhook(&self, url: &str) -> Result<(), String> {
        let mark = format!("webhook {url}");
        let records = self
            .store
            .alerts_after(self.cursor(&mark), BATCH)
            .map_err(|e| e.to_string())?;
        let now = Utc::now();
        let Some(last) = self.group_due(&records, now) else {
            return Ok(());
        };
        let alerts: Vec<_> = records
            .iter()
            .filter(|r: &&Recorded| self.timely(r, now))
            .map(|r| &r.alert)
            .collect();
        if !alerts.is_empty() {
            let resp = self
                .http
                .post(url)
                .json(&alerts)
                .send()
                .await
                .map_err(|e| format!("unreachable: {e}"))?;
            if !resp.status().is_success() {
                return Err(format!("answered {}", resp.status()));
            }
        }
        self.outbox.set_progress(&mark, &last.to_string())
    }
}
