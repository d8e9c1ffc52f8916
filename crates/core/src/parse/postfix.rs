//! Postfix: one accepted submission is one `QUEUEID: client=..., sasl_method=
//! ..., sasl_username=USER` line from an smtpd process; its TLS version comes
//! from the `TLS connection established` line of the same connection.
//!
//! smtpd processes are reused for many connections and a connection can carry
//! several messages, so state is kept per (host, smtpd pid) between `connect
//! from` and `disconnect from`. The envelope sender is logged afterwards by
//! qmgr (`QUEUEID: from=<...>`), sometimes after the client has already
//! disconnected (seen in the rsyslog fixture); a submission waits for it up
//! to [`GRACE_SECONDS`] of log time after its connection ends, then is
//! emitted without it.

use super::lines::as_text;
use super::syslog::{self, Clock};
use super::{LogParser, Skip, bracketed_ip};
use crate::event::{Event, Outcome, Tls, lowercase, normalize_sender};
use by_host::ByHost;
use memchr::memmem::Finder;
use queue_id::QueueId;
use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::{Arc, LazyLock};

mod by_host;
mod queue_id;

/// How long (in log time) a submission waits for qmgr's `from=` line after
/// its connection ended.
pub(crate) const GRACE_SECONDS: i64 = 60;

/// Most connections tracked at once; a log that never says `disconnect`
/// cannot grow the parser without bound.
const MAX_CONNECTIONS: usize = 100_000;

/// The markers searched for in smtpd lines, with finders built once (see
/// [`split_at`]).
static TLS_ESTABLISHED: LazyLock<Finder<'static>> =
    LazyLock::new(|| Finder::new("TLS connection established from "));
/// Where the TLS line's marker can start: after a trust word
/// (`Anonymous `, `Untrusted `, `Trusted `, `Verified `) or none.
const TLS_MARKER_WITHIN: usize = 10 + "TLS connection established from ".len();
static SASL_USERNAME: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("sasl_username="));
static FIELD_END: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(", "));
static AFTER_CLIENT: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("]: "));

#[derive(Debug, Default)]
struct Connection {
    tls: Option<Tls>,
    /// Queue ids of this connection's submissions still waiting for qmgr.
    waiting: Waiting,
}

/// A list of queue ids whose first is held inline: most connections carry
/// one message, and a list of their own was one more allocation each.
#[derive(Debug, Default)]
struct Waiting {
    first: Option<QueueId>,
    more: Vec<QueueId>,
}

impl Waiting {
    fn push(&mut self, qid: QueueId) {
        match self.first {
            None => self.first = Some(qid),
            Some(_) => self.more.push(qid),
        }
    }

    fn iter(&self) -> impl Iterator<Item = QueueId> + '_ {
        self.first.iter().chain(&self.more).copied()
    }
}

pub struct Postfix {
    clock: Clock,
    stamps: syslog::Stamps,
    /// Replaces the syslog host name in events and ids when set.
    host_label: Option<Arc<str>>,
    /// The host name last seen, shared by the events and lists that name
    /// it (a log names few hosts, each on line after line).
    host: Option<Arc<str>>,
    /// Open connections by (host, smtpd pid).
    connections: ByHost<u32, Connection>,
    /// Submissions waiting for their envelope sender, by (host, queue id).
    pending: ByHost<QueueId, Event>,
    /// Submissions of ended connections, oldest first, with the log time
    /// after which they are emitted without an envelope sender.
    expiring: VecDeque<(i64, Arc<str>, QueueId)>,
    /// Failed logins carry no queue id; (second, pid, n) numbers them so
    /// that importing the same log twice gives the same ids.
    failure_seq: (i64, u32, u32),
}

impl Postfix {
    pub fn new(clock: Clock, host_label: Option<String>) -> Postfix {
        Postfix {
            clock,
            stamps: syslog::Stamps::default(),
            host_label: host_label.map(Arc::from),
            host: None,
            connections: ByHost::default(),
            pending: ByHost::default(),
            expiring: VecDeque::new(),
            failure_seq: (0, 0, 0),
        }
    }

    /// The host a line names (or the label that replaces it), as the
    /// string shared by what names it: the last one again, unless the
    /// line names another. It is taken out of `self.host`, not cloned (a
    /// reference count changed twice per line): the caller puts it back
    /// once the line is read.
    fn host(&mut self, named: &[u8]) -> Result<Arc<str>, Skip> {
        if let Some(label) = &self.host_label {
            return Ok(label.clone());
        }
        match self.host.take() {
            Some(host) if host.as_bytes() == named => Ok(host),
            _ => Ok(Arc::from(as_text(named)?)),
        }
    }

    /// A connection ended at `now`: its submissions get their grace period.
    fn end_connection(&mut self, host: &Arc<str>, pid: u32, now: i64) {
        if let Some(conn) = self.connections.remove(host, &pid)
            && conn.waiting.first.is_some()
        {
            let deadline = now + GRACE_SECONDS;
            for qid in conn.waiting.iter() {
                self.expiring.push_back((deadline, host.clone(), qid));
            }
        }
    }

