//! The in-memory decision: which submission raises an alert, known the
//! moment the policy service answers it, so the next one is contained
//! whatever the rate.
//!
//! Each account the policy service sees gets a [`Replica`] of its detector
//! state. Every submission it lets through is numbered and run through the
//! replica; the one that raises a containing alert there contains the
//! account at once (a *provisional* containment, in memory), under the
//! account's lock, so no other connection slips a submission in between. The store
//! writer hands out a fresh replica after each fold, with the number of the
//! last submission it counted: the submissions after it are run through
//! again, and a provisional containment the detector does not bear out
//! (the fold that counted its submission opened no incident) is lifted.
//! The alert log stays the record: the watcher confirms a provisional
//! containment when it reads the alert, and writes it down.
//!
//! Nothing here writes to the store or waits for a write. An account the
//! store knows but the gate has not seen yet is read on a thread of its
//! own (`loader`, a few reads: tens of microseconds); its submissions
//! meanwhile are answered and wait in its list, to be run through once it
//! arrives. Only a burst that reaches the fewest messages any window could
//! alert on before that read is done waits for it, at most
//! [`WAIT_FOR_PAST`], then goes on without (the alert then comes late).
//! Accounts the store has never seen start from nothing at once.

use super::loader::Loads;
use super::{Action, Hold, Holds};
use crate::detect::{Alert, DetectConfig, Loaded, Replica};
use crate::event::{Event, Tls};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::Semaphore;

/// Locks the accounts are spread over, so that connections answering
/// different accounts do not wait for each other.
const SHARDS: usize = 16;
/// Longest a burst of an account waits for its past to be read.
pub(super) const WAIT_FOR_PAST: Duration = Duration::from_millis(100);
/// Submissions kept per account while the writer has not counted them;
/// beyond, the oldest are forgotten (the writer is then far behind and its
/// queue drops submissions anyway).
const MAX_PENDING: usize = 65_536;

/// One submission as a replica needs it.
#[derive(Debug, Clone, Copy)]
struct Sub {
    seq: u64,
    ts: DateTime<Utc>,
    tls: Tls,
    ip: Option<IpAddr>,
}

impl Sub {
    fn event(&self, sender: &str) -> Event {
        Event {
            client_ip: self.ip,
            ..Event::accepted(self.ts, sender, self.tls)
        }
    }
}

struct Entry {
    /// None while the account's past is read from the store.
    replica: Option<Replica>,
    /// Closed once `replica` is there: what a burst waits on meanwhile.
    arrived: Option<Arc<Semaphore>>,
    /// Whether the loader was asked for the account's past.
    asked: bool,
    /// The last submission the replica's base (from the writer) counted.
    base: u64,
    /// Submissions after `base`, oldest first.
    pending: VecDeque<Sub>,
    /// The submission the replica says raised the alert, until a replica
    /// from the writer that counted it says whether the detector agrees.
    predicted: Option<u64>,
    /// Unix second of the last submission (for eviction).
    used: i64,
}

/// Replicas of the accounts the policy service answers for. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Gate {
    inner: Arc<Inner>,
}

struct Inner {
    shards: Vec<Mutex<HashMap<String, Entry>>>,
    hasher: foldhash::fast::FixedState,
    /// Hashes of the accounts the store knows: any other starts from
    /// nothing without a read.
    known: RwLock<foldhash::HashSet<u64>>,
    cfg: RwLock<Arc<DetectConfig>>,
    next: AtomicU64,
    loads: Loads,
    holds: Holds,
}

impl Gate {
    /// A gate that contains through `holds`, judging by `cfg` until the
    /// writer hands out other settings; `loads` reads the past of the
    /// accounts the store knows ([`Gate::add_known`]).
    pub(super) fn new(holds: Holds, cfg: Arc<DetectConfig>, loads: Loads) -> Gate {
        Gate {
            inner: Arc::new(Inner {
                shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
                hasher: foldhash::fast::FixedState::with_seed(0x5a1e),
                known: RwLock::default(),
                cfg: RwLock::new(cfg),
                next: AtomicU64::new(0),
                loads,
                holds,
            }),
        }
    }

