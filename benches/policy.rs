//! The policy service of the real daemon under load: 50 connections, as
//! 50 smtpd processes would hold, each sending a request and waiting for
//! its answer, for 10 seconds. One request in ten reports a submission
//! (END-OF-MESSAGE of an authenticated client, 5,000 accounts, each run
//! through its replica of the detector state), the others are RCPT-time
//! requests. Two runs: as fast as the answers come (the throughput), then
//! paced at 20,000 requests a second in all (the latency at that load,
//! measured from when each request was due, so a stall counts for every
//! request it delayed). Prints answers per second, latency percentiles and
//! the daemon's memory and CPU.
//!
//! Then spam runs against a daemon that holds (`action = "hold"`): 8
//! connections sending 250 submissions each, pipelined, as fast as they
//! are answered, for new accounts and for established ones (three weeks
//! of history) sending from a new address. Prints the rate and how many
//! messages were let through after the one that raised the alert (the
//! alert's own count says which; the target is 0).
//!
//! Then campaigns (one address submitting as many established accounts,
//! see [`campaigns`]): how many messages were let through after the
//! shared_ip alert was due.
//!
//!     cargo bench --bench policy   (BENCH_CONNECTIONS, BENCH_SECONDS, BENCH_RATE)
//!
//! Client and daemon share the machine: the clients' own CPU time is part
//! of what bounds the figure.

mod common;

use common::*;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn request(state: &str, user: &str, qid: &str) -> String {
    format!(
        "request=smtpd_access_policy\nprotocol_state={state}\nprotocol_name=ESMTP\n\
         client_address=192.0.2.10\nclient_name=laptop.example.com\nhelo_name=laptop\n\
         sender={user}\nrecipient=bob@example.net\nrecipient_count=1\nqueue_id={qid}\n\
         instance=1a2b.3c4d.5e6f.0\nsize=2048\nsasl_method=PLAIN\nsasl_username={user}\n\
         encryption_protocol=TLSv1.3\nencryption_cipher=TLS_AES_256_GCM_SHA384\n\
         encryption_keysize=256\nserver_name=mx1.example.com\nmail_version=3.7.11\n\n"
    )
}

/// One connection's loop, a request every `every` (none: at once): the
/// latencies of its answers, in microseconds.
fn client(addr: &str, n: usize, until: Instant, every: Option<Duration>) -> Vec<u32> {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_nodelay(true).expect("nodelay");
    let mut r = BufReader::new(s.try_clone().expect("clone"));
    let mut latencies = Vec::with_capacity(1 << 16);
    let mut line = String::new();
    let mut i = 0u64;
    // Spread the paced connections' first requests over one interval.
    let mut due = Instant::now() + every.map_or(Duration::ZERO, |e| e * n as u32 / 50);
    while Instant::now() < until {
        if let Some(wait) = every.and(due.checked_duration_since(Instant::now())) {
            std::thread::sleep(wait);
        }
        i += 1;
        let user = format!("user{}@example.com", (i * 7 + n as u64) % 5_000);
        let req = if i % 10 == 0 {
            request("END-OF-MESSAGE", &user, &format!("C{n}Q{i}"))
        } else {
            request("RCPT", &user, "")
        };
        let t = if every.is_some() { due } else { Instant::now() };
        s.write_all(req.as_bytes()).expect("send");
        loop {
            line.clear();
            assert!(r.read_line(&mut line).expect("answer") > 0, "closed");
            if line == "\n" {
                break;
            }
            assert_eq!(line, "action=DUNNO\n");
        }
        latencies.push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
        if let Some(every) = every {
            due += every;
        }
    }
    latencies
}

