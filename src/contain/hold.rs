//! One account's containment record.

use crate::detect::{Alert, AlertKind};
use crate::store::Recorded;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// A containment: since when, why, until when, what it stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Hold {
    /// Unix seconds it began.
    pub since: i64,
    /// Unix seconds it ends unless released earlier.
    pub until: i64,
    /// The alert that began it: its kind, sequence number in the alert
    /// log, event time (RFC 3339) and text.
    pub kind: AlertKind,
    pub(crate) alert_seq: u64,
    pub(crate) alert_at: String,
    pub why: String,
    /// The hourly count that raised the alert: after a release, twice it
    /// within an hour contains the account again (see `trust`).
    #[serde(default)]
    pub(crate) observed: u64,
    /// Contained again after a release, not by an alert of its own: it
    /// has a mail of its own.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) escalated: bool,
    /// Messages the policy service put on hold, attempts it deferred or
    /// rejected, and (with `action = "monitor"`) would have stopped.
    #[serde(default)]
    pub held: u64,
    #[serde(default)]
    pub deferred: u64,
    #[serde(default)]
    pub rejected: u64,
    #[serde(default)]
    pub monitored: u64,
    /// The Postfix queue ids of the messages answered `HOLD`, oldest
    /// first: what `release --requeue` hands to `postsuper -H`. At most
    /// [`MAX_HELD_IDS`]; `held` goes on counting beyond.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held_queue_ids: Vec<String>,
    /// Messages held per local day (day numbers), for the reports.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) held_days: BTreeMap<u32, u64>,
    /// A client address's containment: the messages held per account and
    /// local day, so that the reports count them for their accounts (at
    /// most [`MAX_HELD_ACCOUNTS`] accounts; `held_days` counts them all).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) held_by: BTreeMap<String, BTreeMap<u32, u64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released: Option<Released>,
    /// Unix second of the last reminder that it is still in force (0:
    /// none yet): kept with the record, so a restart sends none early.
    #[serde(default)]
    pub(crate) reminded: i64,
    /// Changed since it was last saved.
    #[serde(skip)]
    pub(super) unsaved: bool,
    /// Begun by the policy service ahead of the alert log (see `gate`):
    /// in force, not yet confirmed by the alert, not on disk.
    #[serde(skip)]
    pub(super) provisional: bool,
    /// The mail saying it began or ended is due once the record is saved.
    #[serde(skip)]
    pub(super) mail_due: bool,
    /// A reminder that it is still in force is due once the record is
    /// saved.
    #[serde(skip)]
    pub(super) remind_due: bool,
    /// Holds the held days of the account's earlier containments (one
    /// record per account): true once merged, and for a record read back.
    #[serde(skip, default = "read_back")]
    pub(super) carried: bool,
}

fn read_back() -> bool {
    true
}

/// Accounts whose held messages a client address's containment counts
/// apart.
pub(crate) const MAX_HELD_ACCOUNTS: usize = 10_000;

/// Most queue ids one record keeps: a day of a spam run at a message a
/// second, in under 2 MB of record.
pub(crate) const MAX_HELD_IDS: usize = 100_000;

/// Longest queue id kept: Postfix's long ids are 15–18 characters.
const MAX_QUEUE_ID_LEN: usize = 32;

/// Who ended a containment, and when (Unix seconds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Released {
    pub by: String,
    pub at: i64,
}

/// What the policy service does with a contained account's submissions
/// (`[policy] action`); each is counted on the containment's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Let them through (`DUNNO`) and count what would have been stopped.
    Monitor,
    /// `DEFER_IF_PERMIT` 4.7.1: the client keeps the message and retries.
    Defer,
    /// `HOLD`: accepted into Postfix's hold queue, for review.
    Hold,
    /// `REJECT` 5.7.1.
    Reject,
}

impl Action {
    /// Whether Postfix accepts a contained account's message (into its
    /// hold queue, or as usual in monitor mode): it is a message sent.
    pub(crate) fn lets_through(self) -> bool {
        matches!(self, Action::Monitor | Action::Hold)
    }
}

impl Hold {
    /// A containment beginning at Unix second `now` for alert `r`, to be
    /// saved and mailed.
    pub(super) fn new(r: &Recorded, now: i64, hours: u32) -> Hold {
        let mut hold = Hold::ahead(&r.alert, now, hours);
        hold.confirm(r);
        hold
    }

    /// A containment beginning at Unix second `now` for an alert the
    /// policy service saw raised before the alert log has it.
    pub(super) fn ahead(alert: &Alert, now: i64, hours: u32) -> Hold {
        Hold {
            alert_at: alert.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            why: alert.detail.clone(),
            observed: alert.observed,
            provisional: true,
            ..Hold::begun(alert.kind, now, hours)
        }
    }

