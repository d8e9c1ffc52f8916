//! The alert notifier: reads the alert log the store writer appends to,
//! groups alerts raised close together into one mail, mails the daily
//! legacy-TLS digest, and posts every group to the configured webhooks.
//!
//! How far the log has been mailed is a progress mark in the outbox,
//! written in the same transaction as the queued mail: after a crash an
//! alert is mailed exactly once.

use super::Progress;
use super::alert_mail;
use crate::contain::Holds;
use crate::detect::{AlertKind, DetectConfig, config::Digest};
use crate::outbox::{MailConfig, Outbox, OutboxError, RecipientError, marks};
use crate::report::alert_view;
use crate::report::templates::{TemplateError, Templates};
use crate::store::{Recorded, Store, StoreError};
use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use lettre::message::Mailbox;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the log is looked at.
const POLL: Duration = Duration::from_secs(2);
/// Alerts read per pass.
pub(super) const BATCH: usize = 500;
/// How many logged alerts back the opening alert of an incident is looked
/// for (reminders and resolutions that arrive late).
const OPENING_LOOK_BACK: u64 = 5_000;

/// Progress marks (see `outbox::marks`): how far the log has been mailed,
/// how far the legacy-TLS digest got, and the day of the last digest.
pub(super) const MAILED: &str = "alerts";
const DIGESTED: &str = "alerts-digest";
const DIGEST_DAY: &str = "alerts-digest-day";

/// The progress mark of webhook `url`.
pub(super) fn webhook_mark(url: &str) -> String {
    format!("webhook {url}")
}

