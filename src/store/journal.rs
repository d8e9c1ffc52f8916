//! The ingest journal: acknowledged events wait here, on disk, until the
//! writer folds them into the counters.
//!
//! Why: a counter update is a read-modify-write of a sled key, and with
//! thousands of senders nearly every event of a small group touches its own
//! keys. Appending the events to one file and syncing it is what makes an
//! acknowledgement durable; the counters are then updated for many groups at
//! once (one read-modify-write per key per fold instead of per group).
//!
//! Exactly once: the journal starts with a generation number. A fold commits
//! the counts together with "generation G folded" in one sled batch, flushes,
//! and only then starts generation G + 1 on an empty file. After a crash the
//! journal's records are replayed unless the store says their generation was
//! folded. Each record is length-prefixed and checksummed: a torn last write
//! (never acknowledged) is cut off, not misread.
//!
//! Layout: `MAGIC · generation (u64 LE)`, then records
//! `length (u32 LE) · crc32 (u32 LE) · payload`, the payload holding events
//! and extra key/values in the format of `encode_*` below.

use crate::event::{Event, Outcome, Tls};
use chrono::DateTime;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"SAIJRN01";
const HEADER: u64 = 16;

/// A raw key/value committed with the events of the same record (log cursors).
pub(crate) type Extra = Vec<(Vec<u8>, Vec<u8>)>;

/// One record: the events of one acknowledged request, with the key/values
/// committed with them.
#[derive(Debug, Default)]
pub(crate) struct Entry {
    pub events: Vec<Event>,
    pub extra: Extra,
}

impl Entry {
    /// The entry as the fold takes it.
    pub(super) fn record(&self) -> super::writer::fold::Record<'_> {
        super::writer::fold::Record {
            events: self.events.iter().collect(),
            extra: &self.extra,
        }
    }
}

pub(crate) struct Journal {
    file: File,
    path: PathBuf,
    generation: u64,
    /// Length of the valid part of the file.
    len: u64,
    /// False while `generation` has not been started on disk: appending
    /// then would add records to a generation the store calls folded.
    ready: bool,
    buf: Vec<u8>,
}

impl Journal {
    /// Opens (or creates) the journal at `path`, given `folded` = (journal
    /// generation, records of it) the store has counted. Returns the
    /// records still to count, which the caller must fold before anything
    /// else.
    pub(crate) fn open(path: &Path, folded: (u64, u64)) -> io::Result<(Journal, Vec<Entry>)> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let mut journal = Journal {
            file,
            path: path.to_path_buf(),
            generation: folded.0 + 1,
            len: 0,
            ready: true,
            buf: Vec::new(),
        };
        let generation = (bytes.len() as u64 >= HEADER && bytes[..8] == MAGIC[..])
            .then(|| u64::from_le_bytes(bytes[8..16].try_into().unwrap_or_default()));
        let (g, done) = folded;
        let Some(found) = generation.filter(|found| *found >= g) else {
            journal.restart(g + 1)?;
            return Ok((journal, Vec::new()));
        };
        let (mut entries, valid) = read_records(&bytes[HEADER as usize..]);
        if HEADER + valid < bytes.len() as u64 {
            tracing::warn!(
                path = %path.display(),
                cut = bytes.len() as u64 - HEADER - valid,
                "journal ends in an incomplete record (a write cut short, never acknowledged); ignoring it"
            );
        }
        let skip = if found == g { done } else { 0 };
        entries.drain(..(skip as usize).min(entries.len()));
        journal.generation = found;
        journal.len = HEADER + valid;
        journal.file.set_len(journal.len)?;
        journal.file.seek(SeekFrom::Start(journal.len))?;
        if entries.is_empty() && skip > 0 {
            // Every record is counted: a clean start, counting from zero.
            journal.restart(found + 1)?;
        }
        Ok((journal, entries))
    }

    /// Generation of the records being appended now.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record per request and makes them durable (one sync).
    /// On failure the file is cut back to its previous length, so a record
    /// never becomes visible without being acknowledged.
    pub(crate) fn append<'a>(
        &mut self,
        entries: impl IntoIterator<Item = &'a Entry>,
    ) -> io::Result<()> {
        if !self.ready {
            self.restart(self.generation)?;
        }
        self.buf.clear();
        for entry in entries {
            let start = self.buf.len();
            self.buf.extend_from_slice(&[0; 8]);
            encode_entry(&mut self.buf, entry);
            let payload = &self.buf[start + 8..];
            let len = u32::try_from(payload.len())
                .map_err(|_| io::Error::other("journal record larger than 4 GiB"))?;
            let crc = crc32fast::hash(payload);
            self.buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
            self.buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
        }
        let written = self
            .file
            .write_all(&self.buf)
            .and_then(|()| self.file.sync_data());
        match written {
            Ok(()) => {
                self.len += self.buf.len() as u64;
                Ok(())
            }
            Err(e) => {
                // Best effort: the record must not survive a failed append.
                let _ = self.file.set_len(self.len);
                let _ = self.file.seek(SeekFrom::Start(self.len));
                Err(e)
            }
        }
    }

    /// Starts `generation` on an empty file, once the store has durably
    /// recorded that everything before it is folded.
    pub(crate) fn restart(&mut self, generation: u64) -> io::Result<()> {
        self.generation = generation;
        self.ready = false;
        self.file.set_len(0)?;
        self.file.seek(SeekFrom::Start(0))?;
        let mut header = Vec::with_capacity(HEADER as usize);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&generation.to_le_bytes());
        self.file.write_all(&header)?;
        self.file.sync_data()?;
        self.len = HEADER;
        self.ready = true;
        Ok(())
    }
}

