//! The detectors: from the stream of events to alerts, in event time.
//!
//! - `history`: an account's hourly counts and the seasonal baseline.
//! - `maths`: Poisson tail, median, second largest.
//! - `sender`: one account's state: running hour, open incident, legacy
//!   flag; `sender/long.rs` the 3-, 6- and 24-hour windows (looked at
//!   every ten minutes) that catch a run throttled below every hourly
//!   threshold, and the level a steady account has moved to.
//! - `window`: the sliding 60-minute count a spike is judged on.
//! - `resident`: an account's state as held in memory, with what the
//!   hourly pass over all of them reads, and which accounts stay there.
//! - `failures`: bursts of failed logins per username and client IP.
//! - `shared_ip`: one client address submitting as several accounts that
//!   never used it (a batch of stolen passwords).
//! - `alert`: the alert record; `config`: `[detect]`.
//!
//! [`Detector`] is pure: the store's writer feeds it every event it counts
//! and commits the state it reports dirty and the alerts it raises in the
//! same batch as the counts, so a restart neither forgets an open incident
//! nor repeats an alert. `backtest` feeds it a log without any store.
//! Time is the events' time everywhere: replaying last month's log raises
//! the alerts a live daemon would have raised.

pub mod alert;
pub mod config;
mod failures;
pub mod history;
mod incident;
mod maths;
mod replica;
mod resident;
mod sender;
mod shared_ip;
mod window;

pub use alert::{Alert, AlertKind, AlertStatus, Incident, incidents};
pub use config::DetectConfig;
pub use incident::Persisted;
pub use replica::Replica;
pub use shared_ip::{Addresses, Standing};

use crate::event::{Event, Outcome};
use resident::Resident;
use sender::SenderState;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// A resolution waits this long after the quiet hour ends, so that log
/// lines a few minutes late can still count in it.
const RESOLVE_GRACE: i64 = 300;

/// What the detector needs from the store when an account comes back.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Committed `(hour, messages)` of the last [`history::WINDOW_HOURS`].
    pub hours: Vec<(u32, u32)>,
    /// Unix seconds of the account's first message ever.
    pub first_seen: Option<i64>,
    pub state: Option<Persisted>,
    /// Client IPs the account has used.
    pub ips: Vec<std::net::IpAddr>,
}

/// Where an account's past comes from: the store in the daemon and
/// `import`, nowhere in `backtest` (which keeps every account in memory).
pub trait Loader {
    fn sender(&self, sender: &str, from_hour: u32) -> Loaded;
    /// Unix seconds until which alerts under `key` are cooling down.
    fn cooldown(&self, key: &str) -> Option<i64>;
}

/// The loader of a run that starts from nothing.
pub struct Fresh;

impl Loader for Fresh {
    fn sender(&self, _: &str, _: u32) -> Loaded {
        Loaded::default()
    }
    fn cooldown(&self, _: &str) -> Option<i64> {
        None
    }
}

/// State changed since the last [`Detector::take_dirty`], to be saved (in
/// no particular order).
#[derive(Debug, Default)]
pub struct Dirty {
    pub senders: Vec<(String, Persisted)>,
    /// Cool-down key and the Unix second it ends.
    pub cooldowns: Vec<(String, i64)>,
    /// Which call of [`Detector::take_dirty`] this is (see
    /// [`Detector::sweep_cut`]).
    pub cut: u32,
}

pub struct Detector {
    cfg: Arc<DetectConfig>,
    /// States boxed (in a [`Resident`]): the table doubles as it grows,
    /// and a bucket holding the state itself (152 bytes) left most of 10
    /// MiB unused at 30,000 accounts (65,536 buckets); a bucket of a
    /// pointer and a time costs 16.
    /// Hashed with foldhash (see the store's bulk writer): several times faster than
    /// SipHash on account names.
    senders: foldhash::HashMap<String, Resident>,
    /// Accounts with an open incident, checked for resolution by `tick`.
    open: BTreeSet<String>,
    failures: failures::Failures,
    addresses: shared_ip::Addresses,
    /// Cool-downs known in memory (loaded or set), by key.
    cooldowns: HashMap<String, i64>,
    /// Accounts whose state is `unsaved`, each once: a flag in the state
    /// and a list, because a set of names took a copy of the name and a
    /// dozen comparisons for every message.
    dirty_senders: Vec<String>,
    dirty_cooldowns: Vec<(String, i64)>,
    /// Latest event time seen or ticked, Unix seconds.
    clock: i64,
    /// Earliest time an open incident may resolve (`i64::MAX`: none open).
    next_resolve: i64,
    /// Hour (Unix hours) of the last sweep of idle accounts.
    swept: i64,
    /// Hour (Unix hours) the running-hour state of idle accounts was last
    /// dropped.
    cooled: i64,
    /// Calls of [`Detector::take_dirty`] so far.
    cuts: u32,
}

