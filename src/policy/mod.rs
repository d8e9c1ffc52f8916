//! The Postfix policy service (`[policy]`): Postfix asks it about every
//! submission (`check_policy_service`), which gives the daemon each
//! authenticated message as it happens, with the TLS version Postfix
//! negotiated, without a log to parse.
//!
//! It is in the mail path, so it answers at once and fails open:
//! - an answer never waits for the store: a submission is handed to the
//!   store writer through a bounded queue and the answer goes out. A crash
//!   loses what was queued and not yet journaled (a fraction of a second);
//!   a log follower on the same MTA fills it in, since both give the
//!   message the same id (`host:queue_id`) and it is counted once;
//! - a request it cannot understand is answered `DUNNO` and logged, and the
//!   connection goes on; a full queue drops the event, never the answer;
//! - connections and request sizes are bounded; Postfix's own
//!   `smtpd_policy_service_default_action = DUNNO` covers a daemon that is
//!   down.
//!
//! - `protocol`: the request and answer format, and the event a request
//!   reports (pure).
//! - `listen`: the UNIX socket or TCP port, and who may speak on it.
//! - `config`: `[policy]`.

pub(crate) mod config;
mod listen;
pub(crate) mod protocol;
mod serve;

pub(crate) use config::{ContainAction, PolicyConfig};
pub(crate) use listen::{ListenError, Listener, PolicyListen};
pub(crate) use serve::{Limits, run};

use crate::contain::{Gate, Hold, Holds};
use crate::event::Event;
use crate::ingest::Ingester;
use crate::metrics::{Metrics, PolicyCount};
use protocol::{Action, Request};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use tokio::sync::mpsc;

/// Submissions waiting for the store writer; beyond, they are dropped
/// (and counted) rather than delaying an answer.
const QUEUE: usize = 65_536;
/// Most submissions handed to the writer at once.
const BATCH: usize = 4_096;

/// Least seconds between two log lines about dropped submissions.
const DROP_WARN_EVERY: i64 = 60;

/// A submission for the writer, with its number in the gate (when the
/// detectors run).
type Queued = (Event, Option<u64>);

/// What a connection needs to answer requests. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Service {
    host: Arc<str>,
    events: mpsc::Sender<Queued>,
    metrics: Arc<Metrics>,
    /// The contained accounts, and what happens to their submissions.
    holds: Holds,
    /// Replicas of the accounts' detector state: the submission that raises
    /// an alert contains its account before the writer has counted it.
    gate: Option<Gate>,
    action: ContainAction,
    /// Unix second of the last warning about dropped submissions.
    warned: Arc<AtomicI64>,
}