fn main() {
    let connections = env("BENCH_CONNECTIONS", 50) as usize;
    let seconds = env("BENCH_SECONDS", 10);
    let (_dir, daemon, addr) = policy_daemon("");
    let rate = env("BENCH_RATE", 20_000);
    for every in [
        None,
        Some(Duration::from_secs_f64(connections as f64 / rate as f64)),
    ] {
        let cpu = daemon.cpu_seconds();
        let started = Instant::now();
        let until = started + Duration::from_secs(seconds);
        let threads: Vec<_> = (0..connections)
            .map(|n| {
                let addr = addr.clone();
                std::thread::spawn(move || client(&addr, n, until, every))
            })
            .collect();
        let mut all: Vec<u32> = threads
            .into_iter()
            .flat_map(|t| t.join().expect("client"))
            .collect();
        let secs = started.elapsed().as_secs_f64();
        let cpu = daemon.cpu_seconds() - cpu;
        all.sort_unstable();
        let pct =
            |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)] as f64 / 1000.0;
        match every {
            None => println!("{connections} connections, {seconds} s, as fast as answered:"),
            Some(_) => {
                println!("{connections} connections, {seconds} s, paced at {rate} requests/s:")
            }
        }
        println!(
            "  {} answers, {:.0} answers/s ({:.0} submissions/s), {:.0} % of one core",
            all.len(),
            all.len() as f64 / secs,
            all.len() as f64 / secs / 10.0,
            cpu / secs * 100.0
        );
        println!(
            "  latency: p50 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, max {:.3} ms",
            pct(0.5),
            pct(0.99),
            pct(0.999),
            pct(1.0)
        );
    }
    let (rss, peak) = daemon.rss_mib();
    println!("daemon: RSS {rss:.1} MiB (peak {peak:.1} MiB)");
    drop(daemon);
    bursts();
    campaigns();
}

/// A daemon with the policy service on (and `extra`), its data directory
/// and the service's address.
fn policy_daemon(extra: &str) -> (tempfile::TempDir, Daemon, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let daemon = Daemon::start(
        &data,
        &format!("policy.listen = \"127.0.0.1:0\"\npolicy.host = \"mx1\"\n{extra}"),
    );
    let addr = std::fs::read_to_string(data.join("policy-listening")).expect("policy address");
    (dir, daemon, addr.trim().to_owned())
}

/// Spam runs over 8 connections against a daemon with `action = "hold"`.
fn bursts() {
    let (_dir, daemon, addr) = policy_daemon("policy.action = \"hold\"");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let api = reqwest::Client::new();
    println!("spam runs, 8 connections x 250 submissions, pipelined, action = \"hold\":");
    for n in 0..6 {
        let established = n % 2 == 1;
        let who = format!("run{n}@example.com");
        if established {
            runtime.block_on(history(
                &api,
                &daemon,
                &[(who.clone(), "192.0.2.10")],
                21 * 24,
            ));
        }
        let started = Instant::now();
        let threads: Vec<_> = (0..8)
            .map(|c| {
                let (addr, who) = (addr.clone(), who.clone());
                std::thread::spawn(move || run(&addr, &who, (n, c), 250))
            })
            .collect();
        let (answers, rate, through) = answered(threads, started);
        let observed = runtime.block_on(alert_count(&api, &daemon, &who));
        println!(
            "  {:<11} {} messages, {rate:.0}/s: alert at message {observed}, {through} let through, {} after the alert",
            if established { "established" } else { "new" },
            answers.len(),
            through.saturating_sub(observed)
        );
    }
}

/// The answers of the client threads started at `started`, the messages
/// per second they were answered at, and how many were let through.
fn answered(
    threads: Vec<std::thread::JoinHandle<Vec<String>>>,
    started: Instant,
) -> (Vec<String>, f64, u64) {
    let answers: Vec<String> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("client"))
        .collect();
    let rate = answers.len() as f64 / started.elapsed().as_secs_f64();
    let through = answers.iter().filter(|a| *a == "action=DUNNO\n").count() as u64;
    (answers, rate, through)
}

/// One connection (`c` of run `r`) of a run: `n` submissions of `who`
/// from an address it never used, sent at once; the answers.
fn run(addr: &str, who: &str, (run, c): (usize, usize), n: usize) -> Vec<String> {
    let all: String = (0..n)
        .map(|i| {
            // Queue ids are unique per MTA.
            request("END-OF-MESSAGE", who, &format!("R{run}C{c}X{i}"))
                // An address per run: the runs measure the accounts'
                // containment, not the address's.
                .replace(
                    "client_address=192.0.2.10",
                    &format!("client_address=203.0.113.{}", 10 + run),
                )
        })
        .collect();
    send(addr, &all, n)
}

/// Sends `requests` (`n` of them) on a connection of its own at once; the
/// answers.
fn send(addr: &str, requests: &str, n: usize) -> Vec<String> {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_nodelay(true).expect("nodelay");
    let mut r = BufReader::new(s.try_clone().expect("clone"));
    s.write_all(requests.as_bytes()).expect("send");
    let mut answers = Vec::with_capacity(n);
    let mut line = String::new();
    for _ in 0..n {
        let mut answer = String::new();
        loop {
            line.clear();
            assert!(r.read_line(&mut line).expect("answer") > 0, "closed");
            if line == "\n" {
                break;
            }
            answer.push_str(&line);
        }
        answers.push(answer);
    }
    answers
}

