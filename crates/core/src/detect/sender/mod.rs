//! One account's detector state: its history, the running hour, an open
//! volume incident and whether its legacy TLS use was reported.
//!
//! - `ips`: the client IPs it used (a run from a new one is judged alone);
//! - `long`: the 3-, 6- and 24-hour windows and learnt levels;
//! - `legacy`: its first submission below the minimum TLS version.

use super::alert::{Alert, AlertKind, AlertStatus, round1, whole_seconds};
use super::config::DetectConfig;
use super::history::{Baseline, History};
use super::incident::{Persisted, Spike, spike_detail};
use super::window::Window;
use crate::event::Event;
use std::net::IpAddr;

mod ips;
mod legacy;
mod long;

use ips::KnownIp;

/// Client IPs remembered per running hour for the alert text.
const MAX_IPS: usize = 8;
/// The short window over messages from new client IPs.
const QUARTER_MINUTES: i64 = 15;

/// The running hour.
#[derive(Debug, Clone)]
struct Current {
    hour: u32,
    /// Baselines of this hour and the one before (the sliding window
    /// reaches into it), computed only once the window holds enough
    /// messages to matter: most account-hours never do.
    baselines: Option<[Baseline; 2]>,
    /// The previous hour's baseline when it was computed already.
    carried: Option<Baseline>,
    /// Whether the window crossed its threshold during this hour.
    crossed: bool,
    ips: Vec<std::net::IpAddr>,
    /// Thresholds (all IPs, fresh IPs over the hour and over the last
    /// quarter) of the window ending in `minute`, once computed.
    cached: Option<(i64, [u32; 3])>,
}

#[derive(Debug, Clone)]
pub(crate) struct SenderState {
    pub history: History,
    /// Unix seconds of the account's first message.
    pub first_seen: i64,
    pub persisted: Persisted,
    /// Unix seconds of the last event seen (for eviction).
    pub(crate) last_event: i64,
    ips: Vec<KnownIp>,
    /// The running hour and its window; dropped when the account has been
    /// idle for an hour (the window is empty then), so that the many
    /// accounts that send a message now and then cost little memory.
    hot: Option<Box<Hot>>,
    /// The message that arrived while `hot` was absent, kept inline until a
    /// second one within the hour builds the window: most accounts send
    /// now and then, and an import meets many of them once.
    lone: Option<Lone>,
    /// The last ten minutes (`long::slot`) the longer windows were
    /// looked at.
    long_checked: u32,
    /// Whether `persisted` changed since the detector last handed it on
    /// to be saved (see `Detector::take_dirty`).
    unsaved: bool,
    /// The detector's count of state handed on (`Detector::take_dirty`)
    /// when this account last sent: whether the write that stores its
    /// messages has committed (see `Detector::sweep_cut`).
    pub(crate) observed_in: u32,
}

#[derive(Debug, Clone, Copy)]
struct Lone {
    minute: i64,
    fresh: bool,
    ip: Option<IpAddr>,
}

#[derive(Debug, Clone, Default)]
struct Hot {
    current: Option<Current>,
    window: Window,
    /// The part of `window` sent from client IPs the account had never
    /// used before the last hour: a spam run from an attacker's machine.
    fresh: Window,
}

/// Whether the state changed in a way that must be saved.
pub(super) type Dirty = bool;

impl SenderState {
    pub(super) fn new(history: History, first_seen: i64, persisted: Persisted) -> SenderState {
        SenderState {
            history,
            first_seen,
            persisted,
            last_event: first_seen,
            ips: Vec::new(),
            hot: None,
            lone: None,
            long_checked: 0,
            unsaved: false,
            observed_in: 0,
        }
    }

    /// The state of an account with `loaded` as its past; `first` is the
    /// Unix second of its first message when the store has none.
    pub(super) fn from_loaded(loaded: super::Loaded, first: i64) -> SenderState {
        SenderState::new(
            History::from_counts(loaded.hours),
            loaded.first_seen.unwrap_or(first),
            loaded.state.unwrap_or_default(),
        )
        .with_ips(loaded.ips)
    }

