//! Bad days for the store and the files around it, against the real
//! binary: a foreign or damaged store, a full disk, files the daemon may
//! not read, and a configuration changed under a running daemon.

mod common;

use common::{Site, TOKEN, Tmpfs, client, ready, report, wait_until};
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

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

#[test]
fn bit_flips_anywhere_in_the_store_give_the_report_or_one_line_saying_what_to_do() {
    let site = site_with_a_store();
    // A daemon's clean stop leaves a snapshot beside the log.
    let d = site.start();
    assert!(d.stop().success());
    let (code, good, _) = report_cli(&site);
    assert_eq!(code, Some(0));
    let db_dir = site.data_dir().join("db");
    let saved = site.dir.path().join("db-saved");
    copy_dir(&db_dir, &saved);
    let mut files = Vec::new();
    list_files(&saved, &mut files);
    assert!(
        files.iter().any(|f| f.to_string_lossy().contains("snap.")),
        "{files:?}"
    );
    let mut rng = common::Rng(24);
    let (mut read, mut refused) = (0, 0);
    for _ in 0..60 {
        std::fs::remove_dir_all(&db_dir).unwrap();
        copy_dir(&saved, &db_dir);
        let file = &files[rng.below(files.len() as u64) as usize];
        let path = db_dir.join(file.strip_prefix(&saved).unwrap());
        let mut bytes = std::fs::read(&path).unwrap();
        if bytes.is_empty() {
            continue;
        }
        for _ in 0..(1 + rng.below(20)) {
            let i = rng.below(bytes.len() as u64) as usize;
            bytes[i] ^= 1 << rng.below(8);
        }
        std::fs::write(&path, &bytes).unwrap();
        let (code, out, err) = report_cli(&site);
        match code {
            Some(0) => {
                assert_eq!(out, good, "{}", path.display());
                read += 1;
            }
            Some(1) => {
                // The configuration read, then one line of error.
                assert!(err.starts_with("configuration: "), "{err}");
                assert_eq!(err.lines().count(), 2, "{}: {err}", path.display());
                assert!(
                    err.contains("is damaged") && err.contains("Restore the data directory"),
                    "{}: {err}",
                    path.display()
                );
                refused += 1;
            }
            other => panic!("{}: exit {other:?}: {err}", path.display()),
        }
    }
    assert!(read > 0 && refused > 0, "{read} read, {refused} refused");
}

fn list_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            list_files(&path, out);
        } else {
            out.push(path);
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

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_refuses_events_cleanly_and_recovers_when_space_returns() {
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
    disk.fill(&filler, 16);
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
    // Anyone may ask /healthz: the reason names no path.
    let reason = health["reason"].as_str().unwrap();
    assert!(
        reason.contains("MiB free") && !reason.contains('/'),
        "{reason}"
    );
    // Reports and the rest go on.
    let (status, _) = report(&d, "").await;
    assert_eq!(status, 200);
    assert_eq!(common::total(&d).await, 2000);
    // Space back: writes resume by themselves.
    std::fs::remove_file(&filler).unwrap();
    wait_until("writes resume", Duration::from_secs(30), async || {
        let r = client().get(d.url("/healthz")).send().await.unwrap();
        ready(r.status() == 200, r.status())
    })
    .await;
    let (status, _) = common::post_events(&d, batch("after", 2000)).await;
    assert_eq!(status, 202);
    assert_eq!(common::total(&d).await, 4000);
    assert!(d.stop().success());
    drop(disk);
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
        "{base}server.max_connections = 100\npolicy.hold_hours = 2\n[[sources]]\nkind = \"postfix\"\npath = {log:?}\n"
    ));
    sighup(&d);
    d.wait_log("configuration reloaded").await;
    // A restart-only change is named, not silently ignored.
    d.wait_log("takes effect at the next restart").await;
    let logged = d.log_text();
    assert!(
        logged.contains("[server]") && logged.contains("[policy]"),
        "{logged}"
    );
    let today = chrono::Utc::now().date_naive();
    let query = format!("start=2026-11-01&end={today}");
    wait_until("18 messages counted", Duration::from_secs(30), async || {
        let (_, body) = report(&d, &query).await;
        ready(body["summary"]["messages"] == 18, body)
    })
    .await;
    // A broken file: logged, the running configuration stays.
    site.write_config(&format!(
        "{base}[[sources]]\nkind = \"postfix\"\npathh = \"x\"\n"
    ));
    sighup(&d);
    d.wait_log("the configuration was not reloaded").await;
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
