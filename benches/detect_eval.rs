//! Evaluates the detectors on a labelled synthetic data set (see
//! `tests/common/dataset.rs`) against two baselines: an ElastAlert-style
//! `spike` rule and a fixed hourly limit. Prints a Markdown table.
//!
//! `cargo bench --bench detect_eval` (BENCH_SEED, BENCH_DAYS, BENCH_SCALE;
//! BENCH_SWEEP=1 also tries other volume thresholds; BENCH_WRITE=FILE writes
//! the data set as NDJSON, for timing `backtest` and `import` on it).
//!
//! BENCH_THROTTLED=1 adds the throttled compromises and their traps
//! (`tests/common/throttled.rs`) and those that change nothing but the
//! volume (`tests/common/quiet.rs`), and reports each trap's false alerts;
//! BENCH_SEEDS=1-7 runs seeds 1 to 7 and prints the mean by shape.
//!
//! Campaigns (one address, many accounts; `tests/common/campaign.rs`) and
//! their traps are always added, and scored on their own: the alerts of
//! kind shared_ip against the campaigns' addresses.

#[path = "../tests/common/campaign.rs"]
mod campaign;
mod common;
// The data set modules reach the generator as `super::rng`.
use common::rng;
#[path = "../tests/common/dataset.rs"]
mod dataset;
#[path = "../tests/common/quiet.rs"]
mod quiet;
#[path = "../tests/common/throttled.rs"]
mod throttled;

use common::env;
use dataset::{Dataset, Incident};
use smtp_auth_insight::detect::{Alert, AlertKind, DetectConfig, Detector, Fresh};
use smtp_auth_insight::event::{Event, Outcome};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

/// (sender, unix seconds) of each alert that opens an incident.
type Fired = Vec<(String, i64)>;

fn run_detector(data: &Dataset, cfg: DetectConfig) -> (Vec<Alert>, f64) {
    let mut d = Detector::new(Arc::new(cfg));
    let mut out = Vec::new();
    let t = Instant::now();
    for ev in &data.events {
        d.observe(ev, &Fresh, &mut out);
        d.sweep(None);
    }
    let end = dataset::START + data.days * 86_400;
    d.tick(end, &mut out);
    (out, t.elapsed().as_secs_f64())
}

/// ElastAlert's `spike` rule per sender: count in the last `timeframe`
/// against the timeframe before; fires when cur ≥ threshold_cur and
/// cur ≥ spike_height × ref (an empty reference counts as a spike), not for
/// a key younger than two timeframes (alert_on_new_data: false), with
/// realert = timeframe.
fn elastalert_spike(events: &[&Event], spike_height: f64, threshold_cur: usize) -> Fired {
    const TF: i64 = 3600;
    let mut seen: HashMap<&str, (i64, VecDeque<i64>, i64)> = HashMap::new();
    let mut fired = Vec::new();
    for ev in events {
        let t = ev.ts.timestamp();
        let (first, win, last_alert) = seen
            .entry(ev.sender.as_str())
            .or_insert_with(|| (t, VecDeque::new(), i64::MIN / 2));
        win.push_back(t);
        while win.front().is_some_and(|&x| x <= t - 2 * TF) {
            win.pop_front();
        }
        let cur = win.iter().filter(|&&x| x > t - TF).count();
        let reference = win.len() - cur;
        if t - *first >= 2 * TF
            && cur >= threshold_cur
            && cur as f64 >= spike_height * reference as f64
            && t - *last_alert >= TF
        {
            *last_alert = t;
            fired.push((ev.sender.clone(), t));
        }
    }
    fired
}