    /// The hash the known set holds for `sender`.
    pub(super) fn hash(&self, sender: &str) -> u64 {
        self.inner.hasher.hash_one(sender)
    }

    fn shard(&self, sender: &str) -> &Mutex<HashMap<String, Entry>> {
        &self.inner.shards[(self.hash(sender) as usize) % SHARDS]
    }

    fn cfg(&self) -> Arc<DetectConfig> {
        self.inner
            .cfg
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Waits, at most [`WAIT_FOR_PAST`], while `sender`'s past is being
    /// read and its submissions so far could be one short of an alert.
    pub(crate) async fn ready(&self, sender: &str) {
        let least = {
            let cfg = self.cfg();
            let v = &cfg.volume;
            v.min_count
                .min(v.min_count_new_ip)
                .min(cfg.new_sender.min_count) as usize
        };
        let arrived = {
            let shard = self.shard(sender).lock().unwrap_or_else(|p| p.into_inner());
            match shard.get(sender) {
                Some(e) if e.replica.is_none() && e.pending.len() + 1 >= least => e.arrived.clone(),
                _ => None,
            }
        };
        if let Some(arrived) = arrived {
            // Closed when the past arrives: the wait ends at once then.
            let _ = tokio::time::timeout(WAIT_FOR_PAST, arrived.acquire()).await;
        }
    }

    /// The containment a submission meets at Unix second `now` (counting
    /// `action` for it), and when Postfix accepts the message, its number
    /// for the writer: it runs through its account's replica, and when it
    /// raises the alert the account is contained from the next submission
    /// on. Both happen under the account's lock, so that of two
    /// submissions racing on two connections, the one after the alert is
    /// contained whichever connection it came on.
    pub(crate) fn answer(
        &self,
        ev: &Event,
        queue_id: Option<&str>,
        now: i64,
        action: Action,
    ) -> (Option<Hold>, Option<u64>) {
        let cfg = self.cfg();
        let ts = ev.ts.timestamp();
        let mut shard = self
            .shard(&ev.sender)
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let holds = &self.inner.holds;
        let hold = holds.check(&ev.sender, queue_id, now, action);
        if hold.is_some() && !action.lets_through() {
            return (hold, None);
        }
        // Numbered under the account's lock: its submissions reach the
        // writer in this order.
        let seq = self.inner.next.fetch_add(1, Ordering::Relaxed) + 1;
        let entry = match shard.get_mut(ev.sender.as_str()) {
            Some(e) => e,
            None => {
                let entry = self.first_sight(&ev.sender, ts);
                shard.entry(ev.sender.clone()).or_insert(entry)
            }
        };
        entry.used = ts;
        if !entry.asked {
            entry.asked = self.inner.loads.request(&ev.sender, ts);
        }
        if entry.pending.len() >= MAX_PENDING {
            entry.pending.pop_front();
        }
        entry.pending.push_back(Sub {
            seq,
            ts: ev.ts,
            tls: ev.tls,
            ip: ev.client_ip,
        });
        if let Some(alert) = entry.replica.as_mut().and_then(|r| r.submit(ev, &cfg)) {
            entry.predicted = Some(seq);
            holds.contain_now(&alert);
        }
        (hold, Some(seq))
    }

    /// The entry of an account seen for the first time: from nothing when
    /// the store does not know it, else waiting for its past.
    fn first_sight(&self, sender: &str, ts: i64) -> Entry {
        let known = self
            .inner
            .known
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&self.hash(sender));
        let replica = (!known).then(|| Replica::from_loaded(Loaded::default(), ts));
        Entry {
            arrived: known.then(|| Arc::new(Semaphore::new(0))),
            asked: !known,
            replica,
            base: 0,
            pending: VecDeque::new(),
            predicted: None,
            used: ts,
        }
    }

