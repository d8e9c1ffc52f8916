//! The systemd integration: the unit file verifies, and the daemon speaks
//! the notify protocol (READY=1, watchdog pings, STOPPING=1).

mod common;

use common::*;
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn unit_file_passes_systemd_analyze_verify() {
    let dir = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/systemd/smtp-auth-insight.service"
    ))
    .unwrap();
    for needle in [
        "Type=notify",
        "DynamicUser=yes",
        "StateDirectory=",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "SystemCallFilter=@system-service",
        "UMask=0077",
        "LoadCredential=smtp-auth-insight:/etc/smtp-auth-insight/credentials",
        "systemd-journal",
        "LimitNOFILE=65536",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ] {
        assert!(unit.contains(needle), "unit lacks {needle}");
    }
    // Point ExecStart at the binary under test so verify can check it.
    let unit = unit.replace("/usr/bin/smtp-auth-insight", BIN);
    let path = dir.path().join("smtp-auth-insight.service");
    std::fs::write(&path, unit).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (Debian package systemd) is needed");
    let err = String::from_utf8_lossy(&out.stderr);
    let problems: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("smtp-auth-insight.service"))
        .collect();
    assert!(out.status.success() && problems.is_empty(), "{err}");
}

/// Kills the daemon if the test fails before stopping it.
struct Reap(std::process::Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn daemon_notifies_ready_pings_the_watchdog_and_says_stopping() {
    let site = Site::new("");
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // systemd sets WATCHDOG_PID to the service's pid; `exec` keeps the
    // shell's pid, so $$ is the daemon's pid.
    let child = Command::new("sh")
        .arg("-c")
        .arg("WATCHDOG_PID=$$ exec \"$0\" --config \"$1\" run")
        .arg(BIN)
        .arg(&site.config)
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "200000")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = Reap(child);
    let recv = || {
        let mut buf = [0u8; 256];
        let n = sock.recv(&mut buf).expect("a notification within 10 s");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    assert!(recv().contains("READY=1"));
    let started = Instant::now();
    for _ in 0..3 {
        assert!(recv().contains("WATCHDOG=1"));
    }
    // Three pings at half of 200 ms take about 200 ms (the first is immediate).
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let _ = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status();
    let stopping = (0..50)
        .map(|_| recv())
        .find(|m| !m.contains("WATCHDOG"))
        .expect("a message other than WATCHDOG");
    assert!(stopping.contains("STOPPING=1"), "{stopping}");
    assert!(child.0.wait().unwrap().success());
}