    /// Marks the state as changed since it was last handed on to be
    /// saved; true if it was not marked already (the detector then lists
    /// the account, once).
    pub(super) fn mark_unsaved(&mut self) -> bool {
        !std::mem::replace(&mut self.unsaved, true)
    }

    /// Clears the mark of [`SenderState::mark_unsaved`].
    pub(super) fn saved(&mut self) {
        self.unsaved = false;
    }

    /// Whether it changed since it was last handed on to be saved.
    pub(super) fn is_unsaved(&self) -> bool {
        self.unsaved
    }

    /// Counts one accepted message; pushes what it sets off onto `out`.
    pub(super) fn observe(
        &mut self,
        ev: &Event,
        cfg: &DetectConfig,
        out: &mut Vec<Alert>,
    ) -> Dirty {
        let ts = ev.ts.timestamp();
        let hour = crate::event::time::hour_number(ev.ts);
        self.first_seen = self.first_seen.min(ts);
        self.last_event = self.last_event.max(ts);
        let mut dirty = self.legacy(ev, cfg, out);
        let slot = long::slot(ts);
        if slot > self.long_checked {
            let new_hour = long::slot_hour(self.long_checked) < hour;
            self.long_checked = slot;
            dirty |= self.long_windows(ev, hour, new_hour, cfg, out);
        }
        let hour_count = self.history.add(hour, 1);
        let minute = ts.div_euclid(60);
        let fresh_ip = ev.client_ip.is_some_and(|ip| self.note_ip(ip, ts));
        let gate = cfg.volume.min_count.min(cfg.volume.min_count_new_ip);
        let lone = match self.lone.take() {
            Some(l) if minute - l.minute < 60 => Some(l),
            _ => None,
        };
        let quiet = self.hot.is_none() && lone.is_none() && hour_count == 1;
        if quiet && gate > 1 && self.persisted.spike.is_none() {
            // The hour's first message from a quiet account cannot alert.
            self.lone = Some(Lone {
                minute,
                fresh: fresh_ip,
                ip: ev.client_ip,
            });
            return dirty;
        }
        let hot = self.hot.get_or_insert_with(Box::default);
        if hot.current.is_none() {
            // Back from the store mid-hour: its messages so far count from
            // the hour's start (the one kept inline at its own minute).
            let inline = lone.filter(|l| l.minute >= i64::from(hour) * 60);
            let earlier = hour_count.saturating_sub(1 + u32::from(inline.is_some()));
            if earlier > 0 {
                hot.window.add(i64::from(hour) * 60, earlier);
            }
        }
        if let Some(l) = lone {
            hot.window.add(l.minute, 1);
            hot.fresh.add(l.minute, u32::from(l.fresh));
        }
        let count = hot.window.add(minute, 1);
        let fresh = hot.fresh.add(minute, u32::from(fresh_ip));
        let first_hour = u32::try_from(self.first_seen.div_euclid(3600)).unwrap_or(0);
        let new = (ts - self.first_seen < cfg.new_sender.age_hours as i64 * 3600)
            .then_some(&cfg.new_sender);
        let current = match &mut hot.current {
            Some(c) if c.hour == hour => c,
            slot => {
                let carried = match slot {
                    Some(c) if c.hour + 1 == hour => c.baselines.map(|b| b[0]),
                    _ => None,
                };
                // The last hour's list, emptied: one allocation per
                // account in memory rather than one per account-hour.
                let mut ips = slot.take().map(|c| c.ips).unwrap_or_default();
                ips.clear();
                slot.insert(Current {
                    hour,
                    baselines: None,
                    carried,
                    crossed: false,
                    ips,
                    cached: None,
                })
            }
        };
        let same_hour = |l: &Lone| l.minute >= i64::from(hour) * 60;
        let lone_ip = lone.filter(same_hour).and_then(|l| l.ip);
        for ip in lone_ip.into_iter().chain(ev.client_ip) {
            if current.ips.len() < MAX_IPS && !current.ips.contains(&ip) {
                current.ips.push(ip);
            }
        }
        // No threshold is ever below the smallest minimum: the common case
        // ends here.
        if self.persisted.spike.is_none() && count < gate {
            return dirty;
        }
        let [now_b, prev_b] = *current.baselines.get_or_insert_with(|| {
            // Baselines read only earlier hours, so the messages of this
            // hour do not raise the bar they are judged by.
            let b = |h: u32| self.history.baseline(h, first_hour, &cfg.volume, new);
            [
                b(hour),
                current.carried.unwrap_or_else(|| b(hour.saturating_sub(1))),
            ]
        });
        if let Some(spike) = &mut self.persisted.spike {
            if spike.peak < count {
                spike.peak = count;
                spike.peak_expected = now_b.expected;
            }
        }
        let reminder_due = self
            .persisted
            .spike
            .as_ref()
            .is_some_and(|s| ts >= s.next_notify);
        if (current.crossed && !reminder_due) || minute < i64::from(hour) * 60 {
            return dirty;
        }
        let into_hour = (minute - i64::from(hour) * 60 + 1) as f64 / 60.0;
        let baseline = now_b.blend(&prev_b, into_hour);
        // Messages from client IPs the account never used are judged on
        // their own, against the same expectation but without the
        // allowance for working hours: a mail merge at 14:00 comes from the
        // user's machine, a spam run from somewhere new.
        let fresh_base = Baseline {
            min_count: f64::from(cfg.volume.min_count_new_ip),
            ..baseline
        };
        // And over the last quarter of an hour, against a quarter of the
        // expectation with the same minimum: a run from a new address at
        // 30-80 an hour is evidence after 10 messages, where the whole
        // hour would wait for the hour's usual count to be exceeded too.
        let quarter = Baseline {
            expected: fresh_base.expected / 4.0,
            ..fresh_base
        };
        if count < baseline.lower_bound(&cfg.volume)
            && (new.is_some() || fresh < quarter.lower_bound(&cfg.volume))
        {
            return dirty;
        }
        let [all_t, fresh_t, quarter_t] = match current.cached {
            Some((m, t)) if m == minute => t,
            _ => {
                let p = cfg.volume.p_value_new_ip;
                let t = [
                    baseline.threshold(&cfg.volume),
                    fresh_base.threshold_at(&cfg.volume, p),
                    quarter.threshold_at(&cfg.volume, p),
                ];
                current.cached = Some((minute, t));
                t
            }
        };
        let fresh15 = hot.fresh.recent(QUARTER_MINUTES);
        let (threshold, fresh_note) = if count >= all_t {
            (all_t, fresh)
        } else if new.is_some() {
            return dirty;
        } else if fresh >= fresh_t {
            (fresh_t, fresh)
        } else if fresh15 >= quarter_t {
            (quarter_t, fresh15)
        } else {
            return dirty;
        };
        current.crossed = true;
        let ips = current.ips.iter().map(|ip| ip.to_string()).collect();
        let kind = if new.is_some() {
            AlertKind::NewSender
        } else {
            AlertKind::VolumeSpike
        };
        let mut alert = Alert {
            kind,
            sender: ev.sender.clone(),
            at: whole_seconds(ev.ts),
            observed: u64::from(count),
            expected: round1(baseline.expected),
            detail: String::new(),
            status: AlertStatus::Firing,
            threshold: Some(u64::from(threshold)),
            client_ips: ips,
            tls: Some(ev.tls),
        };
        match &mut self.persisted.spike {
            None => {
                alert.detail = spike_detail(
                    kind,
                    count,
                    baseline.expected,
                    threshold,
                    ts - self.first_seen,
                );
                if fresh_note > 0 && new.is_none() {
                    let when = if fresh_note < fresh {
                        format!(" in the last {QUARTER_MINUTES} minutes")
                    } else {
                        String::new()
                    };
                    alert.detail.push_str(&format!(
                        "; {fresh_note} of them{when} from client IPs this account had not \
                         used before"
                    ));
                }
                let interval = cfg.volume.renotify_minutes as i64 * 60;
                self.persisted.spike = Some(Box::new(Spike {
                    kind,
                    opened: ts,
                    last_hour: hour,
                    peak: count,
                    peak_expected: baseline.expected,
                    next_notify: ts + interval,
                    interval,
                }));
                out.push(alert);
            }
            Some(spike) => {
                spike.last_hour = spike.last_hour.max(hour);
                if ts >= spike.next_notify {
                    let max = cfg.volume.renotify_max_hours as i64 * 3600;
                    spike.interval = (spike.interval * 2).min(max);
                    spike.next_notify = ts + spike.interval;
                    alert.kind = spike.kind;
                    alert.status = AlertStatus::Ongoing;
                    alert.detail = format!(
                        "still sending: hour after hour above the threshold since {}; peak {} \
                         messages in one hour; next reminder in {} h unless it stops",
                        chrono::DateTime::from_timestamp(spike.opened, 0)
                            .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
                            .unwrap_or_default(),
                        spike.peak,
                        spike.interval / 3600,
                    );
                    out.push(alert);
                }
            }
        }
        dirty = true;
        dirty
    }

