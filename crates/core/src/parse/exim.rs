//! Exim: every fact of a submission is on its `<=` line: `A=authenticator:
//! USER` (the authenticator's name is the admin's choice), `X=` with the TLS
//! protocol in front in GnuTLS (`TLS1.3:...`) or OpenSSL (`TLSv1.2:...`)
//! spelling, and no `X=` when the message came without TLS. Failed logins
//! are `NAME authenticator failed for ... (set_id=USER)` lines.

use super::syslog::parse_exim_time;
use super::{LogParser, Skip, bracketed_ip};
use crate::event::{Event, Outcome, Tls, normalize_sender};
use chrono_tz::Tz;

pub struct Exim {
    tz: Tz,
    /// Exim's main log names no host; ids and events use this label.
    host: std::sync::Arc<str>,
    /// Numbers failed logins within one second (see the Postfix parser).
    failure_seq: (i64, u32),
}

impl Exim {
    pub fn new(tz: Tz, host: String) -> Exim {
        Exim {
            tz,
            host: host.into(),
            failure_seq: (0, 0),
        }
    }
}

impl LogParser for Exim {
    fn line(&mut self, line: &str, out: &mut Vec<Event>) -> Result<(), Skip> {
        if line.starts_with(' ') || line.is_empty() {
            return Ok(()); // continuation of a multi-line entry
        }
        let (ts, rest) = parse_exim_time(line, self.tz).ok_or(Skip::NotALogLine)?;
        // With log_selector +pid: "[1234] ".
        let rest = match rest.strip_prefix('[').and_then(|r| r.split_once("] ")) {
            Some((pid, r)) if pid.bytes().all(|b| b.is_ascii_digit()) => r,
            _ => rest,
        };
        if let Some((msg_id, arrival)) = rest.split_once(" <= ") {
            let Some(auth) = value(arrival, "A=") else {
                return Ok(()); // not an authenticated submission
            };
            let user = auth.split_once(':').map_or(auth, |(_, u)| u);
            let tls = match value(arrival, "X=") {
                None => Tls::None,
                Some(x) => Tls::parse(x.split(':').next().unwrap_or(x)).unwrap_or(Tls::None),
            };
            let from = arrival.split(' ').next().unwrap_or("");
            out.push(Event {
                ts,
                sender: normalize_sender(user).map_err(|_| Skip::BadUsername)?,
                tls,
                result: Outcome::Accepted,
                client_ip: arrival.split_once(" H=").and_then(|(_, h)| bracketed_ip(h)),
                host: Some(self.host.clone()),
                id: Some(format!("{}:{msg_id}", self.host)),
                envelope_from: (!from.is_empty() && from != "<>")
                    .then(|| crate::event::lowercase(from)),
            });
        } else if let Some((_, tail)) = rest.split_once(" authenticator failed for ") {
            let user = tail
                .rsplit_once("(set_id=")
                .and_then(|(_, u)| u.strip_suffix(')'))
                .unwrap_or("(unknown)");
            let second = ts.timestamp();
            let n = if self.failure_seq.0 == second {
                self.failure_seq.1 + 1
            } else {
                0
            };
            self.failure_seq = (second, n);
            out.push(Event {
                ts,
                sender: normalize_sender(user).map_err(|_| Skip::BadUsername)?,
                tls: Tls::None,
                result: Outcome::AuthFailed,
                client_ip: bracketed_ip(tail),
                host: Some(self.host.clone()),
                id: Some(format!("{}:authfail:{second}:{n}", self.host)),
                envelope_from: None,
            });
        }
        Ok(())
    }

    fn finish(&mut self, _out: &mut Vec<Event>) {}

    fn save(&self) -> serde_json::Value {
        serde_json::json!({ "failure_seq": self.failure_seq })
    }

    fn restore(&mut self, state: serde_json::Value) -> Result<(), String> {
        self.failure_seq =
            serde_json::from_value(state["failure_seq"].clone()).map_err(|e| e.to_string())?;
        Ok(())
    }
}

/// Value of an Exim log field `K=value` (space separated, first occurrence
/// after the envelope sender).
fn value<'a>(arrival: &'a str, key: &str) -> Option<&'a str> {
    let pos = arrival.find(&format!(" {key}"))? + 1 + key.len();
    let rest = &arrival[pos..];
    Some(rest.split(' ').next().unwrap_or(rest))
}