    /// A record of a `kind` containment from Unix second `now` for
    /// `hours`: nothing counted, nothing due.
    fn begun(kind: AlertKind, now: i64, hours: u32) -> Hold {
        Hold {
            since: now,
            until: now.saturating_add(i64::from(hours) * 3600),
            kind,
            alert_seq: 0,
            alert_at: String::new(),
            why: String::new(),
            observed: 0,
            escalated: false,
            held: 0,
            deferred: 0,
            rejected: 0,
            monitored: 0,
            held_queue_ids: Vec::new(),
            held_days: BTreeMap::new(),
            held_by: BTreeMap::new(),
            released: None,
            reminded: 0,
            unsaved: false,
            provisional: false,
            mail_due: false,
            remind_due: false,
            carried: false,
        }
    }

    /// Ties the containment to alert `r` as the alert log holds it: to be
    /// saved, and mailed unless released already.
    pub(super) fn confirm(&mut self, r: &Recorded) {
        self.kind = r.alert.kind;
        self.alert_seq = r.seq;
        self.alert_at = r
            .alert
            .at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        self.why = r.alert.detail.clone();
        self.observed = r.alert.observed;
        self.provisional = false;
        self.unsaved = true;
        self.mail_due = self.released.is_none();
    }

    /// A containment again from Unix second `now`, of an account released
    /// from `released` that then sent `count` messages within an hour,
    /// more than twice the hourly count that raised its alert. Its record
    /// replaces the released one's, and takes over its held days when it
    /// is saved, as any new containment's does.
    pub(super) fn escalated(released: &Hold, now: i64, hours: u32, count: u64) -> Hold {
        Hold {
            alert_seq: released.alert_seq,
            alert_at: released.alert_at.clone(),
            why: format!(
                "escalated after its release: {count} messages within an hour, more than \
                 twice the {} that raised the {} alert",
                released.observed,
                released.kind.name()
            ),
            observed: released.observed,
            escalated: true,
            unsaved: true,
            mail_due: true,
            ..Hold::begun(released.kind, now, hours)
        }
    }

    /// Whether a reminder is due at Unix second `now`, every `every`
    /// seconds of a recorded containment in force (never when `every` is
    /// 0); marks it sent.
    pub(super) fn remind(&mut self, now: i64, every: i64) -> bool {
        let last = self.reminded.max(self.since);
        if every <= 0 || self.provisional || !self.in_force(now) || now - last < every {
            return false;
        }
        self.reminded = now;
        self.unsaved = true;
        self.remind_due = true;
        true
    }

    /// A copy without the queue ids and days held, which grow with every
    /// held message: for the policy service's answer (copying them at each
    /// answer of a spam run made it quadratic: 20,000 messages a second
    /// instead of 300,000), the dashboard's card and the watch after a
    /// release.
    pub(super) fn light(&self) -> Hold {
        Hold {
            since: self.since,
            until: self.until,
            kind: self.kind,
            alert_seq: self.alert_seq,
            alert_at: self.alert_at.clone(),
            why: self.why.clone(),
            observed: self.observed,
            escalated: self.escalated,
            held: self.held,
            deferred: self.deferred,
            rejected: self.rejected,
            monitored: self.monitored,
            held_queue_ids: Vec::new(),
            held_days: BTreeMap::new(),
            held_by: BTreeMap::new(),
            released: self.released.clone(),
            reminded: self.reminded,
            unsaved: self.unsaved,
            provisional: self.provisional,
            mail_due: self.mail_due,
            remind_due: self.remind_due,
            carried: self.carried,
        }
    }

    /// Whether it applies at Unix second `now`.
    pub(crate) fn in_force(&self, now: i64) -> bool {
        self.released.is_none() && now < self.until
    }

    /// Counts a submission answered per `action` on local day `day`; a
    /// held message's Postfix `queue_id` (letters and digits, as the policy
    /// request's parser checked) is kept for `release --requeue`. `account`:
    /// the submitting account, for a client address's containment.
    pub(super) fn count(
        &mut self,
        action: Action,
        queue_id: Option<&str>,
        day: u32,
        account: Option<&str>,
    ) {
        if action == Action::Hold {
            *self.held_days.entry(day).or_default() += 1;
            if let Some(account) = account
                .filter(|a| self.held_by.len() < MAX_HELD_ACCOUNTS || self.held_by.contains_key(*a))
            {
                *self
                    .held_by
                    .entry(account.to_owned())
                    .or_default()
                    .entry(day)
                    .or_default() += 1;
            }
        }
        if let Some(id) = queue_id.filter(|id| {
            action == Action::Hold
                && (1..=MAX_QUEUE_ID_LEN).contains(&id.len())
                && id.bytes().all(|b| b.is_ascii_alphanumeric())
                && self.held_queue_ids.len() < MAX_HELD_IDS
        }) {
            self.held_queue_ids.push(id.to_owned());
        }
        let n = match action {
            Action::Hold => &mut self.held,
            Action::Defer => &mut self.deferred,
            Action::Reject => &mut self.rejected,
            Action::Monitor => &mut self.monitored,
        };
        *n += 1;
        self.unsaved = true;
    }
}

