//! Events as JSON: one object per line (NDJSON) or a JSON array of objects.
//!
//! Fields are read as borrowed strings with a hand-written visitor so that a
//! wrong type is reported by field name ("field `sender`: expected a string,
//! found a number") instead of serde's bare "invalid type" message.

use super::{
    Event, FieldError, MAX_ID_LEN, MAX_TEXT_LEN, Outcome, Tls, check_text, normalize_sender,
    parse_ts,
};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;

/// Why a request body (or an import line) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("body contains no events")]
    Empty,
    #[error("body is not valid UTF-8 (line {line})")]
    Utf8 { line: usize },
    #[error("line {line}: invalid JSON: {message}")]
    Json { line: usize, message: String },
    #[error("line {line}: {error}")]
    Field { line: usize, error: FieldError },
    #[error("line {line}: longer than {limit} bytes; no event is that long")]
    TooLong { line: usize, limit: usize },
}

impl BodyError {
    /// 1-based line of the body the error is on, when there is one.
    pub fn line(&self) -> Option<usize> {
        match self {
            BodyError::Empty => None,
            BodyError::Utf8 { line }
            | BodyError::Json { line, .. }
            | BodyError::TooLong { line, .. } => Some(*line),
            BodyError::Field { line, .. } => Some(*line),
        }
    }

    /// The event field at fault, when the error is about one.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            BodyError::Field { error, .. } => Some(error.field),
            _ => None,
        }
    }
}

/// Parses a whole body: NDJSON, or a JSON array when the first non-blank
/// character is `[`. All or nothing: the first bad event refuses the body.
pub fn parse_body(body: &[u8], now: DateTime<Utc>) -> Result<Vec<Event>, BodyError> {
    let text = std::str::from_utf8(body).map_err(|e| BodyError::Utf8 {
        line: line_of(body, e.valid_up_to()),
    })?;
    let events = if text.trim_start().starts_with('[') {
        parse_array(text, now)?
    } else {
        let mut events = Vec::with_capacity(text.len() / 160 + 1);
        for (i, line) in text.split('\n').enumerate() {
            if let Some(ev) = parse_line(line, i + 1, now)? {
                events.push(ev);
            }
        }
        events
    };
    if events.is_empty() {
        return Err(BodyError::Empty);
    }
    Ok(events)
}

/// Parses one NDJSON line; blank lines yield `None`.
pub(crate) fn parse_line(
    line: &str,
    line_no: usize,
    now: DateTime<Utc>,
) -> Result<Option<Event>, BodyError> {
    let line = line.trim();
    if line.is_empty() {
        return Ok(None);
    }
    parse_object(line, line_no, now).map(Some)
}

fn parse_array(text: &str, now: DateTime<Utc>) -> Result<Vec<Event>, BodyError> {
    let items: Vec<&RawValue> = serde_json::from_str(text).map_err(|e| BodyError::Json {
        line: e.line(),
        message: strip_position(&e),
    })?;
    items
        .into_iter()
        .map(|raw| {
            let json = raw.get();
            // The raw value borrows from `text`, so its address gives its line.
            let offset = json.as_ptr() as usize - text.as_ptr() as usize;
            parse_object(json, line_of(text.as_bytes(), offset), now)
        })
        .collect()
}

fn parse_object(json: &str, line: usize, now: DateTime<Utc>) -> Result<Event, BodyError> {
    let raw: RawEvent = serde_json::from_str(json).map_err(|e| BodyError::Json {
        line,
        message: if e.is_data() {
            "expected a JSON object with the fields ts, sender and tls".to_owned()
        } else {
            strip_position(&e)
        },
    })?;
    raw.validate(now)
        .map_err(|error| BodyError::Field { line, error })
}

/// serde_json appends "at line L column C"; the caller reports the line itself.
fn strip_position(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    match msg.rfind(" at line ") {
        Some(pos) => format!("{} (column {})", &msg[..pos], e.column()),
        None => msg,
    }
}

/// 1-based line number of byte `offset` in `bytes`.
fn line_of(bytes: &[u8], offset: usize) -> usize {
    bytes[..offset.min(bytes.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[derive(Deserialize)]
struct RawEvent<'a> {
    #[serde(borrow, default)]
    ts: Option<JsonStr<'a>>,
    #[serde(borrow, default)]
    sender: Option<JsonStr<'a>>,
    #[serde(borrow, default)]
    tls: Option<JsonStr<'a>>,
    #[serde(borrow, default)]
    result: Option<JsonStr<'a>>,
    #[serde(borrow, default)]
    client_ip: Option<JsonStr<'a>>,
    #[serde(borrow, default)]
    host: Option<JsonStr<'a>>,
    #[serde(borrow, default)]
    id: Option<JsonStr<'a>>,
    #[serde(borrow, default)]
    envelope_from: Option<JsonStr<'a>>,
}

impl RawEvent<'_> {
    fn validate(self, now: DateTime<Utc>) -> Result<Event, FieldError> {
        let ts = parse_ts(&required("ts", self.ts)?, now)?;
        let sender = normalize_sender(&required("sender", self.sender)?)?;
        let tls_raw = required("tls", self.tls)?;
        let tls = Tls::parse(&tls_raw).ok_or_else(|| {
            FieldError::new(
                "tls",
                format!(
                    "unknown TLS version {tls_raw:?}; expected none, TLSv1.0, TLSv1.1, TLSv1.2 or TLSv1.3"
                ),
            )
        })?;
        let result = match optional("result", self.result)?.as_deref() {
            None | Some("accepted") => Outcome::Accepted,
            Some("auth_failed") => Outcome::AuthFailed,
            Some(other) => {
                return Err(FieldError::new(
                    "result",
                    format!("unknown result {other:?}; expected accepted or auth_failed"),
                ));
            }
        };
        let client_ip = match optional("client_ip", self.client_ip)? {
            None => None,
            Some(ip) => Some(ip.trim().parse().map_err(|_| {
                FieldError::new("client_ip", format!("{ip:?} is not an IP address"))
            })?),
        };
        Ok(Event {
            ts,
            sender,
            tls,
            result,
            client_ip,
            host: text("host", self.host, MAX_TEXT_LEN)?.map(Into::into),
            id: text("id", self.id, MAX_ID_LEN)?,
            envelope_from: text("envelope_from", self.envelope_from, MAX_TEXT_LEN)?
                .map(super::into_lowercase),
        })
    }
}

fn required<'a>(
    field: &'static str,
    value: Option<JsonStr<'a>>,
) -> Result<Cow<'a, str>, FieldError> {
    optional(field, value)?.ok_or_else(|| FieldError::new(field, "is required"))
}

