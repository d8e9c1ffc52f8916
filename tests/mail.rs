//! Report mails delivered over real SMTP (aiosmtpd) and read back as MIME.

mod common;

use common::*;
use mail_parser::{MessageParser, MimeHeaders};
use serde_json::Value;

#[test]
fn report_mail_reaches_a_real_smtp_server_with_text_html_and_csv() {
    let smtp = SmtpSink::start();
    let site = Site::new(&format!(
        "store.retention_days = 3650\n[mail]\ntransport = \"smtp\"\nport = {}\nsecurity = \"none\"\nallowed_recipients = [\"@example.com\", \"ciso@corp.example\"]\n",
        smtp.port
    ));
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/mta");
    assert!(
        site.cli(&[
            "import",
            "--format",
            "postfix",
            &format!("{dir}/postfix-rsyslog.log")
        ])
        .status
        .success()
    );
    // Hostile sender names, as an attacker could choose them.
    let hostile = site.dir.path().join("hostile.ndjson");
    let lines: Vec<String> = [
        "<img src=x onerror=alert(1)>@example.com",
        "=HYPERLINK(\"http://evil.example\")",
    ]
    .iter()
    .map(|s| event_line("2026-11-27T10:00:00Z", s, "none", None))
    .collect();
    std::fs::write(&hostile, lines.join("\n")).unwrap();
    assert!(
        site.cli(&["import", "--format", "ndjson", hostile.to_str().unwrap()])
            .status
            .success()
    );

    // `report` over the day of the fixtures, with more arguments.
    let report_cli = |more: &[&str]| {
        site.cli(
            &[
                &["report", "--start", "2026-11-27", "--end", "2026-11-27"][..],
                more,
            ]
            .concat(),
        )
    };
    let refused = report_cli(&["--send", "--to", "someone@elsewhere.example"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("someone@elsewhere.example is not in mail.allowed_recipients")
    );
    assert!(smtp.messages().is_empty(), "a refused recipient got mail");

    let out = report_cli(&["--send", "--to", "admin@example.com", "ciso@corp.example"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&report_cli(&["--format", "json"]).stdout).unwrap();
    let csv = String::from_utf8(report_cli(&["--format", "csv"]).stdout).unwrap();

    let raw = smtp.messages();
    assert_eq!(raw.len(), 1, "one message for both recipients");
    let msg = MessageParser::default().parse(&raw[0]).unwrap();
    let senders = report["summary"]["senders"].as_u64().unwrap();
    assert_eq!(
        msg.subject().unwrap(),
        format!("SMTP AUTH report 2026-11-27 to 2026-11-27: {senders} senders")
    );
    let to: Vec<String> = msg
        .to()
        .unwrap()
        .iter()
        .map(|a| a.address().unwrap().to_owned())
        .collect();
    assert_eq!(to, ["admin@example.com", "ciso@corp.example"]);

    let text = msg.body_text(0).unwrap();
    assert!(
        text.starts_with(&format!("{senders} senders used SMTP AUTH\n")),
        "{text}"
    );
    let messages = report["summary"]["messages"].as_u64().unwrap();
    assert!(text.contains(&format!("{messages} messages")), "{text}");

    let html = msg.body_html(0).unwrap();
    assert!(
        html.contains(&format!("{senders} senders used SMTP AUTH")),
        "{html}"
    );
    for row in report["senders"].as_array().unwrap() {
        let name = row["sender"].as_str().unwrap();
        let escaped = name
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('=', "&#x3D;");
        assert!(
            html.contains(&escaped),
            "{name} missing or unescaped in HTML"
        );
        assert!(
            html.contains(&format!(
                "<td style=\"text-align:right;\">{}</td>",
                row["messages"]
            )),
            "{name}"
        );
    }
    assert!(
        !html.contains("<img src=x"),
        "markup from a sender name reached the HTML"
    );

    let attachment = msg.attachments().next().expect("CSV attachment");
    assert_eq!(
        attachment.attachment_name(),
        Some("smtp-auth-senders-2026-11-27-2026-11-27.csv")
    );
    assert_eq!(attachment.content_type().unwrap().ctype(), "text");
    assert_eq!(
        std::str::from_utf8(attachment.contents()).unwrap(),
        csv,
        "the CSV attachment is the store's table"
    );
    assert!(
        csv.contains("\"'=hyperlink("),
        "formula defused in CSV: {csv}"
    );
}