impl Detector {
    pub fn new(cfg: Arc<DetectConfig>) -> Detector {
        Detector {
            cfg,
            senders: foldhash::HashMap::default(),
            open: BTreeSet::new(),
            failures: failures::Failures::default(),
            addresses: shared_ip::Addresses::default(),
            cooldowns: HashMap::new(),
            dirty_senders: Vec::new(),
            dirty_cooldowns: Vec::new(),
            clock: 0,
            next_resolve: i64::MAX,
            swept: 0,
            cooled: 0,
            cuts: 0,
        }
    }

    pub fn config(&self) -> &DetectConfig {
        &self.cfg
    }

    /// The settings, to hand on with replicas of its accounts.
    pub fn shared_config(&self) -> &Arc<DetectConfig> {
        &self.cfg
    }

    /// Thresholds are read as each event is observed: new ones apply from
    /// the next event on; histories and open incidents are kept.
    pub fn reconfigure(&mut self, cfg: Arc<DetectConfig>) {
        self.cfg = cfg;
    }

    /// Feeds one counted event; alerts it sets off are pushed onto `out`.
    pub fn observe(&mut self, ev: &Event, loader: &dyn Loader, out: &mut Vec<Alert>) {
        if !self.cfg.enabled {
            return;
        }
        let ts = ev.ts.timestamp();
        if ts > self.clock {
            self.tick(ts, out);
        }
        match ev.result {
            Outcome::Accepted => self.accepted(ev, loader, out),
            Outcome::AuthFailed if self.cfg.auth_failures.enabled => {
                for (key, alert) in self.failures.observe(ev, &self.cfg.auth_failures) {
                    let until = self
                        .cooldowns
                        .get(&key)
                        .copied()
                        .or_else(|| loader.cooldown(&key));
                    if until.is_some_and(|u| ts < u) {
                        continue;
                    }
                    let until = ts + self.cfg.auth_failures.cooldown_hours as i64 * 3600;
                    self.cooldowns.insert(key.clone(), until);
                    self.dirty_cooldowns.push((key, until));
                    out.push(alert);
                }
            }
            Outcome::AuthFailed => {}
        }
    }

    fn accepted(&mut self, ev: &Event, loader: &dyn Loader, out: &mut Vec<Alert>) {
        let state = match self.senders.get_mut(ev.sender.as_str()) {
            Some(s) => s,
            None => {
                let now_hour = crate::event::time::hour_number(ev.ts);
                let loaded =
                    loader.sender(&ev.sender, now_hour.saturating_sub(history::WINDOW_HOURS));
                let state = Box::new(SenderState::from_loaded(loaded, ev.ts.timestamp()));
                if state.has_open_spike() {
                    self.open.insert(ev.sender.clone());
                }
                let state = Resident::new(state);
                self.senders.entry(ev.sender.clone()).or_insert(state)
            }
        };
        state.observed_in = self.cuts;
        let ts = ev.ts.timestamp();
        let shared = &self.cfg.shared_ip;
        let standing = ev
            .client_ip
            .filter(|_| shared.enabled)
            .map(|ip| (ip, state.standing(ip, ts, shared.window_secs())));
        if state.observe(ev, &self.cfg, out) {
            if let Some(due) = state.resolve_due(RESOLVE_GRACE) {
                self.open.insert(ev.sender.clone());
                self.next_resolve = self.next_resolve.min(due);
            }
            if state.mark_unsaved() {
                self.dirty_senders.push(ev.sender.clone());
            }
        }
        if let Some((ip, standing)) = standing {
            let cooldowns = &self.cooldowns;
            let cooling = |key: &str| {
                cooldowns
                    .get(key)
                    .copied()
                    .or_else(|| loader.cooldown(key))
                    .is_some_and(|until| ts < until)
            };
            if let Some(alert) = self.addresses.observe(ev, ip, standing, shared, cooling) {
                let until = shared.quiet_until(ts);
                let key = shared_ip::key(ip);
                self.cooldowns.insert(key.clone(), until);
                self.dirty_cooldowns.push((key, until));
                out.push(alert);
            }
        }
    }