/// Why a pass of the notifier failed; the next pass tries again.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("detect.recipients: {0}")]
    Recipients(#[from] RecipientError),
    #[error("reading the alert log: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("cannot build the alert mail: {0}")]
    Message(#[from] lettre::error::Error),
    #[error("webhook unreachable: {0}")]
    Unreachable(reqwest::Error),
    #[error("webhook answered {0}")]
    Refused(reqwest::StatusCode),
    #[error("a notifier task stopped: {0}")]
    Task(String),
}

/// What the notifier takes from the configuration.
#[derive(Debug, Clone)]
pub(crate) struct NotifierSettings {
    /// `[detect]`: recipients, webhooks, grouping, age limit, digest.
    pub detect: DetectConfig,
    /// `[mail]`: the sender, and the allow-list the recipients must pass.
    pub mail: MailConfig,
    /// Zone of the times in mails and of the digest's hour.
    pub tz: Tz,
    /// The dashboard's base URL, for links in mails.
    pub public_url: String,
    /// The command line on this server (`smtp-auth-insight`, with
    /// `--config FILE` when the configuration is not the installed one),
    /// for the commands mails give.
    pub cli: String,
    /// What happens to a contained account's mail (`[policy] action`).
    pub containment_effect: String,
}

/// The alert notifier. Cheap to clone: each pass runs on a blocking thread
/// with a clone (sled reads, templates and an fsync per queued mail).
#[derive(Clone)]
pub(crate) struct Notifier {
    pub(super) settings: Arc<NotifierSettings>,
    pub(super) store: Store,
    pub(super) outbox: Outbox,
    templates: Arc<Templates>,
    from: Mailbox,
    recipients: Vec<Mailbox>,
    pub(super) http: reqwest::Client,
    /// Counts the passes for `/metrics`.
    progress: Progress,
    /// The containments, when the policy service runs: an alert mail
    /// says which account its alert contained.
    holds: Option<Holds>,
}

impl Notifier {
    /// A notifier; `progress` is shared with `/metrics`.
    pub(crate) fn new(
        settings: NotifierSettings,
        store: Store,
        outbox: Outbox,
        templates: Arc<Templates>,
        progress: Progress,
        holds: Option<Holds>,
    ) -> Result<Notifier, NotifyError> {
        let from = settings.mail.sender_mailbox()?;
        let recipients = if settings.detect.recipients.is_empty() {
            Vec::new()
        } else {
            settings
                .mail
                .check_recipients(&settings.detect.recipients)?
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(NotifyError::Unreachable)?;
        Ok(Notifier {
            settings: Arc::new(settings),
            store,
            outbox,
            templates,
            from,
            recipients,
            http,
            progress,
            holds,
        })
    }

    /// Mails and posts alerts until `shutdown`; a pass under way finishes.
    pub(crate) async fn run(self, shutdown: CancellationToken) {
        let mut backoff = super::webhooks::Backoffs::default();
        while !shutdown.is_cancelled() {
            if let Err(e) = self.blocking(|n| n.pass()).await {
                tracing::error!(error = %e, "alert notification failed");
            }
            self.webhooks(&mut backoff, &shutdown).await;
            self.progress.passed();
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// Runs `f` on a blocking thread with a clone of the notifier.
    pub(super) async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Notifier) -> Result<T, NotifyError> + Send + 'static,
    ) -> Result<T, NotifyError> {
        let notifier = self.clone();
        tokio::task::spawn_blocking(move || f(&notifier))
            .await
            .map_err(|e| NotifyError::Task(e.to_string()))?
    }

    /// The sequence number progress mark `name` has reached.
    pub(super) fn cursor(&self, name: &str) -> Result<u64, NotifyError> {
        let mark = self.outbox.marks().get(&marks::progress(name))?;
        Ok(mark.and_then(|v| v.parse().ok()).unwrap_or(0))
    }

    /// One look at the log: mail what is due.
    fn pass(&self) -> Result<(), NotifyError> {
        let detect = &self.settings.detect;
        let daily = detect.legacy_tls.digest == Digest::Daily;
        let records = self.store.alerts_after(self.cursor(MAILED)?, BATCH)?;
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
        let window = self.settings.detect.group_seconds as i64 * 1000;
        (quiet_for >= window || waited >= 5 * window || records.len() == BATCH).then_some(last.seq)
    }

    /// Whether an alert is still news (see [`still_news`]); looks up the
    /// opening alert only for late reminders and resolutions.
    pub(super) fn timely(&self, r: &Recorded, now: DateTime<Utc>) -> bool {
        let max_age = TimeDelta::minutes(self.settings.detect.max_age_minutes as i64);
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
    fn mail(
        &self,
        group: &[&Recorded],
        mark: &str,
        seq: u64,
        digest: bool,
    ) -> Result<(), NotifyError> {
        let (Some(first), false) = (group.first(), self.recipients.is_empty()) else {
            return Ok(self
                .outbox
                .marks()
                .set(&marks::progress(mark), &seq.to_string())?);
        };
        let settings = &self.settings;
        let alerts: Vec<_> = group.iter().map(|r| r.alert.clone()).collect();
        let ctx = alert_view::Context {
            tz: settings.tz,
            base: &settings.public_url,
            cli: &settings.cli,
        };
        let mut view = alert_view::view(&alerts, ctx, digest);
        if let Some(holds) = &self.holds {
            let now = Utc::now().timestamp();
            for (i, r) in group.iter().enumerate() {
                if let Some(until) = holds.announce(r, now) {
                    view.contain(i, &settings.containment_effect, until, ctx);
                }
            }
        }
        let message =
            alert_mail::build(self.from.clone(), &self.recipients, &view, &self.templates)?;
        let id = format!("{mark}-{}-{seq}", first.seq);
        let mark = marks::progress(mark);
        self.outbox
            .enqueue(&id, &message, Some((&mark, &seq.to_string())))?;
        tracing::info!(id, alerts = group.len(), "alert mail queued");
        Ok(())
    }

    /// Once a day, after `digest_hour` local time: the senders first seen
    /// with legacy TLS since the last digest, in one mail.
    fn digest(&self) -> Result<(), NotifyError> {
        use chrono::Timelike;
        let local = Utc::now().with_timezone(&self.settings.tz);
        let today = local.date_naive().to_string();
        let day_mark = marks::progress(DIGEST_DAY);
        if local.hour() < self.settings.detect.legacy_tls.digest_hour
            || self.outbox.marks().get(&day_mark)?.as_deref() == Some(today.as_str())
        {
            return Ok(());
        }
        let mut cursor = self.cursor(DIGESTED)?;
        let mut legacy = Vec::new();
        loop {
            let records = self.store.alerts_after(cursor, BATCH)?;
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
        Ok(self.outbox.marks().set(&day_mark, &today)?)
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