impl Service {
    /// A service whose submissions go to `ingester`; the returned future
    /// hands them over and ends once every [`Service`] clone is dropped
    /// and the queue is empty.
    pub(crate) fn new(
        cfg: &PolicyConfig,
        ingester: Ingester,
        metrics: Arc<Metrics>,
        (holds, gate): (Holds, Option<Gate>),
    ) -> (Service, impl Future<Output = ()> + Send + 'static) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let service = Service {
            host: Arc::from(cfg.host.as_str()),
            events: tx,
            metrics,
            holds,
            gate,
            action: cfg.action,
            warned: Arc::default(),
        };
        (service, hand_over(rx, ingester))
    }

    /// The answer to one request (its lines, without the empty line).
    pub(crate) async fn answer(&self, lines: &[u8]) -> Action {
        self.metrics.policy(PolicyCount::Request);
        let now = chrono::Utc::now();
        let submission = Request::parse(lines).and_then(|r| r.submission(&self.host, now));
        let event = match submission {
            Ok(Some(event)) => event,
            Ok(None) => return Action::Dunno,
            Err(e) => {
                self.not_understood(&e.to_string());
                return Action::Dunno;
            }
        };
        self.metrics.policy(PolicyCount::Submission);
        let now = now.timestamp();
        // The message's Postfix queue id: the event's id is `host:queue_id`.
        let queue_id = event
            .id
            .as_deref()
            .and_then(|id| id.strip_prefix(&*self.host)?.strip_prefix(':'));
        // A client address contained after a shared_ip alert stops every
        // account submitting from it (the address is Postfix's own
        // client_address, not the client's word). An attempt it refuses
        // is no message: it is looked at first, and then does not run
        // through the account's replica; a message it lets through does.
        let check_address = || {
            self.holds
                .check_address(event.client_ip, &event.sender, queue_id, now, self.action)
        };
        let lets_through = self.action.lets_through();
        let refused = if lets_through { None } else { check_address() };
        let (hold, seq) = match &self.gate {
            _ if refused.is_some() => (None, None),
            Some(gate) => {
                // A burst of an account whose past is being read (rarely: a
                // few reads take microseconds) waits for it, briefly.
                gate.ready(&event).await;
                gate.answer(&event, queue_id, now, self.action)
            }
            None => (
                self.holds.check(&event.sender, queue_id, now, self.action),
                None,
            ),
        };
        let by_address = match refused {
            None if hold.is_none() && lets_through => check_address(),
            refused => refused,
        };
        let action = match by_address {
            Some((key, hold)) => {
                self.respond(&crate::contain::subject(&key).name(), Some(hold), true)
            }
            None => self.respond(&event.sender, hold, false),
        };
        // A deferred or rejected attempt is no message sent.
        if action.lets_through() && self.events.try_send((event, seq)).is_err() {
            self.dropped(now);
        }
        action
    }

    /// Counts a submission the writer's queue had no room for, and says so
    /// in the log at most once a minute.
    fn dropped(&self, now: i64) {
        self.metrics.policy(PolicyCount::Dropped);
        let last = self.warned.load(Ordering::Relaxed);
        if now - last >= DROP_WARN_EVERY
            && self
                .warned
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                "policy service: the store writer is behind; submissions are not counted \
                 (smtp_auth_insight_policy_total{{what=\"dropped\"}}); a log follower of the \
                 same MTA counts them from its log"
            );
        }
    }

    /// The answer for a submission of `sender`, contained by `hold` or not.
    fn respond(&self, sender: &str, hold: Option<Hold>, by_address: bool) -> Action {
        let what = if by_address { "address" } else { "account" };
        let Some(hold) = hold else {
            return Action::Dunno;
        };
        self.metrics.policy(match self.action {
            ContainAction::Hold => PolicyCount::Held,
            ContainAction::Defer => PolicyCount::Deferred,
            ContainAction::Reject => PolicyCount::Rejected,
            ContainAction::Monitor => PolicyCount::Monitored,
        });
        match self.action {
            ContainAction::Monitor => Action::Dunno,
            ContainAction::Hold => {
                let alert = match hold.alert_seq {
                    0 => String::new(),
                    seq => format!(" #{seq}"),
                };
                let kind = hold.kind.name();
                Action::Hold(format!(
                    "smtp-auth-insight: {sender} contained after {kind} alert{alert}"
                ))
            }
            ContainAction::Defer => Action::DeferIfPermit(format!(
                "4.7.1 Sending from this {what} is paused because it looks compromised; \
                 try again later or contact the mail administrator"
            )),
            ContainAction::Reject => Action::Reject(format!(
                "5.7.1 Sending from this {what} is suspended because it looks \
                 compromised; contact the mail administrator"
            )),
        }
    }

    /// Logs and counts a request answered `DUNNO` because it could not be
    /// understood.
    fn not_understood(&self, why: &str) {
        self.metrics.policy(PolicyCount::NotUnderstood);
        tracing::warn!(
            error = why,
            "policy service: request not understood; answered DUNNO"
        );
    }
}

/// Hands queued submissions to the store writer in batches, each with the
/// gate's number of the last submission of each account in it.
async fn hand_over(mut rx: mpsc::Receiver<Queued>, ingester: Ingester) {
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let mut marks: HashMap<&str, u64> = HashMap::new();
        for (ev, seq) in &batch {
            if let Some(seq) = *seq {
                let at = marks.entry(ev.sender.as_str()).or_insert(seq);
                *at = (*at).max(seq);
            }
        }
        let marks = marks.into_iter().map(|(s, n)| (s.to_owned(), n)).collect();
        let events: Vec<Event> = batch.drain(..).map(|(ev, _)| ev).collect();
        let n = events.len();
        // The writer counts what it stored in the metrics.
        if let Err(e) = ingester.ingest_marked(events, marks).await {
            tracing::error!(error = %e, events = n, "policy service: submissions not stored");
        }
    }
}
