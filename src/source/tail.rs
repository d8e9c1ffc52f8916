//! Following a mail log like `tail -F`, from where it stopped, across
//! rotation and restarts, counting every line once.
//!
//! A follower reads complete lines from its files, parses them, and hands
//! the events to the store writer together with its cursor (the files by
//! identity, the offset into each, the parser's state), which the writer
//! commits in the same batch as the counts. After `kill -9` at any moment
//! the store holds either both or neither, so a restart resumes exactly
//! where the counts end.
//!
//! Rotation is followed by file identity (`files`): the file at the path,
//! and every rotated file not finished yet, each read to its end and
//! until it is quiet, with the generations that came and went between
//! (`rotated`); copytruncate's copy is read from the offset. A restart
//! finds its files among `PATH.1`, `PATH.2`, … by identity.

use super::SourceConfig;
use crate::event::Event;
use crate::ingest::Ingester;
use crate::metrics::Metrics;
use crate::parse::LogParser;
use crate::parse::lines::Lines;
use crate::store::{Store, keys};
use chrono::Utc;
use cursor::{Cursor, first_line_hash};
use files::Files;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Bytes read per step; also the longest line kept (longer ones are skipped).
const CHUNK: usize = 1 << 20;
/// Pause between looks at files that have not grown.
const POLL: Duration = Duration::from_millis(200);
/// Longest time between two looks at the path while reading.
const LOOK_EVERY: Duration = Duration::from_millis(100);

pub(crate) struct Follower {
    source: SourceConfig,
    /// The log file (the source's `path`).
    path: PathBuf,
    key: Vec<u8>,
    parser: Box<dyn LogParser>,
    store: Store,
    ingester: Ingester,
    metrics: Arc<Metrics>,
    /// The files being read; None until the first look at the path.
    files: Option<Files>,
    /// The cursor as loaded, until the files are found.
    cursor: Cursor,
    /// When the path was last looked at.
    looked: std::time::Instant,
    /// Look at the path before reading on (a file changed while read).
    look_now: bool,
    buf: Vec<u8>,
    /// Host label for logs that name none (Exim), kept for [`Follower::reload`]:
    /// ids are built from it, so it must not change while following.
    default_host: String,
}

impl Follower {
    pub(crate) fn new(
        source: SourceConfig,
        store: Store,
        (ingester, metrics): (Ingester, Arc<Metrics>),
        default_host: &str,
    ) -> io::Result<Follower> {
        let path = source.path.clone().ok_or_else(|| {
            io::Error::other(format!("a {} source needs a path", source.kind.name()))
        })?;
        let key = keys::cursor_key(&path.to_string_lossy());
        let mut parser = source.parser(store.tz, default_host);
        let cursor: Cursor = match store.cursor(&key).map_err(io::Error::other)? {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(io::Error::other)?,
            None => Cursor::default(),
        };
        let cursor = cursor.upgrade(&path)?;
        if !cursor.parser.is_null() {
            parser
                .restore(cursor.parser.clone())
                .map_err(io::Error::other)?;
        }
        Ok(Follower {
            source,
            path,
            key,
            parser,
            store,
            ingester,
            metrics,
            files: None,
            cursor,
            looked: std::time::Instant::now(),
            look_now: false,
            buf: vec![0; CHUNK],
            default_host: default_host.to_owned(),
        })
    }

    /// Where the follower is: its files and offsets (for the log).
    fn offset(&self) -> u64 {
        self.cursor.files.last().map_or(0, |p| p.offset)
    }

