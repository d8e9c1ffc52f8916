//! What an attacker or a bad day can do to the running daemon: each test
//! reproduces one way it used to break, against the real binary.

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
    let started = std::time::Instant::now();
    let r = order_report(&d, TOKEN, json!({ "recipients": many })).await;
    assert_eq!(r.status(), 422);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["error"], "50000 recipients; at most 100 are allowed",
        "{body}"
    );
    // Refused by counting, not after checking each of them.
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
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

/// Reads until the daemon closes `socket`; what it sent first.
fn read_to_close(socket: &mut std::net::TcpStream) -> Vec<u8> {
    use std::io::Read;
    socket
        .set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    let mut got = Vec::new();
    let _ = socket.read_to_end(&mut got);
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
    let started = std::time::Instant::now();
    read_to_close(&mut half);
    read_to_close(&mut idle);
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    // And one still half-sent when SIGTERM comes does not stop the exit.
    let mut again = std::net::TcpStream::connect(d.addr).unwrap();
    again.write_all(b"GET /hea").unwrap();
    assert!(d.stop().success());
    read_to_close(&mut again);
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_beyond_the_limit_are_closed_and_logged_and_service_resumes() {
    let site = Site::new("server.max_connections = 20\nserver.header_timeout_seconds = 5");
    let d = site.start();
    let mut held: Vec<std::net::TcpStream> = (0..20)
        .map(|_| std::net::TcpStream::connect(d.addr).unwrap())
        .collect();
    // The 21st is closed at once, without an answer.
    let mut extra = std::net::TcpStream::connect(d.addr).unwrap();
    assert!(read_to_close(&mut extra).is_empty());
    // The idle ones are closed by the header deadline; then the daemon
    // answers again.
    for s in &mut held {
        read_to_close(s);
    }
    let r = client().get(d.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let metrics = common::metrics_text(&d).await;
    let refused = common::metric(
        &metrics,
        "smtp_auth_insight_http_refused_total{reason=\"connection_limit\"}",
    );
    assert!(refused.is_some_and(|n| n >= 1), "{metrics}");
    assert!(d.log_text().contains("connection limit reached"));
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
    let tries = (0..n).map(|i| {
        let c = reqwest::Client::builder()
            .local_address(from(i))
            .timeout(std::time::Duration::from_secs(120))
            .build()
            .unwrap();
        let url = d.url("/login");
        async move {
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
        }
    });
    futures_join_all(tries).await
}

async fn futures_join_all<F: std::future::Future<Output = u16> + Send + 'static>(
    tries: impl Iterator<Item = F>,
) -> Vec<u16> {
    let handles: Vec<_> = tries.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
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
    // Four hundred clients at once, known and unknown names: the overall
    // budget turns most away, and at most two Argon2 checks run at a time.
    let many =
        |i: usize| std::net::IpAddr::from([127, 0, 1 + (i / 200) as u8, 1 + (i % 200) as u8]);
    let mut statuses = wrong_logins(&d, "ann", 200, many).await;
    statuses.extend(wrong_logins(&d, "nobody", 200, |i| many(i + 200)).await);
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert!(refused >= 350, "{refused} of 400 refused");
    assert!(statuses.iter().all(|s| *s == 401 || *s == 429));
    let rss = peak_rss_mib(&d);
    assert!(rss < 200, "peak RSS {rss} MiB");
    let metrics = common::metrics_text(&d).await;
    assert!(
        common::metric(
            &metrics,
            "smtp_auth_insight_http_refused_total{reason=\"login_rate\"}"
        )
        .is_some_and(|n| n >= 352),
        "{metrics}"
    );
}

/// A store with the Postfix fixture in it.
fn site_with_a_store() -> Site {
    let site = Site::new("store.retention_days = 3650");
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/mta/postfix-rsyslog.log"
    );
    let out = site.cli(&["import", "--format", "postfix", fixture]);
    assert!(out.status.success());
    site
}

