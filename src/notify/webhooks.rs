//! Webhooks: every group of alerts the mail would carry, posted as a JSON
//! array to each configured URL, in order and at least once.
//!
//! Each URL has its own progress mark: a URL that is down holds back only
//! its own deliveries, which are retried (5 s, then doubling to 10 min)
//! until it answers 2xx, also across restarts. The receiver may see a group
//! again after a crash between its answer and the mark: alerts carry `at`,
//! `sender` and `kind` to recognise it.

use super::alerts::{BATCH, Notifier, NotifyError, webhook_mark};
use crate::detect::Alert;
use crate::outbox::marks;
use chrono::Utc;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const FIRST_RETRY: Duration = Duration::from_secs(5);
const LAST_RETRY: Duration = Duration::from_secs(600);

/// When a failing URL is tried again.
#[derive(Debug, Clone, Copy)]
struct Backoff {
    next: Instant,
    delay: Duration,
}

/// The failing URLs, kept by the notifier's loop (in memory: after a
/// restart every URL is tried at once).
#[derive(Debug, Default)]
pub(super) struct Backoffs(HashMap<String, Backoff>);

/// A group due for a URL: its alerts (those still news) and the sequence
/// number its mark moves to.
type Group = (Vec<Alert>, u64);

impl Notifier {
    /// Posts the next due group to every webhook not backing off.
    pub(super) async fn webhooks(&self, backoffs: &mut Backoffs, shutdown: &CancellationToken) {
        for url in &self.settings.detect.webhooks {
            if shutdown.is_cancelled() {
                return;
            }
            if backoffs.0.get(url).is_some_and(|b| Instant::now() < b.next) {
                continue;
            }
            match self.webhook(url).await {
                Ok(()) => {
                    backoffs.0.remove(url);
                }
                Err(e) => {
                    let delay = backoffs
                        .0
                        .get(url)
                        .map_or(FIRST_RETRY, |b| (b.delay * 2).min(LAST_RETRY));
                    tracing::warn!(url, error = %e, retry_in_s = delay.as_secs(), "webhook delivery failed");
                    let next = Instant::now() + delay;
                    backoffs.0.insert(url.clone(), Backoff { next, delay });
                }
            }
        }
    }

    /// One group for one URL, if one is due; the mark moves on success.
    async fn webhook(&self, url: &str) -> Result<(), NotifyError> {
        let mark = webhook_mark(url);
        let name = mark.clone();
        let Some((alerts, last)) = self.blocking(move |n| n.webhook_group(&name)).await? else {
            return Ok(());
        };
        if !alerts.is_empty() {
            let resp = self
                .http
                .post(url)
                .json(&alerts)
                .send()
                .await
                .map_err(NotifyError::Unreachable)?;
            if !resp.status().is_success() {
                return Err(NotifyError::Refused(resp.status()));
            }
        }
        self.blocking(move |n| {
            let value = last.to_string();
            Ok(n.outbox.marks().set(&marks::progress(&mark), &value)?)
        })
        .await
    }

    /// The group due after progress mark `mark`, if one is.
    fn webhook_group(&self, mark: &str) -> Result<Option<Group>, NotifyError> {
        let records = self.store.alerts_after(self.cursor(mark)?, BATCH)?;
        let now = Utc::now();
        let Some(last) = self.group_due(&records, now) else {
            return Ok(None);
        };
        let alerts = records
            .into_iter()
            .filter(|r| self.timely(r, now))
            .map(|r| r.alert)
            .collect();
        Ok(Some((alerts, last)))
    }
}
