//! `import --format postfix` on a generated, realistic Postfix log of about
//! 1 GB (set BENCH_LOG_MB to change), with pflogsumm (the tool admins use
//! today) run on the same file for comparison.
//!
//!     cargo bench --bench import      (BENCH_ROUNDS, default 2)
//!
//! BENCH_PARSE_ONLY=1 stops after the parser's figure.
//!
//! Then the same import pinned to one core (`taskset -c 0`, BENCH_ROUNDS
//! runs, detectors on), and beside it, also on one core, the awk one-liner
//! an admin would write to count messages by user and TLS version
//! ([`USER_TLS_AWK`]): it stores nothing, so it is the floor of reading
//! the log. Last, what sled alone takes to write the store that import
//! left, on one core (`import/floor.rs`): the floor of storing it.
//!
//! The log: 48 smtpd processes interleaved, each reused for many
//! connections; about 60 % of connections are unauthenticated inbound mail
//! (some rejected), the rest SMTP AUTH submissions from 30,000 users, plus
//! delivery, qmgr, anvil and failed-login lines. Each user submits from one
//! to three devices, each with its own address and TLS version (6 % of
//! devices legacy: TLS 1.0, 1.1 or none). BENCH_TLS=connection draws the
//! client and TLS version per connection instead: the legacy-TLS
//! detector's worst case (three accounts in four alert).
//!
//! The log's days follow each other (about 240 MB a day) and end a day or
//! two before the run, so that a log of many GB spans weeks as a real one
//! does, and all of it is recent enough for the hourly counts kept (35
//! days) as far as its length allows.

mod common;
#[path = "import/floor.rs"]
mod floor;

use common::*;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

const USERS: u64 = 30_000;
/// Bytes of log per day, about (for the first day's date).
const DAY_BYTES: u64 = 240_000_000;

fn main() {
    let mb: u64 = env("BENCH_LOG_MB", 1024);
    let dir = tempfile::tempdir().expect("tempdir");
    // BENCH_LOG_PATH keeps the generated log for other tools.
    let log = std::env::var("BENCH_LOG_PATH")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| dir.path().join("mail.log"));
    let t = Instant::now();
    // BENCH_TLS=connection draws client and TLS version per connection (and
    // the account per message): three accounts in four then meet a legacy
    // version once, the worst case for the legacy-TLS detector.
    let per_client = std::env::var("BENCH_TLS").map_or(true, |v| v != "connection");
    let (lines, submissions) = generate(&log, mb << 20, per_client);
    let bytes = std::fs::metadata(&log).expect("log").len();
    println!(
        "generated {:.0} MB, {lines} lines, {submissions} SMTP AUTH submissions in {:.1} s",
        bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    parse_only(&log, lines);
    if std::env::var("BENCH_PARSE_ONLY").is_ok() {
        return;
    }
    // Imports into a fresh store with the detectors on (the default) and
    // off, alternating, BENCH_ROUNDS times each; the best run of each.
    let rounds: usize = env("BENCH_ROUNDS", 2);
    let mut best = [
        (f64::MAX, 0.0, String::new()),
        (f64::MAX, 0.0, String::new()),
    ];
    for round in 0..rounds * 2 {
        let detect = round % 2 == 0;
        let run = import(dir.path(), &log, detect, false);
        println!(
            "import, detectors {}: {:.2} s",
            if detect { "on" } else { "off" },
            run.0
        );
        let slot = &mut best[usize::from(!detect)];
        if run.0 < slot.0 {
            *slot = run;
        }
    }
    let [(secs, peak, out), (off, off_peak, _)] = best;
    println!("{}", out.trim());
    let one_core = pinned(dir.path(), &log, rounds);
    println!(
        "smtp-auth-insight import: {secs:.2} s, {:.2} M lines/s, {:.0} MB/s, peak RSS {peak:.0} MiB",
        lines as f64 / secs / 1e6,
        bytes as f64 / secs / 1e6
    );
    println!(
        "with the detectors off: {off:.2} s, peak RSS {off_peak:.0} MiB; detection adds {:.0} %",
        (secs / off - 1.0) * 100.0
    );
    awk_floor(&log, dir.path(), one_core);
    // The pinned import's store is the last one written.
    floor::print(&dir.path().join("data").join("db"), dir.path());
    if Command::new("pflogsumm")
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
    {
        let (p_secs, p_peak, _) = measure(Command::new("pflogsumm").arg(&log));
        println!(
            "pflogsumm: {p_secs:.2} s, peak RSS {p_peak:.0} MiB; smtp-auth-insight is {:.1}x faster",
            p_secs / secs
        );
    } else {
        println!("pflogsumm not installed (apt-get install pflogsumm) — no comparison");
    }
}

