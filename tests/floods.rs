//! Floods from many addresses at once, as a botnet would send them: slow
//! bodies and slow headers that try to hold every connection, and password
//! guessing that tries to use up the logins. `/healthz` and the admins
//! still get through.

mod common;

use common::{Site, TOKEN, client, password_hash};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

/// The `i`-th loopback address of a flood (127.0.x.y, never 127.0.0.1).
fn address(i: usize) -> IpAddr {
    IpAddr::from([127, 0, 1 + (i / 250) as u8, 1 + (i % 250) as u8])
}

/// A connection to `to` from `from`.
async fn connect_from(from: IpAddr, to: SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    socket.connect(to).await
}

/// `n` clients from `n` addresses, each sending `head` and then one byte
/// of `trickle` a second, reconnecting when closed, until `stop`.
fn flood(
    to: SocketAddr,
    n: usize,
    head: &'static str,
    trickle: &'static [u8],
    stop: tokio_util::sync::CancellationToken,
) -> Vec<tokio::task::JoinHandle<u64>> {
    (0..n)
        .map(|i| {
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut connections = 0;
                while !stop.is_cancelled() {
                    let Ok(mut s) = connect_from(address(i), to).await else {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    };
                    connections += 1;
                    if s.write_all(head.as_bytes()).await.is_err() {
                        continue;
                    }
                    for b in trickle.iter().cycle() {
                        tokio::select! {
                            () = stop.cancelled() => break,
                            () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        }
                        if s.write_all(&[*b]).await.is_err() {
                            break;
                        }
                    }
                }
                connections
            })
        })
        .collect()
}

/// Asks `/healthz` `n` times, one every 100 ms, each on a new connection
/// from 127.0.0.1; how many were answered 200.
async fn health_checks(d: &common::Daemon, n: usize) -> usize {
    let mut ok = 0;
    for _ in 0..n {
        let c = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        if let Ok(r) = c.get(d.url("/healthz")).send().await {
            ok += usize::from(r.status() == 200);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ok
}

async fn flood_then_health(site: &Site, head: &'static str, trickle: &'static [u8]) {
    let d = site.start();
    let stop = tokio_util::sync::CancellationToken::new();
    let flooders = flood(d.addr, 520, head, trickle, stop.clone());
    // Every slot taken by the flood (512 by default) before asking.
    common::wait_metrics(
        &d,
        ["smtp_auth_insight_http_refused_total{reason=\"made_room\"}"],
        |[n]| n.unwrap_or(0) >= 8,
    )
    .await;
    let served = health_checks(&d, 60).await;
    stop.cancel();
    for f in flooders {
        f.await.unwrap();
    }
    assert_eq!(served, 60, "/healthz answered {served} of 60 times");
    assert!(d.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn healthz_is_served_while_520_slow_bodies_from_520_addresses_trickle() {
    let site = Site::new("");
    flood_then_health(
        &site,
        "POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n",
        b"user=ann&token=",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn healthz_is_served_while_520_slow_headers_from_520_addresses_trickle() {
    let site = Site::new("server.header_timeout_seconds = 60");
    flood_then_health(&site, "GET /healthz HTTP/1.1\r\n", b"X-Slow: 1\r\n").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_trickling_in_is_cut_off_at_its_deadline_and_a_large_login_at_once() {
    let site = Site::new("server.body_timeout_seconds = 3");
    let d = site.start();
    // A byte a second keeps no timer between chunks from firing; the
    // whole body's deadline does.
    let started = Instant::now();
    let mut s = tokio::net::TcpStream::connect(d.addr).await.unwrap();
    s.write_all(
        format!(
            "POST /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 1000\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let (mut rd, mut wr) = s.into_split();
    let trickle = tokio::spawn(async move {
        for _ in 0..30 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if wr.write_all(b" ").await.is_err() {
                break;
            }
        }
    });
    let mut answer = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut rd, &mut answer)
        .await
        .unwrap_or_default();
    let took = started.elapsed();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(took < Duration::from_secs(10), "cut off after {took:?}");
    trickle.abort();
    // A login form of a megabyte is refused before its body is read.
    let r = client()
        .post(d.url("/login"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(vec![b'a'; 1 << 20])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_admins_log_in_every_time_while_guessers_rotate_addresses() {
    let hash = password_hash("s3cret pass");
    let site = Site::new(&format!(
        "[[server.users]]\nname = \"ann\"\npassword_hash = \"{hash}\"\n"
    ));
    let d = site.start();
    let stop = tokio_util::sync::CancellationToken::new();
    let made = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    // Four guessers, each from a new address every time, about ten
    // guesses a second in all.
    let guessers: Vec<_> = (0..4)
        .map(|g| {
            let (url, stop, made) = (d.url("/login"), stop.clone(), made.clone());
            tokio::spawn(async move {
                let mut guesses = 0usize;
                while !stop.is_cancelled() {
                    let from = address(1 + g * 1000 + guesses % 1000);
                    let c = reqwest::Client::builder()
                        .local_address(from)
                        .timeout(Duration::from_secs(30))
                        .build()
                        .unwrap();
                    let _ = c
                        .post(&url)
                        .form(&[("user", "ann"), ("token", &format!("guess{guesses}"))])
                        .send()
                        .await;
                    guesses += 1;
                    made.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                guesses
            })
        })
        .collect();
    // Past the account's 20 wrong passwords a minute: guesses are slowed.
    common::wait_until(
        "the guessers' first 24 guesses",
        Duration::from_secs(60),
        async || {
            let n = made.load(std::sync::atomic::Ordering::Relaxed);
            common::ready(n >= 24, n)
        },
    )
    .await;
    // Two admins, each from an address of their own: one with the API
    // token, one with her password.
    let admin = |from: [u8; 4]| {
        reqwest::Client::builder()
            .local_address(IpAddr::from(from))
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap()
    };
    let (by_token, by_password) = (admin([127, 0, 0, 1]), admin([127, 0, 0, 2]));
    let (mut token_logins, mut password_logins) = (0, 0);
    for i in 0..12 {
        let (who, user, secret) = match i % 2 {
            0 => (&by_token, "", TOKEN),
            _ => (&by_password, "ann", "s3cret pass"),
        };
        let r = who
            .post(d.url("/login"))
            .form(&[("user", user), ("token", secret)])
            .send()
            .await
            .unwrap();
        if r.status() == 303 {
            match user {
                "" => token_logins += 1,
                _ => password_logins += 1,
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    stop.cancel();
    let mut guesses = 0;
    for g in guessers {
        guesses += g.await.unwrap();
    }
    assert_eq!((token_logins, password_logins), (6, 6), "of 6 each");
    // More than the account's failures a minute: the guesses were slowed,
    // never the admins.
    assert!(guesses > 20, "{guesses} guesses");
    let metrics = common::metrics_text(&d).await;
    assert_eq!(
        common::metric(
            &metrics,
            "smtp_auth_insight_http_refused_total{reason=\"login_rate\"}"
        ),
        Some(0),
        "no login was refused: {metrics}"
    );
    assert!(d.stop().success());
}
