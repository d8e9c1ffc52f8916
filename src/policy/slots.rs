//! Connection slots: at most `policy.max_connections` at once and
//! `policy.max_connections_per_peer` from one peer. When they are taken,
//! the connection idle the longest makes room: Postfix opens a new one the
//! next time it asks (`smtpd_policy_service_try_limit`), while a client
//! that merely holds sockets open cannot lock Postfix out.

use super::listen::Peer;
use crate::metrics::Metrics;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// The bounds of the slots.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub max: usize,
    pub per_peer: usize,
}

#[derive(Clone)]
pub struct Slots {
    state: Arc<Mutex<State>>,
    bounds: Bounds,
}

struct State {
    next: u64,
    open: HashMap<u64, Open>,
    /// Those of `open` answering a request.
    answering: usize,
    metrics: Arc<Metrics>,
}

impl State {
    fn show(&self) {
        self.metrics
            .policy_connections(self.open.len() - self.answering, self.answering);
    }
}

struct Open {
    peer: Peer,
    /// Since when it waits for a request; None while one is answered.
    idle_since: Option<Instant>,
    close: CancellationToken,
}

/// What [`Slots::admit`] decided.
pub enum Admitted {
    /// A slot; `evicted` says whether an idle connection was closed for it.
    Yes { slot: Slot, evicted: bool },
    /// Every slot (of the peer, or of all) is busy answering.
    No,
}

impl Slots {
    /// Slots within `bounds`, their numbers shown in `metrics`.
    pub fn new(bounds: Bounds, metrics: Arc<Metrics>) -> Slots {
        Slots {
            state: Arc::new(Mutex::new(State {
                next: 0,
                open: HashMap::new(),
                answering: 0,
                metrics,
            })),
            bounds,
        }
    }

    /// A slot for a connection from `peer`, making room by closing the
    /// longest idle connection (of that peer when it has its share).
    pub fn admit(&self, peer: Peer) -> Admitted {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let of_peer = state.open.values().filter(|o| o.peer == peer).count();
        let mut evicted = false;
        for (full, only) in [
            (of_peer >= self.bounds.per_peer, Some(peer)),
            (state.open.len() >= self.bounds.max, None),
        ] {
            if !full || evicted {
                continue;
            }
            let Some(id) = state.longest_idle(only) else {
                return Admitted::No;
            };
            if let Some(o) = state.open.remove(&id) {
                o.close.cancel();
            }
            evicted = true;
        }
        state.next += 1;
        let id = state.next;
        let close = CancellationToken::new();
        state.open.insert(
            id,
            Open {
                peer,
                idle_since: Some(Instant::now()),
                close: close.clone(),
            },
        );
        state.show();
        Admitted::Yes {
            slot: Slot {
                id,
                state: self.state.clone(),
                close,
            },
            evicted,
        }
    }
}

impl State {
    /// The open connection idle the longest (of `peer` only, if given).
    fn longest_idle(&self, peer: Option<Peer>) -> Option<u64> {
        self.open
            .iter()
            .filter(|(_, o)| peer.is_none_or(|p| o.peer == p))
            .filter_map(|(id, o)| Some((*id, o.idle_since?)))
            .min_by_key(|(_, since)| *since)
            .map(|(id, _)| id)
    }
}

/// A connection's slot; freed when dropped.
pub struct Slot {
    id: u64,
    state: Arc<Mutex<State>>,
    close: CancellationToken,
}

impl Slot {
    /// Marks the connection as waiting for a request (`true`) or answering
    /// one.
    pub fn idle(&self, idle: bool) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let Some(o) = state.open.get_mut(&self.id) else {
            return;
        };
        let was_idle = o.idle_since.is_some();
        o.idle_since = idle.then(Instant::now);
        if was_idle != idle {
            match idle {
                true => state.answering -= 1,
                false => state.answering += 1,
            }
            state.show();
        }
    }

    /// Cancelled when the connection was closed to make room.
    pub fn closed(&self) -> &CancellationToken {
        &self.close
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(o) = state.open.remove(&self.id) {
            state.answering -= usize::from(o.idle_since.is_none());
        }
        state.show();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> Peer {
        Peer::Ip(std::net::IpAddr::from([192, 0, 2, last]))
    }

    fn slot(a: Admitted) -> (Slot, bool) {
        match a {
            Admitted::Yes { slot, evicted } => (slot, evicted),
            Admitted::No => panic!("refused"),
        }
    }

    #[test]
    fn a_full_service_closes_the_longest_idle_connection_for_a_new_one() {
        let metrics = Arc::new(Metrics::default());
        let bounds = Bounds {
            max: 2,
            per_peer: 2,
        };
        let slots = Slots::new(bounds, metrics.clone());
        let (a, _) = slot(slots.admit(ip(1)));
        let (b, _) = slot(slots.admit(ip(2)));
        b.idle(false);
        let (c, evicted) = slot(slots.admit(ip(3)));
        assert!(evicted);
        assert!(a.closed().is_cancelled(), "the idle one");
        assert!(!b.closed().is_cancelled(), "busy: kept");
        // Both left are busy: nothing to close.
        c.idle(false);
        assert!(matches!(slots.admit(ip(4)), Admitted::No));
        let shown = metrics.render(0, &Default::default(), None);
        assert!(
            shown.contains("smtp_auth_insight_policy_connections{state=\"answering\"} 2")
                && shown.contains("smtp_auth_insight_policy_connections{state=\"idle\"} 0"),
            "{shown}"
        );
        drop(b);
        let (_d, evicted) = slot(slots.admit(ip(4)));
        assert!(!evicted, "a slot was free");
    }

    #[test]
    fn a_peer_with_its_share_makes_room_among_its_own() {
        let bounds = Bounds {
            max: 10,
            per_peer: 2,
        };
        let slots = Slots::new(bounds, Arc::default());
        let (a, _) = slot(slots.admit(ip(1)));
        let (other, _) = slot(slots.admit(ip(2)));
        let (b, _) = slot(slots.admit(ip(1)));
        b.idle(false);
        let (_c, evicted) = slot(slots.admit(ip(1)));
        assert!(evicted && a.closed().is_cancelled());
        assert!(
            !other.closed().is_cancelled(),
            "another peer's idle connection stays"
        );
        _c.idle(false);
        assert!(
            matches!(slots.admit(ip(1)), Admitted::No),
            "all of its own busy"
        );
    }
}