/// One import of `log` into a fresh store under `dir`, with the detectors
/// on or off, on every core or pinned to the first (see
/// [`import_postfix`]).
fn import(dir: &Path, log: &Path, detect: bool, one_core: bool) -> (f64, f64, String) {
    let settings = format!(
        "store.retention_days = 3650\ndetect.enabled = {detect}\n{}",
        std::env::var("BENCH_EXTRA").unwrap_or_default()
    );
    import_postfix(dir, log, &settings, one_core)
}

/// The import with the detectors on, pinned to one core `rounds` times:
/// the best time.
fn pinned(dir: &Path, log: &Path, rounds: usize) -> f64 {
    let mut best = (f64::MAX, 0.0);
    for _ in 0..rounds {
        let (secs, peak, _) = import(dir, log, true, true);
        println!("import pinned to one core: {secs:.2} s, peak RSS {peak:.0} MiB");
        if secs < best.0 {
            best = (secs, peak);
        }
    }
    let (secs, peak) = best;
    println!("best pinned to one core: {secs:.2} s, peak RSS {peak:.0} MiB");
    secs
}

/// Messages by user and TLS version, as an admin counts them with awk: the
/// TLS version of each smtpd process's connection, then each
/// `sasl_username=` line counted under it.
const USER_TLS_AWK: &str = r#"
/TLS connection established from/ { for (i = 6; i <= NF; i++) if ($i ~ /^TLSv/) { tls[$5] = $i; break }; next }
/sasl_username=/ { u = $NF; sub(/^sasl_username=/, "", u); n[u SUBSEP tls[$5]]++ }
END { for (k in n) { pairs++; total += n[k] }; print total " messages, " pairs " user x TLS pairs" }
"#;

/// The awk one-liner on one core, best of three, against the pinned
/// import's best.
fn awk_floor(log: &Path, dir: &Path, import: f64) {
    let program = dir.join("user-tls.awk");
    std::fs::write(&program, USER_TLS_AWK).expect("awk program");
    let mut best = f64::MAX;
    let mut said = String::new();
    for _ in 0..3 {
        let mut cmd = Command::new("taskset");
        cmd.args(["-c", "0", "awk", "-f"]).arg(&program).arg(log);
        let (secs, _, out) = measure(&mut cmd);
        if out.trim().is_empty() {
            println!("awk not available: no comparison");
            return;
        }
        best = best.min(secs);
        said = out.trim().to_owned();
    }
    println!(
        "awk user x TLS one-liner on one core: {best:.2} s ({said}); the import is {:.2}x its speed",
        best / import
    );
}

/// The Postfix parser alone, on one core: what import costs without the
/// store; and before it, the file read and split into lines alone: what
/// any parser costs.
fn parse_only(log: &Path, lines: u64) {
    use smtp_auth_insight::parse::{LogParser, lines::Lines, postfix::Postfix, syslog::Clock};
    let open =
        || std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(log).expect("log"));
    let mut reader = Lines::new(open());
    let t = Instant::now();
    while reader.next_bytes().expect("read").is_some() {}
    println!(
        "read and split into lines alone (one core): {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let file = open();
    let mut parser = Postfix::new(
        Clock {
            reference: chrono::Utc::now(),
            tz: chrono_tz::Tz::UTC,
        },
        None,
    );
    let mut reader = Lines::new(file);
    let mut events = Vec::new();
    let mut found = 0;
    let t = Instant::now();
    while let Some(line) = reader.next_bytes().expect("read") {
        if let Ok(line) = line {
            let _ = parser.bytes(line, &mut events);
        }
        found += events.len();
        events.clear();
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "parse only (one core): {secs:.2} s, {:.2} M lines/s, {:.0} MB/s, {found} events, RSS {:.0} MiB",
        lines as f64 / secs / 1e6,
        reader.bytes as f64 / secs / 1e6,
        rss_of(std::process::id()).0
    );
}

