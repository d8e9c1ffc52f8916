//! Connection slots, for the HTTP side and the policy service: at most
//! `max` connections at once and `per_peer` from one peer. When they are
//! taken, a connection that is waiting makes room, the one waiting the
//! longest: a client that merely holds sockets open (idle, or trickling a
//! request) cannot lock out the ones that ask and go. Postfix opens a new
//! policy connection the next time it asks; an HTTP client retries.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// The bounds of the slots.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    pub max: usize,
    pub(crate) per_peer: usize,
    /// Whether a connection in the middle of a request may be closed to
    /// make room (HTTP: a request trickling in is waiting too), or only
    /// one between requests (the policy service: answers take
    /// microseconds).
    pub(crate) evict_busy: bool,
}

/// Shows the numbers of connections waiting for a request and answering
/// one (in `/metrics`).
pub(crate) type Show = Arc<dyn Fn(usize, usize) + Send + Sync>;

#[derive(Clone)]
pub(crate) struct Slots<P> {
    state: Arc<Mutex<State<P>>>,
    bounds: Bounds,
}

struct State<P> {
    next: u64,
    open: HashMap<u64, Open<P>>,
    /// Those of `open` answering a request.
    answering: usize,
    show: Show,
}

impl<P> State<P> {
    fn show(&self) {
        (self.show)(self.open.len() - self.answering, self.answering);
    }
}

struct Open<P> {
    peer: P,
    /// Since when it is in its state (waiting for a request, or answering
    /// one).
    since: Instant,
    answering: bool,
    /// Never closed to make room: it proved who is speaking (an API token,
    /// a dashboard session).
    trusted: bool,
    close: CancellationToken,
}

/// What [`Slots::admit`] decided.
pub(crate) enum Admitted<P> {
    /// A slot; `evicted` says whether another connection was closed for it.
    Yes { slot: Slot<P>, evicted: bool },
    /// No connection (of the peer, or of all) may be closed for it.
    No,
}

impl<P: Copy + Eq + Hash> Slots<P> {
    /// Slots within `bounds`, their numbers shown through `show`.
    pub(crate) fn new(bounds: Bounds, show: Show) -> Slots<P> {
        Slots {
            state: Arc::new(Mutex::new(State {
                next: 0,
                open: HashMap::new(),
                answering: 0,
                show,
            })),
            bounds,
        }
    }

    /// A slot for a connection from `peer`, making room by closing the one
    /// waiting the longest (of that peer when it has its share).
    pub(crate) fn admit(&self, peer: P) -> Admitted<P> {
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
            let Some(id) = state.longest_waiting(only, self.bounds.evict_busy) else {
                return Admitted::No;
            };
            if let Some(o) = state.open.remove(&id) {
                state.answering -= usize::from(o.answering);
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
                since: Instant::now(),
                answering: false,
                trusted: false,
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

impl<P: Copy + Eq> State<P> {
    /// The connection waiting the longest (of `peer` only, if given; those
    /// answering too with `busy`), never a trusted one.
    fn longest_waiting(&self, peer: Option<P>, busy: bool) -> Option<u64> {
        self.open
            .iter()
            .filter(|(_, o)| !o.trusted && (busy || !o.answering))
            .filter(|(_, o)| peer.is_none_or(|p| o.peer == p))
            .min_by_key(|(_, o)| o.since)
            .map(|(id, _)| *id)
    }
}

/// A connection's slot; freed when dropped.
pub(crate) struct Slot<P> {
    id: u64,
    state: Arc<Mutex<State<P>>>,
    close: CancellationToken,
}

impl<P> Slot<P> {
    /// Marks the connection as waiting for a request (`true`) or answering
    /// one.
    pub(crate) fn idle(&self, idle: bool) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let Some(o) = state.open.get_mut(&self.id) else {
            return;
        };
        if o.answering != idle {
            return;
        }
        o.answering = !idle;
        o.since = Instant::now();
        match idle {
            true => state.answering -= 1,
            false => state.answering += 1,
        }
        state.show();
    }

    /// Marks the connection as never to be closed to make room.
    pub(crate) fn trust(&self) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(o) = state.open.get_mut(&self.id) {
            o.trusted = true;
        }
    }

    /// Cancelled when the connection was closed to make room.
    pub(crate) fn closed(&self) -> &CancellationToken {
        &self.close
    }
}

impl<P> Drop for Slot<P> {
    fn drop(&mut self) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(o) = state.open.remove(&self.id) {
            state.answering -= usize::from(o.answering);
        }
        state.show();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    fn bounds(max: usize, per_peer: usize, evict_busy: bool) -> Bounds {
        Bounds {
            max,
            per_peer,
            evict_busy,
        }
    }

    fn slot(a: Admitted<IpAddr>) -> (Slot<IpAddr>, bool) {
        match a {
            Admitted::Yes { slot, evicted } => (slot, evicted),
            Admitted::No => panic!("refused"),
        }
    }

    #[test]
    fn a_full_service_closes_the_longest_idle_connection_for_a_new_one() {
        let shown = Arc::new(Mutex::new((0, 0)));
        let show = {
            let shown = shown.clone();
            Arc::new(move |idle, answering| *shown.lock().unwrap() = (idle, answering))
        };
        let slots = Slots::new(bounds(2, 2, false), show);
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
        assert_eq!(*shown.lock().unwrap(), (0, 2), "idle, answering");
        drop(b);
        let (_d, evicted) = slot(slots.admit(ip(4)));
        assert!(!evicted, "a slot was free");
    }

    #[test]
    fn a_peer_with_its_share_makes_room_among_its_own() {
        let slots = Slots::new(bounds(10, 2, false), Arc::new(|_, _| {}));
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

    #[test]
    fn a_trickled_request_makes_room_but_a_trusted_connection_never_does() {
        let slots = Slots::new(bounds(2, 2, true), Arc::new(|_, _| {}));
        let (slow, _) = slot(slots.admit(ip(1)));
        slow.idle(false);
        let (trusted, _) = slot(slots.admit(ip(2)));
        trusted.trust();
        let (third, evicted) = slot(slots.admit(ip(3)));
        assert!(
            evicted && slow.closed().is_cancelled(),
            "the trickling request"
        );
        assert!(!trusted.closed().is_cancelled());
        third.trust();
        assert!(
            matches!(slots.admit(ip(4)), Admitted::No),
            "only trusted ones left"
        );
    }
}
