//! The longer windows, 3, 6 and 24 hours, looked at every ten minutes (at
//! the account's first message in them): the completed hours and the
//! running one so far.
//!
//! A run throttled below every hourly threshold still sends several times
//! the account's usual count over hours. Each window compares its count
//! with the seasonal baseline summed over the same hours (the running hour
//! by the share of it that has passed), with its own
//! minimum count and Poisson tail. One incident per account, whatever
//! scale opens it:
//! - while one is open, the last two hours keep it open if they are still
//!   well above their expectation (a lower bar than opening: a throttled
//!   run wavers around its threshold, and each waver would otherwise
//!   close the incident and open a new one);
//! - after one closed, the windows start at its end: the run it reported
//!   is not counted again;
//! - a steady account whose raised rate holds, steadily, for a day has
//!   changed its level (a monitor checking twice as often): the incident
//!   closes saying so, and the new rate is its level until the seasonal
//!   baseline has caught up.

use super::SenderState;
use crate::detect::alert::{Alert, AlertKind, AlertStatus, round1, whole_seconds};
use crate::detect::config::DetectConfig;
use crate::detect::incident::{Learnt, Spike};
use crate::detect::maths::poisson_upper;
use crate::event::Event;

/// The windows: completed hours, the fewest messages they alert on,
/// whether a person's account is judged on them, and the ratio over the
/// expected count that opens an incident of a steady account. Three hours
/// find a run of 5-10 times a person's rate in about an hour; two find 3-5
/// times a monitor's (which varies little) an hour sooner than three; a
/// day finds twice a monitor's. Only the day opens at twice: over a few
/// hours a lasting doubling (a monitor checking twice as often) and a run
/// looked alike, and judged on the loose tail of [`STEADY_P`] the shorter
/// windows alerted on doublings more than once each.
const WINDOWS: [(u32, u32, bool, f64); 4] = [
    (2, 10, false, 2.5),
    (3, 20, true, 2.5),
    (6, 30, true, 2.5),
    (24, 48, true, 2.0),
];
/// The shortest window worth judging (after an incident closed).
const MIN_HOURS: u32 = 3;
/// The hours at a window's end that must be above on their own: the run
/// is still going, not a tail an hourly alert already reported.
const RECENT: u32 = 2;
/// Below this index of dispersion an account sends steadily (a machine).
const STEADY: f64 = 0.5;
/// Ratio over the expected count that opens an incident of a person's
/// account (a steady one's is in [`WINDOWS`]): a steady account's
/// expectation is tight, a person's busy days vary.
const OPEN_PERSON: f64 = 3.5;
/// The Poisson tail a steady account's window must reach: it varies far
/// less than a Poisson count of its mean, so a loose tail is enough. With
/// `p_value_new_ip` (1e-5) instead, runs of 3-5 times a monitor's rate
/// were found after 157 and 152 min on average (from a new address, from
/// its own device); with this and the ratios of [`WINDOWS`], after 115 and
/// 106 (`BENCH_THROTTLED=1 BENCH_SEEDS=1-7 cargo bench --bench
/// detect_eval`, see docs/DETECTION.md).
const STEADY_P: f64 = 1e-3;
/// The ratio over the expected count and the Poisson tail that open an
/// incident of a steady account whose window came mostly from addresses
/// it first used within it. A machine does not change address while it
/// keeps sending from its own: a run from the attacker's does. A machine
/// that moves for good sends from the new address at its usual rate,
/// which the ratio holds off. Steady runs of 3-5 times from a new address
/// were found after 115 min on average (seeds 1-7) and 124 (8-14, never
/// used for tuning); with these, after 83 and 93, the level-shift trap
/// and every other trap still quiet (`BENCH_THROTTLED=1 BENCH_SEEDS=...
/// cargo bench --bench detect_eval`).
const FRESH_STEADY: (f64, f64) = (2.0, 1e-2);
/// Ratio of the last two hours that keeps an incident open, and the
/// fewest messages that do.
const KEEP_STEADY: f64 = 1.5;
const KEEP_PERSON: f64 = 2.0;
const KEEP_MIN: u32 = 4;
/// A steady account's raised rate held this many hours is learnt...
const LEARN_AFTER: u32 = 24;
/// ...for this many: by then the seasonal baseline (the median of the same
/// hour over the last days and weeks) has the new level.
const LEARNT_FOR: u32 = 8 * 24;

/// Seconds between two looks at the windows.
const SLOT_SECS: i64 = 600;