    /// Emits submissions whose grace period ended before `now`.
    fn expire(&mut self, now: i64, out: &mut Vec<Event>) {
        while let Some((deadline, _, _)) = self.expiring.front() {
            if *deadline >= now {
                break;
            }
            if let Some((_, host, qid)) = self.expiring.pop_front()
                && let Some(ev) = self.pending.remove(&host, &qid)
            {
                out.push(ev);
            }
        }
    }

    fn submission(
        &mut self,
        l: &syslog::SyslogLine,
        host: &Arc<str>,
        qid: QueueId,
        fields: &[u8],
    ) -> Result<(), Skip> {
        let Some(user) = sasl_username(fields) else {
            return Ok(()); // an unauthenticated client: not SMTP AUTH
        };
        let sender = normalize_sender(as_text(user)?).map_err(|_| Skip::BadUsername)?;
        let client = as_text(split_at(fields, &FIELD_END).map_or(fields, |(client, _)| client))?;
        let conn = self.connections.entry(host, l.pid);
        conn.waiting.push(qid);
        let event = Event {
            ts: l.ts,
            sender,
            tls: conn.tls.unwrap_or(Tls::None),
            result: Outcome::Accepted,
            client_ip: bracketed_ip(client),
            host: Some(host.clone()),
            // `concat` copies into one allocation (`format!` goes through the
            // formatting machinery for what is a copy).
            id: Some([host, ":", qid.as_str()].concat()),
            envelope_from: None,
        };
        self.pending.insert(host, qid, event);
        Ok(())
    }

    fn failure(
        &mut self,
        l: &syslog::SyslogLine,
        host: &Arc<str>,
        msg: &str,
        out: &mut Vec<Event>,
    ) -> Result<(), Skip> {
        let user = sasl_username(msg.as_bytes()).map_or(Ok("(unknown)"), as_text)?;
        let sender = normalize_sender(user).map_err(|_| Skip::BadUsername)?;
        let program = as_text(l.program)?;
        let second = l.ts.timestamp();
        let n = match self.failure_seq {
            (s, p, n) if s == second && p == l.pid => n + 1,
            _ => 0,
        };
        self.failure_seq = (second, l.pid, n);
        out.push(Event {
            ts: l.ts,
            sender,
            tls: self
                .connections
                .get(host, &l.pid)
                .and_then(|c| c.tls)
                .unwrap_or(Tls::None),
            result: Outcome::AuthFailed,
            client_ip: ip_after_warning(msg),
            host: Some(host.clone()),
            id: Some(format!("{host}:authfail:{program}:{}:{second}:{n}", l.pid)),
            envelope_from: None,
        });
        Ok(())
    }

    /// One line of smtpd or qmgr, logged by `host`.
    fn message(
        &mut self,
        l: &syslog::SyslogLine,
        host: &Arc<str>,
        service: Service,
        out: &mut Vec<Event>,
    ) -> Result<(), Skip> {
        let msg = l.message;
        let now = l.ts.timestamp();
        match service {
            Service::Smtpd => {
                if msg.starts_with(b"connect from ") {
                    self.end_connection(host, l.pid, now);
                    if self.connections.len() >= MAX_CONNECTIONS {
                        self.finish(out);
                    }
                    self.connections.insert(host, l.pid, Connection::default());
                } else if msg.starts_with(b"disconnect from ") {
                    self.end_connection(host, l.pid, now);
                } else if let Some((qid, fields)) = queue_line(msg, b": client=") {
                    self.submission(l, host, qid, fields)?;
                } else if let Some((qid, _)) = queue_line(msg, b": reject: ") {
                    // Refused at the end of DATA (a policy service's
                    // DEFER_IF_PERMIT or REJECT, say): no message was sent.
                    self.pending.remove(host, &qid);
                } else if let Some(pos) = tls_marker(msg) {
                    let proto = split_at(&msg[pos..], &AFTER_CLIENT)
                        .and_then(|(_, r)| r.split(|&b| b == b' ').next())
                        .and_then(|p| as_text(p).ok());
                    if let Some(tls) = proto.and_then(Tls::parse) {
                        self.connections.entry(host, l.pid).tls = Some(tls);
                    }
                } else if msg.starts_with(b"warning: ") {
                    let msg = as_text(msg)?;
                    if msg.contains(" authentication failed") && msg.contains("SASL ") {
                        self.failure(l, host, msg, out)?;
                    }
                }
            }
            Service::Qmgr => {
                if let Some((qid, fields)) = queue_line(msg, b": from=<")
                    && let Some(mut ev) = self.pending.remove(host, &qid)
                {
                    let from = fields.split(|&b| b == b'>').next().unwrap_or_default();
                    // Its queue id may still be listed as waiting or
                    // expiring; those find nothing left to emit.
                    let from = as_text(from);
                    ev.envelope_from = from.ok().filter(|f| !f.is_empty()).map(lowercase);
                    out.push(ev);
                    from?;
                }
            }
        }
        Ok(())
    }
}

/// The Postfix programs whose lines are read; the others' are passed over.
#[derive(Clone, Copy)]
enum Service {
    Smtpd,
    Qmgr,
}

