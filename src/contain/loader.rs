//! The gate's helper thread: reads from the store the past of accounts the
//! gate meets for the first time (the answer never waits for it), and now
//! and then forgets the accounts gone quiet.

use super::{ContainError, Gate, Holds};
use crate::detect::{DetectConfig, Replica};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Accounts waiting to be read; beyond, a request is dropped and asked
/// again at the account's next submission.
const QUEUE: usize = 65_536;
/// An account without a submission for this long is forgotten...
const IDLE_SECS: i64 = 1800;
/// ...and the least recently seen beyond this many. A replica costs about a
/// kilobyte: at most some 50 MB.
const MOST: usize = 50_000;
/// How often accounts are forgotten.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// The gate's way to ask for an account's past.
pub(super) struct Loads {
    tx: SyncSender<(String, i64)>,
}

impl Loads {
    pub(super) fn new(tx: SyncSender<(String, i64)>) -> Loads {
        Loads { tx }
    }

    /// Asks for `sender`'s past as of Unix second `now`; false when the
    /// queue is full.
    pub(super) fn request(&self, sender: &str, now: i64) -> bool {
        self.tx.try_send((sender.to_owned(), now)).is_ok()
    }
}

/// The gate of the policy service, containing through `holds` and judging
/// by `cfg` (the writer hands later settings on), and its helper thread,
/// which ends when `stop` is cancelled. Reads the accounts the store knows
/// (blocking: call it from a blocking thread).
pub(crate) fn start_gate(
    holds: &Holds,
    cfg: Arc<DetectConfig>,
    stop: CancellationToken,
) -> Result<(Gate, std::thread::JoinHandle<()>), ContainError> {
    let store = holds.inner.store.clone();
    let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
    let gate = Gate::new(holds.clone(), cfg, Loads::new(tx));
    let mut hashes = Vec::new();
    store.for_each_sender(|sender| hashes.push(gate.hash(sender)))?;
    gate.add_known(hashes);
    let helper = gate.clone();
    let thread = std::thread::Builder::new()
        .name("contain-loader".into())
        .spawn(move || run(&helper, &store, &rx, &stop))
        .map_err(|e| ContainError::Thread(e.to_string()))?;
    Ok((gate, thread))
}

fn run(
    gate: &Gate,
    store: &crate::store::Store,
    rx: &Receiver<(String, i64)>,
    stop: &CancellationToken,
) {
    let mut swept = Instant::now();
    while !stop.is_cancelled() {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok((sender, now)) => gate.loaded(&sender, Replica::load(&sender, store, now)),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        if swept.elapsed() >= SWEEP_EVERY {
            swept = Instant::now();
            let now = chrono::Utc::now().timestamp();
            gate.evict(now - IDLE_SECS, MOST);
            gate.prune_addresses(now);
        }
    }
}