    /// Follows until `shutdown`; returns after the last commit. Each step
    /// (file reads, parsing, the wait for the store) runs on a blocking
    /// thread; between steps the follower waits for the file to grow.
    pub(crate) async fn run(mut self, shutdown: CancellationToken) {
        let path = self.path.display().to_string();
        tracing::info!(path, offset = self.offset(), "following");
        while !shutdown.is_cancelled() {
            let Some((follower, stepped)) = blocking(self, Follower::step).await else {
                return;
            };
            self = follower;
            match stepped {
                Ok(true) => {}
                Ok(false) => pause(&shutdown, POLL).await,
                Err(e) => {
                    tracing::warn!(path, error = %e, "following failed; retrying from the saved cursor");
                    // What was read since the last commit is read again:
                    // never continue from a position the store lacks.
                    loop {
                        pause(&shutdown, Duration::from_secs(1)).await;
                        let Some((follower, reloaded)) = blocking(self, Follower::reload).await
                        else {
                            return;
                        };
                        self = follower;
                        match reloaded {
                            Ok(()) => break,
                            Err(e) => {
                                tracing::error!(path, error = %e, "cannot reload the cursor");
                                if shutdown.is_cancelled() {
                                    return;
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Back to the last committed cursor after a failed commit.
    fn reload(&mut self) -> io::Result<()> {
        // The last committed cursor may still wait in the writer's journal.
        self.ingester.sync_blocking().map_err(io::Error::other)?;
        *self = Follower::new(
            self.source.clone(),
            self.store.clone(),
            (self.ingester.clone(), self.metrics.clone()),
            &self.default_host,
        )?;
        Ok(())
    }

    /// One step: read what is new in any file, looking at the path for
    /// rotation at least every [`LOOK_EVERY`] (also while busy: generations
    /// rotated out of `PATH.9` before they are seen are lost). `true` when
    /// it made progress (call again at once).
    pub(crate) fn step(&mut self) -> io::Result<bool> {
        if self.files.is_none() {
            let (files, lost) =
                Files::resume(&self.path, &self.cursor.files, self.cursor.finished.clone())?;
            self.lost(lost);
            self.files = Some(files);
        }
        let looked = std::mem::take(&mut self.look_now) || self.looked.elapsed() >= LOOK_EVERY;
        if looked && self.look_at_path()? {
            return Ok(true);
        }
        let Some(mut files) = self.files.take() else {
            return Ok(false);
        };
        let read = self.read_any(&mut files);
        self.files = Some(files);
        if read? {
            return Ok(true);
        }
        let mut events = Vec::new();
        self.parser.idle(Utc::now().timestamp(), &mut events);
        if !events.is_empty() {
            self.commit(events)?;
        }
        Ok(!looked && self.look_at_path()?)
    }

    /// Reads, parses and commits the complete lines after the offset of the
    /// first file that has some; whether one had.
    fn read_any(&mut self, files: &mut Files) -> io::Result<bool> {
        for i in 0..files.tracked.len() {
            if self.read_chunk(files, i)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn read_chunk(&mut self, files: &mut Files, i: usize) -> io::Result<bool> {
        let t = &mut files.tracked[i];
        t.file.seek(SeekFrom::Start(t.place.offset))?;
        let mut filled = 0;
        while filled < CHUNK {
            match t.file.read(&mut self.buf[filled..])? {
                0 => break,
                n => filled += n,
            }
        }
        let Some(last_nl) = self.buf[..filled].iter().rposition(|&b| b == b'\n') else {
            if filled == CHUNK {
                // One line fills the whole buffer: skip it up to its end.
                t.discarding = true;
                t.place.offset += filled as u64;
                t.changed = std::time::Instant::now();
                return Ok(true);
            }
            return Ok(false); // a partial last line: wait for the rest
        };
        if t.current && !still_the_same(t, filled as u64)? {
            // Truncated (copytruncate) while it was read: what was read
            // may be the new content; the next look sorts it out.
            self.look_now = true;
            return Ok(true);
        }
        let mut complete = &self.buf[..=last_nl];
        let consumed = complete.len() as u64;
        if t.discarding {
            let end = complete.iter().position(|&b| b == b'\n').unwrap_or(0);
            complete = &complete[end + 1..];
            t.discarding = false;
        }
        let mut events = Vec::new();
        let mut lines = Lines::new(complete);
        self.parser.now(Utc::now());
        let mut skipped = 0u64;
        while let Some(line) = lines.next_bytes()? {
            if line
                .and_then(|l| self.parser.bytes(l, &mut events))
                .is_err()
            {
                skipped += 1;
            }
        }
        if skipped > 0 {
            tracing::debug!(path = %self.path.display(), skipped, "skipped lines");
        }
        if t.place.id.first_line.is_none() && t.place.offset == 0 {
            t.place.id.first_line = first_line_hash(&self.buf[..filled]);
        }
        t.place.offset += consumed;
        t.place.seen = t.place.seen.max(t.place.offset);
        t.changed = std::time::Instant::now();
        self.cursor.files = files.places();
        self.cursor.finished = files.finished.clone();
        self.commit(events)?;
        Ok(true)
    }

    /// Hands events and the new cursor to the writer and waits until both
    /// are on disk.
    fn commit(&mut self, events: Vec<Event>) -> io::Result<()> {
        self.cursor.parser = self.parser.save();
        let cursor = serde_json::to_vec(&self.cursor).map_err(io::Error::other)?;
        self.ingester
            .ingest_blocking(events, vec![(self.key.clone(), cursor)])
            .map_err(io::Error::other)?;
        Ok(())
    }

    /// Every file read to its end: has the path changed (rotation,
    /// truncation), and which rotated files are finished? `true` when the
    /// files changed (read again at once).
    fn look_at_path(&mut self) -> io::Result<bool> {
        self.looked = std::time::Instant::now();
        let Some(mut files) = self.files.take() else {
            return Ok(false);
        };
        let before = files.places().len() + files.finished.len();
        let found = files.refresh(&self.path);
        let finished = found.is_ok().then(|| files.finish_quiet());
        let changed = files.places().len() + files.finished.len() != before;
        let places = files.places();
        let finished_ids = files.finished.clone();
        self.files = Some(files);
        let found = found?;
        if let Some(f) = finished {
            f?;
        }
        if found.rotated {
            tracing::info!(
                path = %self.path.display(),
                "rotated: reading the old file to its end and until it is quiet, and the new one"
            );
        }
        if found.truncated {
            tracing::info!(path = %self.path.display(), "truncated; reading the copy, then the file from its start");
        }
        self.lost(found.lost);
        let moved = places.iter().map(|p| (p.id, p.offset)).collect::<Vec<_>>()
            != self
                .cursor
                .files
                .iter()
                .map(|p| (p.id, p.offset))
                .collect::<Vec<_>>()
            || finished_ids != self.cursor.finished;
        if moved {
            self.cursor.files = places;
            self.cursor.finished = finished_ids;
            self.commit(Vec::new())?;
        }
        Ok(changed || found.rotated || found.truncated)
    }

    /// Counts bytes that are provably gone.
    fn lost(&self, bytes: u64) {
        if bytes > 0 {
            self.metrics.log_bytes_lost(bytes);
        }
    }
}

/// Whether the file `t` reads is still what its place says after
/// `read` bytes were read at its offset: not shorter, the same first line.
fn still_the_same(t: &files::Tracked, read: u64) -> io::Result<bool> {
    let len = t.file.metadata()?.len();
    let first = cursor::fingerprint(&t.file)?;
    Ok(len >= t.place.offset + read
        && (t.place.id.first_line.is_none() || first == t.place.id.first_line))
}

/// Runs `f` on the follower on a blocking thread; `None` if the thread
/// panicked (a bug, logged: the follower is gone).
async fn blocking<T: Send + 'static>(
    mut follower: Follower,
    f: fn(&mut Follower) -> T,
) -> Option<(Follower, T)> {
    match tokio::task::spawn_blocking(move || {
        let out = f(&mut follower);
        (follower, out)
    })
    .await
    {
        Ok(done) => Some(done),
        Err(e) => {
            tracing::error!(error = %e, "a log follower stopped");
            None
        }
    }
}

/// Waits `wait`, or less when `shutdown` comes first.
async fn pause(shutdown: &CancellationToken, wait: Duration) {
    tokio::select! {
        () = shutdown.cancelled() => {}
        () = tokio::time::sleep(wait) => {}
    }
}

mod cursor;
mod files;
mod rotated;
#[cfg(test)]
mod tests;
