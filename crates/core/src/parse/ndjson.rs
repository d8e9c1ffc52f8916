//! NDJSON event files (or one JSON array), read as a stream of events with
//! bad lines reported and skipped.

use super::Skip;
use super::lines::{Lines, MAX_LINE};
use crate::event::{self, BodyError, Event};
use chrono::{DateTime, Utc};
use std::io::{self, BufRead, Read};

/// Largest JSON-array file `import` reads (it is parsed whole).
const MAX_ARRAY_BYTES: u64 = 256 << 20;

/// Reads events from `reader`, calling `on_event` for each valid one and
/// `on_skip` for each refused line. A file that is one JSON array is parsed
/// whole (all or nothing, like the HTTP endpoint).
pub fn read_events<R: BufRead>(
    mut reader: R,
    now: DateTime<Utc>,
    mut on_event: impl FnMut(Event) -> io::Result<()>,
    mut on_skip: impl FnMut(BodyError),
) -> io::Result<u64> {
    let starts_with_array = loop {
        let buf = reader.fill_buf()?;
        match buf.iter().position(|b| !b.is_ascii_whitespace()) {
            Some(i) => break buf[i] == b'[',
            None if buf.is_empty() => return Ok(0),
            None => {
                let n = buf.len();
                reader.consume(n);
            }
        }
    };
    if starts_with_array {
        // An array is parsed whole (all or nothing), so it is bounded.
        let mut all = Vec::new();
        (&mut reader)
            .take(MAX_ARRAY_BYTES + 1)
            .read_to_end(&mut all)?;
        if all.len() as u64 > MAX_ARRAY_BYTES {
            return Err(io::Error::other(format!(
                "a JSON array file larger than {} MiB; write one event per line (NDJSON) instead",
                MAX_ARRAY_BYTES >> 20
            )));
        }
        let lines = all.iter().filter(|b| **b == b'\n').count() as u64 + 1;
        match event::parse_body(&all, now) {
            Ok(events) => events.into_iter().try_for_each(on_event)?,
            Err(e) => on_skip(e),
        }
        return Ok(lines);
    }
    // Lines are bounded: a file without newlines cannot fill memory.
    let mut lines = Lines::new(reader);
    let mut n = 0usize;
    while let Some(line) = lines.next_line()? {
        n += 1;
        match line {
            Err(Skip::TooLong) => on_skip(BodyError::TooLong {
                line: n,
                limit: MAX_LINE,
            }),
            Err(_) => on_skip(BodyError::Utf8 { line: n }),
            Ok(text) => match event::parse_line(text, n, now) {
                Ok(Some(ev)) => on_event(ev)?,
                Ok(None) => {}
                Err(e) => on_skip(e),
            },
        }
    }
    Ok(n as u64)
}
