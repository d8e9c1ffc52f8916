//! Who may speak to the policy service: forged submissions from a peer
//! outside `policy.allow`, or from a local user outside the socket's
//! group, are closed unread and count nothing, so they can neither fill an
//! account's counts nor get it contained. Root only (other users are
//! played with setpriv; the socket's group is Postfix's).

mod common;

use common::policy::*;
use common::*;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;

/// 45 forged submissions of ceo@example.com: more than a new account's
/// alert needs (40).
fn forged(qid: &str) -> String {
    (0..45)
        .map(|i| request("END-OF-MESSAGE", "ceo@example.com", &format!("{qid}{i:03}")))
        .collect()
}

async fn policy_count(d: &Daemon, what: &str) -> Option<u64> {
    let text = metrics_text(d).await;
    metric(
        &text,
        &format!("smtp_auth_insight_policy_total{{what=\"{what}\"}}"),
    )
}

/// Nothing of ceo@example.com was counted or contained.
async fn nothing_of_the_ceo(d: &Daemon) {
    let (_, rep) = report(d, "").await;
    assert_eq!(rep["summary"]["messages"], 0, "{rep}");
    let (_, holds) = api_get(d, "/api/v1/holds").await;
    assert_eq!(holds["holds"], serde_json::json!([]), "{holds}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_peer_outside_allow_is_closed_unread_and_counts_nothing() {
    // Loopback itself is outside this list: the test's connections are
    // the foreign peer.
    let site = policy_site("policy.allow = [\"192.0.2.0/24\"]\npolicy.action = \"reject\"");
    let d = site.start();
    let mut s = connect(&site);
    let _ = s.write_all(forged("F").as_bytes());
    let mut got = Vec::new();
    match s.read_to_end(&mut got) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("answered: {other:?} {:?}", String::from_utf8_lossy(&got)),
    }
    assert_eq!(policy_count(&d, "peer_refused").await, Some(1));
    assert_eq!(policy_count(&d, "request").await, Some(0));
    nothing_of_the_ceo(&d).await;
    d.wait_log("peer outside policy.allow").await;
}

