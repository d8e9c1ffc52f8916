//! Report mails delivered over real SMTP (aiosmtpd) and read back as MIME.

mod common;

use common::*;
use mail_parser::{MessageParser, MimeHeaders};
use serde_json::Value;

const ALLOW: &str = "allowed_recipients = [\"@example.com\"]";

#[test]
fn report_mail_reaches_a_real_smtp_server_with_text_html_and_csv() {
    let smtp = SmtpSink::start();
    let site = mail_site(
        smtp.port,
        "allowed_recipients = [\"@example.com\", \"ciso@corp.example\"]",
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
        let escaped = html_escaped(name);
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
    // The fixture's failed logins (real Postfix, wrong passwords): the
    // total and each username, in both parts.
    let failed = report["summary"]["auth_failures"].as_u64().unwrap();
    assert!(failed > 0, "{report}");
    assert!(text.contains(&format!("Failed logins: {failed}")), "{text}");
    assert!(html.contains(&format!("Failed logins: {failed}")), "{html}");
    for f in report["auth_failures"].as_array().unwrap() {
        let (user, count) = (f["sender"].as_str().unwrap(), &f["count"]);
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with(&format!("{user}  {count}"))),
            "{user} in {text}"
        );
        assert!(
            html.contains(&html_escaped(user)),
            "{user} missing or unescaped in HTML"
        );
    }

    // Both charts are inline PNGs, referenced from the HTML by Content-ID.
    for cid in ["volume", "tls"] {
        assert!(
            html.contains(&format!("src=\"cid:{cid}\"")),
            "{cid} not referenced"
        );
        let part = msg
            .parts
            .iter()
            .find(|p| p.content_id() == Some(cid))
            .expect("inline chart part");
        assert_eq!(part.content_type().unwrap().subtype(), Some("png"));
        let png = png::Decoder::new(std::io::Cursor::new(part.contents()))
            .read_info()
            .unwrap();
        assert_eq!((png.info().width, png.info().height), (680, 250), "{cid}");
    }
    let attachment = msg
        .attachments()
        .find(|a| a.attachment_name().is_some_and(|n| n.ends_with(".csv")))
        .expect("CSV attachment");
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

/// `text` as handlebars escapes it in HTML.
fn html_escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('=', "&#x3D;")
}

/// A site mailing through the relay on `port`, with the rsyslog fixture
/// imported; `mail` adds keys to `[mail]`.
fn mail_site(port: u16, mail: &str) -> Site {
    let site = Site::new(&format!(
        "store.retention_days = 3650\nserver.report_requests_per_hour = 3\n[mail]\ntransport = \"smtp\"\nport = {port}\nsecurity = \"none\"\nretry_initial_seconds = 1\nretry_max_seconds = 1\n{mail}\n"
    ));
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/mta");
    let import = site.cli(&[
        "import",
        "--format",
        "postfix",
        &format!("{dir}/postfix-rsyslog.log"),
    ]);
    assert!(import.status.success());
    site
}

