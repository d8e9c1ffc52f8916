//! The Postfix policy service of the real daemon, over real sockets: many
//! requests per connection, pipelined, garbage and oversized requests,
//! submissions counted once also beside a log follower of the same MTA.

mod common;

use common::policy::*;
use common::*;
use std::io::{BufReader, Read, Write};

#[tokio::test(flavor = "multi_thread")]
async fn pipelined_requests_are_answered_in_order_and_each_submission_counted() {
    let site = policy_site("");
    let d = site.start();
    let mut s = connect(&site);
    // Other states and unauthenticated clients are answered, not counted.
    let mut batch = request("RCPT", "alice@example.com", "");
    batch += &request("END-OF-MESSAGE", "", "1A2B3C");
    for i in 0..200 {
        batch += &request("END-OF-MESSAGE", "Alice@Example.com", &format!("Q{i:04}"));
    }
    s.write_all(batch.as_bytes()).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    for _ in 0..202 {
        assert_eq!(answer(&mut r), "action=DUNNO\n");
    }
    assert_eq!(wait_events(&d, 200).await, (200, 0));
    let (_, rep) = report(&d, "").await;
    assert_eq!(rep["summary"]["messages"], 200, "{rep}");
    let text = metrics_text(&d).await;
    assert_eq!(
        metric(&text, "smtp_auth_insight_policy_total{what=\"request\"}"),
        Some(202)
    );
    assert_eq!(
        metric(&text, "smtp_auth_insight_policy_total{what=\"submission\"}"),
        Some(200)
    );
    let tls = "smtp_auth_insight_submissions_total{result=\"accepted\",tls=\"TLSv1.3\"}";
    assert_eq!(metric(&text, tls), Some(200));
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_and_oversized_requests_get_dunno_and_the_connection_goes_on() {
    let site = policy_site("");
    let d = site.start();
    let (mut s, mut r) = connected(&site);
    let huge = format!(
        "request=smtpd_access_policy\nccert_subject={}\n\n",
        "x".repeat(40_000)
    );
    let hostile = request("END-OF-MESSAGE", "alice\u{202e}moc.evil@example.com", "H1");
    let bad: Vec<Vec<u8>> = vec![
        b"this is not a policy request\n\n".to_vec(),
        b"request=smtpd_access_policy\nsender=\xff\xfe\n\n".to_vec(),
        b"request=something_else\n\n".to_vec(),
        huge.into_bytes(),
        hostile.into_bytes(),
    ];
    for b in &bad {
        s.write_all(b).unwrap();
        assert_eq!(answer(&mut r), "action=DUNNO\n");
    }
    // Still serving: a good submission is counted.
    s.write_all(request("END-OF-MESSAGE", "carol@example.com", "C1").as_bytes())
        .unwrap();
    assert_eq!(answer(&mut r), "action=DUNNO\n");
    assert_eq!(wait_events(&d, 1).await, (1, 0));
    let text = metrics_text(&d).await;
    assert_eq!(
        metric(
            &text,
            "smtp_auth_insight_policy_total{what=\"not_understood\"}"
        ),
        Some(bad.len() as u64)
    );
    let log = d.log_text();
    for why in [
        "not name=value",
        "not UTF-8",
        "something_else",
        "longer than 16384",
        "U+202E",
    ] {
        assert!(log.contains(why), "no {why:?} in the log:\n{log}");
    }
    // A request that never ends is cut off, not buffered.
    let mut endless = connect(&site);
    let line = format!("ccert_subject={}\n", "y".repeat(60_000));
    let mut closed = false;
    for _ in 0..40 {
        if endless.write_all(line.as_bytes()).is_err() {
            closed = true;
            break;
        }
    }
    let mut rest = Vec::new();
    closed |= endless
        .read_to_end(&mut rest)
        .map(|n| n == 0)
        .unwrap_or(true);
    assert!(
        closed && rest.is_empty(),
        "the endless request got {rest:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_seen_by_the_policy_service_and_in_the_log_counts_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    let site = policy_site_following(&log);
    let d = site.start();
    let (mut s, mut r) = connected(&site);
    s.write_all(request("END-OF-MESSAGE", "alice@example.com", "4Fk2Hq1Bz9z9sK").as_bytes())
        .unwrap();
    assert_eq!(answer(&mut r), "action=DUNNO\n");
    assert_eq!(wait_events(&d, 1).await, (1, 0));
    // The same message in the MTA's log (host "vm", the same queue id),
    // and another one only the log saw.
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    f.write_all(
        postfix_submission(4242, "4Fk2Hq1Bz9z9sK", "alice@example.com", Some("TLSv1.3")).as_bytes(),
    )
    .unwrap();
    f.write_all(
        postfix_submission(4243, "5Gm3Jr2Ca0a0tL", "alice@example.com", Some("TLSv1.3")).as_bytes(),
    )
    .unwrap();
    assert_eq!(wait_events(&d, 3).await, (2, 1));
    assert_eq!(total(&d).await, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_postfix_asks_at_the_end_of_data_and_mail_flows_when_the_daemon_is_down() {
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("mail.log");
    let spool = common::postfix::Spool::new();
    let site = policy_site_in(&spool, Some(&log), "");
    let d = site.start();
    // The lines README.md gives for main.cf, over the socket.
    let postfix = spool.start(&main_cf_lines(), &[("alice@example.com", "secret")], &log);
    let mut queued = Vec::new();
    for _ in 0..3 {
        let answer = postfix.submit("alice@example.com", "secret");
        assert!(answer.starts_with("250 2.0.0 Ok: queued as"), "{answer}");
        queued.push(
            common::postfix::Postfix::queue_id(&answer)
                .unwrap()
                .to_owned(),
        );
    }
    // Each message reached the daemon twice, from Postfix's question and
    // from its log, with the same id: counted once.
    assert_eq!(wait_events(&d, 6).await, (3, 3));
    let text = metrics_text(&d).await;
    assert_eq!(
        metric(&text, "smtp_auth_insight_policy_total{what=\"submission\"}"),
        Some(3)
    );
    let tls = "smtp_auth_insight_submissions_total{result=\"accepted\",tls=\"TLSv1.3\"}";
    assert_eq!(metric(&text, tls), Some(3));
    let (_, rep) = report(&d, "").await;
    assert_eq!(rep["summary"]["messages"], 3, "{rep}");
    let logged = std::fs::read_to_string(&log).unwrap();
    for qid in &queued {
        assert!(logged.contains(&format!(
            "{qid}: client=localhost[127.0.0.1], sasl_method=PLAIN"
        )));
    }
    // The daemon stops: Postfix goes on as if it had answered DUNNO.
    assert!(d.stop().success());
    let answer = postfix.submit("alice@example.com", "secret");
    assert!(answer.starts_with("250 2.0.0 Ok: queued as"), "{answer}");
}

/// Asserts that the daemon closed `s` without an answer (a reset, when
/// it closed with the request unread), not that the read timed out.
fn assert_closed(s: &mut std::net::TcpStream) {
    let mut got = Vec::new();
    match s.read_to_end(&mut got) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("not closed: {other:?} {got:?}"),
    }
}

/// Waits until /metrics shows `idle` and `answering` open connections.
async fn wait_connections(d: &Daemon, idle: u64, answering: u64) {
    wait_metrics(
        d,
        [
            "smtp_auth_insight_policy_connections{state=\"waiting\"}",
            "smtp_auth_insight_policy_connections{state=\"answering\"}",
        ],
        |n| n == [Some(idle), Some(answering)],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_service_closes_its_longest_idle_connection_for_a_new_one() {
    let site = policy_site("policy.max_connections = 2");
    let d = site.start();
    let ask = |c: &mut (std::net::TcpStream, BufReader<std::net::TcpStream>)| {
        c.0.write_all(request("RCPT", "alice@example.com", "").as_bytes())
            .unwrap();
        answer(&mut c.1)
    };
    // Two connections served, both idle now; the first has idled longer.
    let mut first = connected(&site);
    assert_eq!(ask(&mut first), "action=DUNNO\n");
    let mut second = connected(&site);
    assert_eq!(ask(&mut second), "action=DUNNO\n");
    wait_connections(&d, 2, 0).await;
    // A third is served: the first was closed to make room.
    let mut third = connected(&site);
    assert_eq!(ask(&mut third), "action=DUNNO\n");
    let mut rest = Vec::new();
    assert_eq!(
        first.1.read_to_end(&mut rest).ok(),
        Some(0),
        "closed: {rest:?}"
    );
    assert_eq!(
        ask(&mut second),
        "action=DUNNO\n",
        "the newer idle one stays"
    );
    let text = metrics_text(&d).await;
    let count = |what: &str| {
        metric(
            &text,
            &format!("smtp_auth_insight_policy_total{{what=\"{what}\"}}"),
        )
    };
    assert_eq!(count("idle_closed"), Some(1));
    // Two connections in the middle of a request are not closed for a
    // third: it is closed unread.
    for c in [&mut second, &mut third] {
        c.0.write_all(b"request=smtpd_access_policy\nprotocol_state=RCPT\n")
            .unwrap();
    }
    wait_connections(&d, 0, 2).await;
    let mut fourth = connect(&site);
    let _ = fourth.write_all(request("RCPT", "alice@example.com", "").as_bytes());
    assert_closed(&mut fourth);
    let text = metrics_text(&d).await;
    assert_eq!(
        metric(
            &text,
            "smtp_auth_insight_policy_total{what=\"connection_refused\"}"
        ),
        Some(1)
    );
    // Both finish their requests and are answered.
    for c in [&mut second, &mut third] {
        c.0.write_all(b"\n").unwrap();
        assert_eq!(answer(&mut c.1), "action=DUNNO\n");
    }
}
