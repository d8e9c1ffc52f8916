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
    pub(crate) intro: String,
    pub alerts: Vec<AlertRow>,
    /// The dashboard, where recent alerts are listed.
    pub link: String,
}

#[derive(Debug, Serialize)]
pub struct AlertRow {
    pub(crate) heading: String,
    pub status: &'static str,
    pub sender: String,
    /// Local time of the configured time zone.
    pub at: String,
    pub detail: String,
    pub(crate) show_numbers: bool,
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
    pub(crate) sender_link: String,
    /// The containment this alert began, when the policy service stops
    /// the account: the mail says so itself.
    pub contained: Option<Contained>,
}

/// A containment as an alert mail announces it.
#[derive(Debug, Clone, Serialize)]
pub struct Contained {
    /// Whose messages: "this account submits", or "any account submits
    /// from this address" (a `shared_ip` alert contains its address).
    pub subject: &'static str,
    /// What happens to the account's mail ("are rejected with 5.7.1").
    pub effect: String,
    /// Until when, local time, unless released earlier.
    pub until: String,
    /// The command that releases the account, quoted for a shell.
    pub release: String,
}

impl AlertView {
    /// Announces in row `index` that its alert contained the account
    /// `until` (Unix seconds), and says so in the title (the Subject).
    pub fn contain(&mut self, index: usize, effect: &str, until: i64, ctx: Context<'_>) {
        let Some(row) = self.alerts.get_mut(index) else {
            return;
        };
        let until = chrono::DateTime::from_timestamp(until, 0)
            .unwrap_or_default()
            .with_timezone(&ctx.tz)
            .format("%Y-%m-%d %H:%M %Z")
            .to_string();
        row.contained = Some(Contained {
            subject: match row.sender.parse::<std::net::IpAddr>() {
                Ok(_) => "any account submits from this address",
                Err(_) => "this account submits",
            },
            effect: effect.to_owned(),
            until,
            release: format!("{} release {}", ctx.cli, shell_quote(&row.sender)),
        });
        if !self.title.starts_with("Contained: ") {
            self.title = format!("Contained: {}", self.title);
        }
    }
}

/// Most alerts listed in one mail; the rest are counted and left to the API.
pub(crate) const MAX_LISTED: usize = 200;

/// Where an alert mail's links and commands point.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// Zone of the times shown.
    pub tz: Tz,
    /// The dashboard's base URL.
    pub base: &'a str,
    /// How the command line is called on the server: `smtp-auth-insight`,
    /// with `--config FILE` when the daemon's configuration is elsewhere
    /// than the installed one (already quoted for a shell).
    pub cli: &'a str,
}

/// Builds the view of `alerts`; `digest` for the daily legacy-TLS digest.
pub fn view(alerts: &[Alert], ctx: Context<'_>, digest: bool) -> AlertView {
    let rows: Vec<AlertRow> = alerts
        .iter()
        .take(MAX_LISTED)
        .map(|a| row(a, ctx))
        .collect();
    let title = if digest {
        format!(
            "{} sender{} started using legacy TLS or no TLS",
            alerts.len(),
            plural(alerts.len())
        )
    } else if let [only] = alerts {
        format!("{}: {}", heading(only), subject_name(&only.sender))
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
        link: format!("{}/", ctx.base),
    }
}

/// Longest name shown in a title (and so in a Subject).
const MAX_TITLE_NAME: usize = 64;

/// A name as a title (and a mail's Subject) shows it. Usernames of failed
/// logins are chosen by whoever tries them, so a name is always quoted,
/// and one holding anything but the characters of an address or username
/// (spaces, ':', '/', letters of other scripts that imitate them) is not
/// shown at all: a Subject must not read as a message from the attacker.
/// The body lists the name, escaped by the templates.
pub fn subject_name(name: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "@._+-".contains(c);
    if name.len() <= MAX_TITLE_NAME && name.chars().all(plain) {
        format!("\"{name}\"")
    } else {
        "a name with unusual characters (see the mail)".to_owned()
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

fn row(a: &Alert, ctx: Context<'_>) -> AlertRow {
    let (tz, base, cli) = (ctx.tz, ctx.base, ctx.cli);
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
    // Pasted into a root shell on the server: every part from the alert
    // (a domain is attacker-chosen) is quoted.
    let command = match a.kind {
        AlertKind::AuthFailures | AlertKind::SharedIp => format!("{cli} alerts --since {day}"),
        _ => format!(
            "{cli} report --start {day} --end {day} --domain {} --format text",
            shell_quote(if domain.is_empty() { "(none)" } else { domain })
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
        contained: None,
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

/// `text` as one word for a POSIX shell: unchanged when it holds only
/// characters no shell treats specially, else in single quotes (a quote
/// inside closes, escapes and reopens them).
pub fn shell_quote(text: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        return text.to_owned();
    }
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// A view with every field filled, to check templates at start-up.
pub(crate) fn sample() -> AlertView {
    let ctx = Context {
        tz: Tz::UTC,
        base: "http://127.0.0.1:8587",
        cli: "smtp-auth-insight",
    };
    view(&[sample_alert()], ctx, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attacker_chosen_names_reach_the_title_quoted_or_not_at_all() {
        let ctx = Context {
            tz: Tz::UTC,
            base: "https://x.example",
            cli: "smtp-auth-insight",
        };
        let mut a = sample_alert();
        a.kind = AlertKind::AuthFailures;
        let title = |a: &Alert| view(std::slice::from_ref(a), ctx, false).title;
        assert_eq!(title(&a), "Failed login burst: \"sample@example.com\"");
        a.sender = "urgent: your mailbox is locked, restore at https://evil.example/login".into();
        let t = title(&a);
        assert!(!t.contains("evil") && !t.contains("urgent"), "{t}");
        a.sender = "x".repeat(MAX_TITLE_NAME + 1);
        assert!(!title(&a).contains("xxx"));
    }

    #[test]
    fn a_flood_of_alerts_is_listed_up_to_the_cap() {
        let many = vec![sample_alert(); MAX_LISTED + 7];
        let ctx = Context {
            tz: Tz::UTC,
            base: "https://x.example",
            cli: "smtp-auth-insight --config /srv/sai.toml",
        };
        let v = view(&many, ctx, true);
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

    #[test]
    fn commands_in_mails_quote_what_an_attacker_chose() {
        assert_eq!(shell_quote("example.com"), "example.com");
        assert_eq!(shell_quote("(none)"), "'(none)'");
        let hostile = "a'$(touch /tmp/pwned)'";
        assert_eq!(shell_quote(hostile), r"'a'\''$(touch /tmp/pwned)'\'''");
        let alert = Alert {
            sender: format!("x@{hostile}"),
            ..sample_alert()
        };
        let ctx = Context {
            tz: Tz::UTC,
            base: "https://x.example",
            cli: "smtp-auth-insight",
        };
        let row = &view(&[alert], ctx, false).alerts[0];
        assert_eq!(
            row.command,
            format!(
                "smtp-auth-insight report --start 2026-01-01 --end 2026-01-01 --domain {} --format text",
                shell_quote(hostile)
            )
        );
        // Run by a real shell, the quoted domain is one argument, verbatim.
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf %s {}", shell_quote(hostile)))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), hostile);
    }
}