/// `report` on the site: exit code, stdout, stderr.
fn report_cli(site: &Site) -> (Option<i32>, String, String) {
    let out = site.cli(&["report", "--start", "2026-11-01", "--format", "json"]);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_foreign_file_is_never_taken_for_an_empty_store() {
    let sqlite = {
        let mut b = b"SQLite format 3\0".to_vec();
        b.resize(4096, 0);
        b
    };
    for (name, bytes) in [
        ("empty", Vec::new()),
        ("zero-filled", vec![0u8; 4096]),
        ("SQLite", sqlite),
    ] {
        let site = Site::new("");
        let db = site.data_dir().join("db");
        std::fs::create_dir_all(&db).unwrap();
        std::fs::write(db.join("db"), &bytes).unwrap();
        let (code, _, err) = report_cli(&site);
        assert_eq!(code, Some(1), "{name}: {err}");
        assert!(
            err.contains("not a store of smtp-auth-insight"),
            "{name}: {err}"
        );
        assert!(
            err.contains("move") && err.contains("away"),
            "{name}: {err}"
        );
        // Nothing was written into it.
        assert!(!db.join("conf").exists(), "{name}");
        // The daemon refuses it too.
        let out = Command::new(common::BIN)
            .args(["--config", site.config.to_str().unwrap(), "run"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name}");
        assert!(
            err.contains("not a store of smtp-auth-insight") && !err.contains("panicked"),
            "{name}: {err}"
        );
    }
    // A sled store of someone else (no schema mark), and a file where
    // the directory should be.
    let site = site_with_a_store();
    let db = site.data_dir().join("db");
    let other = Site::new("");
    std::fs::create_dir_all(other.data_dir().join("db")).unwrap();
    std::fs::copy(db.join("conf"), other.data_dir().join("db/conf")).unwrap();
    std::fs::write(other.data_dir().join("db/db"), vec![0u8; 4096]).unwrap();
    let (code, _, err) = report_cli(&other);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("move") && !err.contains("panicked"), "{err}");
    std::fs::remove_dir_all(&db).unwrap();
    std::fs::write(&db, b"not a directory").unwrap();
    let (code, _, err) = report_cli(&site);
    assert_eq!(code, Some(1));
    assert!(err.contains("is a file, not a store directory"), "{err}");
}

#[test]
fn a_damaged_store_is_refused_with_what_to_do_never_a_panic() {
    let site = site_with_a_store();
    let (code, good, _) = report_cli(&site);
    assert_eq!(code, Some(0));
    let db_dir = site.data_dir().join("db");
    let db_file = db_dir.join("db");
    let pristine = std::fs::read(&db_file).unwrap();
    // sled may rewrite its files while it recovers: each trial starts
    // from a copy of the whole directory.
    let saved = site.dir.path().join("db-saved");
    copy_dir(&db_dir, &saved);
    // Every byte changed: refused, with what to do.
    let flipped: Vec<u8> = pristine.iter().map(|b| b ^ 0x55).collect();
    std::fs::write(&db_file, &flipped).unwrap();
    let (code, _, err) = report_cli(&site);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("is damaged") && err.contains("Restore the data directory"),
        "{err}"
    );
    let d = Command::new(common::BIN)
        .args(["--config", site.config.to_str().unwrap(), "run"])
        .output()
        .unwrap();
    assert!(!d.status.success());
    assert!(String::from_utf8_lossy(&d.stderr).contains("is damaged"));
    // Random bytes changed: either the store still reads whole (sled's
    // checksums drop a damaged tail of its log) or it is refused; never a
    // panic, never a wrong report.
    let mut rng = common::Rng(7);
    for _ in 0..30 {
        std::fs::remove_dir_all(&db_dir).unwrap();
        copy_dir(&saved, &db_dir);
        let mut bytes = pristine.clone();
        for _ in 0..(1 + rng.below(50)) {
            let i = rng.below(bytes.len() as u64) as usize;
            bytes[i] = rng.below(256) as u8;
        }
        std::fs::write(&db_file, &bytes).unwrap();
        let (code, out, err) = report_cli(&site);
        assert!(!err.contains("panicked"), "{err}");
        match code {
            Some(0) => assert_eq!(out, good),
            Some(1) => assert!(err.contains("Restore the data directory"), "{err}"),
            other => panic!("exit {other:?}: {err}"),
        }
    }
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A tmpfs of `mib` MiB mounted at `dir`, unmounted when dropped.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &std::path::Path, mib: u64) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mounting a tmpfs needs root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(dir.to_owned())
    }

    fn free_mib(&self) -> u64 {
        let out = Command::new("stat")
            .args(["-f", "-c", "%a %S"])
            .arg(&self.0)
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let mut parts = text.split_whitespace().map(|n| n.parse::<u64>().unwrap());
        let (blocks, size) = (parts.next().unwrap(), parts.next().unwrap());
        (blocks * size) >> 20
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_refuses_events_cleanly_and_recovers_when_space_returns() {
    use std::io::Write;
    let site = Site::new("");
    let disk = Tmpfs::mount(&site.dir.path().join("disk"), 96);
    let data = site.dir.path().join("disk/data");
    std::fs::write(
        &site.config,
        format!(
            "server.listen = \"127.0.0.1:0\"\nserver.token = \"{TOKEN}\"\nstore.data_dir = {data:?}\nstore.cache_mb = 16\nstore.min_free_mb = 32\n"
        ),
    )
    .unwrap();
    let d = site.start();
    let now = chrono::Utc::now();
    let batch = |tag: &str, n: usize| -> String {
        (0..n)
            .map(|i| {
                let ts = (now - chrono::TimeDelta::seconds(i as i64 % 3000)).to_rfc3339();
                common::event_line(
                    &ts,
                    &format!("u{}@example.com", i % 500),
                    "TLSv1.3",
                    Some(&format!("{tag}-{i}")),
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let (status, _) = common::post_events(&d, batch("before", 2000)).await;
    assert_eq!(status, 202);
    // Counted (a read waits for that), so nothing is pending below.
    assert_eq!(common::total(&d).await, 2000);
    // Fill the disk to 16 MiB short of full: under the 32 MiB kept free.
    let filler = site.dir.path().join("disk/filler");
    {
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![1u8; 1 << 20];
        for _ in 0..disk.free_mib().saturating_sub(16) {
            f.write_all(&chunk).unwrap();
        }
        f.sync_all().unwrap();
    }
    let (status, body) = common::post_events(&d, batch("refused", 2000)).await;
    assert_eq!(status, 503, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("MiB free") && error.contains("nothing from this request was stored"),
        "{error}"
    );
    let health = client().get(d.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 503);
    let health: Value = health.json().await.unwrap();
    assert_eq!(health["status"], "degraded");
    // Reports and the rest go on.
    let (status, _) = report(&d, "").await;
    assert_eq!(status, 200);
    assert_eq!(common::total(&d).await, 2000);
    // Space back: writes resume by themselves.
    std::fs::remove_file(&filler).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let r = client().get(d.url("/healthz")).send().await.unwrap();
        if r.status() == 200 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still degraded");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (status, _) = common::post_events(&d, batch("after", 2000)).await;
    assert_eq!(status, 202);
    assert_eq!(common::total(&d).await, 4000);
    assert!(d.stop().success());
    drop(disk);
}

/// Waits until the daemon's log holds `text` (30 s at most).
async fn wait_log(d: &common::Daemon, text: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !d.log_text().contains(text) {
        assert!(
            std::time::Instant::now() < deadline,
            "no {text:?} in:\n{}",
            d.log_text()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

fn sighup(d: &common::Daemon) {
    let status = Command::new("kill")
        .args(["-HUP", &d.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_reloads_sources_and_keeps_running_on_a_broken_file() {
    let base = "store.retention_days = 3650\n";
    let site = Site::new(base);
    let d = site.start();
    // A source added while running: counted after SIGHUP, with no restart.
    let log = site.dir.path().join("mail.log");
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/mta/postfix-rsyslog.log"
    );
    std::fs::copy(fixture, &log).unwrap();
    site.write_config(&format!(
        "{base}server.max_connections = 100\n[[sources]]\nkind = \"postfix\"\npath = {log:?}\n"
    ));
    sighup(&d);
    wait_log(&d, "configuration reloaded").await;
    // A restart-only change is named, not silently ignored.
    wait_log(&d, "takes effect at the next restart").await;
    assert!(d.log_text().contains("[server]"));
    let today = chrono::Utc::now().date_naive();
    let query = format!("start=2026-11-01&end={today}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_, body) = report(&d, &query).await;
        if body["summary"]["messages"] == 18 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{body}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // A broken file: logged, the running configuration stays.
    site.write_config(&format!(
        "{base}[[sources]]\nkind = \"postfix\"\npathh = \"x\"\n"
    ));
    sighup(&d);
    wait_log(&d, "the configuration was not reloaded").await;
    let r = client().get(d.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(d.stop().success());
}

#[test]
fn permission_errors_name_the_path() {
    use std::os::unix::fs::PermissionsExt;
    let site = site_with_a_store();
    let set = |path: &std::path::Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    set(site.dir.path(), 0o755);
    set(&site.config, 0o644);
    set(&site.data_dir(), 0o700);
    // A copy of the binary where any user may run it, wherever the
    // checkout is.
    let bin = site.dir.path().join("smtp-auth-insight");
    std::fs::copy(common::BIN, &bin).unwrap();
    set(&bin, 0o755);
    // As another user than the store's owner (root in CI).
    let as_nobody = |args: &[&str]| {
        let out = Command::new("runuser")
            .args(["-u", "nobody", "--"])
            .arg(&bin)
            .arg("--config")
            .arg(&site.config)
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let data = site.data_dir();
    let err = as_nobody(&["report"]);
    assert!(
        err.contains(&format!(
            "cannot read the store at {}",
            data.join("db").display()
        )) && err.contains("Permission denied"),
        "{err}"
    );
    let err = as_nobody(&["run"]);
    assert!(
        err.contains(&data.display().to_string()) && err.contains("Permission denied"),
        "{err}"
    );
    // One cause, said once.
    assert_eq!(err.matches("Permission denied").count(), 1, "{err}");
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
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = browser
        .post(d.url("/login"))
        .form(&[("user", ""), ("token", TOKEN)])
        .send()
        .await
        .unwrap();
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
