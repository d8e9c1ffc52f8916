//! What the daemon counts, for `/metrics`. The services report typed
//! events here (an ingest's outcome, a policy answer by [`PolicyCount`], a
//! refusal by [`Refusal`]); this module alone names the series, and the
//! `prometheus-client` crate keeps and encodes them (OpenMetrics text).
//! Every label value is known in advance and created at start, so a
//! series reads 0 before its first event, and the hot paths (a policy
//! answer, an event) add to a counter they hold: no lookup, no lock.
//! Values only known at a scrape (the store's size, the mail queue, the
//! alert backlog) come in a [`Scrape`].

mod render;

pub(crate) use render::{Backlog, CONTENT_TYPE, Scrape};

use crate::detect::{Alert, AlertKind, AlertStatus};
use crate::event::Tls;
use crate::store::IngestOutcome;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::time::Duration;

/// Why an ingest request was refused; the label of the rejected counter.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Rejection {
    BadRequest,
    Unauthorized,
    TooLarge,
    Unavailable,
}

impl Rejection {
    const ALL: [Rejection; 4] = [
        Rejection::BadRequest,
        Rejection::Unauthorized,
        Rejection::TooLarge,
        Rejection::Unavailable,
    ];

    fn label(self) -> &'static str {
        match self {
            Rejection::BadRequest => "bad_request",
            Rejection::Unauthorized => "unauthorized",
            Rejection::TooLarge => "too_large",
            Rejection::Unavailable => "unavailable",
        }
    }
}

/// Routes with their own latency histogram; everything else is "other".
pub(crate) const ROUTES: [&str; 4] = ["/api/v1/events", "/api/v1/report", "/metrics", "other"];

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// A series' labels: names and values, all known at compile time.
type Labels<const N: usize> = [(&'static str, &'static str); N];

/// The counters, gauges and histograms, registered once; the fields are
/// handles on the registered series (cheap clones of shared atomics).
pub(crate) struct Metrics {
    registry: Registry,
    /// Events received: accepted, duplicate, too old.
    outcomes: [Counter; 3],
    /// Counted events by result (accepted, failed login) and TLS class.
    by_class: [[Counter; Tls::ALL.len()]; 2],
    rejected: [Counter; Rejection::ALL.len()],
    latency: [Histogram; ROUTES.len()],
    /// Alerts raised, by kind and status (in `ALL` order).
    alerts: [[Counter; AlertStatus::ALL.len()]; AlertKind::ALL.len()],
    /// Connections and logins turned away, by [`Refusal`].
    refused: [Counter; Refusal::ALL.len()],
    /// The policy service's requests and connections, by [`PolicyCount`].
    policy: [Counter; PolicyCount::ALL.len()],
    /// The policy service's open connections: waiting for a request, and
    /// answering one.
    policy_connections: [Gauge; 2],
    /// The same of the HTTP side.
    http_connections: [Gauge; 2],
    /// Journal entries under an MTA's name it did not write, by why.
    journal_refused: [Counter; JournalRefusal::ALL.len()],
    /// Bytes of followed logs that were gone before they were read.
    log_bytes_lost: Counter,
}

/// What the policy service counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PolicyCount {
    /// A request answered.
    Request,
    /// A request that reported a submission.
    Submission,
    /// A request answered `DUNNO` because it could not be understood.
    NotUnderstood,
    /// A submission not counted because the store writer was behind.
    Dropped,
    /// A connection closed at once: `policy.max_connections` (or the
    /// peer's share) were open and answering.
    Refused,
    /// A connection from a peer that may not speak, closed unread.
    PeerRefused,
    /// An idle connection closed to make room for a new one.
    IdleClosed,
    /// A contained account's submission put on hold, deferred, rejected,
    /// or let through with `action = "monitor"`.
    Held,
    Deferred,
    Rejected,
    Monitored,
}

impl PolicyCount {
    pub(crate) const ALL: [PolicyCount; 11] = [
        PolicyCount::Request,
        PolicyCount::Submission,
        PolicyCount::NotUnderstood,
        PolicyCount::Dropped,
        PolicyCount::Refused,
        PolicyCount::PeerRefused,
        PolicyCount::IdleClosed,
        PolicyCount::Held,
        PolicyCount::Deferred,
        PolicyCount::Rejected,
        PolicyCount::Monitored,
    ];