    /// A replica of `sender` from the writer, which counted its submissions
    /// up to `seq`; `cfg` are the detector's settings.
    pub(crate) fn publish(
        &self,
        sender: &str,
        seq: u64,
        replica: Replica,
        cfg: &Arc<DetectConfig>,
    ) {
        if !Arc::ptr_eq(&self.cfg(), cfg) {
            // New settings (a reload): the replicas judge by them from now.
            *self.inner.cfg.write().unwrap_or_else(|p| p.into_inner()) = cfg.clone();
        }
        let mut shard = self.shard(sender).lock().unwrap_or_else(|p| p.into_inner());
        let Some(entry) = shard.get_mut(sender) else {
            return;
        };
        if seq < entry.base {
            return;
        }
        let predicted = entry.predicted.filter(|p| *p <= seq);
        let unfounded = predicted.is_some() && !replica.incident_open();
        if predicted.is_some() {
            entry.predicted = None;
        }
        entry.base = seq;
        while entry.pending.front().is_some_and(|s| s.seq <= seq) {
            entry.pending.pop_front();
        }
        match replay(entry, sender, replica, cfg) {
            Some(alert) => self.inner.holds.contain_now(&alert),
            None if unfounded => self.inner.holds.lift_unfounded(sender),
            None => {}
        }
    }

    /// The past of `sender` read from the store (the loader's answer);
    /// ignored when the writer's replica came first.
    pub(super) fn loaded(&self, sender: &str, replica: Replica) {
        let cfg = self.cfg();
        let mut shard = self.shard(sender).lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = shard.get_mut(sender).filter(|e| e.replica.is_none())
            && let Some(alert) = replay(entry, sender, replica, &cfg)
        {
            self.inner.holds.contain_now(&alert);
        }
    }

    /// Accounts new to the store.
    pub(crate) fn known(&self, senders: &[&str]) {
        self.add_known(senders.iter().map(|s| self.hash(s)).collect());
    }

    /// Accounts the store knows, by [`Gate::hash`].
    pub(super) fn add_known(&self, hashes: Vec<u64>) {
        let mut known = self.inner.known.write().unwrap_or_else(|p| p.into_inner());
        known.extend(hashes);
    }

    /// Forgets accounts without a submission since Unix second `before`,
    /// and the oldest beyond `most` (they are read again when they come
    /// back); returns how many are held.
    pub(super) fn evict(&self, before: i64, most: usize) -> usize {
        let per_shard = most.div_ceil(SHARDS);
        let mut held = 0;
        for shard in &self.inner.shards {
            let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            shard.retain(|_, e| e.used >= before || e.predicted.is_some());
            if shard.len() > per_shard {
                let mut used: Vec<i64> = shard.values().map(|e| e.used).collect();
                let cut = shard.len() - per_shard;
                let (_, nth, _) = used.select_nth_unstable(cut - 1);
                let oldest_kept = *nth;
                shard.retain(|_, e| e.used > oldest_kept || e.predicted.is_some());
            }
            held += shard.len();
        }
        held
    }
}

/// Makes `replica` the base of `entry` and runs its pending submissions
/// through it; the alert one of them raises, if any.
fn replay(
    entry: &mut Entry,
    sender: &str,
    mut replica: Replica,
    cfg: &DetectConfig,
) -> Option<Alert> {
    if let Some(arrived) = entry.arrived.take() {
        arrived.close();
    }
    let mut raised = None;
    for sub in &entry.pending {
        if let Some(alert) = replica.submit(&sub.event(sender), cfg) {
            if raised.is_none() {
                entry.predicted = Some(sub.seq);
                raised = Some(alert);
            }
        }
    }
    entry.replica = Some(replica);
    raised
}

impl crate::store::Replicas for Gate {
    fn publish(&self, sender: &str, seq: u64, replica: Replica, cfg: &Arc<DetectConfig>) {
        Gate::publish(self, sender, seq, replica, cfg);
    }

    fn known(&self, senders: &[&str]) {
        Gate::known(self, senders);
    }
}
