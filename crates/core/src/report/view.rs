//! What report templates see: the report model with numbers formatted,
//! percentages computed and legacy TLS flagged, so that templates (which
//! admins may rewrite) stay free of logic.

use super::Report;
use crate::event::Tls;
use crate::event::TlsCounts;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct View {
    pub title: String,
    pub start: String,
    pub end: String,
    pub timezone: String,
    /// "all sender domains", "sender domain example.com", ...
    pub scope: String,
    pub senders: u64,
    pub messages: u64,
    /// Of them, put in Postfix's hold queue by the policy service.
    pub held: u64,
    pub(crate) tls_keys: Vec<&'static str>,
    pub summary: Vec<Cell>,
    pub daily: Vec<Row>,
    /// The busiest senders, at most `top` of them.
    pub top: Vec<Row>,
    /// Senders not shown in `top` (they are in the CSV attachment).
    pub more: usize,
    /// Senders that used no TLS or TLS 1.0/1.1.
    pub(crate) legacy_senders: usize,
    /// Failed logins in the range.
    pub auth_failures: u64,
    /// Usernames with the most failed logins, at most `top` of them.
    pub failed_logins: Vec<Failed>,
    /// Usernames with failed logins not shown (they are in the CSV).
    pub(crate) more_failed: usize,
    /// Image sources of the charts (`cid:` in mail, data URIs in a file).
    pub charts: Charts,
}

/// Where the two chart images come from.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Charts {
    pub volume: String,
    pub tls: String,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Row {
    /// Date or sender.
    pub label: String,
    pub messages: u64,
    pub cells: Vec<Cell>,
    pub legacy: bool,
    /// Of `messages`, held (senders only).
    pub held: u64,
}

/// A username's failed logins.
#[derive(Debug, Clone, Serialize)]
pub struct Failed {
    pub label: String,
    pub count: u64,
    /// The username also sent messages in the range (else it may be one
    /// an attacker guessed).
    pub sent: bool,
}

/// One TLS class of a row: count and share.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    pub key: &'static str,
    pub count: u64,
    /// Share of the row's messages, one decimal ("12.5").
    pub percent: String,
    /// A legacy class with messages in it: shown highlighted.
    pub alert: bool,
}

impl Row {
    fn new(label: String, messages: u64, tls: &TlsCounts) -> Row {
        Row {
            label,
            messages,
            cells: cells(tls),
            legacy: tls.legacy() > 0,
            held: 0,
        }
    }
}

fn cells(c: &TlsCounts) -> Vec<Cell> {
    Tls::ALL
        .iter()
        .map(|t| Cell {
            key: t.key(),
            count: c.get(*t),
            percent: format!("{:.1}", c.percent(*t)),
            alert: t.is_legacy() && c.get(*t) > 0,
        })
        .collect()
}

impl View {
    pub(crate) fn new(report: &Report, top: usize, charts: Charts) -> View {
        let scope = match report.domain.as_deref() {
            None => "all sender domains".to_owned(),
            Some("") => "senders without a domain".to_owned(),
            Some(d) => format!("sender domain {d}"),
        };
        View {
            title: format!("SMTP AUTH report {} to {}", report.start, report.end),
            start: report.start.to_string(),
            end: report.end.to_string(),
            timezone: report.timezone.clone(),
            scope,
            senders: report.summary.senders,
            messages: report.summary.messages,
            held: report.summary.held,
            tls_keys: Tls::ALL.iter().map(|t| t.key()).collect(),
            summary: cells(&report.summary.tls),
            daily: report
                .daily
                .iter()
                .map(|d| Row::new(d.date.to_string(), d.messages, &d.tls))
                .collect(),
            top: report
                .senders
                .iter()
                .take(top)
                .map(|s| Row {
                    held: s.held,
                    ..Row::new(s.sender.clone(), s.messages, &s.tls)
                })
                .collect(),
            more: report.senders.len().saturating_sub(top),
            legacy_senders: report.senders.iter().filter(|s| s.tls.legacy() > 0).count(),
            auth_failures: report.summary.auth_failures,
            failed_logins: report
                .auth_failures
                .iter()
                .take(top)
                .map(|f| Failed {
                    label: f.sender.clone(),
                    count: f.count,
                    sent: report.senders.iter().any(|s| s.sender == f.sender),
                })
                .collect(),
            more_failed: report.auth_failures.len().saturating_sub(top),
            charts,
        }
    }
}
