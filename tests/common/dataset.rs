//! A labelled synthetic mail population for evaluating the detectors:
//! several weeks of office users in several time zones, low-volume users,
//! steady service accounts, nightly and weekly batch jobs, vacations, new
//! hires, small mail merges, legacy-TLS clients, phones retrying an old
//! password and brute-force episodes, plus injected compromises of five
//! shapes. Deterministic for a seed.
#![allow(dead_code)]

use super::rng::Rng;
use smtp_auth_insight::event::{Event, Outcome, Tls};

/// 2026-09-28T00:00Z, a Monday.
pub const START: i64 = 1_790_553_600;
pub(crate) const DAY: i64 = 86_400;
pub(crate) const HOUR: i64 = 3600;

/// `base` accounts (or episodes) at `scale`, at least one.
pub(crate) fn scaled(base: f64, scale: f64) -> usize {
    ((base * scale).round() as usize).max(1)
}

/// A labelled incident: what the detector should find.
#[derive(Debug, Clone)]
pub struct Incident {
    pub sender: String,
    pub shape: &'static str,
    pub start: i64,
    pub end: i64,
    /// The attacker's client IP (brute force only).
    pub ip: Option<String>,
}

pub struct Dataset {
    pub events: Vec<Event>,
    /// Compromised accounts (volume incidents).
    pub incidents: Vec<Incident>,
    /// Brute-force episodes (auth-failure incidents), keyed by username or IP.
    pub attacks: Vec<Incident>,
    /// One address submitting as many accounts (see `campaign`), keyed by
    /// the address.
    pub campaigns: Vec<Incident>,
    /// Accounts that must stay quiet though they look unusual: account,
    /// what they do, and from when (see `throttled`).
    pub traps: Vec<(String, &'static str, i64)>,
    pub days: i64,
    /// Days before scoring starts: the detectors learn, nothing is injected.
    pub warmup_days: i64,
}

pub(crate) struct Gen {
    pub(crate) rng: Rng,
    pub(crate) events: Vec<Event>,
}

impl Gen {
    /// A generator of its own for a part added to a data set of `seed`:
    /// `mul` and `add` keep its stream apart from the others', so adding
    /// it changes nothing else.
    pub(crate) fn stream(seed: u64, mul: u64, add: u64) -> Gen {
        Gen {
            rng: Rng(seed.wrapping_mul(mul).wrapping_add(add) | 1),
            events: Vec::new(),
        }
    }