/// The ten minutes Unix second `ts` lies in (4 bytes per account: until
/// the year 2786).
pub(super) fn slot(ts: i64) -> u32 {
    u32::try_from(ts.div_euclid(SLOT_SECS)).unwrap_or(0)
}

/// The hour a [`slot`] lies in.
pub(super) fn slot_hour(slot: u32) -> u32 {
    slot / (3600 / SLOT_SECS as u32)
}

impl SenderState {
    /// Looks at the windows ending at `ev`, the first message of its ten
    /// minutes (`new_hour`: the first of its hour); pushes what opens or
    /// closes an incident onto `out`; whether the state changed.
    pub(super) fn long_windows(
        &mut self,
        ev: &Event,
        hour: u32,
        new_hour: bool,
        cfg: &DetectConfig,
        out: &mut Vec<Alert>,
    ) -> bool {
        if ev.ts.timestamp() - self.first_seen < cfg.new_sender.age_hours as i64 * 3600 {
            return false;
        }
        if self
            .persisted
            .learnt
            .as_ref()
            .is_some_and(|l| hour >= l.until)
        {
            self.persisted.learnt = None;
        }
        if self.persisted.spike.is_some() {
            // Kept open hour by hour, over completed hours.
            return new_hour && self.keep_open(ev, hour, cfg, out);
        }
        match self.open(ev, hour, cfg) {
            Some(alert) => {
                out.push(alert);
                true
            }
            None => false,
        }
    }

    /// The messages expected in each hour of `from..to`: the seasonal
    /// baseline, or a learnt level above it.
    fn expected_hours(&self, from: u32, to: u32, cfg: &DetectConfig) -> Vec<f64> {
        let first_hour = u32::try_from(self.first_seen.div_euclid(3600)).unwrap_or(0);
        let learnt = self.persisted.learnt.as_deref();
        (from..to)
            .map(|h| {
                let seasonal = self
                    .history
                    .baseline(h, first_hour, &cfg.volume, None)
                    .expected;
                match learnt {
                    Some(l) if h < l.until => seasonal.max(l.rate),
                    _ => seasonal,
                }
            })
            .collect()
    }

    /// Whether the account sent steadily in the week before `hour`.
    fn steady_before(&self, hour: u32) -> bool {
        self.history.dispersion(hour.saturating_sub(168), hour) < STEADY
    }

    /// An incident opened by a window, if one crosses its threshold. A
    /// window is `scale` completed hours and the running one so far, whose
    /// messages count against the share of its expectation that has passed.
    fn open(&mut self, ev: &Event, hour: u32, cfg: &DetectConfig) -> Option<Alert> {
        let ts = ev.ts.timestamp();
        let first_hour = u32::try_from(self.first_seen.div_euclid(3600)).unwrap_or(0);
        let into_hour = ts - i64::from(hour) * 3600;
        let part = into_hour as f64 / 3600.0;
        let running = self.history.get(hour);
        let longest = WINDOWS[WINDOWS.len() - 1].0;
        let start = hour.saturating_sub(longest).max(self.persisted.quiet_from);
        // Each hour's expectation, computed once for the longest window
        // (the shorter ones are its tail) and only if a window holds enough.
        let mut expected_hours: Option<Vec<f64>> = None;
        for (scale, min_count, people, open_steady) in WINDOWS {
            let window_start = hour.checked_sub(scale)?;
            if window_start < first_hour + 168 {
                continue;
            }
            let from = window_start.max(self.persisted.quiet_from);
            if hour < from + MIN_HOURS.min(scale) {
                continue;
            }
            let observed = self.history.sum(from, hour) + running;
            if observed < min_count {
                continue;
            }
            // A person's account sends unevenly (busy days, a mail merge,
            // the week after a holiday): over hours it alerts only when
            // most of the run comes from addresses it first used within
            // the window, as a spam run from the attacker's machine does.
            let steady = self.steady_before(window_start);
            if !steady
                && (!people
                    || self.sent_from_ips_first_used_since(i64::from(from) * 3600) < min_count)
            {
                continue;
            }
            let all =
                expected_hours.get_or_insert_with(|| self.expected_hours(start, hour + 1, cfg));
            let (done, now) =
                all[(from - start) as usize..].split_at(all.len() - 1 - (from - start) as usize);
            let now = now.first().copied().unwrap_or(0.0) * part;
            let expected = done.iter().sum::<f64>() + now;
            let recent = self.history.sum(hour - RECENT, hour) + running;
            let recent_expected = done[done.len() - RECENT as usize..].iter().sum::<f64>() + now;
            // A steady account's window sent mostly from addresses it
            // first used within it is judged more loosely (see
            // [`FRESH_STEADY`]).
            let fresh = steady
                && 2 * self.sent_from_ips_first_used_since(i64::from(from) * 3600) >= observed;
            let (ratio, p) = match (steady, fresh) {
                (true, true) => (open_steady.min(FRESH_STEADY.0), FRESH_STEADY.1),
                (true, false) => (open_steady, STEADY_P),
                (false, _) => (OPEN_PERSON, cfg.volume.p_value),
            };
            let threshold = f64::from(min_count)
                .max(ratio * expected)
                .max(poisson_upper(expected, p) as f64)
                .ceil() as u32;
            if observed < threshold || f64::from(recent) < ratio * recent_expected {
                continue;
            }
            let interval = cfg.volume.renotify_minutes as i64 * 60;
            let hours = hour - from;
            let span = match into_hour / 60 {
                0 => format!("{hours} hours"),
                minutes => format!("{hours} h {minutes} min"),
            };
            self.persisted.spike = Some(Box::new(Spike {
                kind: AlertKind::VolumeSpike,
                opened: ts,
                last_hour: hour,
                peak: self.history.get(hour - 1).max(running),
                peak_expected: expected / (f64::from(hours) + part),
                next_notify: ts + interval,
                interval,
            }));
            return Some(Alert {
                kind: AlertKind::VolumeSpike,
                sender: ev.sender.clone(),
                at: whole_seconds(ev.ts),
                observed: u64::from(observed),
                expected: round1(expected),
                detail: format!(
                    "{observed} messages in the last {span}, {:.1}x the {expected:.1} \
                     expected at these times of day and week (threshold {threshold})",
                    f64::from(observed) / expected
                ),
                status: AlertStatus::Firing,
                threshold: Some(u64::from(threshold)),
                client_ips: ev.client_ip.iter().map(|ip| ip.to_string()).collect(),
                tls: Some(ev.tls),
            });
        }
        None
    }

