//! Test harness: runs the real `smtp-auth-insight` binary on 127.0.0.1:0
//! with a throw-away data directory and talks to it over real sockets.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub mod campaign;
pub mod dataset;
pub mod policy;
pub mod postfix;
pub mod quiet;
mod rng;
pub mod throttled;
mod wait;
pub mod webdriver;
#[allow(unused_imports)] // not every test binary uses them
pub use rng::Rng;
#[allow(unused_imports)]
pub use wait::{ready, wait_until, wait_until_blocking};

pub const BIN: &str = env!("CARGO_BIN_EXE_smtp-auth-insight");

/// A data directory and config file that outlive daemon restarts.
pub struct Site {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl Site {
    /// `extra` is appended to a config that sets data_dir and listen.
    pub fn new(extra: &str) -> Site {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("config.toml");
        let site = Site { dir, config };
        site.write_config(extra);
        site
    }

    /// Rewrites the config (for restarts with other settings). `extra` is
    /// top-level TOML using dotted keys (`store.retention_days = 3`).
    pub fn write_config(&self, extra: &str) {
        let text = format!(
            "server.listen = \"127.0.0.1:0\"\nserver.token = \"{TOKEN}\"\nstore.data_dir = {:?}\nstore.cache_mb = 16\n{extra}\n",
            self.data_dir()
        );
        std::fs::write(&self.config, text).expect("write config");
    }

    /// Imports one event of now, so that commands that only read (and
    /// never create a store) find one.
    pub fn with_an_event(self) -> Site {
        let file = self.dir.path().join("an-event.ndjson");
        let ts = chrono::Utc::now().to_rfc3339();
        std::fs::write(&file, event_line(&ts, "alice@example.com", "TLSv1.3", None)).unwrap();
        let out = self.cli(&["import", "--format", "ndjson", file.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        self
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn start(&self) -> Daemon {
        Daemon::start(self, &[])
    }

    /// Starts the daemon with more environment variables.
    pub fn start_with_env(&self, env: &[(&str, &std::path::Path)]) -> Daemon {
        Daemon::start(self, env)
    }

    /// Runs a CLI command against this site's config.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        self.cli_env(args, &[])
    }

    /// [`Site::cli`] with `env` set.
    pub fn cli_env(&self, args: &[&str], env: &[(&str, &std::path::Path)]) -> std::process::Output {
        Command::new(BIN)
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env_remove("RUST_LOG")
            .envs(env.iter().copied())
            .output()
            .expect("run cli")
    }
}

pub const TOKEN: &str = "test-token-0123456789";

pub struct Daemon {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: Arc<Mutex<Vec<String>>>,
    /// Reads stderr into `log` until the daemon closes it.
    reader: Option<std::thread::JoinHandle<()>>,
    /// Whether `child` is a command that runs the daemon.
    wrapped: bool,
}

impl Daemon {
    pub fn start(site: &Site, env: &[(&str, &std::path::Path)]) -> Daemon {
        Daemon::start_under(site, env, &[])
    }

    /// [`Daemon::start`] as an argument of `wrapper` (a command that runs
    /// it, strace say); signals and kills reach the daemon itself.
    pub fn start_under(site: &Site, env: &[(&str, &std::path::Path)], wrapper: &[&str]) -> Daemon {
        let mut command = match wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(BIN);
                c
            }
            None => Command::new(BIN),
        };
        let mut child = command
            .arg("--config")
            .arg(&site.config)
            .arg("run")
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn daemon");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line.split("address=").nth(1) {
                    let addr = addr.split_whitespace().next().unwrap_or("").to_owned();
                    let _ = tx.send(addr);
                }
                sink.lock().unwrap().push(line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(a) => a.parse().expect("listen address"),
            Err(_) => {
                let _ = child.kill();
                panic!("daemon did not start: {:?}", log.lock().unwrap());
            }
        };
        Daemon {
            child,
            addr,
            log,
            reader: Some(reader),
            wrapped: !wrapper.is_empty(),
        }
    }