    /// Closes an open incident once a whole hour after its last spiking
    /// hour has passed (by event time `now`) below the threshold.
    pub(super) fn resolve(
        &mut self,
        sender: &str,
        now: i64,
        grace: i64,
        out: &mut Vec<Alert>,
    ) -> Dirty {
        let (Some(spike), Some(due)) = (&self.persisted.spike, self.resolve_due(grace)) else {
            return false;
        };
        if now < due {
            return false;
        }
        let quiet_end = due - grace;
        let quiet_from = spike.last_hour + 1;
        out.push(Alert {
            kind: spike.kind,
            sender: sender.to_owned(),
            at: chrono::DateTime::from_timestamp(quiet_end, 0).unwrap_or_default(),
            observed: u64::from(spike.peak),
            expected: round1(spike.peak_expected),
            detail: format!(
                "back to normal: a whole hour below the threshold; the incident lasted {} h \
                 and peaked at {} messages in one hour",
                ((quiet_end - 3600 - spike.opened).max(0) + 3599) / 3600,
                spike.peak
            ),
            status: AlertStatus::Resolved,
            threshold: None,
            client_ips: Vec::new(),
            tls: None,
        });
        self.persisted.quiet_from = quiet_from;
        self.persisted.spike = None;
        true
    }

    /// When the open incident resolves if nothing more happens.
    pub(crate) fn resolve_due(&self, grace: i64) -> Option<i64> {
        let spike = self.persisted.spike.as_ref()?;
        Some((i64::from(spike.last_hour) + 2) * 3600 + grace)
    }