    pub(crate) fn unit(&mut self) -> f64 {
        (self.rng.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub(crate) fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
    pub(crate) fn int(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.rng.below((hi - lo + 1) as u64) as i64
    }
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    pub(crate) fn normal(&mut self) -> f64 {
        let (u, v) = (self.unit().max(1e-12), self.unit());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
    pub(crate) fn poisson(&mut self, lambda: f64) -> u64 {
        if lambda <= 0.0 {
            return 0;
        }
        if lambda > 50.0 {
            return (lambda + lambda.sqrt() * self.normal()).round().max(0.0) as u64;
        }
        let (l, mut k, mut p) = ((-lambda).exp(), 0, 1.0);
        loop {
            p *= self.unit();
            if p <= l {
                return k;
            }
            k += 1;
        }
    }
    pub(crate) fn ip(&mut self, net: u8) -> String {
        format!(
            "10.{net}.{}.{}",
            self.rng.below(256),
            1 + self.rng.below(254)
        )
    }
    pub(crate) fn push(&mut self, ts: i64, sender: &str, tls: Tls, ip: &str, result: Outcome) {
        let ts = chrono::DateTime::from_timestamp(ts, 0).expect("in range");
        self.events.push(Event {
            result,
            client_ip: ip.parse().ok(),
            host: Some("mx1".into()),
            ..Event::accepted(ts, sender, tls)
        });
    }
    /// [`Gen::spread`] for a person: a share of the messages comes from a
    /// phone, each from a carrier IP never seen before.
    pub(crate) fn spread_user(
        &mut self,
        n: u64,
        from: i64,
        secs: i64,
        who: (&str, Tls, &str),
        mobile: f64,
    ) {
        let (sender, tls, ip) = who;
        for _ in 0..n {
            let t = from + self.rng.below(secs.max(1) as u64) as i64;
            let ip = if self.chance(mobile) {
                self.ip(7)
            } else {
                ip.to_owned()
            };
            self.push(t, sender, tls, &ip, Outcome::Accepted);
        }
    }

    /// `n` messages spread at random over `[from, from + secs)`.
    pub(crate) fn spread(
        &mut self,
        n: u64,
        from: i64,
        secs: i64,
        sender: &str,
        tls: Tls,
        ip: &str,
    ) {
        for _ in 0..n {
            let t = from + self.rng.below(secs.max(1) as u64) as i64;
            self.push(t, sender, tls, ip, Outcome::Accepted);
        }
    }
    fn client_tls(&mut self) -> Tls {
        match self.rng.below(100) {
            0..=1 => Tls::None,
            2..=3 => Tls::V1_0,
            4 => Tls::V1_1,
            5..=44 => Tls::V1_2,
            _ => Tls::V1_3,
        }
    }
}

/// An office user's habits.
struct Office {
    name: String,
    tz: i64,
    start: i64,
    end: i64,
    rate: f64,
    evening: bool,
    tls: Tls,
    ip: String,
    /// Working from home some days.
    home_ip: String,
    vacation: (i64, i64),
    first_day: i64,
}

/// Writes `events` as NDJSON, the format `import` and `backtest` read.
pub fn write_ndjson<'a>(
    events: impl IntoIterator<Item = &'a Event>,
    mut out: impl std::io::Write,
) -> std::io::Result<()> {
    for e in events {
        serde_json::to_writer(&mut out, e)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

pub fn generate(seed: u64, days: i64, scale: f64) -> Dataset {
    let mut g = Gen {
        rng: Rng(seed.wrapping_mul(2).wrapping_add(1)),
        events: Vec::new(),
    };
    let warmup_days = 14;
    let n = |base: f64| ((base * scale).round() as usize).max(1);
    let tzs = [-8, -5, 0, 1, 2, 8];
    let mut office = Vec::new();
    for i in 0..n(400.0) + n(20.0) {
        let hire = i >= n(400.0);
        let vac_start = g.int(0, days - 10);
        let o = Office {
            name: format!(
                "{}{i}@corp{}.example",
                if hire { "hire" } else { "user" },
                i % 7
            ),
            tz: tzs[g.rng.below(tzs.len() as u64) as usize],
            start: g.int(7, 9),
            end: g.int(16, 18),
            rate: (1.1 + 0.8 * g.normal()).exp().clamp(0.3, 25.0),
            evening: g.chance(0.2),
            tls: g.client_tls(),
            ip: g.ip(1),
            home_ip: g.ip(8),
            vacation: if g.chance(0.3) {
                (vac_start, vac_start + g.int(5, 14))
            } else {
                (0, 0)
            },
            first_day: if hire { g.int(10, days - 3) } else { 0 },
        };
        office.push(o);
    }
    for o in &office {
        for day in o.first_day..days {
            let weekday = day % 7;
            if day >= o.vacation.0 && day < o.vacation.1 {
                continue;
            }
            let midnight = START + day * DAY - o.tz * HOUR;
            let ip = if weekday >= 5 || g.chance(0.15) {
                o.home_ip.clone()
            } else {
                o.ip.clone()
            };
            let who = (o.name.as_str(), o.tls, ip.as_str());
            if weekday >= 5 {
                if g.chance(0.15) {
                    let k = g.poisson(2.0);
                    g.spread_user(k, midnight + 9 * HOUR, 12 * HOUR, who, 0.05);
                }
                continue;
            }
            for h in o.start..o.end {
                let lunch = if h == 12 { 0.5 } else { 1.0 };
                let k = g.poisson(o.rate * lunch);
                g.spread_user(k, midnight + h * HOUR, HOUR, who, 0.05);
            }
            if o.evening {
                let k = g.poisson(1.5);
                g.spread_user(
                    k,
                    midnight + 19 * HOUR,
                    3 * HOUR,
                    (who.0, who.1, &o.home_ip),
                    0.2,
                );
            }
            // An occasional small mail merge in working hours.
            if g.chance(0.015) {
                let at = midnight + g.int(o.start, o.end - 1) * HOUR;
                let (k, mins) = (g.int(10, 40) as u64, g.int(20, 60));
                g.spread_user(k, at, mins * 60, who, 0.0);
            }
        }
    }
    // Low-volume users: a few messages on some days.
    let mut low = Vec::new();
    for i in 0..n(200.0) {
        let (name, tls, ips) = (
            format!("low{i}@corp{}.example", i % 7),
            g.client_tls(),
            [g.ip(2), g.ip(8)],
        );
        for day in 0..days {
            if day % 7 < 5 && g.chance(0.5) {
                let k = g.poisson(1.5);
                let ip = ips[g.rng.below(2) as usize].clone();
                let from = START + day * DAY + 7 * HOUR;
                g.spread_user(k, from, 13 * HOUR, (&name, tls, &ip), 0.1);
            }
        }
        low.push(name);
    }
    // Service accounts: steady rates around the clock.
    let mut services = Vec::new();
    for i in 0..n(25.0) {
        let name = format!("svc-app{i}@corp.example");
        let (rate, swing, ip) = (g.range(1.0, 80.0), g.range(0.0, 0.5), g.ip(3));
        for h in 0..days * 24 {
            let phase = (h % 24) as f64 / 24.0 * std::f64::consts::TAU;
            let k = g.poisson(rate * (1.0 + swing * phase.sin()));
            g.spread(k, START + h * HOUR, HOUR, &name, Tls::V1_2, &ip);
        }
        services.push((name, rate, ip));
    }
    // Nightly batch jobs and weekly newsletters.
    for i in 0..n(12.0) {
        let name = format!("backup{i}@corp.example");
        let (hour, size, mins, ip) = (g.int(0, 5), g.range(100.0, 800.0), g.int(5, 40), g.ip(4));
        for day in 0..days {
            if g.chance(0.05) {
                continue;
            }
            let k = (size * g.range(0.8, 1.2)) as u64;
            let at = START + day * DAY + hour * HOUR + g.int(0, 10) * 60;
            g.spread(k, at, mins * 60, &name, Tls::V1_3, &ip);
            if i % 2 == 0 {
                let k = g.poisson(6.0);
                g.spread(
                    k,
                    START + day * DAY + 8 * HOUR,
                    10 * HOUR,
                    &name,
                    Tls::V1_3,
                    &ip,
                );
            }
        }
    }
    for i in 0..n(6.0) {
        let name = format!("newsletter{i}@corp.example");
        let (weekday, hour, size, ip) =
            (g.int(0, 4), g.int(8, 15), g.range(300.0, 3000.0), g.ip(5));
        for week in 0..days / 7 {
            let k = (size * g.range(0.9, 1.1)) as u64;
            let at = START + (week * 7 + weekday) * DAY + hour * HOUR;
            let mins = g.int(15, 60);
            g.spread(k, at, mins * 60, &name, Tls::V1_3, &ip);
        }
    }
    failures(&mut g, &office, days, warmup_days, scale);
    let mut attacks = Vec::new();
    for _ in 0..n(10.0) {
        attacks.push(attack(&mut g, days, warmup_days));
    }
    let incidents = compromises(&mut g, &office, &low, &services, days, warmup_days, scale);
    let mut events = g.events;
    events.sort_by_key(|e| e.ts);
    Dataset {
        events,
        incidents,
        attacks,
        campaigns: Vec::new(),
        traps: Vec::new(),
        days,
        warmup_days,
    }
}

/// Benign failures: typos, and phones retrying an old password for days.
fn failures(g: &mut Gen, office: &[Office], days: i64, warmup: i64, scale: f64) {
    for o in office.iter().step_by(20) {
        for _ in 0..days / 3 {
            let t = START + g.int(0, days - 1) * DAY + g.int(8, 17) * HOUR;
            g.push(t, &o.name, o.tls, &o.ip, Outcome::AuthFailed);
        }
    }
    for o in office.iter().take(((15.0 * scale) as usize).max(1)) {
        let from = START + g.int(warmup, days - 4) * DAY + g.int(0, 23) * HOUR;
        let until = from + g.int(24, 72) * HOUR;
        let phone = g.ip(6);
        let mut t = from;
        while t < until {
            g.push(t, &o.name, Tls::V1_2, &phone, Outcome::AuthFailed);
            t += g.int(5, 20) * 60;
        }
    }
}

/// One brute-force episode: guessing one password, or spraying many names.
fn attack(g: &mut Gen, days: i64, warmup: i64) -> Incident {
    let start = START + g.int(warmup, days - 1) * DAY + g.int(0, 23) * HOUR;
    let ip = format!("203.0.113.{}", g.rng.below(250) + 1);
    if g.chance(0.5) {
        let user = format!("user{}@corp1.example", g.rng.below(400));
        let (n, secs) = (g.int(100, 2000), g.int(1, 6) * HOUR);
        for _ in 0..n {
            let t = start + g.rng.below(secs as u64) as i64;
            g.push(t, &user, Tls::V1_2, &ip, Outcome::AuthFailed);
        }
        Incident {
            sender: user,
            shape: "guessing",
            start,
            end: start + secs,
            ip: Some(ip),
        }
    } else {
        let (names, secs) = (g.int(30, 200), g.int(1, 3) * HOUR);
        for i in 0..names {
            for _ in 0..g.int(1, 3) {
                let t = start + g.rng.below(secs as u64) as i64;
                g.push(
                    t,
                    &format!("name{i}@corp2.example"),
                    Tls::V1_2,
                    &ip,
                    Outcome::AuthFailed,
                );
            }
        }
        Incident {
            sender: ip.clone(),
            shape: "spraying",
            start,
            end: start + secs,
            ip: Some(ip),
        }
    }
}

/// Injected compromises, all after the warm-up.
fn compromises(
    g: &mut Gen,
    office: &[Office],
    low: &[String],
    services: &[(String, f64, String)],
    days: i64,
    warmup: i64,
    scale: f64,
) -> Vec<Incident> {
    let n = |base: f64| ((base * scale).round() as usize).max(1);
    let mut out = Vec::new();
    let when = |g: &mut Gen| {
        START + g.int(warmup, days - 1) * DAY + g.int(0, 23) * HOUR + g.int(0, 59) * 60
    };
    for i in 0..n(12.0) {
        let sender = if i % 2 == 0 {
            office[g.rng.below(400.min(office.len() as u64)) as usize]
                .name
                .clone()
        } else {
            low[g.rng.below(low.len() as u64) as usize].clone()
        };
        let (start, secs, k) = (when(g), g.int(1, 4) * HOUR, g.int(1000, 6000) as u64);
        one_run(g, &mut out, "big spam run", sender, (start, secs, k));
    }
    for _ in 0..n(12.0) {
        let sender = office[g.rng.below(400.min(office.len() as u64)) as usize]
            .name
            .clone();
        let (start, hours, rate) = (when(g), g.int(4, 10), g.range(30.0, 80.0));
        let ip = g.ip(9);
        for h in 0..hours {
            let k = g.poisson(rate);
            g.spread(k, start + h * HOUR, HOUR, &sender, Tls::V1_3, &ip);
        }
        out.push(Incident {
            sender,
            shape: "moderate multi-hour",
            start,
            end: start + hours * HOUR,
            ip: None,
        });
    }
    for _ in 0..n(10.0) {
        let o = &office[g.rng.below(400.min(office.len() as u64)) as usize];
        let day = g.int(warmup, days - 1);
        let start = START + day * DAY - o.tz * HOUR + g.int(0, 4) * HOUR + g.int(0, 30) * 60;
        let (secs, k) = (g.int(1, 2) * HOUR, g.int(25, 80) as u64);
        let sender = o.name.clone();
        one_run(g, &mut out, "small night run", sender, (start, secs, k));
    }
    for i in 0..n(10.0) {
        let sender = format!("x{i}{}@corp3.example", g.rng.below(1000));
        let (start, secs, k) = (when(g), g.int(1, 3) * HOUR, g.int(150, 1000) as u64);
        one_run(g, &mut out, "brand-new sender", sender, (start, secs, k));
    }
    for _ in 0..n(8.0) {
        let (name, rate, ip) = services[g.rng.below(services.len() as u64) as usize].clone();
        let (start, hours, factor) = (when(g), g.int(2, 6), g.range(3.0, 8.0));
        for h in 0..hours {
            let k = g.poisson(rate * (factor - 1.0));
            g.spread(k, start + h * HOUR, HOUR, &name, Tls::V1_2, &ip);
        }
        out.push(Incident {
            sender: name,
            shape: "service account xN",
            start,
            end: start + hours * HOUR,
            ip: None,
        });
    }
    out
}

/// An injected run of `k` messages over `secs` from `start`, sent with
/// TLS 1.2 from an attacker's client IP, and its label.
fn one_run(
    g: &mut Gen,
    out: &mut Vec<Incident>,
    shape: &'static str,
    sender: String,
    (start, secs, k): (i64, i64, u64),
) {
    let ip = g.ip(9);
    g.spread(k, start, secs, &sender, Tls::V1_2, &ip);
    out.push(Incident {
        sender,
        shape,
        start,
        end: start + secs,
        ip: None,
    });
}
