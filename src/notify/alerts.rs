//! The alert notifier: reads the alert log the store writer appends to,
//! groups alerts raised close together into one mail, mails the daily
//! legacy-TLS digest, and posts every group to the configured webhooks.
//!
//! How far the log has been mailed is a progress mark in the outbox,
//! written in the same transaction as the queued mail: after a crash an
//! alert is mailed exactly once.

use super::alert_mail;
use super::outbox::Outbox;
use crate::config::Config;
use crate::detect::{AlertKind, config::Digest};
use crate::report::alert_view;
use crate::report::templates::Templates;
use crate::store::{Recorded, Store};
use chrono::{DateTime, TimeDelta, Utc};
use lettre::message::Mailbox;
use std::sync::Arc;
use std::time::Duration;

/// How often the log is looked at.
const POLL: Duration = Duration::from_secs(2);
/// Alerts read per pass.
pub(super) const BATCH: usize = 500;
/// How many logged alerts back the opening alert of an incident is looked
/// for (reminders and resolutions that arrive late).
const OPENING_LOOK_BACK: u64 = 5_000;

const MAILED: &str = "alerts";
const DIGESTED: &str = "alerts-digest";
const DIGEST_DAY: &str = "alerts-digest-day";

pub struct Notifier {
    pub(super) config: Arc<Config>,
    pub(super) store: Store,
    pub(super) outbox: Outbox,
    templates: Arc<Templates>,
    from: Mailbox,
    recipients: Vec<Mailbox>,
    pub(super) http: reqwest::Client,
    /// Per webhook URL: when to try again after a failure, and the delay.
    pub(super) webhook_backoff: std::collections::HashMap<String, super::webhooks::Backoff>,
}