    fn label(self) -> &'static str {
        match self {
            PolicyCount::Request => "request",
            PolicyCount::Submission => "submission",
            PolicyCount::NotUnderstood => "not_understood",
            PolicyCount::Dropped => "dropped",
            PolicyCount::Refused => "connection_refused",
            PolicyCount::PeerRefused => "peer_refused",
            PolicyCount::IdleClosed => "idle_closed",
            PolicyCount::Held => "held",
            PolicyCount::Deferred => "deferred",
            PolicyCount::Rejected => "rejected",
            PolicyCount::Monitored => "monitored",
        }
    }
}

/// Why a journal entry under an MTA's name was not counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JournalRefusal {
    /// Written by a user who is neither root nor the MTA's (or no `_UID`).
    Writer,
    /// An identifier like the MTA's, not one of its own (`postfixevil/x`).
    Identifier,
}

impl JournalRefusal {
    pub(crate) const ALL: [JournalRefusal; 2] =
        [JournalRefusal::Writer, JournalRefusal::Identifier];

    pub(crate) fn label(self) -> &'static str {
        match self {
            JournalRefusal::Writer => "writer",
            JournalRefusal::Identifier => "identifier",
        }
    }
}

/// Why the HTTP side turned a client away before serving it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// `server.max_connections` connections were open, each of a client
    /// that proved who it is: a new one was closed.
    ConnectionLimit,
    /// A connection waiting for its request (or for the rest of it) was
    /// closed to make room for a new one.
    MadeRoom,
    /// Too many logins from the client, or password checks waiting.
    LoginRate,
}

impl Refusal {
    pub(crate) const ALL: [Refusal; 3] = [
        Refusal::ConnectionLimit,
        Refusal::MadeRoom,
        Refusal::LoginRate,
    ];

    fn label(self) -> &'static str {
        match self {
            Refusal::ConnectionLimit => "connection_limit",
            Refusal::MadeRoom => "made_room",
            Refusal::LoginRate => "login_rate",
        }
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every series under `smtp_auth_insight_`, each label value
    /// at 0.
    pub(crate) fn new() -> Metrics {
        let mut r = Registry::with_prefix("smtp_auth_insight");
        let outcomes = counters(
            &mut r,
            ("events", "Events received, by outcome."),
            ["accepted", "duplicate", "too_old"].map(|o| [("outcome", o)]),
        );
        let submissions: Family<Labels<2>, Counter> = Family::default();
        r.register(
            "submissions",
            "Events counted, by result (accepted message, failed login) and TLS version.",
            submissions.clone(),
        );
        let by_class = ["accepted", "auth_failed"].map(|result| {
            Tls::ALL
                .map(|t| submissions.get_or_create_owned(&[("result", result), ("tls", t.key())]))
        });
        let rejected = counters(
            &mut r,
            ("ingest_rejected", "Event requests refused, by reason."),
            Rejection::ALL.map(|x| [("reason", x.label())]),
        );
        let refused = counters(
            &mut r,
            (
                "http_refused",
                "Connections and logins turned away, by reason.",
            ),
            Refusal::ALL.map(|x| [("reason", x.label())]),
        );
        let policy = counters(
            &mut r,
            (
                "policy",
                "Policy service requests and connections, by what happened.",
            ),
            PolicyCount::ALL.map(|x| [("what", x.label())]),
        );
        let journal_refused = counters(
            &mut r,
            (
                "journal_entries_refused",
                "Journal entries under an MTA's name that the MTA did not write, by why: the writer (not root nor the MTA's user) or an identifier that only looks like the MTA's.",
            ),
            JournalRefusal::ALL.map(|x| [("why", x.label())]),
        );
        let [http_connections, policy_connections] = ["HTTP", "Policy service"].map(|what| {
            let family: Family<Labels<1>, Gauge> = Family::default();
            let name = match what {
                "HTTP" => "http_connections",
                _ => "policy_connections",
            };
            r.register(
                name,
                format!("{what} connections open, waiting for a request or answering one."),
                family.clone(),
            );
            ["waiting", "answering"].map(|s| family.get_or_create_owned(&[("state", s)]))
        });
        let durations: Family<Labels<1>, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(|| Histogram::new(BUCKETS));
        r.register(
            "http_request_duration_seconds",
            "HTTP request latency.",
            durations.clone(),
        );
        let latency = ROUTES.map(|route| durations.get_or_create_owned(&[("route", route)]));
        let alerts_raised: Family<Labels<2>, Counter> = Family::default();
        r.register(
            "alerts",
            "Alerts raised, by kind and status.",
            alerts_raised.clone(),
        );
        let alerts = AlertKind::ALL.map(|k| {
            AlertStatus::ALL.map(|s| {
                alerts_raised.get_or_create_owned(&[("kind", k.name()), ("status", s.name())])
            })
        });
        let log_bytes_lost = Counter::default();
        r.register(
            "log_bytes_lost",
            "Bytes of followed logs gone before they were read (truncated by copytruncate after its copy, or rotated away and deleted).",
            log_bytes_lost.clone(),
        );
        Metrics {
            registry: r,
            outcomes,
            by_class,
            rejected,
            latency,
            alerts,
            refused,
            policy,
            policy_connections,
            http_connections,
            journal_refused,
            log_bytes_lost,
        }
    }

