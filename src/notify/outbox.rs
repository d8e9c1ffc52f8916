//! The durable outbox: every mail is written to sled before the first
//! attempt, retried with exponential backoff and jitter on temporary
//! failures, given up on permanent ones with the reason recorded, and removed
//! only once the relay has accepted it. It survives restarts: a queued mail
//! is delivered after the daemon comes back.
//!
//! Two trees: `outbox` holds queued mails by id, `mail_status` the status of
//! every mail (queued, sent, failed) for `GET /api/v1/reports/{id}`.

use super::transport::{MailTransport, SendError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sled::Transactional;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

/// How long statuses of finished mails are kept.
const STATUS_DAYS: i64 = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Queued,
    Sent,
    Failed,
}

/// A mail's status; `GET /api/v1/reports/{id}` shows all but the schedule.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub id: String,
    pub status: State,
    pub attempts: u32,
    pub last_error: Option<String>,
    /// RFC 3339.
    pub created: String,
    pub finished: Option<String>,
    /// Unix milliseconds of the next attempt while queued.
    pub next_attempt_ms: i64,
}

/// A queued mail: the formatted message and its envelope.
#[derive(Serialize, Deserialize)]
struct Queued {
    message: Vec<u8>,
    from: String,
    to: Vec<String>,
}

/// Retry policy, from `[mail]`.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// First delay after a temporary failure; doubles each time.
    pub initial: Duration,
    /// Longest delay between attempts.
    pub max_delay: Duration,
    /// After this long since queueing, a mail is given up.
    pub give_up_after: Duration,
}

#[derive(Clone)]
pub struct Outbox {
    db: sled::Db,
    queue: sled::Tree,
    status: sled::Tree,
    wake: Arc<Notify>,
    /// Gauges and counters for /metrics.
    pub stats: Arc<OutboxStats>,
}

#[derive(Default)]
pub struct OutboxStats {
    pub queued: AtomicU64,
    pub sent: AtomicU64,
    pub failed: AtomicU64,
    pub temporary_failures: AtomicU64,
}

impl Outbox {
    pub fn open(db: &sled::Db) -> sled::Result<Outbox> {
        let outbox = Outbox {
            db: db.clone(),
            queue: db.open_tree("outbox")?,
            status: db.open_tree("mail_status")?,
            wake: Arc::new(Notify::new()),
            stats: Arc::default(),
        };
        outbox
            .stats
            .queued
            .store(outbox.queue.len() as u64, Ordering::Relaxed);
        Ok(outbox)
    }

    /// Queues a built message; returns once it is durable. `id` is the
    /// caller's (a report id) so that its status can be asked for.
    pub fn enqueue(&self, id: &str, message: &lettre::Message) -> Result<(), String> {
        self.enqueue_marked(id, message, None)
    }

    /// [`Outbox::enqueue`], recording in the same transaction that schedule
    /// `mark.0` ran its slot `mark.1`, so a slot is never mailed twice.
    pub fn enqueue_marked(
        &self,
        id: &str,
        message: &lettre::Message,
        mark: Option<(&str, DateTime<Utc>)>,
    ) -> Result<(), String> {
        let mark = mark.map(|(name, slot)| (mark_key(name), slot.to_rfc3339()));
        self.enqueue_with(
            id,
            message,
            mark.as_ref().map(|(k, v)| (k.as_slice(), v.as_str())),
        )
    }

    /// [`Outbox::enqueue`], setting progress mark `name` to `value` in the
    /// same transaction (how far the alert log has been mailed).
    pub fn enqueue_progress(
        &self,
        id: &str,
        message: &lettre::Message,
        name: &str,
        value: &str,
    ) -> Result<(), String> {
        self.enqueue_with(id, message, Some((&progress_key(name), value)))
    }