/// Accounts per campaign, messages each, connections.
const CAMPAIGN: (usize, usize, usize) = (48, 4, 8);

/// Campaigns against a daemon with `action = "hold"`: one address submits
/// as 48 established accounts (a day of mail each from an address of its
/// own), 4 messages each, over 8 connections pipelined, each connection
/// going through distinct accounts first. The shared_ip alert needs 5
/// accounts new to the address, so at best the 5th message raises it;
/// prints how many were let through beyond those 5.
fn campaigns() {
    let (_dir, daemon, addr) = policy_daemon("policy.action = \"hold\"");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let api = reqwest::Client::new();
    let (accounts, each, connections) = CAMPAIGN;
    println!(
        "campaigns, one address as {accounts} established accounts x {each} messages, \
         {connections} connections, pipelined, action = \"hold\":"
    );
    for n in 0..3 {
        let who: Vec<(String, String)> = (0..accounts)
            .map(|i| {
                let name = format!("c{n}u{i}@d{}.example", i % 4);
                (name, format!("198.51.{n}.{}", i + 1))
            })
            .collect();
        runtime.block_on(history(&api, &daemon, &who, 24));
        let attacker = format!("203.0.113.{}", 100 + n);
        let per = accounts * each / connections;
        let started = Instant::now();
        let threads: Vec<_> = (0..connections)
            .map(|c| {
                let all: String = (0..per)
                    .map(|j| {
                        let name = &who[(c + connections * j) % accounts].0;
                        request("END-OF-MESSAGE", name, &format!("K{n}C{c}X{j}")).replace(
                            "client_address=192.0.2.10",
                            &format!("client_address={attacker}"),
                        )
                    })
                    .collect();
                let addr = addr.clone();
                std::thread::spawn(move || send(&addr, &all, per))
            })
            .collect();
        let (answers, rate, through) = answered(threads, started);
        let observed = runtime.block_on(alert_count(&api, &daemon, &attacker));
        println!(
            "  {} messages, {rate:.0}/s: shared_ip alert at {observed} accounts, {through} let through, {} after the 5th",
            answers.len(),
            through.saturating_sub(5)
        );
    }
}

/// `hours` of mail of each of `who` (account, its address), four messages
/// an hour, ending 25 hours ago; returns once the store has counted it.
async fn history<S: AsRef<str>>(
    api: &reqwest::Client,
    d: &Daemon,
    who: &[(String, S)],
    hours: i64,
) {
    let end = chrono::Utc::now() - chrono::TimeDelta::hours(25);
    let body: String = who
        .iter()
        .flat_map(|(who, ip)| {
            let ip = ip.as_ref();
            (0..hours * 4).map(move |i| {
                let ts = (end - chrono::TimeDelta::minutes(15 * i)).to_rfc3339();
                format!(
                    "{{\"ts\":\"{ts}\",\"sender\":\"{who}\",\"tls\":\"TLSv1.3\",\"client_ip\":\"{ip}\",\"id\":\"{who}-{i}\"}}\n"
                )
            })
        })
        .collect();
    let posted = api
        .post(format!("http://{}/api/v1/events", d.addr))
        .bearer_auth(TOKEN)
        .body(body)
        .send()
        .await
        .expect("post history");
    assert_eq!(posted.status(), 202);
    let outcome: serde_json::Value = posted.json().await.expect("the outcome");
    assert_eq!(
        outcome["accepted"].as_i64(),
        Some(who.len() as i64 * hours * 4),
        "{outcome}"
    );
    let report = api
        .get(format!("http://{}/api/v1/report", d.addr))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("report");
    assert_eq!(report.status(), 200);
}

/// The count of the alert that opened `who`'s incident, once logged.
async fn alert_count(api: &reqwest::Client, d: &Daemon, who: &str) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let alerts: serde_json::Value = api
            .get(format!("http://{}/api/v1/alerts", d.addr))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("alerts")
            .json()
            .await
            .expect("alerts JSON");
        let found = alerts["alerts"].as_array().and_then(|all| {
            all.iter()
                .find(|a| a["sender"] == who && a["status"].is_null())
                .and_then(|a| a["observed"].as_u64())
        });
        if let Some(observed) = found {
            return observed;
        }
        assert!(Instant::now() < deadline, "no alert for {who}: {alerts}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
