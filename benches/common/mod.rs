//! Shared pieces of the benchmarks: synthetic events and the real daemon.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const TOKEN: &str = "bench-token";
const TLS: [&str; 5] = ["none", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"];

#[path = "../../tests/common/rng.rs"]
pub mod rng;
#[allow(unused_imports)] // not every test binary uses it
pub use rng::Rng;

/// A TLS class with a realistic skew: mostly 1.2/1.3, a few legacy clients.
pub fn tls(rng: &mut Rng) -> &'static str {
    match rng.below(100) {
        0 => TLS[0],
        1..=2 => TLS[1],
        3 => TLS[2],
        4..=40 => TLS[3],
        _ => TLS[4],
    }
}

/// One NDJSON body of `n` events from `senders` accounts, ids from `first_id`.
pub fn ndjson_body(
    rng: &mut Rng,
    n: usize,
    senders: u64,
    first_id: Option<u64>,
    ts: &str,
) -> String {
    let mut body = String::with_capacity(n * 170);
    for i in 0..n {
        let s = rng.below(senders);
        body.push_str(&format!(
            r#"{{"ts":"{ts}","sender":"user{s}@dept{}.example.com","tls":"{}","result":"accepted","client_ip":"198.51.{}.{}","host":"mx1""#,
            s % 50,
            tls(rng),
            s % 200,
            s % 250
        ));
        if let Some(id) = first_id {
            body.push_str(&format!(r#","id":"mx1:{:X}""#, id + i as u64));
        }
        body.push_str("}\n");
    }
    body
}

/// The daemon binary under test, started on 127.0.0.1:0.
pub struct Daemon {
    pub child: Child,
    pub addr: SocketAddr,
    /// The daemon's log lines as it writes them, and those read so far.
    log: std::sync::mpsc::Receiver<String>,
    read: std::cell::RefCell<Vec<String>>,
}

impl Daemon {
    pub fn start(data_dir: &Path, extra: &str) -> Daemon {
        let config = data_dir.with_extension("toml");
        std::fs::write(
            &config,
            format!(
                "server.listen = \"127.0.0.1:0\"\nserver.token = \"{TOKEN}\"\nstore.data_dir = {data_dir:?}\n{extra}\n"
            ),
        )
        .expect("config");
        let mut child = Command::new(env!("CARGO_BIN_EXE_smtp-auth-insight"))
            .arg("--config")
            .arg(&config)
            .arg("run")
            .env("RUST_LOG", "warn,smtp_auth_insight::daemon=info")
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn daemon");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, log) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut daemon = Daemon {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
            read: Default::default(),
        };
        let line = daemon.wait_log("address=");
        let addr = line
            .split("address=")
            .nth(1)
            .and_then(|a| a.split_whitespace().next());
        daemon.addr = addr.and_then(|a| a.parse().ok()).expect("addr");
        daemon
    }

    /// The first line the daemon logged (or logs, within two minutes)
    /// holding `needle`.
    pub fn wait_log(&self, needle: &str) -> String {
        if let Some(line) = self.read.borrow().iter().find(|l| l.contains(needle)) {
            return line.clone();
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) => {
                    self.read.borrow_mut().push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(e) => panic!("no {needle:?} in the daemon's log: {e}"),
            }
        }
    }

    /// Resident and peak resident memory, in MiB.
    pub fn rss_mib(&self) -> (f64, f64) {
        rss_of(self.child.id())
    }

    /// CPU seconds (user + system) the daemon has used.
    pub fn cpu_seconds(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        let ticks: f64 = fields
            .get(11)
            .and_then(|u| u.parse::<f64>().ok())
            .unwrap_or(0.0)
            + fields
                .get(12)
                .and_then(|s| s.parse::<f64>().ok())
                .unwrap_or(0.0);
        ticks / 100.0
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// Sends the request `request` builds `rounds` times, each answered with
/// success; the seconds each took and the last body's length.
pub async fn timed_gets(
    rounds: usize,
    request: impl Fn() -> reqwest::RequestBuilder,
) -> (Vec<f64>, usize) {
    let mut times = Vec::with_capacity(rounds);
    let mut bytes = 0;
    for _ in 0..rounds {
        let t = std::time::Instant::now();
        let r = request().send().await.expect("request");
        assert!(r.status().is_success(), "{}", r.status());
        bytes = r.bytes().await.expect("body").len();
        times.push(t.elapsed().as_secs_f64());
    }
    (times, bytes)
}

/// The session cookie of a dashboard login with the API token at `base`
/// (the daemon's URL), for `http` (which must not follow redirects).
pub async fn session_cookie(http: &reqwest::Client, base: &str) -> String {
    let login = http
        .post(format!("{base}/login"))
        .form(&[("token", TOKEN)])
        .send()
        .await
        .expect("login");
    login
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("session cookie")
        .to_owned()
}

/// The benchmark setting `name` from the environment, `default` when unset
/// or unreadable.
pub fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One `import --format postfix` of `log` into a fresh store under `dir`,
/// `settings` added to its configuration, on every core or pinned to the
/// first (`taskset -c 0`): wall seconds, peak RSS (MiB), what it printed.
pub fn import_postfix(
    dir: &Path,
    log: &Path,
    settings: &str,
    one_core: bool,
) -> (f64, f64, String) {
    let data = dir.join("data");
    let _ = std::fs::remove_dir_all(&data);
    let config = dir.join("import.toml");
    std::fs::write(&config, format!("store.data_dir = {data:?}\n{settings}")).expect("config");
    let binary = env!("CARGO_BIN_EXE_smtp-auth-insight");
    let mut cmd = match one_core {
        true => {
            let mut cmd = Command::new("taskset");
            cmd.args(["-c", "0", binary]);
            cmd
        }
        false => Command::new(binary),
    };
    cmd.arg("--config")
        .arg(&config)
        .args(["import", "--format", "postfix"])
        .arg(log);
    let run = measure(&mut cmd);
    assert!(run.2.contains(" counted"), "the import failed: {}", run.2);
    run
}

/// Runs a command to completion: wall seconds, peak RSS (MiB), stdout.
pub fn measure(cmd: &mut Command) -> (f64, f64, String) {
    let out_path = std::env::temp_dir().join(format!("bench-out-{}", std::process::id()));
    let out = std::fs::File::create(&out_path).expect("out");
    let t = Instant::now();
    let mut child = cmd
        .stdout(out)
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut peak = 0.0f64;
    loop {
        peak = peak.max(rss_of(child.id()).1);
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let secs = t.elapsed().as_secs_f64();
    let text = std::fs::read_to_string(&out_path).unwrap_or_default();
    let _ = std::fs::remove_file(out_path);
    (secs, peak, text)
}

pub fn rss_of(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Bytes of all files below `dir`.
pub fn disk_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => disk_bytes(&e.path()),
                    _ => e.metadata().map(|m| m.len()).unwrap_or(0),
                })
                .sum()
        })
        .unwrap_or(0)
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// A store in UTC with the default retention (90 days, hourly 35).
pub fn open_store(path: &Path, cache_mb: u64) -> smtp_auth_insight::store::Store {
    use smtp_auth_insight::store::{Retention, Store, StoreOptions};
    Store::open(&StoreOptions {
        path: path.to_owned(),
        tz: chrono_tz::Tz::UTC,
        retention: Retention {
            days: 90,
            hourly_days: 35,
        },
        cache_bytes: cache_mb << 20,
        min_free_bytes: 0,
    })
    .expect("store")
}

