//! Renderers for the report model: CSV and plain text (JSON is serde).

use super::Report;
use crate::event::Tls;
use std::fmt::Write;

/// The sender table as CSV: one row per sender, count and percentage per TLS
/// class. Cells are quoted as RFC 4180 requires and cells a spreadsheet would
/// run as a formula are defused.
pub fn csv(report: &Report) -> String {
    let mut out = String::with_capacity(64 + report.senders.len() * 96);
    out.push_str("sender,domain,messages");
    for tls in Tls::ALL {
        let _ = write!(out, ",{k},{k} %", k = tls.key());
    }
    out.push_str("\r\n");
    for row in &report.senders {
        out.push_str(&csv_cell(&row.sender));
        out.push(',');
        out.push_str(&csv_cell(&row.domain));
        let _ = write!(out, ",{}", row.messages);
        for tls in Tls::ALL {
            let _ = write!(out, ",{},{:.1}", row.tls.get(tls), row.tls.percent(tls));
        }
        out.push_str("\r\n");
    }
    out
}

/// One CSV cell: a leading `=`, `+`, `-`, `@`, tab or CR gets a `'` so that
/// spreadsheet programs show it as text instead of evaluating it.
pub fn csv_cell(value: &str) -> String {
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
    let legacy = report.senders.iter().filter(|r| r.tls.legacy() > 0).count();
    if legacy > 0 {
        let _ = writeln!(
            out,
            "{legacy} senders used no TLS or TLS 1.0/1.1 (marked *)."
        );
    }
    let _ = writeln!(out, "\nDaily volume");
    let _ = writeln!(out, "{:<10} {:>9}{}", "date", "messages", tls_header());
    for d in &report.daily {
        let _ = writeln!(out, "{:<10} {:>9}{}", d.date, d.messages, tls_cells(&d.tls));
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
        let _ = writeln!(
            out,
            "{mark} {:<width$} {:>9}{}",
            r.sender,
            r.messages,
            tls_cells(&r.tls)
        );
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
