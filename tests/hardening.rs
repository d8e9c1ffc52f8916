//! What an attacker can do to the running daemon over HTTP and its
//! configuration: each test reproduces one way it used to break, against
//! the real binary.

mod common;

use common::{Site, TOKEN, client, order_report, report};
use serde_json::{Value, json};
use std::process::Command;

#[tokio::test(flavor = "multi_thread")]
async fn dates_at_the_ends_of_the_calendar_are_refused_with_a_reason() {
    let site = Site::new("mail.allowed_recipients = [\"@example.com\"]").with_an_event();
    let d = site.start();
    for query in [
        "end=-262143-01-01",
        "start=%2B262142-12-31",
        "start=1969-12-31",
        "end=10000-01-01",
    ] {
        let (status, body) = report(&d, query).await;
        assert_eq!(status, 400, "{query}: {body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("is not a date from 1970 to 9999"),
            "{query}: {body}"
        );
    }
    for since in ["-262143-01-01", "%2B262142-12-31", "1969-12-31T00:00:00Z"] {
        let r = client()
            .get(d.url(&format!("/api/v1/alerts?since={since}")))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "since={since}");
    }
    for order in [
        json!({"end": "-262143-01-01", "recipients": ["a@example.com"]}),
        json!({"start": "+262142-12-31", "recipients": ["a@example.com"]}),
    ] {
        let r = order_report(&d, TOKEN, order.clone()).await;
        assert_eq!(r.status(), 422, "{order}");
        let body: Value = r.json().await.unwrap();
        assert!(
            body["error"].as_str().unwrap().contains("is not a date"),
            "{body}"
        );
    }
    // Still serving.
    assert_eq!(report(&d, "").await.0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn report_orders_refuse_routed_addresses_and_lists_over_the_cap() {
    let site = Site::new("[mail]\nallowed_recipients = [\"@example.com\"]").with_an_event();
    let d = site.start();
    for routed in ["x%evil.com@example.com", "evil.com!x@example.com"] {
        let r = order_report(&d, TOKEN, json!({"recipients": [routed]})).await;
        assert_eq!(r.status(), 422, "{routed}");
        let body: Value = r.json().await.unwrap();
        assert!(
            body["error"].as_str().unwrap().contains("routes onwards"),
            "{body}"
        );
    }
    let many: Vec<String> = (0..50_000).map(|i| format!("u{i}@example.com")).collect();
    let r = order_report(&d, TOKEN, json!({ "recipients": many })).await;
    assert_eq!(r.status(), 422);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["error"], "50000 recipients; at most 100 are allowed",
        "{body}"
    );
    let r = order_report(&d, TOKEN, json!({ "recipients": &many[..100] })).await;
    assert_eq!(r.status(), 202);
}