    /// Brings back accounts whose incident was open when the daemon
    /// stopped, so that they resolve even if they never send again.
    pub fn resume(&mut self, senders: &[String], loader: &dyn Loader) {
        for sender in senders {
            let state = SenderState::from_loaded(loader.sender(sender, 0), self.clock);
            if let Some(due) = state.resolve_due(RESOLVE_GRACE) {
                self.open.insert(sender.clone());
                self.next_resolve = self.next_resolve.min(due);
                let state = Resident::new(Box::new(state));
                self.senders.insert(sender.clone(), state);
            }
        }
    }

    /// Advances the clock to `now` (Unix seconds, event or wall time) and
    /// resolves incidents whose quiet hour has passed.
    pub fn tick(&mut self, now: i64, out: &mut Vec<Alert>) {
        if now <= self.clock {
            return;
        }
        self.clock = now;
        // Once an hour, idle accounts drop their running hour: it needs no
        // store to come back, so this does not wait for a sweep (an import
        // sweeps only when it writes out, and held 20,000 of them).
        if now.div_euclid(3600) != self.cooled {
            self.cooled = now.div_euclid(3600);
            // `Resident::cool_down`: the table alone, and the state only of
            // an account with a running hour to drop.
            for state in self.senders.values_mut() {
                state.cool_down(now);
            }
            self.addresses.prune(now, &self.cfg.shared_ip);
        }
        if now < self.next_resolve {
            return;
        }
        let mut closed = Vec::new();
        self.next_resolve = i64::MAX;
        for sender in &self.open {
            match self.senders.get_mut(sender) {
                Some(state) => {
                    if state.resolve(sender, now, RESOLVE_GRACE, out) {
                        closed.push(sender.clone());
                    } else if let Some(due) = state.resolve_due(RESOLVE_GRACE) {
                        self.next_resolve = self.next_resolve.min(due);
                    }
                }
                None => closed.push(sender.clone()),
            }
        }
        for sender in closed {
            self.open.remove(&sender);
            if self
                .senders
                .get_mut(&sender)
                .is_some_and(|s| s.mark_unsaved())
            {
                self.dirty_senders.push(sender);
            }
        }
    }

    /// State changed since the last call, to be saved with the counts.
    pub fn take_dirty(&mut self) -> Dirty {
        let senders = std::mem::take(&mut self.dirty_senders)
            .into_iter()
            .filter_map(|s| {
                let state = self.senders.get_mut(&s)?;
                state.saved();
                let p = state.persisted.clone();
                Some((s, p))
            })
            .collect();
        let cut = self.cuts;
        // Saturating: after 4 billion cuts every account counts as sent
        // since, kept, never dropped too early.
        self.cuts = self.cuts.saturating_add(1);
        Dirty {
            senders,
            cooldowns: std::mem::take(&mut self.dirty_cooldowns),
            cut,
        }
    }

    /// Forgets everything in memory: after a failed commit, the store is
    /// the truth again and accounts reload from it.
    pub fn reset(&mut self) {
        let cfg = self.cfg.clone();
        let (clock, cuts) = (self.clock, self.cuts);
        *self = Detector::new(cfg);
        self.clock = clock;
        self.cuts = cuts;
        // Open incidents come back with their accounts' next message; the
        // daemon's next start resumes the others.
    }

    /// `sender`'s state as a [`Replica`]: the one in memory, else read
    /// through `loader` as its next event would read it.
    pub fn replica(&self, sender: &str, loader: &dyn Loader) -> Replica {
        match self.senders.get(sender) {
            Some(state) => Replica::of(state, self.clock),
            None => Replica::load(sender, loader, self.clock),
        }
    }
}

#[cfg(test)]
mod tests;
