//! Postfix's SMTP access policy delegation protocol (`check_policy_service`,
//! Postfix's SMTPD_POLICY_README): a request is `name=value` lines ended by
//! an empty line, an answer is `action=...` and an empty line, and a
//! connection carries many requests. Pure: bytes in, a request or an error
//! out; the server reads and writes.

use crate::event::{Event, FieldError, Outcome, Tls, normalize_sender};
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// Largest request read whole, in bytes. Postfix's attributes (addresses,
/// names, a certificate's subject) fit many times over; a longer request
/// is read to its end without being kept, and answered `DUNNO`.
pub(crate) const MAX_REQUEST: usize = 16 * 1024;

/// The attributes a submission event is built from, borrowed from the
/// request; the others are ignored, as the protocol asks.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Request<'a> {
    pub request: Option<&'a str>,
    pub(crate) protocol_state: Option<&'a str>,
    pub sasl_username: Option<&'a str>,
    pub sender: Option<&'a str>,
    pub client_address: Option<&'a str>,
    pub encryption_protocol: Option<&'a str>,
    pub queue_id: Option<&'a str>,
}

/// Why a request was not understood (it is answered `DUNNO` and logged).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RequestError {
    #[error("the request is longer than {MAX_REQUEST} bytes")]
    TooLong,
    #[error("the request is not UTF-8")]
    NotUtf8,
    #[error("line {0} of the request is not name=value")]
    NotAttribute(usize),
    #[error("the request is {0:?}, not smtpd_access_policy")]
    NotPolicy(String),
    #[error("{0}")]
    Field(#[from] FieldError),
    #[error("unknown encryption_protocol {0:?}")]
    Tls(String),
}

impl<'a> Request<'a> {
    /// Parses the lines of one request, without its ending empty line.
    pub(crate) fn parse(bytes: &'a [u8]) -> Result<Request<'a>, RequestError> {
        let text = std::str::from_utf8(bytes).map_err(|_| RequestError::NotUtf8)?;
        let mut r = Request::default();
        for (n, line) in text.lines().enumerate() {
            let (name, value) = line
                .split_once('=')
                .ok_or(RequestError::NotAttribute(n + 1))?;
            let slot = match name {
                "request" => &mut r.request,
                "protocol_state" => &mut r.protocol_state,
                "sasl_username" => &mut r.sasl_username,
                "sender" => &mut r.sender,
                "client_address" => &mut r.client_address,
                "encryption_protocol" => &mut r.encryption_protocol,
                "queue_id" => &mut r.queue_id,
                _ => continue,
            };
            *slot = Some(value);
        }
        match r.request {
            Some("smtpd_access_policy") => Ok(r),
            other => Err(RequestError::NotPolicy(other.unwrap_or("").to_owned())),
        }
    }

    /// The SMTP AUTH submission this request reports, if any: a request at
    /// the end of a message from an authenticated client. `host` names the
    /// MTA; the id is the one its log parser gives (`host:queue_id`), so
    /// that a daemon also following that MTA's log counts the message once.
    pub(crate) fn submission(
        &self,
        host: &Arc<str>,
        now: DateTime<Utc>,
    ) -> Result<Option<Event>, RequestError> {
        let end = self
            .protocol_state
            .is_some_and(|s| s.eq_ignore_ascii_case("END-OF-MESSAGE"));
        let Some(user) = self.sasl_username.filter(|u| end && !u.is_empty()) else {
            return Ok(None);
        };
        let tls = match self.encryption_protocol.unwrap_or("") {
            "" => Tls::None,
            p => Tls::parse(p).ok_or_else(|| RequestError::Tls(p.to_owned()))?,
        };
        let envelope_from = match self.sender.unwrap_or("") {
            "" => None,
            from => {
                crate::event::check_text("sender", from, crate::event::MAX_SENDER_LEN)?;
                Some(from.to_owned())
            }
        };
        let id = self
            .queue_id
            .filter(|q| !q.is_empty() && q.bytes().all(|b| b.is_ascii_alphanumeric()))
            .map(|q| [&**host, ":", q].concat());
        Ok(Some(Event {
            ts: now,
            sender: normalize_sender(user)?,
            tls,
            result: Outcome::Accepted,
            client_ip: self.client_address.and_then(|a| a.parse().ok()),
            host: Some(host.clone()),
            id,
            envelope_from,
        }))
    }
}

/// What the service tells Postfix to do with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// No opinion: Postfix goes on with its other restrictions.
    Dunno,
    /// Accept the message into the hold queue; the text goes to the log.
    Hold(String),
    /// Answer 4.7.1 unless a later restriction rejects: the client retries.
    DeferIfPermit(String),
    /// Answer 5.7.1.
    Reject(String),
}

impl Action {
    /// Whether Postfix accepts the message with this answer (a held
    /// message is accepted, into the hold queue): it is a message sent.
    pub(crate) fn lets_through(&self) -> bool {
        matches!(self, Action::Dunno | Action::Hold(_))
    }

    /// The answer's bytes: `action=...` and the empty line.
    pub(crate) fn answer(&self) -> std::borrow::Cow<'static, [u8]> {
        let (verb, text) = match self {
            Action::Dunno => return std::borrow::Cow::Borrowed(b"action=DUNNO\n\n"),
            Action::Hold(t) => ("HOLD", t),
            Action::DeferIfPermit(t) => ("DEFER_IF_PERMIT", t),
            Action::Reject(t) => ("REJECT", t),
        };
        // A line break in the text would end the answer early.
        let text = text.replace(['\n', '\r'], " ");
        std::borrow::Cow::Owned(format!("action={verb} {text}\n\n").into_bytes())
    }
}

#[cfg(test)]
mod tests;
