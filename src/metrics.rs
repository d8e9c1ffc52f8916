//! Counters and histograms for `/metrics`, in one place so that metric
//! names and log wording stay consistent (Vector's "internal events").

use crate::detect::{Alert, AlertKind, AlertStatus};
use crate::event::Tls;
use crate::notify::Backlog;
use crate::outbox::OutboxStats;
use crate::store::IngestOutcome;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
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

#[derive(Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

#[derive(Default)]
pub(crate) struct Metrics {
    accepted: AtomicU64,
    duplicates: AtomicU64,
    too_old: AtomicU64,
    rejected: [AtomicU64; 4],
    /// Counted events by result (accepted, failed login) and TLS class.
    by_class: [[AtomicU64; 5]; 2],
    latency: [Histogram; ROUTES.len()],
    /// Alerts raised, by kind and status (in `ALL` order).
    alerts: [[AtomicU64; AlertStatus::ALL.len()]; AlertKind::ALL.len()],
    /// Connections and logins turned away, by [`Refusal`].
    refused: [AtomicU64; Refusal::ALL.len()],
    /// The policy service's requests and connections, by [`PolicyCount`].
    policy: [AtomicU64; PolicyCount::ALL.len()],
    /// The policy service's open connections: waiting for a request, and
    /// answering one.
    policy_connections: [AtomicU64; 2],
    /// The same of the HTTP side.
    http_connections: [AtomicU64; 2],
    /// Journal entries under an MTA's name it did not write, by why.
    journal_refused: [AtomicU64; JournalRefusal::ALL.len()],
    /// Bytes of followed logs that were gone before they were read.
    log_bytes_lost: AtomicU64,
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
    /// The count of a contained account's submission answered per `action`.
    pub(crate) fn contained(action: crate::contain::Action) -> PolicyCount {
        use crate::contain::Action;
        match action {
            Action::Hold => PolicyCount::Held,
            Action::Defer => PolicyCount::Deferred,
            Action::Reject => PolicyCount::Rejected,
            Action::Monitor => PolicyCount::Monitored,
        }
    }

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

impl Metrics {
    pub(crate) fn events_ingested(&self, o: &IngestOutcome) {
        self.accepted.fetch_add(o.accepted, Relaxed);
        self.duplicates.fetch_add(o.duplicates, Relaxed);
        self.too_old.fetch_add(o.too_old, Relaxed);
        for (mine, theirs) in self.by_class.iter().zip(&o.by_class) {
            for (m, t) in mine.iter().zip(theirs) {
                m.fetch_add(*t, Relaxed);
            }
        }
    }

    pub(crate) fn alerts_raised(&self, alerts: &[Alert]) {
        for a in alerts {
            let k = AlertKind::ALL.iter().position(|k| *k == a.kind);
            let s = AlertStatus::ALL.iter().position(|s| *s == a.status);
            if let (Some(k), Some(s)) = (k, s) {
                self.alerts[k][s].fetch_add(1, Relaxed);
            }
        }
    }

    pub(crate) fn refused(&self, why: Refusal) {
        self.refused[why as usize].fetch_add(1, Relaxed);
    }

    /// The policy service's open connections: `idle` waiting for a
    /// request, `answering` one.
    pub(crate) fn policy_connections(&self, idle: usize, answering: usize) {
        self.policy_connections[0].store(idle as u64, Relaxed);
        self.policy_connections[1].store(answering as u64, Relaxed);
    }

    /// The HTTP side's open connections: `idle` waiting for a request (or
    /// for the rest of one), `answering` one.
    pub(crate) fn http_connections(&self, idle: usize, answering: usize) {
        self.http_connections[0].store(idle as u64, Relaxed);
        self.http_connections[1].store(answering as u64, Relaxed);
    }

    /// Bytes of a followed log that are gone before they were read (a
    /// copytruncate between the copy and the truncation, a rotated file
    /// deleted while the daemon was away).
    pub(crate) fn log_bytes_lost(&self, bytes: u64) {
        self.log_bytes_lost.fetch_add(bytes, Relaxed);
    }

    /// A journal entry under an MTA's name that it did not write.
    pub(crate) fn journal_refused(&self, why: JournalRefusal) {
        self.journal_refused[why as usize].fetch_add(1, Relaxed);
    }

    pub(crate) fn policy(&self, what: PolicyCount) {
        self.policy[what as usize].fetch_add(1, Relaxed);
    }