/// One of the `USERS` accounts. Activity is skewed as in real mail: the
/// product of two uniform draws favours low numbers, so a few accounts send
/// much and many send little.
fn user_number(rng: &mut Rng) -> u64 {
    rng.below(USERS) * rng.below(USERS) / USERS
}

/// Account `n`'s name, in one of 40 domains.
fn user_name(n: u64) -> String {
    format!("user{n}@corp{}.example", n % 40)
}

fn user(rng: &mut Rng) -> String {
    user_name(user_number(rng))
}

/// Device `d` of account `n`: its client name and address, and its TLS
/// version (None: no STARTTLS). Legacy clients are few and stay legacy:
/// 2 % TLS 1.0, 1 % TLS 1.1, 3 % no TLS (old scanners and printers).
fn device(n: u64, d: u64) -> (String, Option<&'static str>) {
    let h = mix(n * 4 + d);
    let ip = h.to_le_bytes();
    let client = format!(
        "dev-{n}-{d}.example.net[{}.{}.{}.{}]",
        1 + ip[0] % 223,
        ip[1],
        ip[2],
        1 + ip[3] % 254
    );
    let tls = match (h >> 32) % 100 {
        0..=1 => Some("TLSv1"),
        2 => Some("TLSv1.1"),
        3..=5 => None,
        6..=45 => Some("TLSv1.2"),
        _ => Some("TLSv1.3"),
    };
    (client, tls)
}

/// A client drawn afresh (inbound mail, and every connection when
/// BENCH_TLS=connection).
fn random_client(rng: &mut Rng) -> String {
    format!(
        "host-{}.example.net[{}.{}.{}.{}]",
        rng.below(100_000),
        1 + rng.below(223),
        rng.below(256),
        rng.below(256),
        1 + rng.below(254)
    )
}

/// A TLS version drawn per connection: 15 % without TLS, 4 % legacy.
fn connection_tls(rng: &mut Rng) -> Option<&'static str> {
    if rng.below(100) >= 85 {
        return None;
    }
    Some(match rng.below(100) {
        0..=2 => "TLSv1",
        3 => "TLSv1.1",
        4..=45 => "TLSv1.2",
        _ => "TLSv1.3",
    })
}

