//! Talking to the policy service of a running daemon.
#![allow(dead_code)]

use super::*;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::time::Duration;

/// A policy site whose daemon also follows `log` (a Postfix log).
pub fn policy_site_following(log: &std::path::Path) -> Site {
    std::fs::write(log, "").expect("an empty log");
    policy_site(&format!(
        "[[sources]]\nkind = \"postfix\"\npath = {:?}\n",
        log.to_str().expect("a UTF-8 path")
    ))
}

/// The main.cf lines README.md gives for the policy service (on a UNIX
/// socket in the queue directory, for Debian's chrooted smtpd), as they
/// stand there.
pub fn main_cf_lines() -> String {
    include_str!("../../README.md")
        .split("```")
        .find(|block| block.contains("check_policy_service { unix:"))
        .expect("README.md's main.cf lines")
        .trim()
        .to_owned()
}

pub fn policy_site(extra: &str) -> Site {
    Site::new(&format!(
        "policy.listen = \"127.0.0.1:0\"\npolicy.host = \"vm\"\n{extra}"
    ))
}

/// A site whose policy service listens on the UNIX socket `socket`, with
/// group `postfix`.
pub fn policy_site_unix(socket: &std::path::Path, extra: &str) -> Site {
    let dir = socket.parent().expect("the socket's directory");
    std::fs::create_dir_all(dir).expect("the socket's directory");
    Site::new(&format!(
        "policy.listen = \"unix:{}\"\npolicy.socket_group = \"postfix\"\npolicy.host = \"vm\"\n{extra}",
        socket.display()
    ))
}

/// [`policy_site_unix`] in a private Postfix's spool, also following `log`
/// (a Postfix log) when given.
pub fn policy_site_in(
    spool: &super::postfix::Spool,
    log: Option<&std::path::Path>,
    extra: &str,
) -> Site {
    let follow = match log {
        Some(log) => {
            std::fs::write(log, "").expect("an empty log");
            format!(
                "[[sources]]\nkind = \"postfix\"\npath = {:?}\n",
                log.to_str().expect("a UTF-8 path")
            )
        }
        None => String::new(),
    };
    policy_site_unix(&spool.policy_socket(), &format!("{extra}\n{follow}"))
}

/// A connection to the UNIX socket of `site`'s policy service.
pub fn connected_unix(
    site: &Site,
) -> (
    std::os::unix::net::UnixStream,
    BufReader<std::os::unix::net::UnixStream>,
) {
    let addr = std::fs::read_to_string(site.data_dir().join("policy-listening"))
        .expect("the policy service's address file");
    let path = addr.trim().strip_prefix("unix:").expect("a socket");
    let s = std::os::unix::net::UnixStream::connect(path).expect("connect to the socket");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let r = BufReader::new(s.try_clone().expect("clone the connection"));
    (s, r)
}

/// A connection to the policy service of `site`'s running daemon.
pub fn connect(site: &Site) -> TcpStream {
    let addr = std::fs::read_to_string(site.data_dir().join("policy-listening"))
        .expect("the policy service's address file");
    let s = TcpStream::connect(addr.trim()).expect("connect to the policy service");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s
}

/// A connection and a buffered reader of its answers.
pub fn connected(site: &Site) -> (TcpStream, BufReader<TcpStream>) {
    let s = connect(site);
    let r = BufReader::new(s.try_clone().expect("clone the connection"));
    (s, r)
}

/// A request at `state` for `user` (empty: not authenticated).
pub fn request(state: &str, user: &str, qid: &str) -> String {
    request_from(state, user, qid, "192.0.2.10")
}

/// [`request`] from client address `client`.
pub fn request_from(state: &str, user: &str, qid: &str, client: &str) -> String {
    format!(
        "request=smtpd_access_policy\nprotocol_state={state}\nprotocol_name=ESMTP\n\
         client_address={client}\nclient_name=laptop.example.com\nhelo_name=laptop\n\
         sender={user}\nrecipient=bob@example.net\nrecipient_count=1\nqueue_id={qid}\n\
         sasl_method=PLAIN\nsasl_username={user}\nencryption_protocol=TLSv1.3\n\
         encryption_cipher=TLS_AES_256_GCM_SHA384\nencryption_keysize=256\n\n"
    )
}

/// Reads one answer (up to its empty line).
pub fn answer(r: &mut impl BufRead) -> String {
    let mut out = String::new();
    loop {
        let mut line = String::new();
        assert!(
            r.read_line(&mut line).expect("an answer") > 0,
            "closed after {out:?}"
        );
        if line == "\n" {
            return out;
        }
        out.push_str(&line);
    }
}

/// Waits until /metrics shows `want` events received in all (counted and
/// duplicate); returns (accepted, duplicate).
pub async fn wait_events(d: &Daemon, want: u64) -> (u64, u64) {
    let [accepted, duplicate] = wait_metrics(
        d,
        [
            "smtp_auth_insight_events_total{outcome=\"accepted\"}",
            "smtp_auth_insight_events_total{outcome=\"duplicate\"}",
        ],
        |[a, d]| a.unwrap_or(0) + d.unwrap_or(0) >= want,
    )
    .await;
    (accepted.unwrap_or(0), duplicate.unwrap_or(0))
}

/// Every containment on record (`GET /api/v1/holds`).
pub async fn holds(d: &Daemon) -> Vec<serde_json::Value> {
    let (status, body) = api_get(d, "/api/v1/holds").await;
    assert_eq!(status, 200, "{body}");
    body["holds"].as_array().cloned().unwrap_or_default()
}

/// Waits until a containment in force whose `field` (`sender` or
/// `client_ip`) is `value` is recorded with its alert; returns its record.
pub async fn wait_contained_by(d: &Daemon, field: &str, value: &str) -> serde_json::Value {
    wait_until(
        &format!("{value} contained"),
        Duration::from_secs(30),
        async || {
            let all = holds(d).await;
            all.iter()
                .find(|h| h[field] == value && h["in_force"] == true && h["alert"]["seq"].is_u64())
                .cloned()
                .ok_or(all)
        },
    )
    .await
}

/// Sends the END-OF-MESSAGE request of `who` from client address `from`
/// on `s`; the answer read from `r`.
pub fn submit_from(
    s: &mut impl std::io::Write,
    r: &mut impl BufRead,
    who: &str,
    qid: &str,
    from: &str,
) -> String {
    s.write_all(request_from("END-OF-MESSAGE", who, qid, from).as_bytes())
        .expect("send a request");
    answer(r)
}

/// The first firing alert (one without `status`) that `wanted` picks,
/// once it is logged (`what` names it if it never comes).
pub async fn firing_alert(
    d: &Daemon,
    what: &str,
    wanted: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    wait_until(what, Duration::from_secs(30), async || {
        let (status, body) = api_get(d, "/api/v1/alerts").await;
        assert_eq!(status, 200, "{body}");
        let found = body["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["status"].is_null() && wanted(a))
            .cloned();
        found.ok_or(body)
    })
    .await
}
