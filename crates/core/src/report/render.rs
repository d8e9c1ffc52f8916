//! Renderers for the report model: CSV and plain text (JSON is serde).

use super::Report;
use crate::event::{Tls, sender_domain};
use std::collections::{HashMap, HashSet};
use std::fmt::Write;

/// The sender table as CSV: one row per sender, count and percentage per TLS
/// class and failed logins, then the usernames that only failed to log in
/// (no messages). Cells are quoted as RFC 4180 requires and cells a
/// spreadsheet would run as a formula are defused.
pub fn csv(report: &Report) -> String {
    let rows = report.senders.len() + report.auth_failures.len();
    let mut out = String::with_capacity(80 + rows * 100);
    out.push_str("sender,domain,messages");
    for tls in Tls::ALL {
        let _ = write!(out, ",{k},{k} %", k = tls.key());
    }
    out.push_str(",auth_failures");
    // Only where the policy service held any: the columns stay as they were.
    let held = report.summary.held > 0;
    out.push_str(if held { ",held\r\n" } else { "\r\n" });
    let failed: HashMap<&str, u64> = report
        .auth_failures
        .iter()
        .map(|f| (f.sender.as_str(), f.count))
        .collect();
    for row in &report.senders {
        out.push_str(&csv_cell(&row.sender));
        out.push(',');
        out.push_str(&csv_cell(&row.domain));
        let _ = write!(out, ",{}", row.messages);
        for tls in Tls::ALL {
            let _ = write!(out, ",{},{:.1}", row.tls.get(tls), row.tls.percent(tls));
        }
        let failures = failed.get(row.sender.as_str()).copied().unwrap_or(0);
        let _ = write!(out, ",{failures}");
        if held {
            let _ = write!(out, ",{}", row.held);
        }
        out.push_str("\r\n");
    }
    let sent: HashSet<&str> = report.senders.iter().map(|r| r.sender.as_str()).collect();
    for f in report
        .auth_failures
        .iter()
        .filter(|f| !sent.contains(f.sender.as_str()))
    {
        out.push_str(&csv_cell(&f.sender));
        out.push(',');
        out.push_str(&csv_cell(sender_domain(&f.sender)));
        out.push_str(",0");
        for _ in Tls::ALL {
            out.push_str(",0,0.0");
        }
        let _ = write!(out, ",{}{}\r\n", f.count, if held { ",0" } else { "" });
    }
    out
}

/// One CSV cell: a leading `=`, `+`, `-`, `@`, tab or CR gets a `'` so that
/// spreadsheet programs show it as text instead of evaluating it.
pub(crate) fn csv_cell(value: &str) -> String {
    let defused = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if defused.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", defused.replace('"', "\"\""))
    } else {
        defused
    }
}

/// A plain-text report for terminals and the text part of mails.
pub fn text(report: &Report) -> String {
    let mut out = String::new();
    let scope = match report.domain.as_deref() {
        None => "all sender domains".to_owned(),
        Some("") => "senders without a domain".to_owned(),
        Some(d) => format!("sender domain {d}"),
    };
    let s = &report.summary;
    let _ = writeln!(
        out,
        "SMTP AUTH report {} to {} ({}), {scope}",
        report.start, report.end, report.timezone
    );
    let _ = writeln!(
        out,
        "{} senders used SMTP AUTH; {} messages.",
        s.senders, s.messages
    );
    let mix: Vec<String> = Tls::ALL
        .iter()
        .map(|t| format!("{} {} ({:.1}%)", t.key(), s.tls.get(*t), s.tls.percent(*t)))
        .collect();
    let _ = writeln!(out, "TLS usage: {}", mix.join(", "));
    if s.held > 0 {
        let _ = writeln!(
            out,
            "{} of them put in Postfix's hold queue by the policy service (held).",
            s.held
        );
    }
    if s.auth_failures > 0 {
        let _ = writeln!(
            out,
            "{} failed logins by {} usernames.",
            s.auth_failures,
            report.auth_failures.len()
        );
    }
    let legacy = report.senders.iter().filter(|r| r.tls.legacy() > 0).count();
    if legacy > 0 {
        let _ = writeln!(
            out,
            "{legacy} senders used no TLS or TLS 1.0/1.1 (marked *)."
        );
    }
    let _ = writeln!(out, "\nDaily volume");
    let _ = writeln!(
        out,
        "{:<10} {:>9}{} {:>8}",
        "date",
        "messages",
        tls_header(),
        "failed"
    );
    for d in &report.daily {
        let _ = writeln!(
            out,
            "{:<10} {:>9}{} {:>8}",
            d.date,
            d.messages,
            tls_cells(&d.tls),
            d.auth_failures
        );
    }
    let width = report
        .senders
        .iter()
        .map(|r| r.sender.chars().count())
        .max()
        .unwrap_or(6)
        .clamp(6, 60);
    let _ = writeln!(out, "\nSenders");
    let _ = writeln!(
        out,
        "  {:<width$} {:>9}{}",
        "sender",
        "messages",
        tls_header()
    );
    for r in &report.senders {
        let mark = if r.tls.legacy() > 0 { '*' } else { ' ' };
        let held = match r.held {
            0 => String::new(),
            n => format!("  held {n}"),
        };
        let _ = writeln!(
            out,
            "{mark} {:<width$} {:>9}{}{held}",
            r.sender,
            r.messages,
            tls_cells(&r.tls)
        );
    }
    if !report.auth_failures.is_empty() {
        let _ = writeln!(out, "\nFailed logins");
        let _ = writeln!(out, "  {:<width$} {:>9}", "username", "failed");
        for f in &report.auth_failures {
            let _ = writeln!(out, "  {:<width$} {:>9}", f.sender, f.count);
        }
    }
    out
}

fn tls_header() -> String {
    Tls::ALL
        .iter()
        .map(|t| format!(" {:>8}", t.key()))
        .collect()
}

fn tls_cells(c: &crate::event::TlsCounts) -> String {
    Tls::ALL
        .iter()
        .map(|t| format!(" {:>8}", c.get(*t)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_defused() {
        assert_eq!(csv_cell("alice@example.com"), "alice@example.com");
        assert_eq!(
            csv_cell("=HYPERLINK(\"http://x\")"),
            "\"'=HYPERLINK(\"\"http://x\"\")\""
        );
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
    }
}