#[tokio::test(flavor = "multi_thread")]
async fn webhook_queues_a_report_that_reaches_the_relay_and_refuses_bad_orders() {
    let smtp = SmtpSink::start();
    let site = mail_site(smtp.port, ALLOW);
    let d = site.start();
    let order = serde_json::json!({"start": "2026-11-27", "end": "2026-11-27", "recipients": ["admin@example.com"]});

    // Refusals first: none of them queues anything.
    let r = order_report(&d, TOKEN, serde_json::json!({"start": "2026-11-27", "end": "2026-11-27", "recipients": ["admin@example.com", "x@evil.example"]})).await;
    assert_eq!(r.status(), 422);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("x@evil.example is not in mail.allowed_recipients")
    );
    let r = order_report(&d, TOKEN, serde_json::json!({"start": "2026-11-28", "end": "2026-11-27", "recipients": ["admin@example.com"]})).await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("is after end"));
    let r = order_report(
        &d,
        TOKEN,
        serde_json::json!({"recipients": ["admin@example.com"], "cc": ["x@evil.example"]}),
    )
    .await;
    assert_eq!(r.status(), 400);
    assert_eq!(order_report(&d, "wrong", order.clone()).await.status(), 401);
    // Header injection through the order: refused before anything is built.
    let r = order_report(&d, TOKEN, serde_json::json!({"domain": "example.com\r\nBcc: x@evil.example", "recipients": ["admin@example.com"]})).await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("is not a domain name"));
    let r = order_report(
        &d,
        TOKEN,
        serde_json::json!({"recipients": ["admin@example.com\r\nBcc: x@evil.example"]}),
    )
    .await;
    assert_eq!(r.status(), 422);

    let r = order_report(&d, TOKEN, order.clone()).await;
    assert_eq!(r.status(), 202);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "queued");
    let id = body["id"].as_str().unwrap().to_owned();
    let s = wait_status(&d, &id, |s| s["status"] == "sent").await;
    assert_eq!(s["attempts"], 1);
    let raw = smtp.messages();
    assert_eq!(raw.len(), 1);
    let msg = MessageParser::default().parse(&raw[0]).unwrap();
    assert_eq!(
        msg.subject().unwrap(),
        "SMTP AUTH report 2026-11-27 to 2026-11-27: 4 senders"
    );
    assert!(
        msg.header("Bcc").is_none() && msg.header("Cc").is_none(),
        "no injected recipients"
    );
    assert_eq!(
        msg.attachments()
            .filter(|a| a.attachment_name().is_some_and(|n| n.ends_with(".csv")))
            .count(),
        1
    );

    // Webhook senders often post text/plain: the body is read as JSON
    // whatever its type, and refused, naming why, when it is not JSON.
    let plain = |body: String| {
        client()
            .post(d.url("/api/v1/reports"))
            .bearer_auth(TOKEN)
            .header("content-type", "text/plain")
            .body(body)
            .send()
    };
    let r = plain("recipients: admin@example.com".into()).await.unwrap();
    assert_eq!(r.status(), 400);
    let why = r.text().await.unwrap();
    assert!(why.contains("not a report order (a JSON object)"), "{why}");
    // The rate limit: 3 an hour, one already used above.
    assert_eq!(plain(order.to_string()).await.unwrap().status(), 202);
    assert_eq!(order_report(&d, TOKEN, order.clone()).await.status(), 202);
    let r = order_report(&d, TOKEN, order.clone()).await;
    assert_eq!(r.status(), 429);
    let retry_after: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=1200).contains(&retry_after), "{retry_after}");
    assert_eq!(api_get(&d, "/api/v1/reports/nope").await.0, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn relay_outage_keeps_the_mail_queued_across_a_restart_then_delivers_it_once() {
    // The relay's port is held but refuses connections: a relay that is down.
    let mut smtp = SmtpSink::start_closed();
    let site = mail_site(smtp.port, ALLOW);
    let d = site.start();
    let id = queue_report(&d, "admin@example.com").await;
    let s = wait_status(&d, &id, |s| s["attempts"].as_u64().unwrap_or(0) >= 2).await;
    assert_eq!(s["status"], "queued");
    assert!(
        s["last_error"]
            .as_str()
            .unwrap()
            .contains("Connection refused"),
        "{s}"
    );
    assert!(
        metrics_text(&d)
            .await
            .contains("smtp_auth_insight_outbox_queued 1")
    );
    assert!(d.stop().success());

    // The relay comes back; so does the daemon, with the mail still queued.
    smtp.open();
    let d = site.start();
    let s = wait_status(&d, &id, |s| s["status"] == "sent").await;
    assert!(s["attempts"].as_u64().unwrap() >= 3, "{s}");
    // Sent means removed from the queue in the same transaction: nothing
    // is left that could deliver it again (the gauge follows the commit).
    wait_metrics(&d, ["smtp_auth_insight_outbox_queued"], |[q]| q == Some(0)).await;
    assert_eq!(smtp.messages().len(), 1, "delivered exactly once");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stop_during_a_delivery_finishes_it_and_the_mail_is_not_sent_again() {
    // The relay takes the message, then holds its answer for three seconds.
    let mut smtp = SmtpSink::start_with(&["--slow", "3"]);
    let site = mail_site(smtp.port, ALLOW);
    let d = site.start();
    let id = queue_report(&d, "admin@example.com").await;
    smtp.wait_line("received");
    // SIGTERM while the relay has the mail but has not answered: the
    // daemon waits for the answer and records it before it exits.
    assert!(d.stop().success());
    let d = site.start();
    let s = wait_status(&d, &id, |s| s["status"] != "queued").await;
    assert_eq!(s["status"], "sent", "{s}");
    assert_eq!(s["attempts"], 1, "{s}");
    assert!(
        metrics_text(&d)
            .await
            .contains("smtp_auth_insight_outbox_queued 0")
    );
    assert_eq!(
        smtp.messages().len(),
        1,
        "delivered once, not again after the restart"
    );
}

/// A private CA and a relay certificate for 127.0.0.1 signed by it, made
/// with openssl; returns (CA cert, relay cert, relay key).
fn private_ca(dir: &std::path::Path) -> (String, String, String) {
    let p = |n: &str| dir.join(n).to_str().unwrap().to_owned();
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=Test CA",
        "-keyout",
        &p("ca.key"),
        "-out",
        &p("ca.pem"),
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        &p("relay.key"),
        "-out",
        &p("relay.csr"),
    ]);
    std::fs::write(
        dir.join("ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        &p("relay.csr"),
        "-CA",
        &p("ca.pem"),
        "-CAkey",
        &p("ca.key"),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        &p("ext"),
        "-out",
        &p("relay.pem"),
    ]);
    (p("ca.pem"), p("relay.pem"), p("relay.key"))
}