/// A fixed limit: `limit` messages within any hour, realert after an hour.
fn hourly_limit(events: &[&Event], limit: usize) -> Fired {
    let mut seen: HashMap<&str, (VecDeque<i64>, i64)> = HashMap::new();
    let mut fired = Vec::new();
    for ev in events {
        let t = ev.ts.timestamp();
        let (win, last_alert) = seen
            .entry(ev.sender.as_str())
            .or_insert_with(|| (VecDeque::new(), i64::MIN / 2));
        win.push_back(t);
        while win.front().is_some_and(|&x| x <= t - 3600) {
            win.pop_front();
        }
        if win.len() >= limit && t - *last_alert >= 3600 {
            *last_alert = t;
            fired.push((ev.sender.clone(), t));
        }
    }
    fired
}

struct Score {
    detected: usize,
    total: usize,
    false_alerts: usize,
    delays: Vec<i64>,
    /// Shape, found, total, median delay in minutes.
    per_shape: Vec<(&'static str, usize, usize, f64)>,
    /// Shape and the delay (seconds) of each incident of it found.
    shape_delays: Vec<(&'static str, i64)>,
    /// Delays (seconds) of the incidents of the [`HOURLY`] shapes found.
    hourly_delays: Vec<i64>,
}

/// The shapes an hourly window is meant to find (the throttled ones are
/// found over hours).
const HOURLY: [&str; 5] = [
    "big spam run",
    "moderate multi-hour",
    "small night run",
    "brand-new sender",
    "service account xN",
];

impl Score {
    fn recall(&self) -> f64 {
        self.detected as f64 / self.total.max(1) as f64
    }
    fn precision(&self) -> f64 {
        let all = self.detected + self.false_alerts;
        if all == 0 {
            0.0
        } else {
            self.detected as f64 / all as f64
        }
    }
    fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
    fn median_delay_min(&self) -> f64 {
        let mut d = self.delays.clone();
        d.sort_unstable();
        d.get(d.len() / 2).map_or(f64::NAN, |s| *s as f64 / 60.0)
    }
}

/// Matches alerts to incidents: same key, between the incident's start and
/// an hour after its end. Several alerts for one incident count once;
/// alerts matching none are false.
fn score(
    fired: &Fired,
    incidents: &[Incident],
    from: i64,
    ip_of: impl Fn(&Incident) -> Option<&str>,
) -> Score {
    let mut first: HashMap<usize, i64> = HashMap::new();
    let mut false_alerts = 0;
    for (key, at) in fired.iter().filter(|(_, at)| *at >= from) {
        let hit = incidents.iter().position(|i| {
            (i.sender == *key || ip_of(i) == Some(key.as_str()))
                && *at >= i.start
                && *at <= i.end + 3600
        });
        match hit {
            Some(i) => {
                let e = first.entry(i).or_insert(*at);
                *e = (*e).min(*at);
            }
            None => {
                false_alerts += 1;
                if std::env::var_os("BENCH_VERBOSE").is_some() {
                    eprintln!("false alert: {key} at {at}");
                }
            }
        }
    }
    if std::env::var_os("BENCH_VERBOSE").is_some() {
        for (i, inc) in incidents
            .iter()
            .enumerate()
            .filter(|(i, _)| !first.contains_key(i))
        {
            eprintln!("missed #{i}: {inc:?}");
        }
    }
    let mut shapes: Vec<&'static str> = incidents.iter().map(|i| i.shape).collect();
    shapes.dedup();
    let mut seen = HashSet::new();
    shapes.retain(|s| seen.insert(*s));
    let per_shape = shapes
        .iter()
        .map(|s| {
            let all: Vec<usize> = (0..incidents.len())
                .filter(|&i| incidents[i].shape == *s)
                .collect();
            let mut delays: Vec<i64> = all
                .iter()
                .filter_map(|i| Some(first.get(i)? - incidents[*i].start))
                .collect();
            delays.sort_unstable();
            let median = delays
                .get(delays.len() / 2)
                .map_or(f64::NAN, |d| *d as f64 / 60.0);
            (*s, delays.len(), all.len(), median)
        })
        .collect();
    Score {
        detected: first.len(),
        total: incidents.len(),
        false_alerts,
        delays: first
            .iter()
            .map(|(i, at)| at - incidents[*i].start)
            .collect(),
        hourly_delays: first
            .iter()
            .filter(|(i, _)| HOURLY.contains(&incidents[**i].shape))
            .map(|(i, at)| at - incidents[*i].start)
            .collect(),
        per_shape,
        shape_delays: first
            .iter()
            .map(|(i, at)| (incidents[*i].shape, at - incidents[*i].start))
            .collect(),
    }
}

fn opening(alerts: &[Alert], kinds: &[AlertKind]) -> Fired {
    alerts
        .iter()
        .filter(|a| a.status.is_firing() && kinds.contains(&a.kind))
        .map(|a| {
            if std::env::var_os("BENCH_VERBOSE").is_some() {
                eprintln!("alert: {} at {}: {}", a.sender, a.at.timestamp(), a.detail);
            }
            (a.sender.clone(), a.at.timestamp())
        })
        .collect()
}

fn row(name: &str, s: &Score, sender_days: usize) {
    println!(
        "| {name} | {}/{} | {:.2} | {:.2} | {:.2} | {} | {:.2} | {:.0} |",
        s.detected,
        s.total,
        s.recall(),
        s.precision(),
        s.f1(),
        s.false_alerts,
        s.false_alerts as f64 * 1000.0 / sender_days.max(1) as f64,
        s.median_delay_min()
    );
}

fn write_ndjson(data: &Dataset, path: &str) {
    let file = std::fs::File::create(path).expect("BENCH_WRITE file");
    dataset::write_ndjson(&data.events, std::io::BufWriter::new(file)).expect("write");
    println!("wrote {} events to {path}", data.events.len());
}

/// False alerts on each trap account after `from` (a level shift's first
/// alert is allowed).
fn trap_alerts(fired: &Fired, data: &Dataset, from: i64) -> Vec<(&'static str, usize)> {
    let mut out: Vec<(&'static str, usize)> = Vec::new();
    for (account, trap, _) in &data.traps {
        if !out.iter().any(|(t, _)| t == trap) {
            out.push((trap, 0));
        }
        // Alerts on the account that no incident of it explains.
        let alerts = fired
            .iter()
            .filter(|(who, at)| who == account && *at >= from)
            .filter(|(who, at)| {
                !data
                    .incidents
                    .iter()
                    .any(|i| i.sender == *who && *at >= i.start && *at <= i.end + 3600)
            })
            .count();
        let excused = usize::from(trap.starts_with("level shift") && alerts > 0);
        if let Some(entry) = out.iter_mut().find(|(t, _)| t == trap) {
            entry.1 += alerts - excused;
        }
    }
    out
}

fn data_set(seed: u64, days: i64, scale: f64) -> Dataset {
    let mut data = dataset::generate(seed, days, scale);
    if env("BENCH_THROTTLED", 0u8) == 1 {
        throttled::add(&mut data, seed, scale);
        quiet::add(&mut data, seed, scale);
    }
    campaign::add(&mut data, seed, scale);
    data
}

/// BENCH_SEEDS=A-B: the mean over those seeds, by shape.
fn seeds(from_to: &str, days: i64, scale: f64) {
    let (a, b) = from_to.split_once('-').unwrap_or((from_to, from_to));
    let (a, b): (u64, u64) = (a.parse().unwrap_or(1), b.parse().unwrap_or(1));
    let mut shapes: Vec<(&'static str, usize, usize, Vec<f64>)> = Vec::new();
    let (mut f1, mut false_rate, mut traps) = (Vec::new(), Vec::new(), Vec::<(&str, usize)>::new());
    // The baselines' F1 and false alerts per 1,000 sender-days.
    let mut baselines = [(Vec::new(), Vec::new()), (Vec::new(), Vec::new())];
    let mut hourly_delays: Vec<i64> = Vec::new();
    let (mut campaign_f1, mut campaign_false) = (Vec::new(), 0);
    let mut every_delay: Vec<(&'static str, i64)> = Vec::new();
    for seed in a..=b {
        let data = data_set(seed, days, scale);
        let from = dataset::START + data.warmup_days * 86_400;
        let sender_days: HashSet<(&str, i64)> = data
            .events
            .iter()
            .filter(|e| e.result == Outcome::Accepted && e.ts.timestamp() >= from)
            .map(|e| (e.sender.as_str(), e.ts.timestamp() / 86_400))
            .collect();
        let (alerts, _) = run_detector(&data, configured());
        let fired = opening(&alerts, &[AlertKind::VolumeSpike, AlertKind::NewSender]);
        let s = score(&fired, &data.incidents, from, |_| None);
        let shared = opening(&alerts, &[AlertKind::SharedIp]);
        let c = score(&shared, &data.campaigns, from, |i| i.ip.as_deref());
        campaign_f1.push(c.f1());
        campaign_false += c.false_alerts;
        let per_1000 = |s: &Score| s.false_alerts as f64 * 1000.0 / sender_days.len().max(1) as f64;
        f1.push(s.f1());
        false_rate.push(per_1000(&s));
        hourly_delays.extend(s.hourly_delays.iter().copied());
        let accepted: Vec<&Event> = data
            .events
            .iter()
            .filter(|e| e.result == Outcome::Accepted)
            .collect();
        for (b, fired) in baselines.iter_mut().zip([
            elastalert_spike(&accepted, 3.0, 30),
            hourly_limit(&accepted, 100),
        ]) {
            let s = score(&fired, &data.incidents, from, |_| None);
            b.0.push(s.f1());
            b.1.push(per_1000(&s));
        }
        for (shape, delay) in s.shape_delays.iter().chain(&c.shape_delays) {
            every_delay.push((*shape, *delay));
        }
        for (shape, found, all, delay) in s.per_shape.into_iter().chain(c.per_shape) {
            match shapes.iter_mut().find(|x| x.0 == shape) {
                Some(x) => {
                    x.1 += found;
                    x.2 += all;
                    x.3.push(delay);
                }
                None => shapes.push((shape, found, all, vec![delay])),
            }
        }
        let mut all_fired = fired.clone();
        all_fired.extend(shared);
        for (trap, n) in trap_alerts(&all_fired, &data, from) {
            match traps.iter_mut().find(|x| x.0 == trap) {
                Some(x) => x.1 += n,
                None => traps.push((trap, n)),
            }
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    println!(
        "seeds {a}-{b}: F1 {:.3}, false alerts {:.2} per 1,000 active sender-days (means)\n",
        mean(&f1),
        mean(&false_rate)
    );
    for ((f1, false_rate), name) in baselines.iter().zip([
        "ElastAlert-style spike (1 h, height 3, threshold_cur 30)",
        "fixed limit 100 per hour",
    ]) {
        println!(
            "- {name}: F1 {:.3}, false alerts {:.2} per 1,000",
            mean(f1),
            mean(false_rate)
        );
    }
    println!(
        "- campaigns (shared_ip): F1 {:.3}, {campaign_false} false alerts over the seeds",
        mean(&campaign_f1)
    );
    hourly_delays.sort_unstable();
    println!(
        "- hourly shapes together ({}): median delay {:.0} min\n",
        HOURLY.join(", "),
        hourly_delays
            .get(hourly_delays.len() / 2)
            .map_or(f64::NAN, |d| *d as f64 / 60.0)
    );
    println!("| shape | found | recall | median delay (min), mean over seeds | mean delay (min) |");
    println!("|---|---|---|---|---|");
    for (shape, found, all, delays) in shapes {
        let delays: Vec<f64> = delays.into_iter().filter(|d| d.is_finite()).collect();
        let found_delays: Vec<f64> = every_delay
            .iter()
            .filter(|(s, _)| *s == shape)
            .map(|(_, d)| *d as f64 / 60.0)
            .collect();
        println!(
            "| {shape} | {found}/{all} | {:.2} | {:.0} | {:.0} |",
            found as f64 / all.max(1) as f64,
            mean(&delays),
            mean(&found_delays)
        );
    }
    for (trap, n) in traps {
        println!("- trap {trap}: {n} false alerts over the seeds");
    }
}

/// The detectors' settings, with the thresholds the environment tries.
fn configured() -> DetectConfig {
    let mut cfg = DetectConfig::default();
    // BENCH_NEW_MIN tries another new-sender minimum.
    cfg.new_sender.min_count = env("BENCH_NEW_MIN", cfg.new_sender.min_count);
    // BENCH_NEW_IP_MIN tries another minimum for messages from new client IPs.
    cfg.volume.min_count_new_ip = env("BENCH_NEW_IP_MIN", cfg.volume.min_count_new_ip);
    // BENCH_NEW_IP_P tries another tail probability for new client IPs.
    cfg.volume.p_value_new_ip = env("BENCH_NEW_IP_P", cfg.volume.p_value_new_ip);
    shared_ip_knobs(&mut cfg);
    cfg
}

/// BENCH_SHARED_MIN, BENCH_SHARED_KNOWN and BENCH_SHARED_SPREAD try other
/// `[detect.shared_ip]` thresholds (a known share of 1 and a spread of 0
/// turn off what keeps the traps quiet).
fn shared_ip_knobs(cfg: &mut DetectConfig) {
    let s = &mut cfg.shared_ip;
    s.min_accounts = env("BENCH_SHARED_MIN", s.min_accounts);
    s.max_known_share = env("BENCH_SHARED_KNOWN", s.max_known_share);
    s.min_spread = env("BENCH_SHARED_SPREAD", s.min_spread);
}

fn main() {
    let seed = env("BENCH_SEED", 1u64);
    let days = env("BENCH_DAYS", 42i64);
    let scale = env("BENCH_SCALE", 1.0f64);
    if let Ok(range) = std::env::var("BENCH_SEEDS") {
        seeds(&range, days, scale);
        return;
    }
    let t = Instant::now();
    let data = data_set(seed, days, scale);
    let from = dataset::START + data.warmup_days * 86_400;
    let accepted: Vec<&Event> = data
        .events
        .iter()
        .filter(|e| e.result == Outcome::Accepted)
        .collect();
    let sender_days: HashSet<(&str, i64)> = accepted
        .iter()
        .filter(|e| e.ts.timestamp() >= from)
        .map(|e| (e.sender.as_str(), e.ts.timestamp() / 86_400))
        .collect();
    println!(
        "data set: seed {seed}, {days} days ({} scored), {} events ({} failed logins), {} senders, \
         {} active sender-days scored, {} compromises, {} brute-force episodes; generated in {:.1} s\n",
        days - data.warmup_days,
        data.events.len(),
        data.events.len() - accepted.len(),
        accepted
            .iter()
            .map(|e| e.sender.as_str())
            .collect::<HashSet<_>>()
            .len(),
        sender_days.len(),
        data.incidents.len(),
        data.attacks.len(),
        t.elapsed().as_secs_f64()
    );
    if let Ok(path) = std::env::var("BENCH_WRITE") {
        write_ndjson(&data, &path);
    }
    let cfg = configured();
    let (alerts, secs) = run_detector(&data, cfg);
    let volume = [AlertKind::VolumeSpike, AlertKind::NewSender];
    let ours = score(&opening(&alerts, &volume), &data.incidents, from, |_| None);
    println!(
        "| detector (compromised accounts) | found | recall | precision | F1 | false alerts | per 1,000 sender-days | median delay (min) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    row("smtp-auth-insight", &ours, sender_days.len());
    let spike = score(
        &elastalert_spike(&accepted, 3.0, 30),
        &data.incidents,
        from,
        |_| None,
    );
    row(
        "ElastAlert-style spike (1 h, height 3, threshold_cur 30)",
        &spike,
        sender_days.len(),
    );
    let limit = score(&hourly_limit(&accepted, 100), &data.incidents, from, |_| {
        None
    });
    row("fixed limit 100 per hour", &limit, sender_days.len());
    let attacks = score(
        &opening(&alerts, &[AlertKind::AuthFailures]),
        &data.attacks,
        from,
        |i| i.ip.as_deref(),
    );
    println!(
        "\n| auth-failure bursts | found | recall | precision | F1 | false alerts | per 1,000 sender-days | median delay (min) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    row("smtp-auth-insight", &attacks, sender_days.len());
    let shared = opening(&alerts, &[AlertKind::SharedIp]);
    let campaigns = score(&shared, &data.campaigns, from, |i| i.ip.as_deref());
    println!(
        "\n| campaigns (one address, many accounts) | found | recall | precision | F1 | false alerts | per 1,000 sender-days | median delay (min) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    row(
        "smtp-auth-insight (shared_ip)",
        &campaigns,
        sender_days.len(),
    );
    for (trap, n) in trap_alerts(&shared, &data, from)
        .into_iter()
        .filter(|(t, _)| [campaign::MOVE, campaign::RELAY].contains(t))
    {
        println!("- trap {trap}: {n} shared_ip alerts");
    }
    println!("\nby shape (smtp-auth-insight):");
    for (shape, found, all, delay) in &ours.per_shape {
        println!("- {shape}: found {found}/{all}, median delay {delay:.0} min");
    }
    let fired = opening(&alerts, &volume);
    for (trap, n) in trap_alerts(&fired, &data, from) {
        println!("- trap {trap}: {n} false alerts");
    }
    let legacy_truth: HashSet<&str> = accepted
        .iter()
        .filter(|e| e.tls.is_legacy())
        .map(|e| e.sender.as_str())
        .collect();
    let legacy: Vec<&str> = alerts
        .iter()
        .filter(|a| a.kind == AlertKind::LegacyTls)
        .map(|a| a.sender.as_str())
        .collect();
    let legacy_set: HashSet<&str> = legacy.iter().copied().collect();
    println!(
        "- legacy TLS: {} alerts for {} senders that used it ({} repeated, {} wrong)",
        legacy.len(),
        legacy_truth.len(),
        legacy.len() - legacy_set.len(),
        legacy_set.difference(&legacy_truth).count()
    );
    println!(
        "\ndetector speed: {} events in {:.2} s = {:.0} events/s",
        data.events.len(),
        secs,
        data.events.len() as f64 / secs
    );
    if env("BENCH_SWEEP", 0u8) == 1 {
        println!(
            "\nsweep: min_count min_count_active min_ratio p_value → F1 recall precision false/1000 delay"
        );
        for (min_count, active) in [
            (15, 40),
            (20, 40),
            (20, 50),
            (25, 50),
            (25, 60),
            (30, 60),
            (30, 80),
        ] {
            for min_ratio in [2.0, 3.0, 5.0] {
                for p in [1e-4, 1e-6, 1e-8] {
                    let mut cfg = DetectConfig::default();
                    cfg.volume.min_count = min_count;
                    cfg.volume.min_count_active = active;
                    cfg.volume.min_ratio = min_ratio;
                    cfg.volume.p_value = p;
                    let (alerts, _) = run_detector(&data, cfg);
                    let s = score(&opening(&alerts, &volume), &data.incidents, from, |_| None);
                    println!(
                        "{min_count} {active} {min_ratio} {p:e} → {:.3} {:.2} {:.2} {:.2} {:.0}",
                        s.f1(),
                        s.recall(),
                        s.precision(),
                        s.false_alerts as f64 * 1000.0 / sender_days.len() as f64,
                        s.median_delay_min()
                    );
                }
            }
        }
    }
}
