//! The delivery loop: hands each due mail to the transport, records the
//! outcome, and sleeps until the next attempt is due or a mail is queued.
//!
//! Reading and writing the queue (sled, with an fsync per outcome) runs on
//! blocking threads; only the SMTP conversation itself is async. On
//! shutdown a delivery under way is finished, never cut: a mail cut after
//! the relay took it but before its outcome was recorded would be sent
//! again after the restart.

use super::transport::{SendError, Transport};
use super::{Outbox, OutboxError, Queued, State, Status};
use chrono::Utc;
use sled::Transactional;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How long statuses of finished mails are kept.
const STATUS_DAYS: i64 = 30;
/// How often old statuses are looked for.
const TIDY_EVERY: Duration = Duration::from_secs(3600);
/// Longest sleep between looks at the queue (a mail queued by another
/// process, or a clock that jumped, is found within it).
const MAX_SLEEP: Duration = Duration::from_secs(60);
/// Pause after the queue itself failed.
const AFTER_FAILURE: Duration = Duration::from_secs(5);

/// Retry policy, from `[mail]`.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// First delay after a temporary failure; doubles each time.
    pub(crate) initial: Duration,
    /// Longest delay between attempts.
    pub(crate) max_delay: Duration,
    /// After this long since queueing, a mail is given up.
    pub(crate) give_up_after: Duration,
}

