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
    let site = policy_site_following(&log);
    let d = site.start();
    // The lines README.md gives for main.cf.
    let postfix = common::postfix::Postfix::start(
        &main_cf_lines(&site),
        &[("alice@example.com", "secret")],
        &log,
    );
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

#[tokio::test(flavor = "multi_thread")]
async fn connections_beyond_the_limit_are_closed_and_the_others_go_on() {
    let site = policy_site("policy.max_connections = 2");
    let d = site.start();
    let mut held: Vec<_> = (0..2).map(|_| connected(&site)).collect();
    // Both are served (so both hold their slot).
    for (s, r) in &mut held {
        s.write_all(request("RCPT", "alice@example.com", "").as_bytes())
            .unwrap();
        assert_eq!(answer(r), "action=DUNNO\n");
    }
    let mut third = connect(&site);
    let _ = third.write_all(request("RCPT", "alice@example.com", "").as_bytes());
    let mut rest = Vec::new();
    let n = third.read_to_end(&mut rest).unwrap_or(0);
    assert_eq!(n, 0, "the third connection got {rest:?}");
    let text = metrics_text(&d).await;
    assert_eq!(
        metric(
            &text,
            "smtp_auth_insight_policy_total{what=\"connection_refused\"}"
        ),
        Some(1)
    );
    // One closes: a new one is served.
    drop(held.pop());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (mut s, mut r) = connected(&site);
        let _ = s.write_all(request("RCPT", "alice@example.com", "").as_bytes());
        let mut line = String::new();
        use std::io::BufRead;
        if r.read_line(&mut line).unwrap_or(0) > 0 {
            assert_eq!(line, "action=DUNNO\n");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never served again");
    }
}