    /// The daemon's process id (the wrapper's child, when it has one).
    pub fn pid(&self) -> u32 {
        let own = self.child.id();
        if !self.wrapped {
            return own;
        }
        std::fs::read_to_string(format!("/proc/{own}/task/{own}/children"))
            .ok()
            .and_then(|c| c.split_whitespace().next()?.parse().ok())
            .unwrap_or(own)
    }

    /// Kills the daemon and what wraps it.
    fn kill_all(&mut self) {
        if self.wrapped {
            let _ = Command::new("kill")
                .args(["-KILL", &self.pid().to_string()])
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// After the daemon exited: waits until `log` holds all it wrote.
    fn read_to_end(&mut self) {
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(mut self) {
        self.kill_all();
        self.read_to_end();
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(mut self) -> ExitStatus {
        let pid = self.pid().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        // A daemon still running past the deadline is killed by Drop.
        let status = wait_until_blocking(
            "the daemon stops on SIGTERM",
            Duration::from_secs(20),
            || self.child.try_wait().expect("wait").ok_or("running"),
        );
        self.read_to_end();
        status
    }

    /// Stops the daemon as [`Daemon::stop`] does; its exit status and
    /// everything it logged, for a failing assertion to show.
    pub fn stop_with_log(self) -> String {
        let log = self.log.clone();
        let status = self.stop();
        format!("{status}; log:\n{}", log.lock().unwrap().join("\n"))
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Waits until the daemon's log holds `text` (30 s at most).
    pub async fn wait_log(&self, text: &str) {
        wait_until(
            &format!("{text:?} in the log"),
            Duration::from_secs(30),
            async || {
                let log = self.log_text();
                ready(log.contains(text), log).map(drop)
            },
        )
        .await
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill_all();
        // A failing test shows what the daemon said (a race in the mail
        // path is read from its log, not rerun until it shows again).
        if std::thread::panicking() {
            let log = self.log.lock().unwrap_or_else(|p| p.into_inner());
            eprintln!(
                "--- daemon log ---\n{}\n--- end of daemon log ---",
                log.join("\n")
            );
        }
    }
}

/// Runs `cmd` with `input` on its stdin; its output (stdout and stderr
/// captured).
pub fn run_with_stdin(cmd: &mut Command, input: &[u8]) -> std::process::Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input).expect("write stdin");
    drop(stdin);
    child.wait_with_output().expect("output")
}

/// Runs `cmd`, which must exit 0 (else the test fails with its output);
/// `missing` says how to install the program when it cannot be started.
pub fn succeed(cmd: &mut Command, missing: &str) -> std::process::Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{missing}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `password`'s hash for `[[server.users]]`, made by `hash-password`.
pub fn password_hash(password: &str) -> String {
    let out = run_with_stdin(Command::new(BIN).arg("hash-password"), password.as_bytes());
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

/// An rsyslog line of the Postfix fixtures as the journal holds it: time,
/// host, identifier, pid and the message after them.
pub fn rsyslog_fields(
    line: &str,
) -> (
    chrono::DateTime<chrono::FixedOffset>,
    &str,
    &str,
    &str,
    &str,
) {
    let mut parts = line.splitn(4, ' ');
    let (ts, host, tag, message) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap_or(""),
    );
    let at = chrono::DateTime::parse_from_rfc3339(ts).unwrap();
    let (identifier, pid) = tag.trim_end_matches(':').split_once('[').unwrap();
    (at, host, identifier, pid.trim_end_matches(']'), message)
}

/// A client that does not follow redirects, as a browser's login shows them.
pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// `POST /login` as `user` (empty: `password` is the API token).
pub async fn login(d: &Daemon, user: &str, password: &str) -> reqwest::Response {
    no_redirects()
        .post(d.url("/login"))
        .form(&[("user", user), ("token", password)])
        .send()
        .await
        .expect("login")
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// POSTs a body to /api/v1/events with the test token.
pub async fn post_events(d: &Daemon, body: impl Into<reqwest::Body>) -> (u16, serde_json::Value) {
    let resp = client()
        .post(d.url("/api/v1/events"))
        .bearer_auth(TOKEN)
        .body(body)
        .send()
        .await
        .expect("post events");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(serde_json::Value::Null))
}

/// GETs an API path with the token: its status and JSON body (null when
/// the body is no JSON).
pub async fn api_get(d: &Daemon, path: &str) -> (u16, serde_json::Value) {
    api(client().get(d.url(path))).await
}

/// DELETEs an API path with the token, answered as [`api_get`].
pub async fn api_delete(d: &Daemon, path: &str) -> (u16, serde_json::Value) {
    api(client().delete(d.url(path))).await
}

async fn api(request: reqwest::RequestBuilder) -> (u16, serde_json::Value) {
    let resp = request
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("an API answer");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(serde_json::Value::Null))
}

/// GETs the report for a query string.
pub async fn report(d: &Daemon, query: &str) -> (u16, serde_json::Value) {
    api_get(d, &format!("/api/v1/report?{query}")).await
}

/// One event as an NDJSON line.
pub fn event_line(ts: &str, sender: &str, tls: &str, id: Option<&str>) -> String {
    let mut v =
        serde_json::json!({"ts": ts, "sender": sender, "tls": tls, "client_ip": "192.0.2.10"});
    if let Some(id) = id {
        v["id"] = id.into();
    }
    v.to_string()
}

/// One Postfix submission as the five lines smtpd and qmgr write for it
/// (the shapes of tests/fixtures/mta/postfix-rsyslog.log), stamped now.
pub fn postfix_submission(pid: u32, qid: &str, user: &str, tls: Option<&str>) -> String {
    let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, false);
    let p = format!("{ts} vm postfix/submission/smtpd[{pid}]:");
    let mut s = format!("{p} connect from localhost[127.0.0.1]\n");
    if let Some(tls) = tls {
        s += &format!(
            "{p} Anonymous TLS connection established from localhost[127.0.0.1]: {tls} with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256\n"
        );
    }
    s += &format!(
        "{p} {qid}: client=localhost[127.0.0.1], sasl_method=PLAIN, sasl_username={user}\n"
    );
    s += &format!(
        "{ts} vm postfix/qmgr[99]: {qid}: from=<{user}>, size=600, nrcpt=1 (queue active)\n"
    );
    s += &format!(
        "{p} disconnect from localhost[127.0.0.1] ehlo=2 starttls=1 auth=1 mail=1 rcpt=1 data=1 quit=1 commands=8\n"
    );
    s
}

/// The daemon's /metrics text.
pub async fn metrics_text(d: &Daemon) -> String {
    client()
        .get(d.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics body")
}

/// Waits (30 s at most) until `ok` says yes to the daemon's /metrics text,
/// for each of the `series` given (their values, None where missing);
/// returns those values.
pub async fn wait_metrics<const N: usize>(
    d: &Daemon,
    series: [&str; N],
    ok: impl Fn([Option<u64>; N]) -> bool,
) -> [Option<u64>; N] {
    wait_until(
        &format!("{series:?}"),
        Duration::from_secs(30),
        async || {
            let text = metrics_text(d).await;
            let values = series.map(|s| metric(&text, s));
            ready(ok(values), values)
        },
    )
    .await
}

/// `send` (a request) again until it gets an answer (30 s at most): a new
/// connection is closed while every slot is taken, until one is freed
/// (one just dropped by a client, say, that the daemon has not seen go).
pub async fn answered<F, Fut>(send: F) -> reqwest::Response
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = reqwest::Result<reqwest::Response>>,
{
    wait_until("an answer", Duration::from_secs(30), async || send().await).await
}

/// The value of an unlabelled or labelled series in /metrics text.
pub fn metric(text: &str, series: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Waits until the notifier has settled: a complete pass since the daemon
/// started, every logged alert handled by the mails and the webhooks, and
/// the mail queue empty (every queued mail delivered or given up). What a
/// relay or webhook has received then is all it will receive (60 s at most).
pub async fn wait_notified(d: &Daemon) {
    wait_until(
        "the notifier settles",
        Duration::from_secs(60),
        async || {
            let text = metrics_text(d).await;
            let settled = metric(&text, "smtp_auth_insight_notifier_passes_total").unwrap_or(0)
                >= 1
                && metric(
                    &text,
                    "smtp_auth_insight_alerts_unnotified{channel=\"mail\"}",
                ) == Some(0)
                && metric(
                    &text,
                    "smtp_auth_insight_alerts_unnotified{channel=\"webhooks\"}",
                ) == Some(0)
                && metric(&text, "smtp_auth_insight_outbox_queued") == Some(0);
            ready(settled, text).map(drop)
        },
    )
    .await
}

/// Messages in the default report.
pub async fn total(d: &Daemon) -> u64 {
    report(d, "").await.1["summary"]["messages"]
        .as_u64()
        .unwrap_or(0)
}

/// Status of GET /api/v1/report with `token`.
pub async fn report_status_with(d: &Daemon, token: &str) -> u16 {
    client()
        .get(d.url("/api/v1/report"))
        .bearer_auth(token)
        .send()
        .await
        .expect("report")
        .status()
        .as_u16()
}

/// A real SMTP server (Python's aiosmtpd) on 127.0.0.1 that stores each
/// received message in a maildir. It binds a port the system picks and
/// reports it: no other test's server can be mistaken for it.
pub struct SmtpSink {
    child: Child,
    pub port: u16,
    pub maildir: tempfile::TempDir,
    stdout: BufReader<std::process::ChildStdout>,
}

impl SmtpSink {
    pub fn start() -> SmtpSink {
        SmtpSink::start_with(&[])
    }

    /// With options of tests/support/smtp_server.py (--starttls, --tls, --auth).
    pub fn start_with(options: &[&str]) -> SmtpSink {
        let mut sink = SmtpSink::spawn(options);
        sink.wait_for("ready");
        sink
    }

    /// A relay that is down: its port is bound (so no other server takes
    /// it) but refuses connections until [`SmtpSink::open`].
    pub fn start_closed() -> SmtpSink {
        SmtpSink::spawn(&["--closed"])
    }

    /// Brings a [`SmtpSink::start_closed`] relay up; returns once it accepts.
    pub fn open(&mut self) {
        use std::io::Write;
        let stdin = self.child.stdin.as_mut().expect("the relay's stdin");
        stdin.write_all(b"open\n").expect("tell the relay to open");
        stdin.flush().expect("tell the relay to open");
        self.wait_for("ready");
    }

    fn spawn(options: &[&str]) -> SmtpSink {
        let maildir = tempfile::tempdir().unwrap();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/smtp_server.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(maildir.path().join("box"))
            .args(options)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 with aiosmtpd (pip install aiosmtpd)");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut sink = SmtpSink {
            child,
            port: 0,
            maildir,
            stdout,
        };
        sink.port = sink.wait_for("port");
        sink
    }

    /// Reads the server's stdout up to the line `word PORT`; returns PORT.
    fn wait_for(&mut self, word: &str) -> u16 {
        self.wait_line(word).trim().parse().expect("a port number")
    }

    /// Reads the server's stdout up to a line starting with `word`;
    /// returns the rest of it (`--slow` says `received` per message).
    pub fn wait_line(&mut self, word: &str) -> String {
        let mut line = String::new();
        loop {
            line.clear();
            let n = self
                .stdout
                .read_line(&mut line)
                .expect("the relay's stdout");
            assert!(
                n > 0,
                "the SMTP server ended before saying {word:?} (is aiosmtpd installed? pip install aiosmtpd)"
            );
            if let Some(rest) = line.trim().strip_prefix(word) {
                return rest.to_owned();
            }
        }
    }

    /// The raw messages received so far.
    pub fn messages(&self) -> Vec<Vec<u8>> {
        let new = self.maildir.path().join("box").join("new");
        let mut files: Vec<_> = std::fs::read_dir(new)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        files.iter().map(|p| std::fs::read(p).unwrap()).collect()
    }

    /// The Subjects and text bodies of the messages, once there are `n`
    /// (a minute at most).
    pub async fn texts(&self, n: usize) -> Vec<(String, String)> {
        wait_until(&format!("{n} mails"), Duration::from_secs(60), async || {
            let mails: Vec<(String, String)> = self
                .messages()
                .iter()
                .map(|raw| {
                    let m = mail_parser::MessageParser::default().parse(raw).unwrap();
                    (
                        m.subject().unwrap_or_default().to_owned(),
                        m.body_text(0).unwrap_or_default().into_owned(),
                    )
                })
                .collect();
            ready(mails.len() >= n, mails)
        })
        .await
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// POSTs a report order to /api/v1/reports with `token`.
pub async fn order_report(d: &Daemon, token: &str, order: serde_json::Value) -> reqwest::Response {
    client()
        .post(d.url("/api/v1/reports"))
        .bearer_auth(token)
        .json(&order)
        .send()
        .await
        .expect("post report")
}

/// Polls GET /api/v1/reports/{id} until `pred` holds (30 s at most).
pub async fn wait_status(
    d: &Daemon,
    id: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    wait_status_with(d, TOKEN, id, pred).await
}

/// [`wait_status`] with another API token.
pub async fn wait_status_with(
    d: &Daemon,
    token: &str,
    id: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    wait_until("the report's status", Duration::from_secs(30), async || {
        let s: serde_json::Value = client()
            .get(d.url(&format!("/api/v1/reports/{id}")))
            .bearer_auth(token)
            .send()
            .await
            .expect("status")
            .json()
            .await
            .expect("status json");
        ready(pred(&s), s)
    })
    .await
}

/// Runs openssl, which must succeed.
pub fn openssl(args: &[&str]) {
    let ok = std::process::Command::new("openssl")
        .args(args)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl");
    assert!(ok.success(), "openssl {args:?}");
}

/// A self-signed certificate for 127.0.0.1 that is not a CA (rustls
/// refuses a CA certificate as a server's own); returns (cert, key).
pub fn self_signed(dir: &std::path::Path) -> (String, String) {
    let p = |n: &str| dir.join(n).to_str().unwrap().to_owned();
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=127.0.0.1",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
        "-addext",
        "basicConstraints=critical,CA:FALSE",
        "-keyout",
        &p("self.key"),
        "-out",
        &p("self.pem"),
    ]);
    (p("self.pem"), p("self.key"))
}

/// A tmpfs of `mib` MiB mounted at `dir`, unmounted when dropped.
pub struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    pub fn mount(dir: &std::path::Path, mib: u64) -> Tmpfs {
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

    pub fn free_mib(&self) -> u64 {
        smtp_auth_insight::store::space::free_bytes(&self.0).unwrap() >> 20
    }

    /// Fills the file system with the file `filler` until `leave_mib` MiB
    /// are free (0: until a write fails for want of space).
    pub fn fill(&self, filler: &std::path::Path, leave_mib: u64) {
        use std::io::Write;
        let mut f = std::fs::File::create(filler).expect("the filler");
        let chunk = vec![1u8; 1 << 20];
        if leave_mib > 0 {
            for _ in 0..self.free_mib().saturating_sub(leave_mib) {
                f.write_all(&chunk).expect("filling");
            }
        } else {
            while f.write_all(&chunk).is_ok() {}
            while f.write_all(&chunk[..4096]).is_ok() {}
        }
        let _ = f.sync_all();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}
