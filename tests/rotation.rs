//! Rotation on a busy server, against the real daemon: a follower far
//! behind when the log is rotated twice, a second writer that reopens the
//! log late, renames every 100 ms and copytruncate every 150 ms. Every
//! line written is counted once, and no byte is reported lost.

mod common;

use common::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Queue ids are unique across all writers of a test.
static NEXT: AtomicU32 = AtomicU32::new(0);

/// `n` submissions, five log lines each.
fn submissions(n: u32) -> String {
    (0..n)
        .map(|_| {
            let i = NEXT.fetch_add(1, Ordering::Relaxed);
            postfix_submission(
                1000 + i % 7,
                &format!("{:X}", 0x10_0000 + i),
                &format!("user{}@rotate.example", i % 11),
                Some("TLSv1.3"),
            )
        })
        .collect()
}

/// A logger: an open file it appends to until it reopens the path.
struct Logger {
    path: PathBuf,
    file: std::fs::File,
}

impl Logger {
    fn open(path: &Path) -> Logger {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        Logger {
            path: path.to_owned(),
            file,
        }
    }

    fn write(&mut self, n: u32) -> u64 {
        self.file.write_all(submissions(n).as_bytes()).unwrap();
        u64::from(n)
    }

    fn reopen(&mut self) {
        *self = Logger::open(&self.path);
    }
}

fn generation(path: &Path, n: u32) -> PathBuf {
    PathBuf::from(format!("{}.{n}", path.display()))
}

/// Moves `PATH.1` … `PATH.8` one generation up (`PATH.9` is dropped), as
/// logrotate with `rotate 9` does before it makes the new `PATH.1`.
fn shift(path: &Path) {
    let _ = std::fs::remove_file(generation(path, 9));
    for n in (1..9).rev() {
        let _ = std::fs::rename(generation(path, n), generation(path, n + 1));
    }
}

/// A rename rotation.
fn rename(path: &Path) {
    shift(path);
    std::fs::rename(path, generation(path, 1)).unwrap();
}

/// A copytruncate rotation.
fn copytruncate(path: &Path) {
    shift(path);
    std::fs::copy(path, generation(path, 1)).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(0)
        .unwrap();
}

fn site_following(path: &Path) -> Site {
    Site::new(&format!(
        "[[sources]]\nkind = \"postfix\"\npath = {path:?}\n"
    ))
}

/// Waits (two minutes at most) until the daemon counted `want` messages;
/// none twice, no byte lost.
async fn counts_exactly(d: &Daemon, want: u64) {
    wait_until(
        &format!("{want} counted"),
        Duration::from_secs(120),
        async || {
            let got = total(d).await;
            assert!(got <= want, "{got} counted, {want} written");
            ready(got == want, got)
        },
    )
    .await;
    let text = metrics_text(d).await;
    assert_eq!(
        metric(
            &text,
            "smtp_auth_insight_events_total{outcome=\"duplicate\"}"
        ),
        Some(0),
        "a line read twice"
    );
    assert_eq!(
        metric(&text, "smtp_auth_insight_log_bytes_lost_total"),
        Some(0)
    );
}

/// A burst the follower is still reading when the log is rotated, and
/// rotated again, with new lines in between, as soon as the follower has
/// seen the first rotation.
async fn behind_across_two_rotations(rotate: fn(&Path)) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mail.log");
    let mut logger = Logger::open(&path);
    let mut want = logger.write(10);
    let site = site_following(&path);
    let d = site.start();
    counts_exactly(&d, want).await;
    want += logger.write(30_000);
    rotate(&path);
    logger.reopen();
    want += logger.write(1_000);
    // Again once the follower has seen the first, still far behind.
    wait_until(
        "the follower sees the rotation",
        Duration::from_secs(30),
        async || {
            let log = d.log_text();
            ready(log.contains("rotated: ") || log.contains("truncated; "), ())
        },
    )
    .await;
    rotate(&path);
    logger.reopen();
    want += logger.write(1_000);
    counts_exactly(&d, want).await;
    assert!(d.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_follower_far_behind_reads_every_file_of_two_rename_rotations() {
    behind_across_two_rotations(rename).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_follower_far_behind_reads_every_copy_of_two_copytruncates() {
    behind_across_two_rotations(copytruncate).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_writer_that_reopens_a_second_late_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mail.log");
    let (mut a, mut b) = (Logger::open(&path), Logger::open(&path));
    let site = site_following(&path);
    let d = site.start();
    let mut want = a.write(500) + b.write(500);
    counts_exactly(&d, want).await;
    // logrotate renames; the first writer reopens at once, the second
    // (rsyslog after the HUP) a second later, writing meanwhile.
    rename(&path);
    a.reopen();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(1) {
        want += a.write(5) + b.write(5);
        std::thread::sleep(Duration::from_millis(20));
    }
    b.reopen();
    want += a.write(200) + b.write(200);
    counts_exactly(&d, want).await;
    assert!(d.stop().success());
}

/// A writer that writes 20 messages every 10 ms for `seconds` while
/// `rotate` runs every `every`, under one lock (so that copytruncate loses
/// nothing between its copy and its truncation); what was written.
fn rotating(path: &Path, seconds: u64, every: Duration, rotate: fn(&Path), reopen: bool) -> u64 {
    let logger = Arc::new(Mutex::new(Logger::open(path)));
    let until = Instant::now() + Duration::from_secs(seconds);
    let writer = {
        let logger = logger.clone();
        std::thread::spawn(move || {
            let mut written = 0;
            while Instant::now() < until {
                let mut l = logger.lock().unwrap();
                if reopen {
                    l.reopen();
                }
                written += l.write(20);
                drop(l);
                std::thread::sleep(Duration::from_millis(10));
            }
            written
        })
    };
    while Instant::now() < until {
        std::thread::sleep(every);
        let _held = logger.lock().unwrap();
        rotate(path);
    }
    writer.join().unwrap()
}

/// A daemon following a log that `rotate` rotates every `every` for three
/// seconds while it is written (`reopen`: the logger reopens the path
/// before each write): every line counted once.
async fn rotated_often(every: Duration, rotate: fn(&Path), reopen: bool) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mail.log");
    std::fs::write(&path, "").unwrap();
    let site = site_following(&path);
    let d = site.start();
    let p = path.clone();
    let want = tokio::task::spawn_blocking(move || rotating(&p, 3, every, rotate, reopen))
        .await
        .unwrap();
    counts_exactly(&d, want).await;
    assert!(d.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rename_every_100_ms_loses_nothing() {
    // A logger that follows the path at once, as Postfix's postlogd.
    rotated_often(Duration::from_millis(100), rename, true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_copytruncate_every_150_ms_loses_nothing() {
    rotated_often(Duration::from_millis(150), copytruncate, false).await;
}