/// Fills `store` with `days` days ending today of `senders` accounts, every
/// one active every day with 1–3 messages at noon and a skewed TLS mix;
/// returns the messages stored.
pub fn populate(store: &smtp_auth_insight::store::Store, days: u64, senders: u64) -> u64 {
    use chrono::{Days, TimeZone, Utc};
    use smtp_auth_insight::event::{Event, Tls};
    let mut writer = smtp_auth_insight::store::Writer::new(store.clone());
    let mut rng = Rng(days * 1_000_003 + senders);
    let now = Utc::now();
    let start = now.date_naive() - Days::new(days - 1);
    let mut events = Vec::with_capacity(50_000);
    let mut total = 0u64;
    for d in 0..days {
        let noon = Utc
            .from_utc_datetime(&(start + Days::new(d)).and_hms_opt(12, 0, 0).expect("time"))
            .min(now);
        for s in 0..senders {
            for _ in 0..1 + rng.below(3) {
                let tls = Tls::parse(tls(&mut rng)).expect("a TLS spelling");
                let ip = std::net::IpAddr::from([198, 51, (s % 200) as u8, (s % 250) as u8]);
                let sender = format!("user{s}@dept{}.example.com", s % 50);
                events.push(Event {
                    client_ip: Some(ip),
                    ..Event::accepted(noon, sender, tls)
                });
                total += 1;
            }
            if events.len() >= 50_000 {
                writer.apply(&[&events], &[], now).expect("apply");
                events.clear();
            }
        }
    }
    writer.apply(&[&events], &[], now).expect("apply");
    store.flush().expect("flush");
    total
}