pub(super) fn time(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A record as the API and the command line show it.
pub(crate) fn view(key: &str, h: &Hold, now: i64) -> Value {
    // An account's containment names the account; a client address's
    // (after a shared_ip alert) the address, for every account.
    let (sender, client_ip) = match super::subject(key) {
        super::Subject::Account(a) => (Some(a.to_owned()), None),
        super::Subject::Address(ip) => (None, Some(ip.to_string())),
    };
    json!({
        "sender": sender,
        "client_ip": client_ip,
        "in_force": h.in_force(now),
        "since": time(h.since),
        "until": time(h.until),
        // No number while the alert that began it is being recorded (a
        // fraction of a second after the policy service contained it).
        "alert": {
            "kind": h.kind,
            "seq": (h.alert_seq != 0).then_some(h.alert_seq),
            "at": h.alert_at,
            "detail": h.why,
        },
        "held": h.held,
        "deferred": h.deferred,
        "rejected": h.rejected,
        "monitored": h.monitored,
        "held_queue_ids": h.held_queue_ids,
        "released": h.released.as_ref().map(|r| json!({ "by": r.by, "at": time(r.at) })),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{Alert, AlertStatus};

    fn recorded() -> Recorded {
        Recorded {
            seq: 7,
            recorded_ms: 0,
            alert: Alert {
                kind: AlertKind::NewSender,
                sender: "mallory@example.com".into(),
                at: chrono::DateTime::from_timestamp(1_000_000, 0).unwrap(),
                observed: 40,
                expected: 10.0,
                detail: "first seen".into(),
                status: AlertStatus::Firing,
                threshold: Some(40),
                client_ips: Vec::new(),
                tls: None,
            },
        }
    }

    #[test]
    fn a_containment_ends_when_released_or_after_its_hours() {
        let mut h = Hold::new(&recorded(), 1_000_000, 2);
        assert!(!h.provisional && h.unsaved && h.mail_due);
        assert_eq!((h.since, h.until), (1_000_000, 1_000_000 + 7200));
        assert!(h.in_force(1_000_000) && h.in_force(1_007_199));
        assert!(!h.in_force(1_007_200), "after hold_hours");
        h.released = Some(Released {
            by: "ann".into(),
            at: 1_000_010,
        });
        assert!(!h.in_force(1_000_011), "released");
    }

    #[test]
    fn reminders_come_every_interval_while_recorded_and_in_force() {
        let mut h = Hold::new(&recorded(), 1_000_000, 2);
        h.unsaved = false;
        assert!(!h.remind(1_000_000 + 3599, 3600), "not yet");
        assert!(h.remind(1_000_000 + 3600, 3600));
        assert!(h.unsaved && h.remind_due && h.reminded == 1_003_600);
        assert!(!h.remind(1_003_600 + 3599, 3600), "counted from the last");
        assert!(!h.remind(1_007_200, 3600), "ended");
        assert!(!Hold::new(&recorded(), 0, 2).remind(7200, 0), "0: none");
        let mut ahead = Hold::ahead(&recorded().alert, 0, 2);
        assert!(!ahead.remind(3600, 60), "not before it is recorded");
    }

    #[test]
    fn counts_mark_the_record_for_saving() {
        let mut h = Hold::ahead(&recorded().alert, 0, 1);
        assert!(!h.unsaved && h.provisional);
        h.count(Action::Defer, Some("4XK2J3MZ1QZ"), 7, None);
        h.count(Action::Defer, None, 7, None);
        h.count(Action::Hold, Some("4XK2J3MZ1QZ"), 7, None);
        h.count(Action::Hold, None, 7, None);
        h.count(Action::Hold, Some("../etc/passwd"), 8, Some("a@x.org"));
        h.count(Action::Hold, Some("ABC123"), 8, Some("b@x.org"));
        assert_eq!((h.held, h.deferred, h.rejected, h.monitored), (4, 2, 0, 0));
        // Held ones only, in order; no id that is not letters and digits.
        assert_eq!(h.held_queue_ids, ["4XK2J3MZ1QZ", "ABC123"]);
        assert_eq!(h.held_days, BTreeMap::from([(7, 2), (8, 2)]));
        // A client address's containment counts its held messages per
        // account too.
        assert_eq!(
            h.held_by,
            BTreeMap::from([
                ("a@x.org".to_owned(), BTreeMap::from([(8, 1)])),
                ("b@x.org".to_owned(), BTreeMap::from([(8, 1)])),
            ])
        );
        assert!(h.unsaved);
    }
}