/// Decodes records until the first incomplete or damaged one; returns the
/// entries and the length of the valid prefix.
fn read_records(mut bytes: &[u8]) -> (Vec<Entry>, u64) {
    let mut entries = Vec::new();
    let mut valid = 0;
    while bytes.len() >= 8 {
        let len = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
        let crc = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
        let Some(payload) = bytes.get(8..8 + len) else {
            break;
        };
        if crc32fast::hash(payload) != crc {
            break;
        }
        let Some(entry) = decode_entry(payload) else {
            break;
        };
        entries.push(entry);
        valid += 8 + len as u64;
        bytes = &bytes[8 + len..];
    }
    (entries, valid)
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    // Event fields are bounded by the event model far below 4 GiB.
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

fn put_opt(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => out.push(0),
        Some(s) => {
            out.push(1);
            put_bytes(out, s.as_bytes());
        }
    }
}

fn encode_entry(out: &mut Vec<u8>, entry: &Entry) {
    let (events, extra) = (&entry.events, &entry.extra);
    out.extend_from_slice(&(events.len() as u32).to_le_bytes());
    for ev in events {
        out.extend_from_slice(&ev.ts.timestamp().to_le_bytes());
        out.extend_from_slice(&ev.ts.timestamp_subsec_nanos().to_le_bytes());
        put_bytes(out, ev.sender.as_bytes());
        out.push(ev.tls.index() as u8);
        out.push(match ev.result {
            Outcome::Accepted => 0,
            Outcome::AuthFailed => 1,
        });
        match ev.client_ip {
            None => out.push(0),
            Some(IpAddr::V4(ip)) => {
                out.push(4);
                out.extend_from_slice(&ip.octets());
            }
            Some(IpAddr::V6(ip)) => {
                out.push(6);
                out.extend_from_slice(&ip.octets());
            }
        }
        put_opt(out, ev.host.as_deref());
        put_opt(out, ev.id.as_deref());
        put_opt(out, ev.envelope_from.as_deref());
    }
    out.extend_from_slice(&(extra.len() as u32).to_le_bytes());
    for (k, v) in extra {
        put_bytes(out, k);
        put_bytes(out, v);
    }
}

/// A cursor over a payload; every read checks bounds.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = rest;
        Some(head)
    }
    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_le_bytes)
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn string(&mut self) -> Option<String> {
        std::str::from_utf8(self.bytes()?).ok().map(str::to_owned)
    }
    fn opt(&mut self) -> Option<Option<String>> {
        match self.u8()? {
            0 => Some(None),
            1 => self.string().map(Some),
            _ => None,
        }
    }
}

fn decode_entry(payload: &[u8]) -> Option<Entry> {
    let mut r = Reader(payload);
    let n = r.u32()? as usize;
    let mut events = Vec::with_capacity(n.min(payload.len() / 16));
    for _ in 0..n {
        let secs = i64::from_le_bytes(r.array()?);
        let nanos = r.u32()?;
        let ts = DateTime::from_timestamp(secs, nanos)?;
        let sender = r.string()?;
        let tls = *Tls::ALL.get(r.u8()? as usize)?;
        let result = match r.u8()? {
            0 => Outcome::Accepted,
            1 => Outcome::AuthFailed,
            _ => return None,
        };
        let client_ip = match r.u8()? {
            0 => None,
            4 => Some(IpAddr::from(r.array::<4>()?)),
            6 => Some(IpAddr::from(r.array::<16>()?)),
            _ => return None,
        };
        events.push(Event {
            ts,
            sender,
            tls,
            result,
            client_ip,
            host: r.opt()?.map(Into::into),
            id: r.opt()?,
            envelope_from: r.opt()?,
        });
    }
    let n = r.u32()? as usize;
    let mut extra = Vec::with_capacity(n.min(payload.len() / 8));
    for _ in 0..n {
        extra.push((r.bytes()?.to_vec(), r.bytes()?.to_vec()));
    }
    r.0.is_empty().then_some(Entry { events, extra })
}

#[cfg(test)]
mod tests;