impl LogParser for Postfix {
    fn line(&mut self, line: &str, out: &mut Vec<Event>) -> Result<(), Skip> {
        self.bytes(line.as_bytes(), out)
    }

    fn bytes(&mut self, line: &[u8], out: &mut Vec<Event>) -> Result<(), Skip> {
        let Ok(l) = syslog::parse(line, &self.clock, &mut self.stamps) else {
            // Garbage that is not even text is refused as such.
            return Err(as_text(line).err().unwrap_or(Skip::NotALogLine));
        };
        // Postfix always logs as NAME/SERVICE; NAME is the admin's
        // syslog_name (postfix, postfix/submission, ...).
        let Some(slash) = memchr::memrchr(b'/', l.program) else {
            return Ok(());
        };
        self.expire(l.ts.timestamp(), out);
        let service = match &l.program[slash + 1..] {
            b"smtpd" => Service::Smtpd,
            b"qmgr" => Service::Qmgr,
            _ => return Ok(()),
        };
        let host = self.host(l.host)?;
        let result = self.message(&l, &host, service, out);
        self.host = Some(host);
        result
    }

    fn now(&mut self, now: chrono::DateTime<chrono::Utc>) {
        self.clock.reference = now;
        // A year-less stamp may mean another instant with another reference.
        self.stamps = syslog::Stamps::default();
    }

    fn idle(&mut self, now: i64, out: &mut Vec<Event>) {
        self.expire(now, out);
    }

    fn save(&self) -> serde_json::Value {
        let state = State {
            connections: self
                .connections
                .iter()
                .map(|(h, p, c)| (h.to_owned(), *p, c.tls, c.waiting.iter().collect()))
                .collect(),
            pending: self
                .pending
                .iter()
                .map(|(h, q, e)| (h.to_owned(), *q, e.clone()))
                .collect(),
            expiring: self.expiring.iter().cloned().collect(),
            failure_seq: self.failure_seq,
        };
        serde_json::to_value(state).unwrap_or_default()
    }

    fn restore(&mut self, state: serde_json::Value) -> Result<(), String> {
        let s: State = serde_json::from_value(state).map_err(|e| e.to_string())?;
        self.connections.clear();
        for (h, p, tls, queued) in s.connections {
            let mut waiting = Waiting::default();
            queued.into_iter().for_each(|q| waiting.push(q));
            self.connections.insert(&h, p, Connection { tls, waiting });
        }
        self.pending.clear();
        for (h, q, e) in s.pending {
            self.pending.insert(&h, q, e);
        }
        self.expiring = s.expiring.into();
        self.failure_seq = s.failure_seq;
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<Event>) {
        self.connections.clear();
        self.expiring.clear();
        out.extend(self.pending.drain_values());
    }
}

/// The parser's state in saved form (JSON has no tuple keys).
#[derive(serde::Serialize, serde::Deserialize)]
struct State {
    connections: Vec<(String, u32, Option<Tls>, Vec<QueueId>)>,
    pending: Vec<(String, QueueId, Event)>,
    expiring: Vec<(i64, Arc<str>, QueueId)>,
    failure_seq: (i64, u32, u32),
}

/// Value of `sasl_username=` in a `k=v, k=v` list: up to the next `, ` or
/// the end. (Every `client=` line is searched, most of them inbound mail
/// without the field.)
fn sasl_username(s: &[u8]) -> Option<&[u8]> {
    let (_, rest) = split_at(s, &SASL_USERNAME)?;
    Some(split_at(rest, &FIELD_END).map_or(rest, |(value, _)| value))
}

/// `text` split around the first match of `marker`: `str::find` and
/// `split_once` set a substring searcher up on every call, a tenth of the
/// parser's time (perf, import benchmark).
fn split_at<'a>(text: &'a [u8], marker: &Finder<'_>) -> Option<(&'a [u8], &'a [u8])> {
    let at = marker.find(text)?;
    Some((&text[..at], &text[at + marker.needle().len()..]))
}

/// `QUEUEID: ...` lines: the queue id and what follows `what` (which
/// starts with `: `). A queue id holds no `:`, so only the first one can
/// end it: no search through the rest of a line that is not one (half
/// of a log's lines come from smtpd, most of them not these).
fn queue_line<'a>(msg: &'a [u8], what: &[u8]) -> Option<(QueueId, &'a [u8])> {
    let colon = memchr::memchr(b':', msg)?;
    let rest = msg[colon..].strip_prefix(what)?;
    Some((QueueId::new(&msg[..colon])?, rest))
}

/// Where a `TLS connection established` line's marker starts, if it is one.
fn tls_marker(msg: &[u8]) -> Option<usize> {
    let head = &msg[..msg.len().min(TLS_MARKER_WITHIN)];
    TLS_ESTABLISHED.find(head)
}

/// `warning: HOST[IP]: SASL ...` → IP.
fn ip_after_warning(msg: &str) -> Option<IpAddr> {
    let rest = msg.strip_prefix("warning: ")?;
    bracketed_ip(rest.split(": ").next()?)
}