    fn enqueue_with(
        &self,
        id: &str,
        message: &lettre::Message,
        mark: Option<(&[u8], &str)>,
    ) -> Result<(), String> {
        let envelope = message.envelope();
        let queued = Queued {
            message: message.formatted(),
            from: envelope.from().map(|a| a.to_string()).unwrap_or_default(),
            to: envelope.to().iter().map(|a| a.to_string()).collect(),
        };
        let now = Utc::now();
        let status = Status {
            id: id.to_owned(),
            status: State::Queued,
            attempts: 0,
            last_error: None,
            created: now.to_rfc3339(),
            finished: None,
            next_attempt_ms: now.timestamp_millis(),
        };
        let q = serde_json::to_vec(&queued).map_err(|e| e.to_string())?;
        let s = serde_json::to_vec(&status).map_err(|e| e.to_string())?;
        (&self.queue, &self.status)
            .transaction(|(queue, statuses)| {
                queue.insert(id.as_bytes(), q.as_slice())?;
                statuses.insert(id.as_bytes(), s.as_slice())?;
                if let Some((key, value)) = mark {
                    statuses.insert(key, value.as_bytes())?;
                }
                Ok(())
            })
            .map_err(|e: sled::transaction::TransactionError<()>| format!("{e:?}"))?;
        self.db.flush().map_err(|e| e.to_string())?;
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        self.wake.notify_one();
        Ok(())
    }