    pub(crate) fn request_rejected(&self, why: Rejection) {
        self.rejected[why as usize].fetch_add(1, Relaxed);
    }

    pub(crate) fn request_served(&self, route: &str, took: Duration) {
        let i = ROUTES
            .iter()
            .position(|r| *r == route)
            .unwrap_or(ROUTES.len() - 1);
        let h = &self.latency[i];
        let secs = took.as_secs_f64();
        if let Some(b) = BUCKETS.iter().position(|b| secs <= *b) {
            h.buckets[b].fetch_add(1, Relaxed);
        }
        h.count.fetch_add(1, Relaxed);
        h.sum_micros.fetch_add(took.as_micros() as u64, Relaxed);
    }

    /// Prometheus text exposition format. `backlog` is left out when it
    /// could not be read.
    pub(crate) fn render(
        &self,
        store_bytes: u64,
        outbox: &OutboxStats,
        backlog: Option<Backlog>,
    ) -> String {
        let mut out = String::with_capacity(4096);
        out.push_str("# HELP smtp_auth_insight_events_total Events received, by outcome.\n");
        out.push_str("# TYPE smtp_auth_insight_events_total counter\n");
        for (label, v) in [
            ("accepted", &self.accepted),
            ("duplicate", &self.duplicates),
            ("too_old", &self.too_old),
        ] {
            let _ = writeln!(
                out,
                "smtp_auth_insight_events_total{{outcome=\"{label}\"}} {}",
                v.load(Relaxed)
            );
        }
        out.push_str("# HELP smtp_auth_insight_submissions_total Events counted, by result (accepted message, failed login) and TLS version.\n");
        out.push_str("# TYPE smtp_auth_insight_submissions_total counter\n");
        for (row, result) in self.by_class.iter().zip(["accepted", "auth_failed"]) {
            for (v, tls) in row.iter().zip(Tls::ALL) {
                let _ = writeln!(
                    out,
                    "smtp_auth_insight_submissions_total{{result=\"{result}\",tls=\"{}\"}} {}",
                    tls.key(),
                    v.load(Relaxed)
                );
            }
        }
        counter_family(
            &mut out,
            "smtp_auth_insight_ingest_rejected_total",
            "Event requests refused, by reason.",
            "reason",
            Rejection::ALL.map(|r| (r.label(), self.rejected[r as usize].load(Relaxed))),
        );
        counter_family(
            &mut out,
            "smtp_auth_insight_http_refused_total",
            "Connections and logins turned away, by reason.",
            "reason",
            Refusal::ALL.map(|r| (r.label(), self.refused[r as usize].load(Relaxed))),
        );
        counter_family(
            &mut out,
            "smtp_auth_insight_policy_total",
            "Policy service requests and connections, by what happened.",
            "what",
            PolicyCount::ALL.map(|p| (p.label(), self.policy[p as usize].load(Relaxed))),
        );
        counter_family(
            &mut out,
            "smtp_auth_insight_journal_entries_refused_total",
            "Journal entries under an MTA's name that the MTA did not write, by why: the writer (not root nor the MTA's user) or an identifier that only looks like the MTA's.",
            "why",
            JournalRefusal::ALL
                .map(|r| (r.label(), self.journal_refused[r as usize].load(Relaxed))),
        );
        for (name, what, values) in [
            (
                "smtp_auth_insight_http_connections",
                "HTTP",
                &self.http_connections,
            ),
            (
                "smtp_auth_insight_policy_connections",
                "Policy service",
                &self.policy_connections,
            ),
        ] {
            family(
                &mut out,
                (name, "gauge"),
                &format!("{what} connections open, waiting for a request or answering one."),
                "state",
                [
                    ("waiting", values[0].load(Relaxed)),
                    ("answering", values[1].load(Relaxed)),
                ],
            );
        }
        out.push_str(
            "# HELP smtp_auth_insight_http_request_duration_seconds HTTP request latency.\n",
        );
        out.push_str("# TYPE smtp_auth_insight_http_request_duration_seconds histogram\n");
        for (route, h) in ROUTES.iter().zip(&self.latency) {
            let mut cumulative = 0;
            for (bound, n) in BUCKETS.iter().zip(&h.buckets) {
                cumulative += n.load(Relaxed);
                let _ = writeln!(
                    out,
                    "smtp_auth_insight_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let count = h.count.load(Relaxed);
            let _ = writeln!(
                out,
                "smtp_auth_insight_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {count}"
            );
            let sum = h.sum_micros.load(Relaxed) as f64 / 1e6;
            let _ = writeln!(
                out,
                "smtp_auth_insight_http_request_duration_seconds_sum{{route=\"{route}\"}} {sum}"
            );
            let _ = writeln!(
                out,
                "smtp_auth_insight_http_request_duration_seconds_count{{route=\"{route}\"}} {count}"
            );
        }
        out.push_str("# HELP smtp_auth_insight_alerts_total Alerts raised, by kind and status.\n");
        out.push_str("# TYPE smtp_auth_insight_alerts_total counter\n");
        for (row, kind) in self.alerts.iter().zip(AlertKind::ALL) {
            for (v, status) in row.iter().zip(AlertStatus::ALL) {
                let _ = writeln!(
                    out,
                    "smtp_auth_insight_alerts_total{{kind=\"{}\",status=\"{}\"}} {}",
                    kind.name(),
                    status.name(),
                    v.load(Relaxed)
                );
            }
        }
        if let Some(b) = backlog {
            out.push_str("# HELP smtp_auth_insight_alerts_unnotified Alerts logged but not yet handled by the alert mails or by the webhook furthest behind.\n");
            out.push_str("# TYPE smtp_auth_insight_alerts_unnotified gauge\n");
            for (channel, n) in [("mail", b.mail), ("webhooks", b.webhooks)] {
                let _ = writeln!(
                    out,
                    "smtp_auth_insight_alerts_unnotified{{channel=\"{channel}\"}} {n}"
                );
            }
            out.push_str("# HELP smtp_auth_insight_notifier_passes_total Passes of the alert notifier over the alert log.\n");
            out.push_str("# TYPE smtp_auth_insight_notifier_passes_total counter\n");
            let _ = writeln!(out, "smtp_auth_insight_notifier_passes_total {}", b.passes);
        }
        out.push_str("# HELP smtp_auth_insight_log_bytes_lost_total Bytes of followed logs gone before they were read (truncated by copytruncate after its copy, or rotated away and deleted).\n");
        out.push_str("# TYPE smtp_auth_insight_log_bytes_lost_total counter\n");
        let _ = writeln!(
            out,
            "smtp_auth_insight_log_bytes_lost_total {}",
            self.log_bytes_lost.load(Relaxed)
        );
        out.push_str("# HELP smtp_auth_insight_store_size_bytes Size of the database on disk.\n");
        out.push_str("# TYPE smtp_auth_insight_store_size_bytes gauge\n");
        let _ = writeln!(out, "smtp_auth_insight_store_size_bytes {store_bytes}");
        out.push_str("# HELP smtp_auth_insight_outbox_queued Mails waiting for delivery.\n");
        out.push_str("# TYPE smtp_auth_insight_outbox_queued gauge\n");
        let _ = writeln!(
            out,
            "smtp_auth_insight_outbox_queued {}",
            outbox.queued.load(Relaxed)
        );
        out.push_str(
            "# HELP smtp_auth_insight_mails_total Mails finished or retried, by outcome.\n",
        );
        out.push_str("# TYPE smtp_auth_insight_mails_total counter\n");
        for (label, v) in [
            ("sent", &outbox.sent),
            ("failed", &outbox.failed),
            ("retried", &outbox.temporary_failures),
        ] {
            let _ = writeln!(
                out,
                "smtp_auth_insight_mails_total{{outcome=\"{label}\"}} {}",
                v.load(Relaxed)
            );
        }
        out
    }
}

/// A counter with one label: its HELP and TYPE lines and a line per
/// value of the label.
fn counter_family<const N: usize>(
    out: &mut String,
    name: &str,
    help: &str,
    label: &str,
    values: [(&str, u64); N],
) {
    family(out, (name, "counter"), help, label, values);
}

/// A metric (name and type) with one label: its HELP and TYPE lines and a
/// line per value of the label.
fn family<const N: usize>(
    out: &mut String,
    (name, kind): (&str, &str),
    help: &str,
    label: &str,
    values: [(&str, u64); N],
) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (value, v) in values {
        let _ = writeln!(out, "{name}{{{label}=\"{value}\"}} {v}");
    }
}
