//! Following Postfix logs with the real daemon: rotation of every kind,
//! partial lines, and kill -9 at random moments; totals always exact.

mod common;

use common::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

struct Log {
    path: PathBuf,
    next: u32,
}

impl Log {
    /// Appends `n` submissions (unique queue ids), returns how many.
    fn append(&mut self, n: u32) -> u64 {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .unwrap();
        let mut text = String::new();
        for _ in 0..n {
            self.next += 1;
            let tls = ["TLSv1.3", "TLSv1.2", "TLSv1"][self.next as usize % 3];
            let user = format!("user{}@tail.example", self.next % 7);
            text += &postfix_submission(
                1000 + self.next % 5,
                &format!("{:X}", 0xA0000 + self.next),
                &user,
                (self.next % 4 != 0).then_some(tls),
            );
        }
        f.write_all(text.as_bytes()).unwrap();
        u64::from(n)
    }
}

fn site_following(path: &Path) -> Site {
    Site::new(&format!(
        "[[sources]]\nkind = \"postfix\"\npath = {path:?}\n"
    ))
}

/// Waits until the report shows `want` messages, and checks that no line
/// was read twice on the way: events carry ids (host and queue id), so a
/// line read again is not counted again but shows as a duplicate. The
/// counter is cumulative: a line read twice late in one phase shows in the
/// next phase's check.
async fn settles_at(d: &Daemon, want: u64) {
    wait_until(
        &format!("{want} counted"),
        Duration::from_secs(30),
        async || {
            let got = total(d).await;
            ready(got == want, got)
        },
    )
    .await;
    assert_eq!(duplicates(d).await, 0, "a line was read twice");
}

#[tokio::test(flavor = "multi_thread")]
async fn follows_rename_copytruncate_delete_and_partial_lines_counting_each_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log {
        path: dir.path().join("mail.log"),
        next: 0,
    };
    let rotated = dir.path().join("mail.log.1");
    let site = site_following(&log.path);
    let mut want = log.append(50);
    let d = site.start();
    settles_at(&d, want).await;
    want += log.append(40);
    settles_at(&d, want).await;

    // Rename rotation: the old file gets a last line, then a new file starts.
    want += log.append(5);
    std::fs::rename(&log.path, &rotated).unwrap();
    want += log.append(30);
    settles_at(&d, want).await;

    // copytruncate, with lines the daemon may not have read yet.
    want += log.append(30);
    std::fs::copy(&log.path, &rotated).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log.path)
        .unwrap()
        .set_len(0)
        .unwrap();
    want += log.append(20);
    settles_at(&d, want).await;

    // Deleted, seen missing by the follower, then recreated.
    let rotations = || {
        d.log_text()
            .matches("rotated: reading the old file")
            .count()
    };
    let before = rotations();
    std::fs::remove_file(&log.path).unwrap();
    wait_until(
        "the follower sees the log gone",
        Duration::from_secs(30),
        async || ready(rotations() > before, rotations()),
    )
    .await;
    want += log.append(25);
    settles_at(&d, want).await;

    // A partial last line is not read until it is complete.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&log.path)
        .unwrap();
    let block = postfix_submission(7, "FFFF1", "partial@tail.example", Some("TLSv1.3"));
    let (head, tail) = block.split_at(block.find("sasl_username=").unwrap() + 20);
    f.write_all(head.as_bytes()).unwrap();
    settles_at(&d, want).await;
    f.write_all(tail.as_bytes()).unwrap();
    settles_at(&d, want + 1).await;
    assert!(d.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_file_at_start_is_picked_up_when_it_appears() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log {
        path: dir.path().join("later.log"),
        next: 0,
    };
    let site = site_following(&log.path);
    let d = site.start();
    // The follower runs, and finds no file.
    d.wait_log("following").await;
    let want = log.append(12);
    settles_at(&d, want).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kill9_while_following_a_growing_log_loses_and_doubles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mail.log");
    let site = site_following(&path);
    let writer_path = path.clone();
    // A writer appends bursts for a few seconds while the daemon is killed.
    let writer = std::thread::spawn(move || {
        let mut log = Log {
            path: writer_path,
            next: 0,
        };
        let mut written = 0;
        for _ in 0..60 {
            written += log.append(200);
            std::thread::sleep(Duration::from_millis(50));
        }
        written
    });
    let mut rng = Rng(0xF011 ^ u64::from(std::process::id()));
    for round in 0..5 {
        let d = site.start();
        tokio::time::sleep(Duration::from_millis(150 + rng.below(500))).await;
        // Each restart resumes at its cursor: a line read twice (a cursor
        // committed apart from its counts) would show as a duplicate.
        assert_eq!(duplicates(&d).await, 0, "round {round}");
        d.kill9();
    }
    let written = writer.join().unwrap();
    let d = site.start();
    settles_at(&d, written).await;
    assert_eq!(duplicates(&d).await, 0);
}

async fn duplicates(d: &Daemon) -> u64 {
    let metrics = metrics_text(d).await;
    let line = metrics
        .lines()
        .find(|l| l.starts_with("smtp_auth_insight_events_total{outcome=\"duplicate\"}"))
        .unwrap();
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// A daemon following `mail.log` in a new directory, with 20 submissions
/// written and counted.
async fn following_20_lines() -> (tempfile::TempDir, PathBuf, Log, Site, Daemon) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mail.log");
    let mut log = Log {
        path: path.clone(),
        next: 0,
    };
    let want = log.append(20);
    let site = site_following(&path);
    let d = site.start();
    settles_at(&d, want).await;
    (dir, path, log, site, d)
}

/// `log`'s writer goes on in `path` with the next queue ids.
fn continued(log: &Log, path: &Path) -> Log {
    Log {
        path: path.to_owned(),
        next: log.next,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_renamed_log_the_logger_still_writes_is_read_to_its_end() {
    let (dir, path, log, _site, d) = following_20_lines().await;
    let rotated = dir.path().join("mail.log.1");
    let mut want = 20;
    // logrotate renames and creates the new file; the logger has not
    // reopened yet and goes on writing into the renamed one.
    std::fs::rename(&path, &rotated).unwrap();
    std::fs::File::create(&path).unwrap();
    d.wait_log("reading the old file to its end and until it is quiet")
        .await;
    let mut old = continued(&log, &rotated);
    want += old.append(15);
    // It reopens: the next lines go to the new file.
    let mut new = continued(&old, &path);
    want += new.append(10);
    settles_at(&d, want).await;
    assert_eq!(duplicates(&d).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_rotations_while_stopped_are_read_from_every_generation() {
    let (dir, path, mut log, site, d) = following_20_lines().await;
    let generation = |n: u32| dir.path().join(format!("mail.log.{n}"));
    let mut want = 20;
    assert!(d.stop().success());
    // While stopped: more lines, a rotation, lines on both sides of it,
    // and a second rotation.
    want += log.append(10);
    std::fs::rename(&path, generation(1)).unwrap();
    want += continued(&log, &generation(1)).append(5);
    let mut second = Log {
        path: path.clone(),
        next: 100,
    };
    want += second.append(7);
    std::fs::rename(generation(1), generation(2)).unwrap();
    std::fs::rename(&path, generation(1)).unwrap();
    want += Log {
        path: path.clone(),
        next: 200,
    }
    .append(4);
    let d = site.start();
    settles_at(&d, want).await;
    assert_eq!(duplicates(&d).await, 0);
}