    /// The last slot a schedule ran (or when it was first seen).
    pub fn schedule_mark(&self, name: &str) -> Option<DateTime<Utc>> {
        let v = self.status.get(mark_key(name)).ok()??;
        DateTime::parse_from_rfc3339(std::str::from_utf8(&v).ok()?)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    pub fn set_schedule_mark(&self, name: &str, at: DateTime<Utc>) -> Result<(), String> {
        self.status
            .insert(mark_key(name), at.to_rfc3339().as_bytes())
            .map_err(|e| e.to_string())?;
        self.db.flush().map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Progress mark `name` (see [`Outbox::enqueue_progress`]).
    pub fn progress(&self, name: &str) -> Option<String> {
        let v = self.status.get(progress_key(name)).ok()??;
        String::from_utf8(v.to_vec()).ok()
    }

    pub fn set_progress(&self, name: &str, value: &str) -> Result<(), String> {
        self.status
            .insert(progress_key(name), value.as_bytes())
            .map_err(|e| e.to_string())?;
        self.db.flush().map_err(|e| e.to_string())?;
        Ok(())
    }

    pub fn status(&self, id: &str) -> Option<Status> {
        let v = self.status.get(id.as_bytes()).ok()??;
        serde_json::from_slice::<Status>(&v).ok()
    }

    fn save_status(&self, s: &Status) -> sled::Result<()> {
        let bytes = serde_json::to_vec(s).unwrap_or_default();
        self.status.insert(s.id.as_bytes(), bytes)?;
        Ok(())
    }

    /// Delivers queued mails until the process ends.
    pub async fn run(self, transport: MailTransport, retry: Retry) {
        let mut tidied: Option<std::time::Instant> = None;
        loop {
            if tidied.is_none_or(|t| t.elapsed() >= Duration::from_secs(3600)) {
                if let Err(e) = self.forget_old_statuses() {
                    tracing::warn!(error = %e, "cannot forget old mail statuses");
                }
                tidied = Some(std::time::Instant::now());
            }
            let next = match self.deliver_due(&transport, retry).await {
                Ok(next) => next,
                Err(e) => {
                    tracing::error!(error = %e, "outbox failed");
                    Some(Duration::from_secs(5))
                }
            };
            let wait = next
                .unwrap_or(Duration::from_secs(60))
                .min(Duration::from_secs(60));
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// One pass over the queue; returns the delay until the next attempt due.
    async fn deliver_due(
        &self,
        transport: &MailTransport,
        retry: Retry,
    ) -> sled::Result<Option<Duration>> {
        let now_ms = Utc::now().timestamp_millis();
        let mut next: Option<i64> = None;
        for item in self.queue.iter() {
            let (key, value) = item?;
            let id = String::from_utf8_lossy(&key).into_owned();
            let Some(mut status) = self.status(&id) else {
                continue;
            };
            if status.next_attempt_ms > now_ms {
                next = Some(next.map_or(status.next_attempt_ms, |n| n.min(status.next_attempt_ms)));
                continue;
            }
            let Ok(queued) = serde_json::from_slice::<Queued>(&value) else {
                self.finish(
                    &key,
                    &mut status,
                    State::Failed,
                    Some("unreadable queue entry".into()),
                )?;
                continue;
            };
            status.attempts += 1;
            match transport
                .send_raw(&queued.from, &queued.to, &queued.message)
                .await
            {
                Ok(_) => {
                    tracing::info!(id, attempts = status.attempts, "mail delivered");
                    self.finish(&key, &mut status, State::Sent, None)?;
                }
                Err(SendError::Permanent(e)) => {
                    tracing::warn!(id, error = %e, "mail refused permanently; giving up");
                    self.finish(&key, &mut status, State::Failed, Some(e))?;
                }
                Err(SendError::Temporary(e)) => {
                    self.stats
                        .temporary_failures
                        .fetch_add(1, Ordering::Relaxed);
                    let age = chrono::DateTime::parse_from_rfc3339(&status.created)
                        .map(|c| {
                            (Utc::now() - c.with_timezone(&Utc))
                                .to_std()
                                .unwrap_or_default()
                        })
                        .unwrap_or_default();
                    if age >= retry.give_up_after {
                        let reason = format!("gave up after {} attempts: {e}", status.attempts);
                        self.finish(&key, &mut status, State::Failed, Some(reason))?;
                        continue;
                    }
                    let delay = backoff(retry, status.attempts);
                    tracing::warn!(id, attempts = status.attempts, retry_in = ?delay, error = %e, "mail delivery failed; will retry");
                    status.last_error = Some(e);
                    status.next_attempt_ms =
                        Utc::now().timestamp_millis() + delay.as_millis() as i64;
                    next = Some(
                        next.map_or(status.next_attempt_ms, |n| n.min(status.next_attempt_ms)),
                    );
                    self.save_status(&status)?;
                    self.db.flush()?;
                }
            }
        }
        Ok(next.map(|n| Duration::from_millis((n - Utc::now().timestamp_millis()).max(0) as u64)))
    }

    /// Records the end of a mail and removes it from the queue, atomically.
    fn finish(
        &self,
        key: &[u8],
        status: &mut Status,
        state: State,
        error: Option<String>,
    ) -> sled::Result<()> {
        status.status = state;
        if error.is_some() {
            status.last_error = error;
        }
        status.finished = Some(Utc::now().to_rfc3339());
        let bytes = serde_json::to_vec(&*status).unwrap_or_default();
        (&self.queue, &self.status)
            .transaction(|(queue, statuses)| {
                queue.remove(key)?;
                statuses.insert(key, bytes.as_slice())?;
                Ok(())
            })
            .map_err(|e: sled::transaction::TransactionError<()>| {
                sled::Error::Unsupported(format!("{e:?}"))
            })?;
        self.db.flush()?;
        self.stats.queued.fetch_sub(1, Ordering::Relaxed);
        let counter = if state == State::Sent {
            &self.stats.sent
        } else {
            &self.stats.failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn forget_old_statuses(&self) -> sled::Result<()> {
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

/// Progress marks too, under another prefix no mail id has.
fn progress_key(name: &str) -> Vec<u8> {
    [b"\0progress:".as_slice(), name.as_bytes()].concat()
}

/// Schedule marks live in the status tree under a prefix no mail id has.
fn mark_key(name: &str) -> Vec<u8> {
    format!("\0schedule:{name}").into_bytes()
}

/// Exponential backoff with ±25 % jitter, so many queued mails do not hit a
/// recovering relay at the same instant.
fn backoff(r: Retry, attempts: u32) -> Duration {
    let base = r
        .initial
        .saturating_mul(1u32 << attempts.saturating_sub(1).min(16))
        .min(r.max_delay);
    let mut b = [0u8; 2];
    let _ = getrandom::fill(&mut b);
    let jitter = 0.75 + f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX) * 0.5;
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
