//! Following a mail log like `tail -F`, from where it stopped, across
//! rotation and restarts, counting every line once.
//!
//! A follower reads complete lines from its offset, parses them, and hands
//! the events to the store writer together with its cursor (file identity,
//! offset, parser state), which the writer commits in the same batch as the
//! counts. After `kill -9` at any moment the store holds either both or
//! neither, so a restart resumes exactly where the counts end.
//!
//! Rotation is told apart by file identity: a different inode at the path
//! (rename rotation, delete and recreate) means the old file is finished and
//! the new one is read from its start; the same inode with fewer bytes than
//! the offset, or with another first line, means it was truncated in place
//! (copytruncate).
//!
//! After a rename rotation the MTA's logger keeps writing into the renamed
//! file until it reopens the path, so the follower stays on the old file
//! until the new one has a line. A restart after rotations finds the
//! unread end of the old file among `PATH.1`, `PATH.2`, … and reads the
//! younger generations after it (see `rotated`).

use super::SourceConfig;
use crate::event::Event;
use crate::ingest::Ingester;
use crate::parse::LogParser;
use crate::parse::lines::Lines;
use crate::store::{Store, keys};
use chrono::Utc;
use cursor::{Cursor, fingerprint, first_line_hash, open_if_exists};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Bytes read per step; also the longest line kept (longer ones are skipped).
const CHUNK: usize = 1 << 20;
/// Pause between looks at a file that has not grown.
const POLL: Duration = Duration::from_millis(200);

pub struct Follower {
    source: SourceConfig,
    /// The log file (the source's `path`).
    path: PathBuf,
    key: Vec<u8>,
    parser: Box<dyn LogParser>,
    store: Store,
    ingester: Ingester,
    file: Option<File>,
    cursor: Cursor,
    /// Reading a rotated generation before the current file.
    draining_rotated: bool,
    /// Younger rotated generations to read after it, oldest first.
    queue: std::collections::VecDeque<File>,
    /// Renamed away, and the new file still empty (logged once).
    waiting_for_logger: bool,
    /// Inside a line longer than [`CHUNK`]: drop bytes up to its end.
    discarding: bool,
    buf: Vec<u8>,
    /// Host label for logs that name none (Exim), kept for [`Follower::reload`]:
    /// ids are built from it, so it must not change while following.
    default_host: String,
}