fn optional<'a>(
    field: &'static str,
    value: Option<JsonStr<'a>>,
) -> Result<Option<Cow<'a, str>>, FieldError> {
    match value {
        None | Some(JsonStr::Null) => Ok(None),
        Some(JsonStr::Str(s)) => Ok(Some(s)),
        Some(JsonStr::Other(kind)) => Err(FieldError::new(
            field,
            format!("expected a string, found {kind}"),
        )),
    }
}

/// Optional free text: trimmed, empty treated as absent, length and control
/// characters checked.
fn text(
    field: &'static str,
    value: Option<JsonStr<'_>>,
    max: usize,
) -> Result<Option<String>, FieldError> {
    match optional(field, value)? {
        Some(s) if !s.trim().is_empty() => {
            check_text(field, s.trim(), max)?;
            Ok(Some(s.trim().to_owned()))
        }
        _ => Ok(None),
    }
}

/// A JSON value that we want as a string, remembering what it was otherwise.
enum JsonStr<'a> {
    Str(Cow<'a, str>),
    Null,
    Other(&'static str),
}

impl<'de: 'a, 'a> Deserialize<'de> for JsonStr<'a> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JsonStrVisitor)
    }
}

struct JsonStrVisitor;

impl<'de> Visitor<'de> for JsonStrVisitor {
    type Value = JsonStr<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(JsonStr::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(JsonStr::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(JsonStr::Str(Cow::Owned(v)))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(JsonStr::Null)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(JsonStr::Null)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(JsonStr::Other("a boolean"))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(JsonStr::Other("a number"))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(JsonStr::Other("a number"))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(JsonStr::Other("a number"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(JsonStr::Other("an array"))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(JsonStr::Other("an object"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-11-27T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn ndjson_and_array_give_the_same_events() {
        let a = r#"{"ts":"2026-11-20T09:15:02Z","sender":"Alice@Example.com","tls":"TLSv1.2","id":"mx1:1","extra":5}"#;
        let b = r#"{"ts":"2026-11-20T10:00:00+01:00","sender":"bob","tls":"none","result":"auth_failed","client_ip":"203.0.113.7"}"#;
        let nd = parse_body(format!("{a}\n\n{b}\r\n").as_bytes(), now()).unwrap();
        let arr = parse_body(format!("[\n{a},\n{b}\n]").as_bytes(), now()).unwrap();
        assert_eq!(nd, arr);
        assert_eq!(nd[0].sender, "alice@example.com");
        assert_eq!(nd[0].id.as_deref(), Some("mx1:1"));
        assert_eq!(nd[1].result, Outcome::AuthFailed);
        assert_eq!(nd[1].ts.to_rfc3339(), "2026-11-20T09:00:00+00:00");
    }

    #[test]
    fn errors_name_line_and_field() {
        let good = r#"{"ts":"2026-11-20T09:15:02Z","sender":"a","tls":"TLSv1.2"}"#;
        let body = format!(
            "{good}\n{}",
            r#"{"ts":"2026-11-20T09:15:02Z","sender":5,"tls":"x"}"#
        );
        let err = parse_body(body.as_bytes(), now()).unwrap_err();
        assert_eq!((err.line(), err.field()), (Some(2), Some("sender")));
        assert!(
            err.to_string()
                .contains("expected a string, found a number")
        );

        let body = format!(
            "[{good},\n\n{}]",
            r#"{"ts":"2026-11-20T09:15:02Z","sender":"a","tls":"SSLv3"}"#
        );
        let err = parse_body(body.as_bytes(), now()).unwrap_err();
        assert_eq!((err.line(), err.field()), (Some(3), Some("tls")));

        let err = parse_body(b"{\"ts\":", now()).unwrap_err();
        assert!(matches!(err, BodyError::Json { line: 1, .. }), "{err}");
        let err = parse_body(br#"{"sender":"a","tls":"none"}"#, now()).unwrap_err();
        assert_eq!(err.to_string(), "line 1: field `ts`: is required");
        assert_eq!(parse_body(b" \n \n", now()).unwrap_err(), BodyError::Empty);
        assert!(matches!(
            parse_body(b"[1]", now()).unwrap_err(),
            BodyError::Json { .. }
        ));
        let err = parse_body(b"{}\n\xff", now()).unwrap_err();
        assert_eq!(err, BodyError::Utf8 { line: 2 });
    }
}