impl Outbox {
    /// Delivers queued mails until `shutdown` is cancelled, then returns
    /// once the delivery under way (if any) is finished and recorded.
    pub async fn run(self, transport: Transport, retry: Retry, shutdown: CancellationToken) {
        let mut tidied: Option<Instant> = None;
        while !shutdown.is_cancelled() {
            if tidied.is_none_or(|t| t.elapsed() >= TIDY_EVERY) {
                if let Err(e) = self.blocking(|o| o.forget_old_statuses()).await {
                    tracing::warn!(error = %e, "cannot forget old mail statuses");
                }
                tidied = Some(Instant::now());
            }
            let wait = match self.deliver_due(&transport, retry, &shutdown).await {
                Ok(next) => next.unwrap_or(MAX_SLEEP).min(MAX_SLEEP),
                Err(e) => {
                    tracing::error!(error = %e, "outbox failed");
                    AFTER_FAILURE
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = self.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Runs `f` on a blocking thread: sled reads, writes and flushes.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Outbox) -> Result<T, OutboxError> + Send + 'static,
    ) -> Result<T, OutboxError> {
        let outbox = self.clone();
        tokio::task::spawn_blocking(move || f(&outbox))
            .await
            .map_err(|e| OutboxError::Task(e.to_string()))?
    }

    /// One pass over the queue; returns the delay until the next attempt
    /// due. Stops before the next mail once `shutdown` is cancelled.
    async fn deliver_due(
        &self,
        transport: &Transport,
        retry: Retry,
        shutdown: &CancellationToken,
    ) -> Result<Option<Duration>, OutboxError> {
        let now_ms = Utc::now().timestamp_millis();
        let (due, mut next) = self.blocking(move |o| o.due(now_ms)).await?;
        for id in due {
            if shutdown.is_cancelled() {
                break;
            }
            let Some((queued, status)) = self.blocking(move |o| o.load(&id)).await? else {
                continue;
            };
            let sent = transport
                .send_raw(&queued.from, &queued.to, &queued.message)
                .await;
            let again = self
                .blocking(move |o| o.record(status, sent, retry))
                .await?;
            next = min_some(next, again);
        }
        let now_ms = Utc::now().timestamp_millis();
        Ok(next.map(|n| Duration::from_millis((n - now_ms).max(0) as u64)))
    }

    /// Ids of the mails due at `now_ms`, and the earliest later attempt.
    fn due(&self, now_ms: i64) -> Result<(Vec<String>, Option<i64>), OutboxError> {
        let mut due = Vec::new();
        let mut next = None;
        for key in self.queue.iter().keys() {
            let id = String::from_utf8_lossy(&key?).into_owned();
            match self.status(&id) {
                Some(s) if s.next_attempt_ms > now_ms => {
                    next = min_some(next, Some(s.next_attempt_ms));
                }
                Some(_) => due.push(id),
                None => {}
            }
        }
        Ok((due, next))
    }

    /// A queued mail and its status, counting this attempt; an unreadable
    /// entry is given up (and `None`).
    fn load(&self, id: &str) -> Result<Option<(Queued, Status)>, OutboxError> {
        let (Some(value), Some(mut status)) = (self.queue.get(id.as_bytes())?, self.status(id))
        else {
            return Ok(None);
        };
        let Ok(queued) = serde_json::from_slice::<Queued>(&value) else {
            self.finish(
                &mut status,
                State::Failed,
                Some("unreadable queue entry".into()),
            )?;
            return Ok(None);
        };
        status.attempts += 1;
        Ok(Some((queued, status)))
    }

    /// Records the outcome of an attempt; returns when to try again.
    fn record(
        &self,
        mut status: Status,
        sent: Result<Option<std::path::PathBuf>, SendError>,
        retry: Retry,
    ) -> Result<Option<i64>, OutboxError> {
        let id = status.id.clone();
        let e = match sent {
            Ok(_) => {
                tracing::info!(id, attempts = status.attempts, "mail delivered");
                self.finish(&mut status, State::Sent, None)?;
                return Ok(None);
            }
            Err(SendError::Permanent(e)) => {
                tracing::warn!(id, error = %e, "mail refused permanently; giving up");
                self.finish(&mut status, State::Failed, Some(e))?;
                return Ok(None);
            }
            Err(SendError::Temporary(e)) => e,
        };
        self.stats
            .temporary_failures
            .fetch_add(1, Ordering::Relaxed);
        let age = chrono::DateTime::parse_from_rfc3339(&status.created)
            .map(|c| (Utc::now() - c.to_utc()).to_std().unwrap_or_default())
            .unwrap_or_default();
        if age >= retry.give_up_after {
            let reason = format!("gave up after {} attempts: {e}", status.attempts);
            self.finish(&mut status, State::Failed, Some(reason))?;
            return Ok(None);
        }
        let delay = backoff(retry, status.attempts);
        tracing::warn!(id, attempts = status.attempts, retry_in = ?delay, error = %e, "mail delivery failed; will retry");
        status.last_error = Some(e);
        status.next_attempt_ms = Utc::now().timestamp_millis() + delay.as_millis() as i64;
        self.status
            .insert(id.as_bytes(), serde_json::to_vec(&status)?)?;
        self.db.flush()?;
        Ok(Some(status.next_attempt_ms))
    }

    /// Records the end of a mail and removes it from the queue, atomically.
    fn finish(
        &self,
        status: &mut Status,
        state: State,
        error: Option<String>,
    ) -> Result<(), OutboxError> {
        status.status = state;
        if error.is_some() {
            status.last_error = error;
        }
        status.finished = Some(Utc::now().to_rfc3339());
        let bytes = serde_json::to_vec(&*status)?;
        let key = status.id.as_bytes();
        (&self.queue, &self.status)
            .transaction(|(queue, statuses)| {
                queue.remove(key)?;
                statuses.insert(key, bytes.as_slice())?;
                Ok(())
            })
            .map_err(OutboxError::from_transaction)?;
        // Counted as the commit makes it visible, not after the fsync: a
        // status read meanwhile already says how it ended.
        self.stats.queued.fetch_sub(1, Ordering::Relaxed);
        let counter = if state == State::Sent {
            &self.stats.sent
        } else {
            &self.stats.failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.db.flush()?;
        Ok(())
    }

    fn forget_old_statuses(&self) -> Result<(), OutboxError> {
        let cutoff = Utc::now() - chrono::TimeDelta::days(STATUS_DAYS);
        for item in self.status.iter() {
            let (k, v) = item?;
            let old = serde_json::from_slice::<Status>(&v)
                .ok()
                .and_then(|s| s.finished)
                .and_then(|f| chrono::DateTime::parse_from_rfc3339(&f).ok())
                .is_some_and(|f| f < cutoff);
            if old {
                self.status.remove(k)?;
            }
        }
        Ok(())
    }
}

fn min_some(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Exponential backoff with ±25 % jitter, so many queued mails do not hit a
/// recovering relay at the same instant. Without randomness from the
/// system the jitter is left out: the delay is still right, only less
/// spread.
fn backoff(r: Retry, attempts: u32) -> Duration {
    let base = r
        .initial
        .saturating_mul(1u32 << attempts.saturating_sub(1).min(16))
        .min(r.max_delay);
    let mut b = [0u8; 2];
    let jitter = match getrandom::fill(&mut b) {
        Ok(()) => 0.75 + f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX) * 0.5,
        Err(_) => 1.0,
    };
    base.mul_f64(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let r = Retry {
            initial: Duration::from_secs(10),
            max_delay: Duration::from_secs(100),
            give_up_after: Duration::from_secs(1000),
        };
        for (attempts, base) in [(1, 10.0), (2, 20.0), (3, 40.0), (4, 80.0), (9, 100.0)] {
            let d = backoff(r, attempts).as_secs_f64();
            assert!(
                d >= base * 0.75 - 1e-9 && d <= base * 1.25 + 1e-9,
                "{attempts}: {d}"
            );
        }
    }
}