/// Runs a client of the socket at `socket` as `setpriv` args make it: it
/// sends the forged submissions and prints how many answers came, or
/// `EACCES` when it may not connect.
fn client_as(setpriv: &[&str], socket: &std::path::Path) -> String {
    const CLIENT: &str = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except PermissionError:
    print("EACCES")
    sys.exit(0)
try:
    s.sendall(sys.stdin.buffer.read())
except (BrokenPipeError, ConnectionResetError):
    print(0)
    sys.exit(0)
got = b""
try:
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
        if got.count(b"\n\n") >= 45:
            break
except ConnectionResetError:
    pass
print(got.count(b"action="))
"#;
    let mut cmd = Command::new("setpriv");
    cmd.args(setpriv)
        .args(["/usr/bin/python3", "-c", CLIENT])
        .arg(socket);
    let out = run_with_stdin(&mut cmd, forged("U").as_bytes());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn postfix_gid() -> String {
    let out = succeed(
        Command::new("getent").args(["group", "postfix"]),
        "tests/support/install-deps.sh installs postfix",
    );
    String::from_utf8_lossy(&out.stdout)
        .split(':')
        .nth(2)
        .expect("postfix's gid")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn only_postfix_may_speak_on_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let socket = dir.path().join("spool/policy");
    std::fs::create_dir(dir.path().join("spool")).unwrap();
    // Any user may reach the socket: its own mode decides.
    let open = std::fs::Permissions::from_mode(0o755);
    std::fs::set_permissions(dir.path().join("spool"), open).unwrap();
    let site = policy_site_unix(&socket, "policy.action = \"reject\"");
    let d = site.start();
    let meta = std::fs::metadata(&socket).expect("the socket");
    assert_eq!(meta.mode() & 0o777, 0o660);
    assert_eq!(meta.gid().to_string(), postfix_gid());

    // Another local user cannot connect at all.
    let nobody = ["--reuid=65534", "--regid=65534", "--clear-groups"];
    assert_eq!(client_as(&nobody, &socket), "EACCES");
    // One who can (a member of the group on the side) but is not
    // Postfix's group itself is closed unread.
    let gid = postfix_gid();
    let member = ["--reuid=65534", "--regid=65534", &format!("--groups={gid}")];
    assert_eq!(client_as(&member, &socket), "0");
    assert_eq!(policy_count(&d, "peer_refused").await, Some(1));
    assert_eq!(policy_count(&d, "request").await, Some(0));
    nothing_of_the_ceo(&d).await;

    // Postfix's own user is answered and counted.
    let postfix = ["--reuid=postfix", "--regid=postfix", "--clear-groups"];
    assert_eq!(client_as(&postfix, &socket), "45");
    let (_, rep) = report(&d, "").await;
    assert_eq!(rep["summary"]["messages"], 40, "{rep}");
}

/// systemd may stop a daemon the moment it said it is ready: the signal
/// is heard from the start, and the stop is as clean as any.
#[test]
fn a_daemon_stopped_as_soon_as_it_listens_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("spool/policy");
    let site = policy_site_unix(&socket, "");
    for _ in 0..5 {
        let d = site.start();
        let log = d.stop_with_log();
        assert!(log.starts_with("exit status: 0;"), "{log}");
        assert!(!socket.exists(), "the socket is removed: {log}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_socket_left_by_a_killed_daemon_is_taken_over_and_a_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("spool/policy");
    let site = policy_site_unix(&socket, "");
    site.start().kill9();
    assert!(socket.exists(), "kill -9 leaves the socket");
    let d = site.start();
    let (mut s, mut r) = connected_unix(&site);
    s.write_all(request("END-OF-MESSAGE", "alice@example.com", "A1").as_bytes())
        .unwrap();
    assert_eq!(answer(&mut r), "action=DUNNO\n");
    drop((s, r));
    let log = d.stop_with_log();
    assert!(!socket.exists(), "a clean stop removes it: {log}");

    std::fs::write(&socket, "not a socket").unwrap();
    let out = site.cli(&["run"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("exists and is not a socket") && err.contains("policy.listen"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&socket).unwrap(), "not a socket");
}

#[test]
fn check_config_names_what_is_wrong_and_warns_of_an_open_port() {
    for (extra, words) in [
        ("policy.listen = \"unix:relative/policy\"", "absolute path"),
        ("policy.listen = \"localhost:10040\"", "policy.listen"),
        (
            "policy.listen = \"unix:/run/x/policy\"\npolicy.socket_group = \"no-such-group\"",
            "policy.socket_group: no group \"no-such-group\"",
        ),
        (
            "policy.listen = \"127.0.0.1:10040\"\npolicy.socket_group = \"postfix\"",
            "policy.socket_group",
        ),
        ("policy.allow = [\"10.0.0.0/33\"]", "prefix length"),
        (
            "policy.max_connections = 10\npolicy.max_connections_per_peer = 11",
            "policy.max_connections_per_peer",
        ),
    ] {
        let out = Site::new(extra).cli(&["check-config"]);
        assert!(!out.status.success(), "{extra} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(words), "{extra}: {err}");
    }
    let open = Site::new("policy.listen = \"0.0.0.0:10040\"").cli(&["check-config"]);
    assert!(open.status.success());
    let err = String::from_utf8_lossy(&open.stderr);
    assert!(
        err.contains("warning: policy.listen = \"0.0.0.0:10040\" is reachable beyond this machine")
            && err.contains("policy.allow"),
        "{err}"
    );
    let listed = Site::new("policy.listen = \"0.0.0.0:10040\"\npolicy.allow = [\"10.1.0.0/24\"]")
        .cli(&["check-config"]);
    assert!(listed.status.success());
    assert!(!String::from_utf8_lossy(&listed.stderr).contains("warning"));
}