impl Notifier {
    pub fn new(
        config: Arc<Config>,
        store: Store,
        outbox: Outbox,
        templates: Arc<Templates>,
    ) -> anyhow::Result<Notifier> {
        let from = config.mail.from_mailbox().map_err(anyhow::Error::msg)?;
        let recipients = if config.detect.recipients.is_empty() {
            Vec::new()
        } else {
            config
                .mail
                .check_recipients(&config.detect.recipients)
                .map_err(anyhow::Error::msg)?
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(Notifier {
            config,
            store,
            outbox,
            templates,
            from,
            recipients,
            http,
            webhook_backoff: Default::default(),
        })
    }

    pub async fn run(mut self) {
        loop {
            if let Err(e) = self.pass() {
                tracing::error!(error = %e, "alert notification failed");
            }
            self.webhooks().await;
            tokio::time::sleep(POLL).await;
        }
    }

    pub(super) fn cursor(&self, name: &str) -> u64 {
        self.outbox
            .progress(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// One look at the log: mail what is due.
    fn pass(&self) -> Result<(), String> {
        let detect = &self.config.detect;
        let daily = detect.legacy_tls.digest == Digest::Daily;
        let records = self
            .store
            .alerts_after(self.cursor(MAILED), BATCH)
            .map_err(|e| e.to_string())?;
        let now = Utc::now();
        if let Some(last) = self.group_due(&records, now) {
            let group: Vec<&Recorded> = records
                .iter()
                .filter(|r| !(daily && r.alert.kind == AlertKind::LegacyTls))
                .filter(|r| self.timely(r, now))
                .collect();
            self.mail(&group, MAILED, last, false)?;
        }
        if daily {
            self.digest()?;
        }
        Ok(())
    }

    /// The last sequence number of `records` when they form a closed group:
    /// the group stays open while alerts keep coming within
    /// `group_seconds`, five times that at most.
    pub(super) fn group_due(&self, records: &[Recorded], now: DateTime<Utc>) -> Option<u64> {
        let (first, last) = (records.first()?, records.last()?);
        let quiet_for = now.timestamp_millis() - last.recorded_ms;
        let waited = now.timestamp_millis() - first.recorded_ms;
        let window = self.config.detect.group_seconds as i64 * 1000;
        (quiet_for >= window || waited >= 5 * window || records.len() == BATCH).then_some(last.seq)
    }

    /// Whether an alert is still news (see [`still_news`]); looks up the
    /// opening alert only for late reminders and resolutions.
    pub(super) fn timely(&self, r: &Recorded, now: DateTime<Utc>) -> bool {
        let max_age = TimeDelta::minutes(self.config.detect.max_age_minutes as i64);
        if now - r.alert.at <= max_age || r.alert.status.is_firing() {
            return still_news(r, None, now, max_age);
        }
        let opening = self
            .store
            .opening_alert(&r.alert.sender, r.alert.kind, r.seq, OPENING_LOOK_BACK)
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot read the alert log");
                None
            });
        still_news(r, opening.as_ref(), now, max_age)
    }

    /// Queues one mail for `group` and moves progress mark `mark` to `seq`
    /// in the same transaction (only the mark when there is nothing to mail).
    fn mail(&self, group: &[&Recorded], mark: &str, seq: u64, digest: bool) -> Result<(), String> {
        let (Some(first), false) = (group.first(), self.recipients.is_empty()) else {
            return self.outbox.set_progress(mark, &seq.to_string());
        };
        let tz = self.config.timezone.0;
        let alerts: Vec<_> = group.iter().map(|r| r.alert.clone()).collect();
        let view = alert_view::view(&alerts, tz, &self.config.public_url(), digest);
        let message =
            alert_mail::build(self.from.clone(), &self.recipients, &view, &self.templates)?;
        let id = format!("{mark}-{}-{seq}", first.seq);
        self.outbox
            .enqueue_progress(&id, &message, mark, &seq.to_string())?;
        tracing::info!(id, alerts = group.len(), "alert mail queued");
        Ok(())
    }

    /// Once a day, after `digest_hour` local time: the senders first seen
    /// with legacy TLS since the last digest, in one mail.
    fn digest(&self) -> Result<(), String> {
        let tz = self.config.timezone.0;
        let local = Utc::now().with_timezone(&tz);
        let today = local.date_naive().to_string();
        use chrono::Timelike;
        if local.hour() < self.config.detect.legacy_tls.digest_hour
            || self.outbox.progress(DIGEST_DAY).as_deref() == Some(today.as_str())
        {
            return Ok(());
        }
        let mut cursor = self.cursor(DIGESTED);
        let mut legacy = Vec::new();
        loop {
            let records = self
                .store
                .alerts_after(cursor, BATCH)
                .map_err(|e| e.to_string())?;
            let Some(last) = records.last() else { break };
            cursor = last.seq;
            legacy.extend(
                records
                    .into_iter()
                    .filter(|r| r.alert.kind == AlertKind::LegacyTls),
            );
        }
        let group: Vec<&Recorded> = legacy.iter().collect();
        self.mail(&group, DIGESTED, cursor, true)?;
        self.outbox.set_progress(DIGEST_DAY, &today)
    }
}

/// Whether an alert is news worth a mail: raised within `max_age` of now
/// (older ones come from an import of old logs), or the reminder or
/// resolution of an incident whose `opening` alert was news when it was
/// logged: an incident that ended while the daemon was down still gets its
/// "resolved" mail.
fn still_news(
    r: &Recorded,
    opening: Option<&Recorded>,
    now: DateTime<Utc>,
    max_age: TimeDelta,
) -> bool {
    if now - r.alert.at <= max_age {
        return true;
    }
    !r.alert.status.is_firing()
        && opening.is_some_and(|o| {
            DateTime::from_timestamp_millis(o.recorded_ms)
                .is_some_and(|logged| logged - o.alert.at <= max_age)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::AlertStatus;

    fn recorded(status: AlertStatus, at: DateTime<Utc>, logged: DateTime<Utc>) -> Recorded {
        Recorded {
            seq: 1,
            recorded_ms: logged.timestamp_millis(),
            alert: crate::detect::Alert {
                status,
                at,
                ..crate::report::alert_view::sample_alert()
            },
        }
    }

    #[test]
    fn late_resolutions_of_live_incidents_are_still_news() {
        let now = Utc::now();
        let (hour, max_age) = (TimeDelta::hours(1), TimeDelta::minutes(60));
        let fresh = recorded(AlertStatus::Firing, now - TimeDelta::minutes(5), now);
        assert!(still_news(&fresh, None, now, max_age));
        // An import of last month's logs: old when logged.
        let imported = recorded(AlertStatus::Firing, now - hour * (30 * 24), now);
        assert!(!still_news(&imported, None, now, max_age));
        // Resolved while the daemon was down for five hours.
        let live_opening = recorded(AlertStatus::Firing, now - hour * 6, now - hour * 6);
        let resolved = recorded(AlertStatus::Resolved, now - hour * 4, now);
        assert!(still_news(&resolved, Some(&live_opening), now, max_age));
        let ongoing = recorded(AlertStatus::Ongoing, now - hour * 5, now);
        assert!(still_news(&ongoing, Some(&live_opening), now, max_age));
        // ... but not when the incident itself came from an import, or its
        // opening alert is unknown.
        let imported_opening = recorded(AlertStatus::Firing, now - hour * 6, now);
        assert!(!still_news(
            &resolved,
            Some(&imported_opening),
            now,
            max_age
        ));
        assert!(!still_news(&resolved, None, now, max_age));
        // A firing alert is judged on its own age only.
        assert!(!still_news(&imported, Some(&live_opening), now, max_age));
    }
}
