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
//!
//! Client addresses likewise (`addresses`): each submission run through a
//! replica is also counted for its address, with how the account stands
//! with it, so that the submission completing a shared_ip alert contains
//! the address for every account at once. An established account's first
//! submission from an address that it could complete an alert at waits
//! for its past in the same way. `back` takes what returns from the
//! writer and the loader.

use super::loader::Loads;
use super::{Action, Hold, Holds};
use crate::detect::{Alert, DetectConfig, Loaded, Replica};
use crate::event::{Event, Tls};
use addresses::AddressGate;
use chrono::{DateTime, Utc};
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::Semaphore;

mod addresses;
mod back;

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
    /// Addresses it submitted from while its past was read, where it
    /// counts as an account being read until it arrives.
    reading_at: Vec<IpAddr>,
    /// Addresses contained ahead of the detector after a submission of
    /// this account (its number), until the writer counted it.
    addresses_predicted: Vec<(IpAddr, u64)>,
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
    addresses: AddressGate,
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
                addresses: AddressGate::new(),
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

    /// Waits, at most [`WAIT_FOR_PAST`], while the past of `ev`'s account
    /// is being read and its submissions so far could be one short of an
    /// alert, or its address could be one account short of a shared_ip
    /// alert with the accounts whose past is being read (a campaign's
    /// stolen accounts are established ones: without the wait, every
    /// message sent while their pasts are read would pass uncounted).
    pub(crate) async fn ready(&self, ev: &Event) {
        let cfg = self.cfg();
        let least = {
            let v = &cfg.volume;
            v.min_count
                .min(v.min_count_new_ip)
                .min(cfg.new_sender.min_count) as usize
        };
        let sender = ev.sender.as_str();
        let ts = ev.ts.timestamp();
        let arrived = {
            let mut shard = self.shard(sender).lock().unwrap_or_else(|p| p.into_inner());
            let entry = self.entry(&mut shard, sender, ts);
            if entry.replica.is_some() {
                return;
            }
            let burst = entry.pending.len() + 1 >= least;
            let hash = self.hash(sender);
            let campaign = ev.client_ip.is_some_and(|ip| {
                if !entry.reading_at.contains(&ip) {
                    entry.reading_at.push(ip);
                }
                self.inner.addresses.arriving(ip, hash, ts, &cfg)
            });
            match burst || campaign {
                true => entry.arrived.clone(),
                false => None,
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
        let entry = self.entry(&mut shard, &ev.sender, ts);
        entry.used = ts;
        if entry.pending.len() >= MAX_PENDING {
            entry.pending.pop_front();
        }
        let sub = Sub {
            seq,
            ts: ev.ts,
            tls: ev.tls,
            ip: ev.client_ip,
        };
        entry.pending.push_back(sub);
        if let Some(replica) = entry.replica.as_mut() {
            let (alert, address) = self.step(replica, &sub, ev, &cfg);
            if let Some(alert) = alert {
                entry.predicted = Some(seq);
                holds.contain_now(&alert);
            }
            entry.addresses_predicted.extend(address);
        }
        (hold, Some(seq))
    }

    /// Runs submission `sub` (its event `ev`) through its account's
    /// `replica` and the gate's count of its address: the alert that
    /// opens the account's incident, if any, and the address the gate
    /// contained after it, if any.
    fn step(
        &self,
        replica: &mut Replica,
        sub: &Sub,
        ev: &Event,
        cfg: &DetectConfig,
    ) -> (Option<Alert>, Option<(IpAddr, u64)>) {
        // How the account stood with the address before this submission,
        // as the detector weighs it (when it weighs addresses at all).
        let standing = sub
            .ip
            .filter(|_| cfg.enabled && cfg.shared_ip.enabled)
            .map(|ip| (ip, replica.standing(ip, ev.ts.timestamp(), cfg)));
        let alert = replica.submit(ev, cfg);
        let address = standing.and_then(|(ip, standing)| {
            let alert = self.inner.addresses.observe(ev, ip, standing, cfg)?;
            self.inner
                .holds
                .contain_now(&alert)
                .then_some((ip, sub.seq))
        });
        (alert, address)
    }

    /// `sender`'s entry in its `shard`, made on first sight at Unix second
    /// `ts`, its past asked of the loader if it has not been yet.
    fn entry<'s>(
        &self,
        shard: &'s mut HashMap<String, Entry>,
        sender: &str,
        ts: i64,
    ) -> &'s mut Entry {
        if !shard.contains_key(sender) {
            shard.insert(sender.to_owned(), self.first_sight(sender, ts));
        }
        let entry = shard
            .get_mut(sender)
            .unwrap_or_else(|| unreachable!("inserted above"));
        if !entry.asked {
            entry.asked = self.inner.loads.request(sender, ts);
        }
        entry
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
            reading_at: Vec::new(),
            addresses_predicted: Vec::new(),
            used: ts,
        }
    }
}