    /// Whether it holds a running hour (see [`SenderState::cool_down`]).
    pub(crate) fn is_warm(&self) -> bool {
        self.hot.is_some() || self.lone.is_some()
    }

    /// Drops the running-hour state if the account was idle for an hour
    /// before `now`.
    pub(crate) fn cool_down(&mut self, now: i64) {
        if self.last_event < now - 3600 {
            self.hot = None;
            self.lone = None;
        }
    }

    /// Heap memory held, in bytes (approximate: allocator overhead left
    /// out).
    pub(crate) fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        let hot = self.hot.as_ref().map_or(0, |h| {
            let ips = h.current.as_ref().map_or(0, |c| c.ips.capacity());
            size_of::<Hot>() + ips * size_of::<IpAddr>()
        });
        let spike = self
            .persisted
            .spike
            .as_ref()
            .map_or(0, |_| size_of::<Spike>());
        let learnt = self
            .persisted
            .learnt
            .as_ref()
            .map_or(0, |_| size_of::<super::incident::Learnt>());
        self.history.heap_bytes()
            + self.ips.capacity() * size_of::<KnownIp>()
            + hot
            + spike
            + learnt
    }

    pub(crate) fn has_open_spike(&self) -> bool {
        self.persisted.spike.is_some()
    }
}
