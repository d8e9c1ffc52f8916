//! An account's state as the detector holds it in memory, with beside it
//! in the table what the hourly pass over every account reads; and which
//! accounts stay in memory (`Detector::sweep`).

use super::sender::{Dirty, SenderState};
use super::{Detector, history};
use std::ops::{Deref, DerefMut};

/// Accounts idle for this long are dropped from memory (their history is
/// in the store and comes back with their next message)...
const IDLE_SECS: i64 = 26 * 3600;
/// ...and after this long while more than [`RESIDENT`] accounts are held.
/// Bringing an account back reads its four weeks of hourly counts: with a
/// 2-hour limit alone, an import of a site whose users send a message every
/// few hours spent a third of its detection time re-reading them.
const SHORT_IDLE_SECS: i64 = 2 * 3600;
/// Accounts kept through short idle spells: an account in memory costs
/// about a kilobyte (measured: 28,000 accounts, 30 MB), so at most about
/// 50 MB...
pub(super) const RESIDENT: usize = 50_000;
/// ...and while they hold less than this. An account's hourly history
/// grows with the weeks it covers, up to four: the import benchmark's
/// 28,000 accounts hold 11 MiB after four and a half days of log, 14 MiB
/// after two weeks and 19.5 MiB from four weeks on (as [`Detector::bytes`]
/// counts; 36 days of log). (With 16 MiB and eight-byte history entries,
/// the log with a client address per connection, 18 MiB, took 15 % longer
/// to import: accounts read back over and over.)
pub(super) const RESIDENT_BYTES: usize = 24 << 20;

/// [`Resident::running`] of an account holding no running hour.
const COLD: i64 = i64::MIN;

/// An account's state (boxed: see `Detector::senders`) and, in the table
/// itself, the time of its last message while it holds a running hour.
///
/// Why: once an hour of event time the detector drops the running hours
/// of accounts idle for an hour, and read every account's state to find
/// them: importing 90 days of 100,000 accounts in time order, 2,160
/// passes over all of them, a cache miss each, about a fifth of the
/// detectors' time (perf). The pass now reads the table alone and the
/// states of the few accounts that sent in the last hours.
#[derive(Debug)]
pub(super) struct Resident {
    running: i64,
    state: Box<SenderState>,
}

impl Resident {
    pub(super) fn new(state: Box<SenderState>) -> Resident {
        let mut r = Resident {
            running: COLD,
            state,
        };
        r.noted();
        r
    }

    /// Counts one accepted message (see [`SenderState::observe`]) and
    /// notes whether the account now holds a running hour: the one place
    /// that can start one, so `running` stays true to the state.
    pub(super) fn observe(
        &mut self,
        ev: &crate::event::Event,
        cfg: &super::DetectConfig,
        out: &mut Vec<super::Alert>,
    ) -> Dirty {
        let dirty = self.state.observe(ev, cfg, out);
        self.noted();
        dirty
    }

    /// Notes whether the state holds a running hour.
    fn noted(&mut self) {
        self.running = match self.state.is_warm() {
            true => self.state.last_event,
            false => COLD,
        };
    }

    /// Drops the running hour if the account was idle for an hour before
    /// `now` (see [`SenderState::cool_down`]), reading the state only then.
    pub(super) fn cool_down(&mut self, now: i64) {
        if self.running != COLD && self.running < now - 3600 {
            self.state.cool_down(now);
            self.noted();
        }
    }
}

impl Deref for Resident {
    type Target = SenderState;
    fn deref(&self) -> &SenderState {
        &self.state
    }
}

impl DerefMut for Resident {
    fn deref_mut(&mut self) -> &mut SenderState {
        &mut self.state
    }
}

/// Which accounts stay in memory.
impl Detector {
    /// Once an hour (of the clock): drops accounts idle for two hours (26
    /// while few are held) without an open incident or unsaved state when
    /// the loader can restore them: `restorable_from` is the oldest hour
    /// whose counts the loader holds (the store keeps hourly counts for a
    /// limited time, so an import of logs older than that keeps the
    /// accounts it needs history for). Call it only when all state taken
    /// with [`Detector::take_dirty`] has been committed.
    pub fn sweep(&mut self, restorable_from: Option<u32>) {
        self.sweep_cut(restorable_from, self.cuts);
    }

    /// [`Detector::sweep`] once the state taken up to `cut` (see
    /// [`Dirty::cut`]) is committed, while what it took later may not be:
    /// an account that sent since is kept, as its messages may not be
    /// stored yet (an import writes one part of its log while the
    /// detectors observe the next).
    pub fn sweep_cut(&mut self, restorable_from: Option<u32>, cut: u32) {
        let hour = self.clock.div_euclid(3600);
        if hour == self.swept {
            return;
        }
        self.swept = hour;
        let needed_from = hour - i64::from(history::WINDOW_HOURS);
        let all = restorable_from.is_some_and(|h| needed_from >= i64::from(h));
        let clock = self.clock;
        let crowded = self.senders.len() > RESIDENT || self.bytes() > RESIDENT_BYTES;
        let idle = if crowded { SHORT_IDLE_SECS } else { IDLE_SECS };
        self.senders.retain(|_, st| {
            // An account whose every counted hour is in the store comes
            // back whole, also in an import of logs a few weeks old.
            let restorable =
                all || restorable_from.is_some_and(|h| st.history.oldest().is_none_or(|o| o >= h));
            !restorable
                || st.last_event >= clock - idle
                || st.has_open_spike()
                || st.is_unsaved()
                || st.observed_in > cut
        });
        // Give memory back only after a large drop (a rehash is not free).
        if self.senders.capacity() > 4 * self.senders.len().max(1024) {
            self.senders.shrink_to_fit();
        }
        self.cooldowns.retain(|_, until| *until > clock);
    }

    /// Accounts in memory (for metrics and benchmarks).
    pub fn accounts(&self) -> usize {
        self.senders.len()
    }

    /// Approximate memory of the accounts held, in bytes.
    pub fn bytes(&self) -> usize {
        let table = self.senders.capacity() * (std::mem::size_of::<(String, Resident)>() + 1);
        let state = std::mem::size_of::<SenderState>();
        let held: usize = self
            .senders
            .iter()
            .map(|(s, st)| s.capacity() + state + st.heap_bytes())
            .sum();
        table + held + self.addresses.bytes()
    }
}