/// SplitMix64: a fixed, well-spread hash of a number.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Writes about `target` bytes of Postfix log; returns (lines, submissions).
fn generate(path: &Path, target: u64, per_client: bool) -> (u64, u64) {
    let mut w = Out {
        w: BufWriter::with_capacity(1 << 20, std::fs::File::create(path).expect("create")),
        bytes: 0,
        lines: 0,
    };
    let mut rng = Rng(0xB16_F11E);
    let mut submissions = 0u64;
    let mut qid = 0x1_0000_0000u64;
    let mut sec = 0u64;
    // Classic syslog timestamps name no year: a date after today would be
    // read as last year's.
    let first_day = chrono::Utc::now().date_naive() - chrono::Days::new(target / DAY_BYTES + 2);
    let line = |w: &mut Out, text: String| w.line(&text);
    while w.bytes < target {
        sec += 1;
        let stamp = {
            let s = sec % 86_400;
            format!(
                "{} {:02}:{:02}:{:02} mx1",
                (first_day + chrono::Days::new(sec / 86_400)).format("%b %e"),
                s / 3600,
                s / 60 % 60,
                s % 60
            )
        };
        // A few connections per second, from 48 reused smtpd processes.
        for _ in 0..1 + rng.below(4) {
            let pid = 20_000 + rng.below(48);
            let inbound = rng.below(100) < 60;
            let svc = if inbound {
                "postfix/smtpd"
            } else {
                "postfix/submission/smtpd"
            };
            // A submission comes from one of its account's devices, whose
            // address and TLS version stay the same (unless the log is to
            // draw both per connection); inbound mail from anywhere.
            let (client, tls, account) = match (inbound, per_client) {
                (false, true) => {
                    let n = user_number(&mut rng);
                    let (client, tls) = device(n, rng.below(1 + n % 3));
                    (client, tls, Some(n))
                }
                _ => (random_client(&mut rng), connection_tls(&mut rng), None),
            };
            line(
                &mut w,
                format!("{stamp} {svc}[{pid}]: connect from {client}"),
            );
            if let Some(tls) = tls {
                line(
                    &mut w,
                    format!(
                        "{stamp} {svc}[{pid}]: Anonymous TLS connection established from {client}: {tls} with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256"
                    ),
                );
            }
            if inbound && rng.below(100) < 30 {
                line(
                    &mut w,
                    format!(
                        "{stamp} {svc}[{pid}]: NOQUEUE: reject: RCPT from {client}: 554 5.7.1 <x@elsewhere.example>: Relay access denied; from=<s@spam.example> to=<x@elsewhere.example> proto=ESMTP helo=<spam>"
                    ),
                );
            } else if !inbound && rng.below(100) < 3 {
                let user = account.map_or_else(|| user(&mut rng), user_name);
                line(
                    &mut w,
                    format!(
                        "{stamp} {svc}[{pid}]: warning: {client}: SASL LOGIN authentication failed: UGFzc3dvcmQ6, sasl_username={user}"
                    ),
                );
            } else {
                for _ in 0..1 + rng.below(2) {
                    qid += 1 + rng.below(7);
                    let q = format!("{qid:X}");
                    let from = if inbound {
                        line(
                            &mut w,
                            format!("{stamp} {svc}[{pid}]: {q}: client={client}"),
                        );
                        format!("news{}@list.example", rng.below(500))
                    } else {
                        let user = account.map_or_else(|| user(&mut rng), user_name);
                        line(
                            &mut w,
                            format!(
                                "{stamp} {svc}[{pid}]: {q}: client={client}, sasl_method=PLAIN, sasl_username={user}"
                            ),
                        );
                        submissions += 1;
                        user
                    };
                    line(
                        &mut w,
                        format!(
                            "{stamp} postfix/cleanup[{}]: {q}: message-id=<{}.{}@mail.example>",
                            30_000 + rng.below(8),
                            rng.next(),
                            qid
                        ),
                    );
                    line(
                        &mut w,
                        format!(
                            "{stamp} postfix/qmgr[1234]: {q}: from=<{from}>, size={}, nrcpt=1 (queue active)",
                            800 + rng.below(90_000)
                        ),
                    );
                    line(
                        &mut w,
                        format!(
                            "{stamp} postfix/smtp[{}]: {q}: to=<r{}@dest.example>, relay=mx.dest.example[198.51.100.{}]:25, delay=0.{}, delays=0.1/0/0.1/0.2, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued)",
                            40_000 + rng.below(16),
                            rng.below(1_000_000),
                            rng.below(250),
                            rng.below(99)
                        ),
                    );
                    line(&mut w, format!("{stamp} postfix/qmgr[1234]: {q}: removed"));
                }
            }
            line(
                &mut w,
                format!(
                    "{stamp} {svc}[{pid}]: disconnect from {client} ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5"
                ),
            );
        }
        if sec % 60 == 0 {
            line(
                &mut w,
                format!(
                    "{stamp} postfix/anvil[1300]: statistics: max connection rate 12/60s for (smtp:203.0.113.9) at {stamp}"
                ),
            );
        }
    }
    w.w.flush().expect("flush");
    (w.lines, submissions)
}

struct Out {
    w: BufWriter<std::fs::File>,
    bytes: u64,
    lines: u64,
}

impl Out {
    fn line(&mut self, text: &str) {
        self.bytes += text.len() as u64 + 1;
        self.lines += 1;
        self.w.write_all(text.as_bytes()).expect("write");
        self.w.write_all(b"\n").expect("write");
    }
}
