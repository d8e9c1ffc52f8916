//! NDJSON event files (or one JSON array), read as a stream of events with
//! bad lines reported and skipped.

use crate::event::{self, BodyError, Event};
use chrono::{DateTime, Utc};
use std::io::{self, BufRead};

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
        let mut all = Vec::new();
        reader.read_to_end(&mut all)?;
        let lines = all.iter().filter(|b| **b == b'\n').count() as u64 + 1;
        match event::parse_body(&all, now) {
            Ok(events) => events.into_iter().try_for_each(on_event)?,
            Err(e) => on_skip(e),
        }
        return Ok(lines);
    }
    let mut line = Vec::with_capacity(512);
    let mut line_no = 0u64;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(line_no);
        }
        line_no += 1;
        let n = line_no as usize;
        match std::str::from_utf8(&line) {
            Err(_) => on_skip(BodyError::Utf8 { line: n }),
            Ok(text) => match event::parse_line(text, n, now) {
                Ok(Some(ev)) => on_event(ev)?,
                Ok(None) => {}
                Err(e) => on_skip(e),
            },
        }
    }
}