#[test]
fn check_config_refuses_values_that_would_panic_later() {
    for (extra, key) in [
        (
            "server.report_requests_per_hour = 0\n",
            "server.report_requests_per_hour",
        ),
        (
            "[mail]\nallowed_recipients = [\"@example.com\"]\n[[schedules]]\nname = \"w\"\ncron = \"0 7 * * 1\"\nrange = \"last_999999999_days\"\nrecipients = [\"a@example.com\"]\n",
            "schedules.range",
        ),
    ] {
        let site = Site::new(extra);
        let out = Command::new(common::BIN)
            .args(["check-config", "--config"])
            .arg(&site.config)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{extra}");
        assert!(err.contains(key), "{extra}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// Reads until the daemon closes `socket` (a reset counts); what it sent
/// first. Fails if a minute passes and the connection is still open.
fn read_to_close(socket: &mut std::net::TcpStream) -> Vec<u8> {
    use std::io::{ErrorKind, Read};
    socket
        .set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    let mut got = Vec::new();
    if let Err(e) = socket.read_to_end(&mut got) {
        assert!(
            !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
            "the daemon kept the connection open: {e}"
        );
    }
    got
}

#[test]
fn a_half_sent_request_is_cut_off_and_does_not_hold_up_shutdown() {
    use std::io::Write;
    let site = Site::new("server.header_timeout_seconds = 2");
    let d = site.start();
    let mut half = std::net::TcpStream::connect(d.addr).unwrap();
    half.write_all(b"GET /hea").unwrap();
    let mut idle = std::net::TcpStream::connect(d.addr).unwrap();
    // Both are closed by the daemon once the header time is up.
    read_to_close(&mut half);
    read_to_close(&mut idle);
    // And one still half-sent when SIGTERM comes does not stop the exit.
    let mut again = std::net::TcpStream::connect(d.addr).unwrap();
    again.write_all(b"GET /hea").unwrap();
    assert!(d.stop().success());
    read_to_close(&mut again);
}

/// An authenticated request on a connection of its own, kept open.
fn trusted_connection(d: &common::Daemon) -> std::net::TcpStream {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(d.addr).unwrap();
    write!(
        s,
        "GET /api/v1/alerts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
    )
    .unwrap();
    let mut got = [0u8; 12];
    s.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"HTTP/1.1 200");
    s
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_server_makes_room_from_waiting_connections_never_trusted_ones() {
    let site = Site::new("server.max_connections = 20\nserver.header_timeout_seconds = 5");
    let d = site.start();
    let mut held: Vec<std::net::TcpStream> = (0..20)
        .map(|_| std::net::TcpStream::connect(d.addr).unwrap())
        .collect();
    // Every slot holds a connection that sent nothing: the one waiting the
    // longest is closed, and /healthz is answered.
    let r = client().get(d.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(read_to_close(&mut held[0]).is_empty());
    let metrics = common::metrics_text(&d).await;
    let count = |reason: &str| {
        common::metric(
            &metrics,
            &format!("smtp_auth_insight_http_refused_total{{reason=\"{reason}\"}}"),
        )
    };
    assert!(count("made_room").is_some_and(|n| n >= 1), "{metrics}");
    // Connections that proved who is speaking are never closed for
    // another: once they hold every slot, a newcomer is closed unanswered.
    let trusted: Vec<_> = (0..20).map(|_| trusted_connection(&d)).collect();
    let mut extra = std::net::TcpStream::connect(d.addr).unwrap();
    assert!(read_to_close(&mut extra).is_empty());
    // They leave: service resumes.
    drop(trusted);
    let http = client();
    let metrics = common::answered(|| http.get(d.url("/metrics")).send())
        .await
        .text()
        .await
        .unwrap();
    let refused = common::metric(
        &metrics,
        "smtp_auth_insight_http_refused_total{reason=\"connection_limit\"}",
    );
    assert!(refused.is_some_and(|n| n >= 1), "{metrics}");
    // Logged too (the log is read as the daemon writes it).
    d.wait_log("held by a trusted client").await;
}

/// Peak resident memory of the daemon, in MiB.
fn peak_rss_mib(d: &common::Daemon) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", d.child.id())).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb / 1024
}

/// `n` wrong logins at once as `user`, from `from(i)`; their statuses.
async fn wrong_logins(
    d: &common::Daemon,
    user: &'static str,
    n: usize,
    from: impl Fn(usize) -> std::net::IpAddr,
) -> Vec<u16> {
    let tries: Vec<_> = (0..n)
        .map(|i| {
            let c = reqwest::Client::builder()
                .local_address(from(i))
                .timeout(std::time::Duration::from_secs(120))
                .build()
                .unwrap();
            let url = d.url("/login");
            tokio::spawn(async move {
                let r = c
                    .post(url)
                    .form(&[("user", user), ("token", "guess")])
                    .send()
                    .await
                    .unwrap();
                if r.status() == 429 {
                    assert!(r.headers().contains_key("retry-after"));
                }
                r.status().as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tries {
        statuses.push(t.await.unwrap());
    }
    statuses
}

#[tokio::test(flavor = "multi_thread")]
async fn password_guessing_is_rate_limited_and_cannot_exhaust_memory() {
    let hash = common::password_hash("s3cret pass");
    let site = Site::new(&format!(
        "[[server.users]]\nname = \"ann\"\npassword_hash = \"{hash}\"\n"
    ));
    let d = site.start();
    let one = |_| "127.0.0.1".parse().unwrap();
    // One client: its budget, then 429.
    let statuses = wrong_logins(&d, "ann", 12, one).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        10,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        2,
        "{statuses:?}"
    );
    // Four hundred clients at once, known and unknown names: at most two
    // Argon2 checks run at a time, so memory stays bounded.
    let many =
        |i: usize| std::net::IpAddr::from([127, 0, 1 + (i / 200) as u8, 1 + (i % 200) as u8]);
    let mut statuses = wrong_logins(&d, "ann", 200, many).await;
    statuses.extend(wrong_logins(&d, "nobody", 200, |i| many(i + 200)).await);
    // At most two checks run and 32 wait: the rest are refused at once.
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert!(refused >= 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 401 || *s == 429));
    let rss = peak_rss_mib(&d);
    assert!(rss < 200, "peak RSS {rss} MiB");
    let metrics = common::metrics_text(&d).await;
    assert!(
        common::metric(
            &metrics,
            "smtp_auth_insight_http_refused_total{reason=\"login_rate\"}"
        )
        .is_some_and(|n| n >= 2 + refused as u64),
        "{metrics}"
    );
}

#[test]
fn a_body_sent_too_slowly_is_cut_off() {
    use std::io::Write;
    let site = Site::new("server.body_timeout_seconds = 2");
    let d = site.start();
    let mut slow = std::net::TcpStream::connect(d.addr).unwrap();
    write!(
        slow,
        "POST /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 1000\r\n\r\n{{\"ts\""
    )
    .unwrap();
    // The rest never comes: the daemon answers and closes.
    let answer = String::from_utf8_lossy(&read_to_close(&mut slow)).into_owned();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(d.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_answers_calendar_end_dates_with_a_reason() {
    let site = Site::new("mail.allowed_recipients = [\"@example.com\"]").with_an_event();
    let d = site.start();
    let browser = common::no_redirects();
    let r = common::login(&d, "", TOKEN).await;
    assert_eq!(r.status(), 303, "logged in");
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let page = browser
        .get(d.url("/?start=%2B262142-12-31&end=-262143-01-01"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("is not a date from 1970 to 9999"), "{html}");
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let r = browser
        .post(d.url("/request"))
        .header("cookie", &cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("start", "+262142-12-31"),
            ("end", ""),
            ("domain", ""),
            ("recipients", "a@example.com"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("is not a date"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kelvin_sign_passes_no_allow_list_entry() {
    let site = Site::new("mail.allowed_recipients = [\"kim@corp.example\"]");
    let d = site.start();
    // U+212A lower-cases to "k": compared after Unicode case folding it
    // would match kim@corp.example, and the mail would go to another
    // mailbox.
    let r = order_report(
        &d,
        TOKEN,
        json!({"recipients": ["\u{212A}im@corp.example"]}),
    )
    .await;
    assert_eq!(r.status(), 422);
    let body: Value = r.json().await.unwrap();
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("is not ASCII"), "{error}");
    // The address itself is accepted.
    let r = order_report(&d, TOKEN, json!({"recipients": ["Kim@corp.example"]})).await;
    assert_eq!(r.status(), 202);
    // And an allow-list that is not ASCII is refused at start.
    let bad = Site::new("mail.allowed_recipients = [\"\u{212A}im@corp.example\"]");
    let out = bad.cli(&["check-config"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not ASCII"));
}
