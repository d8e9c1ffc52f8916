//! Reading lines with bounded memory: a line longer than [`MAX_LINE`] is
//! skipped (and reported) without ever being held whole, so a binary file
//! or a runaway writer cannot make the reader allocate without limit.

use super::Skip;
use std::io::{self, BufRead};

/// Longest line kept. Real mail-log lines stay under a few kilobytes.
pub(crate) const MAX_LINE: usize = 64 * 1024;

pub struct Lines<R> {
    reader: R,
    /// A line that spans reads of `reader`, gathered here.
    buf: Vec<u8>,
    /// Bytes of `reader`'s buffer taken by the line last returned, consumed
    /// on the next call: a line inside the buffer is returned in place.
    taken: usize,
    /// 1-based number of the line last returned.
    pub number: u64,
    /// Bytes consumed so far (for progress).
    pub bytes: u64,
}

impl<R: BufRead> Lines<R> {
    pub fn new(reader: R) -> Self {
        Lines {
            reader,
            buf: Vec::with_capacity(1024),
            taken: 0,
            number: 0,
            bytes: 0,
        }
    }

    /// The next line without its `\n` (and `\r`), or why it was skipped;
    /// `None` at the end of input. A last line without `\n` is returned too.
    pub fn next_line(&mut self) -> io::Result<Option<Result<&str, Skip>>> {
        Ok(self.next_bytes()?.map(|line| line.and_then(as_text)))
    }

    /// [`Lines::next_line`] as bytes, not checked for UTF-8 (see
    /// [`super::LogParser::bytes`]).
    pub fn next_bytes(&mut self) -> io::Result<Option<Result<&[u8], Skip>>> {
        self.reader.consume(std::mem::take(&mut self.taken));
        self.buf.clear();
        // The common case: the whole line is in the reader's buffer.
        let chunk = filled(&mut self.reader)?;
        if let Some(i) = memchr::memchr(b'\n', chunk).filter(|i| *i <= MAX_LINE + 1) {
            self.taken = i + 1;
            self.bytes += self.taken as u64;
            self.number += 1;
            // The buffer again (no read: it holds the line): returning the
            // first borrow would keep the reader borrowed below as well.
            return Ok(Some(Ok(trimmed(&self.reader.fill_buf()?[..i]))));
        }
        let mut too_long = false;
        loop {
            let chunk = filled(&mut self.reader)?;
            if chunk.is_empty() {
                if self.buf.is_empty() && !too_long {
                    return Ok(None);
                }
                break;
            }
            let (take, done) = match memchr::memchr(b'\n', chunk) {
                Some(i) => (i + 1, true),
                None => (chunk.len(), false),
            };
            if !too_long {
                if self.buf.len() + take > MAX_LINE + 2 {
                    too_long = true;
                    self.buf.clear();
                } else {
                    self.buf.extend_from_slice(&chunk[..take]);
                }
            }
            self.reader.consume(take);
            self.bytes += take as u64;
            if done {
                break;
            }
        }
        self.number += 1;
        if too_long {
            return Ok(Some(Err(Skip::TooLong)));
        }
        Ok(Some(Ok(trimmed(&self.buf))))
    }
}

/// The reader's buffer, filled if it was empty. A read interrupted by a
/// signal is tried again, as `std`'s own line readers do (`fill_buf`
/// passes the interruption on: a signal while reading a pipe would have
/// ended the import).
fn filled<R: BufRead>(reader: &mut R) -> io::Result<&[u8]> {
    loop {
        match reader.fill_buf() {
            // The end of input: asking again would read again.
            Ok([]) => return Ok(&[]),
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    // Buffered now: no read.
    reader.fill_buf()
}

/// A line without its line ending.
fn trimmed(mut line: &[u8]) -> &[u8] {
    while let [rest @ .., b'\n' | b'\r'] = line {
        line = rest;
    }
    line
}

/// A line as text. Validated with SIMD: checking every line with
/// `std::str::from_utf8` was a thirtieth of an import's time (perf,
/// import benchmark).
pub fn as_text(line: &[u8]) -> Result<&str, Skip> {
    simdutf8::basic::from_utf8(line).map_err(|_| Skip::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_and_bad_bytes_are_skipped_and_counted() {
        let mut input = b"first\r\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', MAX_LINE * 3));
        input.extend_from_slice(b"\n\xff\xfe\nlast");
        let mut lines = Lines::new(std::io::BufReader::with_capacity(1000, &input[..]));
        let mut got = Vec::new();
        while let Some(l) = lines.next_line().unwrap() {
            got.push(l.map(str::to_owned));
        }
        assert_eq!(
            got,
            [
                Ok("first".into()),
                Err(Skip::TooLong),
                Err(Skip::NotUtf8),
                Ok("last".into())
            ]
        );
        assert_eq!(lines.number, 4);
        assert_eq!(lines.bytes, input.len() as u64);
    }

    /// A reader that hands out at most a few bytes at a time, as a pipe
    /// or a slow disk may, and is interrupted now and then.
    struct Trickle<'a> {
        data: &'a [u8],
        calls: usize,
    }

    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            self.calls += 1;
            if self.calls % 7 == 0 {
                return Err(std::io::ErrorKind::Interrupted.into());
            }
            let n = out
                .len()
                .min(self.data.len())
                .min(1 + self.calls * 7919 % 70_001);
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn lines_across_every_read_boundary_come_out_whole() {
        // Lines of every length up to past the limit, some with `\r\n`,
        // megabytes in all, no newline at the very end.
        let mut input = Vec::new();
        let mut want = Vec::new();
        for i in 0usize.. {
            if input.len() > 3 << 20 {
                break;
            }
            // Now and then a line at the limit, one byte either side.
            let len = match i % 40 {
                39 => MAX_LINE - 1 + i / 40 % 4,
                _ => i * 7919 % 3_000,
            };
            let line: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            input.extend_from_slice(&line);
            input.extend_from_slice(if len % 3 == 0 { b"\r\n" } else { b"\n" });
            let ending = if len % 3 == 0 { 2 } else { 1 };
            want.push((len + ending <= MAX_LINE + 2).then_some(line));
        }
        input.extend_from_slice(b"end");
        want.push(Some(b"end".to_vec()));
        let trickle = Trickle {
            data: &input,
            calls: 0,
        };
        let mut lines = Lines::new(std::io::BufReader::with_capacity(8 << 10, trickle));
        let mut got = Vec::new();
        while let Some(line) = lines.next_bytes().unwrap() {
            got.push(line.ok().map(<[u8]>::to_vec));
        }
        assert!(want.iter().any(Option::is_none) && want.len() > 100);
        assert_eq!(got.len(), want.len());
        assert!(got == want, "a line differs");
        assert_eq!(lines.number, want.len() as u64);
        assert_eq!(lines.bytes, input.len() as u64);
    }
}
