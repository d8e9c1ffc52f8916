//! An account's state as the detector holds it in memory, with beside it
//! in the table what the hourly pass over every account reads.

use super::sender::{Dirty, SenderState};
use std::ops::{Deref, DerefMut};

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
