//! What `check-config` says the daemon will do with a configuration: its
//! inputs, where mail goes, who is alerted, the policy service, and when
//! each schedule runs next. Read by an admin before a restart, so it names
//! what the file leaves to defaults too.

use crate::config::Config;
use crate::outbox::{Security, TransportKind};
use crate::policy::ContainAction;
use crate::source::SourceKind;
use chrono::{DateTime, Utc};
use std::fmt::Write;

/// The lines `check-config` prints after "config OK".
pub(super) fn summary(config: &Config, now: DateTime<Utc>) -> String {
    let mut out = String::new();
    if config.sources.is_empty() {
        out.push_str("sources: none (events only through POST /api/v1/events and import)\n");
    }
    for s in &config.sources {
        let what = match (s.kind, &s.path, &s.directory) {
            (SourceKind::Journald, _, Some(dir)) => format!("journal in {}", dir.display()),
            (SourceKind::Journald, _, None) => "the system journal".to_owned(),
            (_, Some(path), _) => path.display().to_string(),
            (_, None, _) => "(no path)".to_owned(),
        };
        let _ = writeln!(out, "source {}: {what}", s.kind.name());
    }
    let mail = &config.mail;
    let _ = match mail.transport {
        TransportKind::File => writeln!(
            out,
            "mail: written as .eml files to {} (no relay configured)",
            mail.dir
                .clone()
                .unwrap_or_else(|| config.store.data_dir.join("mail"))
                .display()
        ),
        TransportKind::Smtp => writeln!(
            out,
            "mail: SMTP relay {}:{} ({}), from {}",
            mail.host,
            mail.port,
            match mail.security {
                Security::Starttls => "STARTTLS",
                Security::Tls => "TLS",
                Security::None => "no TLS",
            },
            mail.from
        ),
    };
    let detect = &config.detect;
    let _ = match detect.recipients.as_slice() {
        [] => writeln!(out, "alert mails: none (detect.recipients is empty)"),
        to => writeln!(out, "alert mails: to {}", to.join(", ")),
    };
    if !detect.webhooks.is_empty() {
        let _ = writeln!(out, "alert webhooks: {}", detect.webhooks.len());
    }
    let policy = &config.policy;
    let _ = match &policy.listen {
        None => writeln!(out, "policy service: off (policy.listen is not set)"),
        Some(listen) => writeln!(
            out,
            "policy service: {listen}, action {}, containing on {} alerts for {} h{}",
            match policy.action {
                ContainAction::Monitor => "monitor (counts only)",
                ContainAction::Hold => "hold",
                ContainAction::Defer => "defer",
                ContainAction::Reject => "reject",
            },
            {
                let kinds: Vec<&str> = policy.kinds.iter().map(|k| k.name()).collect();
                match kinds.split_last() {
                    Some((last, rest)) if !rest.is_empty() => {
                        format!("{} and {last}", rest.join(", "))
                    }
                    _ => kinds.join(""),
                }
            },
            policy.hold_hours,
            match policy.remind_hours {
                h if h > 0.0 => format!(", a reminder every {h} h"),
                _ => String::new(),
            }
        ),
    };
    if config.schedules.is_empty() {
        out.push_str("schedules: none\n");
    }
    for s in &config.schedules {
        let tz = s.timezone.as_ref().map_or(config.timezone.0, |t| t.0);
        let next = crate::schedule::parse_cron(&s.cron)
            .ok()
            .and_then(|cron| crate::schedule::next_slot(&cron, tz, now))
            .map_or_else(
                || "never".to_owned(),
                |t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string(),
            );
        let _ = writeln!(
            out,
            "schedule {}: {:?} in {}, to {}; next run {next}",
            s.name,
            s.cron,
            tz.name(),
            s.recipients.join(", ")
        );
    }
    out
}