#[test]
fn delivers_with_starttls_and_implicit_tls_to_a_self_signed_relay_with_auth() {
    let certs = tempfile::tempdir().unwrap();
    let (ca, ca_cert, ca_key) = private_ca(certs.path());
    let (self_signed, self_key) = self_signed(certs.path());
    // STARTTLS with a private CA's certificate, implicit TLS with a
    // self-signed one: each trusted through mail.ca_file.
    for (security, flag, cert, key, trust) in [
        ("starttls", "--starttls", &ca_cert, &ca_key, &ca),
        ("tls", "--tls", &self_signed, &self_key, &self_signed),
    ] {
        let smtp =
            SmtpSink::start_with(&[flag, cert, key, "--auth", "reports@example.com:s3cret pass"]);
        let port = smtp.port;
        let password_file = certs.path().join("password");
        std::fs::write(&password_file, "s3cret pass\n").unwrap();
        let mail = |extra: &str| {
            format!(
                "store.retention_days = 3650\n[mail]\ntransport = \"smtp\"\nport = {port}\nsecurity = \"{security}\"\nusername = \"reports@example.com\"\npassword_file = {password_file:?}\nallowed_recipients = [\"@example.com\"]\n{extra}"
            )
        };
        // Without trusting the certificate, delivery is refused.
        let site = Site::new(&mail("")).with_an_event();
        let out = site.cli(&["report", "--send", "--to", "admin@example.com"]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{security}: an untrusted certificate was accepted"
        );
        assert!(smtp.messages().is_empty());
        // Trusted through mail.ca_file: delivered, authenticated.
        let site = Site::new(&mail(&format!("ca_file = {trust:?}\n"))).with_an_event();
        let out = site.cli(&["report", "--send", "--to", "admin@example.com"]);
        assert!(
            out.status.success(),
            "{security}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(smtp.messages().len(), 1, "{security}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_permanent_refusal_fails_the_report_at_once_with_the_reason() {
    let smtp = SmtpSink::start_with(&["--reject"]);
    let site = mail_site(smtp.port, ALLOW);
    let d = site.start();
    let id = queue_report(&d, "gone@example.com").await;
    let s = wait_status(&d, &id, |s| s["status"] == "failed").await;
    assert_eq!(s["attempts"], 1, "a 5xx is not retried: {s}");
    assert!(s["last_error"].as_str().unwrap().contains("550"), "{s}");
    assert!(smtp.messages().is_empty());
    // The counters follow the commit that the status shows.
    wait_metrics(
        &d,
        [
            "smtp_auth_insight_mails_total{outcome=\"failed\"}",
            "smtp_auth_insight_outbox_queued",
        ],
        |[failed, queued]| failed == Some(1) && queued == Some(0),
    )
    .await;
}

#[test]
fn a_relay_that_never_answers_fails_within_the_deadline() {
    // Accepts connections and says nothing, like a stuck relay.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let held: Vec<_> = listener.incoming().take(4).collect();
        std::thread::sleep(std::time::Duration::from_secs(60));
        drop(held);
    });
    let site = Site::new(&format!(
        "store.retention_days = 3650\n[mail]\ntransport = \"smtp\"\nport = {port}\nsecurity = \"none\"\ntimeout_seconds = 1\n{ALLOW}\n"
    ))
    .with_an_event();
    let started = std::time::Instant::now();
    let out = site.cli(&["report", "--send", "--to", "admin@example.com"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("temporary failure: the relay did not finish within 4 s"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

/// Orders the report of the fixture day for `recipient`; returns its id.
async fn queue_report(d: &Daemon, recipient: &str) -> String {
    let order =
        serde_json::json!({"start": "2026-11-27", "end": "2026-11-27", "recipients": [recipient]});
    let r = order_report(d, TOKEN, order).await;
    assert_eq!(r.status(), 202);
    r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}
