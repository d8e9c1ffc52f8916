//! The `/metrics` text: the registered series, then the values read at the
//! scrape, in OpenMetrics text (what Prometheus asks for first).

use super::{Labels, Metrics};
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// The content type of [`Metrics::render`]'s text.
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What only a scrape can know, read by the caller (from the store, the
/// outbox and the alert log) so that this module names none of them.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Scrape {
    pub(crate) store_bytes: u64,
    pub(crate) outbox_queued: u64,
    /// Accounts the policy service contains now (0 when it is off).
    pub(crate) contained: u64,
    /// Mails sent, given up, and retried after a temporary failure.
    pub(crate) mails: [u64; 3],
    /// Alerts not yet handled by the mails and by the webhook furthest
    /// behind, and the notifier's passes; `None` when the alert log could
    /// not be read (the series are then left out, not shown as 0).
    pub(crate) backlog: Option<Backlog>,
}

/// Alerts not yet handled by the alert notifier, per channel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Backlog {
    pub(crate) mail: u64,
    /// The URL furthest behind (URLs are not labels: they may hold tokens).
    pub(crate) webhooks: u64,
    /// Passes completed since start: mails, digest and webhooks each
    /// looked at the whole log once more.
    pub(crate) passes: u64,
}

impl Metrics {
    /// Every series, then the scrape's values.
    pub(crate) fn render(&self, scrape: &Scrape) -> String {
        let mut out = String::with_capacity(8192);
        // Writing to a String cannot fail.
        let _ = encode_registry(&mut out, &self.registry);
        let _ = encode_registry(&mut out, &scrape.registry());
        let _ = encode_eof(&mut out);
        out
    }
}

impl Scrape {
    /// The scrape's values as series of a registry of their own, built for
    /// this one scrape.
    fn registry(&self) -> Registry {
        let mut r = Registry::with_prefix("smtp_auth_insight");
        if let Some(b) = self.backlog {
            let unnotified: Family<Labels<1>, Gauge> = Family::default();
            r.register(
                "alerts_unnotified",
                "Alerts logged but not yet handled by the alert mails or by the webhook furthest behind.",
                unnotified.clone(),
            );
            for (channel, n) in [("mail", b.mail), ("webhooks", b.webhooks)] {
                unnotified
                    .get_or_create(&[("channel", channel)])
                    .set(gauge(n));
            }
            r.register(
                "notifier_passes",
                "Passes of the alert notifier over the alert log.",
                counter(b.passes),
            );
        }
        let size = Gauge::<i64>::default();
        size.set(gauge(self.store_bytes));
        r.register("store_size_bytes", "Size of the database on disk.", size);
        let contained = Gauge::<i64>::default();
        contained.set(gauge(self.contained));
        r.register(
            "contained_accounts",
            "Accounts the policy service contains now: their mail is held, deferred or rejected until released.",
            contained,
        );
        let queued = Gauge::<i64>::default();
        queued.set(gauge(self.outbox_queued));
        r.register("outbox_queued", "Mails waiting for delivery.", queued);
        let mails: Family<Labels<1>, Counter> = Family::default();
        r.register(
            "mails",
            "Mails finished or retried, by outcome.",
            mails.clone(),
        );
        for (outcome, n) in ["sent", "failed", "retried"].into_iter().zip(self.mails) {
            mails.get_or_create(&[("outcome", outcome)]).inc_by(n);
        }
        r
    }
}

fn counter(n: u64) -> Counter {
    let c = Counter::default();
    c.inc_by(n);
    c
}

fn gauge(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{PolicyCount, ROUTES};
    use std::time::Duration;

    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn every_series_is_there_from_the_start_and_counts_what_happened() {
        let m = Metrics::new();
        let before = m.render(&Scrape::default());
        assert_eq!(
            value(&before, r#"smtp_auth_insight_policy_total{what="held"}"#),
            Some(0.0)
        );
        m.policy(PolicyCount::Held);
        m.policy(PolicyCount::Held);
        m.request_served(ROUTES[0], Duration::from_millis(3));
        m.policy_connections(4, 1);
        let text = m.render(&Scrape {
            store_bytes: 4096,
            outbox_queued: 2,
            contained: 1,
            mails: [5, 1, 7],
            backlog: Some(Backlog {
                mail: 3,
                webhooks: 0,
                passes: 9,
            }),
        });
        for (series, want) in [
            (r#"smtp_auth_insight_policy_total{what="held"}"#, 2.0),
            (r#"smtp_auth_insight_policy_total{what="request"}"#, 0.0),
            (
                r#"smtp_auth_insight_policy_connections{state="waiting"}"#,
                4.0,
            ),
            (
                r#"smtp_auth_insight_http_request_duration_seconds_bucket{le="0.0025",route="/api/v1/events"}"#,
                0.0,
            ),
            (
                r#"smtp_auth_insight_http_request_duration_seconds_bucket{le="0.005",route="/api/v1/events"}"#,
                1.0,
            ),
            (
                r#"smtp_auth_insight_alerts_unnotified{channel="mail"}"#,
                3.0,
            ),
            ("smtp_auth_insight_notifier_passes_total", 9.0),
            ("smtp_auth_insight_store_size_bytes", 4096.0),
            ("smtp_auth_insight_outbox_queued", 2.0),
            ("smtp_auth_insight_contained_accounts", 1.0),
            (r#"smtp_auth_insight_mails_total{outcome="retried"}"#, 7.0),
            ("smtp_auth_insight_log_bytes_lost_total", 0.0),
        ] {
            assert_eq!(value(&text, series), Some(want), "{series} in\n{text}");
        }
        assert!(text.contains("# TYPE smtp_auth_insight_policy counter\n"));
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert_eq!(text.matches("# EOF").count(), 1);
        // An unreadable alert log leaves its series out rather than 0.
        assert!(!before.contains("alerts_unnotified"));
    }
}