impl Follower {
    pub fn new(
        source: SourceConfig,
        store: Store,
        ingester: Ingester,
        default_host: &str,
    ) -> io::Result<Follower> {
        let path = source.path.clone().ok_or_else(|| {
            io::Error::other(format!("a {} source needs a path", source.kind.name()))
        })?;
        let key = keys::cursor_key(&path.to_string_lossy());
        let mut parser = source.parser(store.tz, default_host);
        let mut cursor: Cursor = match store.cursor(&key).map_err(io::Error::other)? {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(io::Error::other)?,
            None => Cursor::default(),
        };
        cursor.adopt_file_hash(&path)?;
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
            file: None,
            cursor,
            draining_rotated: false,
            queue: Default::default(),
            waiting_for_logger: false,
            discarding: false,
            buf: vec![0; CHUNK],
            default_host: default_host.to_owned(),
        })
    }

    /// Follows until `shutdown`; returns after the last commit. Each step
    /// (file reads, parsing, the wait for the store) runs on a blocking
    /// thread; between steps the follower waits for the file to grow.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let path = self.path.display().to_string();
        tracing::info!(path, offset = self.cursor.offset, "following");
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
            self.ingester.clone(),
            &self.default_host,
        )?;
        Ok(())
    }

    /// One step: read what is new, or look for rotation. `true` when it
    /// made progress (call again at once).
    pub fn step(&mut self) -> io::Result<bool> {
        if self.file.is_none() && !self.open()? {
            return Ok(false);
        }
        if self.read_chunk()? {
            return Ok(true);
        }
        let mut events = Vec::new();
        self.parser.idle(Utc::now().timestamp(), &mut events);
        if !events.is_empty() {
            self.commit(events)?;
        }
        self.check_rotation()
    }

    /// Opens the file the cursor points at (or the current one). `false`
    /// when there is no file yet.
    fn open(&mut self) -> io::Result<bool> {
        let path = self.path.clone();
        let Some((file, meta)) = open_if_exists(&path)? else {
            return Ok(false);
        };
        let fp = fingerprint(&file)?;
        let same = (meta.dev(), meta.ino()) == (self.cursor.dev, self.cursor.ino)
            && (self.cursor.fingerprint.is_none() || fp == self.cursor.fingerprint);
        let truncated = same && meta.len() < self.cursor.offset;
        if self.cursor.offset > 0 && (!same || truncated) {
            // Rotated or truncated while we were away.
            if self.drain_rotated()? {
                return Ok(true);
            }
            self.cursor.offset = 0;
        }
        self.cursor.dev = meta.dev();
        self.cursor.ino = meta.ino();
        self.cursor.fingerprint = fp;
        self.file = Some(file);
        Ok(true)
    }

    /// Reads, parses and commits the complete lines after the offset.
    fn read_chunk(&mut self) -> io::Result<bool> {
        let Some(file) = self.file.as_mut() else {
            return Ok(false);
        };
        file.seek(SeekFrom::Start(self.cursor.offset))?;
        let mut filled = 0;
        while filled < CHUNK {
            match file.read(&mut self.buf[filled..])? {
                0 => break,
                n => filled += n,
            }
        }
        let Some(last_nl) = self.buf[..filled].iter().rposition(|&b| b == b'\n') else {
            if filled == CHUNK {
                // One line fills the whole buffer: skip it up to its end.
                self.discarding = true;
                self.cursor.offset += filled as u64;
                return Ok(true);
            }
            return Ok(false); // a partial last line: wait for the rest
        };
        let mut complete = &self.buf[..=last_nl];
        let consumed = complete.len() as u64;
        if self.discarding {
            let end = complete.iter().position(|&b| b == b'\n').unwrap_or(0);
            complete = &complete[end + 1..];
            self.discarding = false;
        }
        let mut events = Vec::new();
        let mut lines = Lines::new(complete);
        self.parser.now(Utc::now());
        let mut skipped = 0u64;
        while let Some(line) = lines.next_line()? {
            if line.and_then(|l| self.parser.line(l, &mut events)).is_err() {
                skipped += 1;
            }
        }
        if skipped > 0 {
            tracing::debug!(path = %self.path.display(), skipped, "skipped lines");
        }
        if self.cursor.fingerprint.is_none() && self.cursor.offset == 0 {
            self.cursor.fingerprint = first_line_hash(&self.buf[..filled]);
        }
        self.cursor.offset += consumed;
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

    /// At the end of the file: has it been rotated or truncated?
    fn check_rotation(&mut self) -> io::Result<bool> {
        if self.draining_rotated {
            // That generation is finished: the next younger one, or the
            // current file once the logger writes there.
            if self.next_rotated()? {
                return Ok(true);
            }
            if !self.current_has_lines()? {
                return Ok(false);
            }
            self.draining_rotated = false;
            self.file = None;
            self.cursor = Cursor::next_file(self.cursor.parser.take());
            return Ok(true);
        }
        let Some((current, meta)) = open_if_exists(&self.path)? else {
            return Ok(false); // deleted; wait for it to come back
        };
        if (meta.dev(), meta.ino()) != (self.cursor.dev, self.cursor.ino) {
            // Renamed or recreated. The logger may still write into the old
            // file until it reopens the path: stay until the new one has a
            // line, then read the old one to its end once more.
            if meta.len() == 0 {
                if !self.waiting_for_logger {
                    self.waiting_for_logger = true;
                    tracing::info!(
                        path = %self.path.display(),
                        "rotated: reading the old file until the logger writes to the new one"
                    );
                }
                return Ok(false);
            }
            if self.read_chunk()? {
                return Ok(true);
            }
            self.waiting_for_logger = false;
            self.file = None;
            self.cursor = Cursor::next_file(self.cursor.parser.take());
            self.commit(Vec::new())?;
            return Ok(true);
        }
        let fp = fingerprint(&current)?;
        if meta.len() < self.cursor.offset
            || (self.cursor.fingerprint.is_some() && fp != self.cursor.fingerprint)
        {
            tracing::info!(path = %self.path.display(), "truncated; reading from the start");
            // copytruncate copied the file first: read what we missed of it.
            if self.drain_rotated()? {
                return Ok(true);
            }
            self.cursor.offset = 0;
            self.cursor.fingerprint = fp;
            return Ok(true);
        }
        Ok(false)
    }

    /// Finds the file the cursor points into among the rotated
    /// generations (a rename rotation, or copytruncate's copy) and reads
    /// the rest of it, then the younger ones; false when it is not there
    /// (the gap is logged).
    fn drain_rotated(&mut self) -> io::Result<bool> {
        let Some(backlog) = rotated::find(&self.path, self.cursor.fingerprint, self.cursor.offset)?
        else {
            return Ok(false);
        };
        self.queue = backlog.younger.into();
        match backlog.cursor_file {
            Some(old) => {
                self.file = Some(old);
                self.draining_rotated = true;
                Ok(true)
            }
            None => self.next_rotated(),
        }
    }

    /// Moves to the next younger rotated generation, if one is queued.
    fn next_rotated(&mut self) -> io::Result<bool> {
        let Some(file) = self.queue.pop_front() else {
            return Ok(false);
        };
        let meta = file.metadata()?;
        self.cursor = Cursor::next_file(self.cursor.parser.take());
        self.cursor.dev = meta.dev();
        self.cursor.ino = meta.ino();
        self.cursor.fingerprint = fingerprint(&file)?;
        self.file = Some(file);
        self.draining_rotated = true;
        Ok(true)
    }

    /// Whether the file at the path has a byte (the logger writes there).
    fn current_has_lines(&self) -> io::Result<bool> {
        Ok(open_if_exists(&self.path)?.is_some_and(|(_, meta)| meta.len() > 0))
    }
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
mod rotated;
#[cfg(test)]
mod tests;
