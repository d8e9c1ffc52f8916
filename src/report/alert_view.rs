//! What alert templates see: a group of alerts raised close together, or
//! the daily digest of senders newly seen with legacy TLS, with times in
//! the configured zone and links into the dashboard, so that the templates
//! (which admins may rewrite) stay free of logic.

use super::links;
use crate::detect::{Alert, AlertKind, AlertStatus};
use chrono_tz::Tz;
use serde::Serialize;

/// What the alert templates see.
#[derive(Debug, Serialize)]
pub struct AlertView {
    pub title: String,
    pub intro: String,
    pub alerts: Vec<AlertRow>,
    /// The dashboard, where recent alerts are listed.
    pub link: String,
}

#[derive(Debug, Serialize)]
pub struct AlertRow {
    pub heading: String,
    pub status: &'static str,
    pub sender: String,
    /// Local time of the configured time zone.
    pub at: String,
    pub detail: String,
    pub show_numbers: bool,
    pub observed: u64,
    pub expected: f64,
    pub threshold: String,
    pub client_ips: String,
    pub tls: String,
    /// Left border colour: red for incidents, green once resolved.
    pub colour: &'static str,
    /// A command that shows the account's traffic.
    pub command: String,
    /// The account's page in the dashboard (empty for a client IP).
    pub sender_link: String,
}

/// Most alerts listed in one mail; the rest are counted and left to the API.
pub const MAX_LISTED: usize = 200;

/// Builds the view of `alerts`; `base` is the dashboard's URL; `digest`
/// for the daily legacy-TLS digest.
pub fn view(alerts: &[Alert], tz: Tz, base: &str, digest: bool) -> AlertView {
    let rows: Vec<AlertRow> = alerts
        .iter()
        .take(MAX_LISTED)
        .map(|a| row(a, tz, base))
        .collect();
    let title = if digest {
        format!(
            "{} sender{} started using legacy TLS or no TLS",
            alerts.len(),
            plural(alerts.len())
        )
    } else if let [only] = alerts {
        format!("{}: {}", heading(only), only.sender)
    } else {
        format!("{} SMTP AUTH alerts", alerts.len())
    };
    let mut intro = if digest {
        "Each sender is reported once, on its first submission below the minimum TLS version."
            .to_owned()
    } else {
        "Raised by smtp-auth-insight from the SMTP AUTH submissions it counts.".to_owned()
    };
    if alerts.len() > MAX_LISTED {
        intro.push_str(&format!(
            " The first {MAX_LISTED} are listed; the other {} are in the alert log below.",
            alerts.len() - MAX_LISTED
        ));
    }
    AlertView {
        title,
        intro,
        alerts: rows,
        link: format!("{base}/"),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn heading(a: &Alert) -> String {
    match a.status {
        AlertStatus::Firing => a.kind.title().to_owned(),
        AlertStatus::Ongoing => format!("{} (ongoing)", a.kind.title()),
        AlertStatus::Resolved => format!("Resolved: {}", a.kind.title().to_lowercase()),
    }
}

fn row(a: &Alert, tz: Tz, base: &str) -> AlertRow {
    let local = a.at.with_timezone(&tz);
    let day = local.date_naive();
    let week_before = day - chrono::Days::new(6);
    let sender_link = if a.sender.parse::<std::net::IpAddr>().is_ok() {
        String::new()
    } else {
        format!(
            "{base}{}?start={week_before}&end={day}",
            links::sender_path(&a.sender)
        )
    };
    let domain = crate::event::sender_domain(&a.sender);
    let command = match a.kind {
        AlertKind::AuthFailures => {
            format!("curl -H 'Authorization: Bearer …' '{base}/api/v1/alerts?since={day}'")
        }
        _ => format!(
            "smtp-auth-insight report --start {day} --end {day} --domain '{}' --format text",
            if domain.is_empty() { "" } else { domain }
        ),
    };
    AlertRow {
        heading: heading(a),
        status: a.status.label(),
        sender: a.sender.clone(),
        at: local.format("%Y-%m-%d %H:%M:%S %Z").to_string(),
        detail: a.detail.clone(),
        show_numbers: a.kind != AlertKind::LegacyTls,
        observed: a.observed,
        expected: a.expected,
        threshold: a.threshold.map(|t| t.to_string()).unwrap_or_default(),
        client_ips: a.client_ips.join(", "),
        tls: a.tls.map(|t| t.key().to_owned()).unwrap_or_default(),
        colour: match (a.status, a.kind) {
            (AlertStatus::Resolved, _) => "#1a7f37",
            (_, AlertKind::LegacyTls) => "#bf8700",
            _ => "#cf222e",
        },
        command,
        sender_link,
    }
}

/// An alert with every field filled.
pub fn sample_alert() -> Alert {
    Alert {
        kind: AlertKind::VolumeSpike,
        sender: "sample@example.com".into(),
        at: chrono::DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default(),
        observed: 40,
        expected: 2.5,
        detail: "sample".into(),
        status: AlertStatus::Firing,
        threshold: Some(25),
        client_ips: vec!["192.0.2.1".into()],
        tls: Some(crate::event::Tls::V1_2),
    }
}

/// A view with every field filled, to check templates at start-up.
pub fn sample() -> AlertView {
    view(&[sample_alert()], Tz::UTC, "http://127.0.0.1:8587", false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_alerts_is_listed_up_to_the_cap() {
        let many = vec![sample_alert(); MAX_LISTED + 7];
        let v = view(&many, Tz::UTC, "https://x.example", true);
        assert_eq!(v.alerts.len(), MAX_LISTED);
        assert!(
            v.title.starts_with(&format!("{} senders", MAX_LISTED + 7)),
            "{}",
            v.title
        );
        assert!(v.intro.contains("the other 7"), "{}", v.intro);
        assert_eq!(
            v.alerts[0].sender_link,
            "https://x.example/senders/sample%40example.com?start=2025-12-26&end=2026-01-01"
        );
    }
}