    /// Keeps the open incident open through `hour` while its last two
    /// hours are still well above; closes it as a learnt level once a
    /// steady account has held its new rate steadily for a day.
    fn keep_open(
        &mut self,
        ev: &Event,
        hour: u32,
        cfg: &DetectConfig,
        out: &mut Vec<Alert>,
    ) -> bool {
        let Some(opened) = self
            .persisted
            .spike
            .as_ref()
            .map(|s| u32::try_from(s.opened.div_euclid(3600)).unwrap_or(0))
        else {
            return false;
        };
        let Some(from) = hour.checked_sub(LEARN_AFTER) else {
            return false;
        };
        let expected = self.expected_hours(from, hour, cfg);
        let recent = self.history.sum(hour - RECENT, hour);
        let recent_expected: f64 = expected[expected.len() - RECENT as usize..].iter().sum();
        let steady = self.steady_before(opened);
        let ratio = if steady { KEEP_STEADY } else { KEEP_PERSON };
        if recent < KEEP_MIN || f64::from(recent) < ratio * recent_expected {
            return false;
        }
        let day = self.history.sum(from, hour);
        let usual: f64 = expected.iter().sum();
        let learn = steady
            && hour >= opened + LEARN_AFTER
            && self.history.dispersion(from, hour) < STEADY
            && f64::from(day) >= KEEP_STEADY * usual;
        let Some(spike) = self.persisted.spike.as_mut() else {
            return false;
        };
        if !learn {
            spike.last_hour = spike.last_hour.max(hour);
            return true;
        }
        let rate = f64::from(day) / f64::from(LEARN_AFTER);
        out.push(Alert {
            kind: spike.kind,
            sender: ev.sender.clone(),
            at: whole_seconds(ev.ts),
            observed: u64::from(day),
            expected: round1(usual),
            detail: format!(
                "a new level: {rate:.1} messages an hour, steadily, for the last {LEARN_AFTER} \
                 hours ({:.1}x the {:.1} it used to send); taken as the account's usual rate \
                 from now on",
                f64::from(day) / usual,
                usual / f64::from(LEARN_AFTER),
            ),
            status: AlertStatus::Resolved,
            threshold: None,
            client_ips: Vec::new(),
            tls: None,
        });
        self.persisted.spike = None;
        self.persisted.quiet_from = hour;
        self.persisted.learnt = Some(Box::new(Learnt {
            rate,
            until: hour + LEARNT_FOR,
        }));
        true
    }
}