    pub(crate) fn events_ingested(&self, o: &IngestOutcome) {
        for (c, n) in self
            .outcomes
            .iter()
            .zip([o.accepted, o.duplicates, o.too_old])
        {
            c.inc_by(n);
        }
        for (mine, theirs) in self.by_class.iter().zip(&o.by_class) {
            for (c, n) in mine.iter().zip(theirs) {
                c.inc_by(*n);
            }
        }
    }

    pub(crate) fn alerts_raised(&self, alerts: &[Alert]) {
        for a in alerts {
            let k = AlertKind::ALL.iter().position(|k| *k == a.kind);
            let s = AlertStatus::ALL.iter().position(|s| *s == a.status);
            if let (Some(k), Some(s)) = (k, s) {
                self.alerts[k][s].inc();
            }
        }
    }

    pub(crate) fn refused(&self, why: Refusal) {
        self.refused[why as usize].inc();
    }

    /// The policy service's open connections: `idle` waiting for a
    /// request, `answering` one.
    pub(crate) fn policy_connections(&self, idle: usize, answering: usize) {
        set_pair(&self.policy_connections, idle, answering);
    }

    /// The HTTP side's open connections: `idle` waiting for a request (or
    /// for the rest of one), `answering` one.
    pub(crate) fn http_connections(&self, idle: usize, answering: usize) {
        set_pair(&self.http_connections, idle, answering);
    }

    /// Bytes of a followed log that are gone before they were read (a
    /// copytruncate between the copy and the truncation, a rotated file
    /// deleted while the daemon was away).
    pub(crate) fn log_bytes_lost(&self, bytes: u64) {
        self.log_bytes_lost.inc_by(bytes);
    }

    /// A journal entry under an MTA's name that it did not write.
    pub(crate) fn journal_refused(&self, why: JournalRefusal) {
        self.journal_refused[why as usize].inc();
    }

    pub(crate) fn policy(&self, what: PolicyCount) {
        self.policy[what as usize].inc();
    }

    pub(crate) fn request_rejected(&self, why: Rejection) {
        self.rejected[why as usize].inc();
    }

    pub(crate) fn request_served(&self, route: &str, took: Duration) {
        let i = ROUTES
            .iter()
            .position(|r| *r == route)
            .unwrap_or(ROUTES.len() - 1);
        self.latency[i].observe(took.as_secs_f64());
    }
}

/// A family of counters with the given label values, each created at 0;
/// the handles in the order of `labels`.
fn counters<const L: usize, const N: usize>(
    r: &mut Registry,
    (name, help): (&str, &str),
    labels: [Labels<L>; N],
) -> [Counter; N] {
    let family: Family<Labels<L>, Counter> = Family::default();
    r.register(name, help, family.clone());
    labels.map(|l| family.get_or_create_owned(&l))
}

/// Sets the waiting and answering gauges of a connection pair.
fn set_pair(gauges: &[Gauge; 2], idle: usize, answering: usize) {
    let as_i64 = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    gauges[0].set(as_i64(idle));
    gauges[1].set(as_i64(answering));
}
