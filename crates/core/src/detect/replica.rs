//! One account's detector state outside the detector, so that the policy
//! service can run the account's next submissions through it the moment it
//! answers, before the store writer has folded them.
//!
//! Why: the writer folds events up to half a second after they arrive, and
//! a spam run over parallel connections sends hundreds of messages in that
//! time. A replica is the same [`SenderState`] the detector holds, stepped
//! by the same code, so the submission that will raise the alert in the
//! detector raises it here first; the policy service contains the account
//! from the next one on. The detector stays the judge: the alert log is
//! written by the writer only, and each fold hands out a fresh replica
//! that replaces this one (the submissions it has not folded yet are run
//! through it again).

use super::alert::{Alert, AlertKind};
use super::config::DetectConfig;
use super::sender::SenderState;
use super::{Loaded, Loader, RESOLVE_GRACE, Standing, history};
use crate::event::{Event, Outcome};
use std::net::IpAddr;

/// An account's detector state, stepped by submissions the detector has not
/// seen yet. Cheap enough to clone a few thousand times a second (a few
/// hundred bytes to a few kilobytes: the account's four weeks of hours).
#[derive(Debug, Clone)]
pub struct Replica {
    state: SenderState,
    /// The hour (Unix hours) the running-hour state was last cooled down,
    /// as the detector's clock does once an hour.
    cooled: i64,
    /// No message of the account is known yet: its first submission here
    /// is its first ever, as the detector will take it.
    unseen: bool,
}

impl Replica {
    /// The replica of an account with `loaded` as its past (nothing: never
    /// seen), at Unix second `now`.
    pub fn from_loaded(loaded: Loaded, now: i64) -> Replica {
        let unseen = loaded.first_seen.is_none() && loaded.hours.is_empty();
        Replica {
            state: SenderState::from_loaded(loaded, now),
            cooled: now.div_euclid(3600),
            unseen,
        }
    }

    /// The replica of `sender` read through `loader` (the store) at Unix
    /// second `now`. Reads: call it where a read may block.
    pub fn load(sender: &str, loader: &dyn Loader, now: i64) -> Replica {
        let hour = u32::try_from(now.div_euclid(3600)).unwrap_or(0);
        let loaded = loader.sender(sender, hour.saturating_sub(history::WINDOW_HOURS));
        Replica::from_loaded(loaded, now)
    }

    pub(super) fn of(state: &SenderState, clock: i64) -> Replica {
        Replica {
            state: state.clone(),
            cooled: clock.div_euclid(3600),
            unseen: false,
        }
    }

    /// Runs one accepted submission through the state, as the detector
    /// will; the alert it raises that opens an incident (a firing
    /// `volume_spike` or `new_sender`), if any.
    pub fn submit(&mut self, ev: &Event, cfg: &DetectConfig) -> Option<Alert> {
        if !cfg.enabled || ev.result != Outcome::Accepted {
            return None;
        }
        let ts = ev.ts.timestamp();
        if std::mem::take(&mut self.unseen) {
            // Its age counts from this message, as in the detector.
            self.state.first_seen = ts;
            self.state.last_event = ts;
            self.cooled = ts.div_euclid(3600);
        }
        let mut out = Vec::new();
        // What the detector's clock does before the event reaches the
        // account: the hourly cool-down and a resolution that is due.
        if ts.div_euclid(3600) > self.cooled {
            self.cooled = ts.div_euclid(3600);
            self.state.cool_down(ts);
        }
        if self
            .state
            .resolve_due(RESOLVE_GRACE)
            .is_some_and(|due| ts >= due)
        {
            self.state.resolve(&ev.sender, ts, RESOLVE_GRACE, &mut out);
            out.clear();
        }
        self.state.observe(ev, cfg, &mut out);
        out.into_iter().find(|a| {
            a.status.is_firing() && matches!(a.kind, AlertKind::VolumeSpike | AlertKind::NewSender)
        })
    }

    /// How the account stands with client address `ip` at Unix second
    /// `ts`, before its submission from there runs through: what the
    /// shared_ip detector weighs it by (see [`Addresses::observe`]).
    ///
    /// [`Addresses::observe`]: super::Addresses::observe
    pub fn standing(&self, ip: IpAddr, ts: i64, cfg: &DetectConfig) -> Standing {
        self.state.standing(ip, ts, cfg.shared_ip.window_secs())
    }

    /// Whether a volume incident is open: the detector has raised the alert
    /// that opened it, and raises no other until it resolves.
    pub fn incident_open(&self) -> bool {
        self.state.has_open_spike()
    }

    /// Approximate memory held, in bytes.
    pub fn bytes(&self) -> usize {
        std::mem::size_of::<Replica>() + self.state.heap_bytes()
    }
}
