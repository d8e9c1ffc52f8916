//! The files a follower reads at once, by identity (as Vector's file
//! source does): the file at the path, and the rotated ones it has not
//! finished. A rotated file is read until it is drained and quiet: a
//! logger that reopens the path late (rsyslog after logrotate's HUP, a
//! second writer) still appends to it meanwhile.
//!
//! What changed at the path is looked at on every pass:
//! - another file there (rename rotation, delete and re-create): the one
//!   being read stays open, and the generations between it and the new
//!   file (`PATH.1`, … that came and went while the follower was busy or
//!   stopped) are read too, oldest first;
//! - the same file, shorter or with another first line (copytruncate): what
//!   was not read of it is in the copy (`PATH.1`), read from the offset,
//!   then any later copies, then the file from its start. Bytes seen in the
//!   file that neither were read nor are in the copy (written between the
//!   copy and the truncation) are provably gone: they are counted
//!   (`smtp_auth_insight_log_bytes_lost_total`) and logged.

use super::cursor::{Id, Place, identity, open_if_exists};
use super::rotated::{self, Generation};
use std::fs::File;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

/// How long a rotated file must stay the same size, once read to its end,
/// before it is finished: a logger reopening late writes to it meanwhile.
const QUIET: Duration = Duration::from_secs(5);
/// Finished files remembered, so that a generation read already is never
/// read again.
const FINISHED: usize = 32;

/// A file being read.
pub(super) struct Tracked {
    pub(super) file: File,
    pub(super) place: Place,
    /// Still the file at the path.
    pub(super) current: bool,
    /// When it last grew or was rotated away (for [`QUIET`]).
    pub(super) changed: Instant,
    /// Inside a line longer than the read buffer: drop bytes up to its end.
    pub(super) discarding: bool,
    /// When it was first looked at (a copy made since may hold content of
    /// it that was never seen, see [`Files::refresh`]).
    since: SystemTime,
}

impl Tracked {
    fn new(file: File, place: Place, current: bool) -> Tracked {
        Tracked {
            file,
            place,
            current,
            changed: Instant::now(),
            discarding: false,
            since: SystemTime::now(),
        }
    }
}

/// The files of one log, oldest first.
pub(super) struct Files {
    pub(super) tracked: Vec<Tracked>,
    pub(super) finished: Vec<Id>,
    /// The log's generations, held open from when they are first seen.
    keeper: rotated::Keeper,
}

/// What a look at the path found, for the log.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Found {
    /// Another file is at the path.
    pub rotated: bool,
    /// The file at the path was truncated in place.
    pub truncated: bool,
    /// Bytes provably gone.
    pub lost: u64,
}

impl Files {
    /// Whether `id` is a file being read (open: its inode is its own) or
    /// surely one finished (closed: a new file may have its inode).
    fn known(&self, id: &Id) -> bool {
        self.tracked.iter().any(|t| t.place.id.same_file(id))
            || self.finished.iter().any(|f| f.surely_same(id))
    }

    /// The files of `places` (a saved cursor), found by identity among the
    /// path's generations, with the generations younger than them; the
    /// file at the path last. Places not found are logged as gaps; their
    /// unread bytes are counted as lost. Without places: the file at the
    /// path, from its start.
    pub(super) fn resume(
        path: &Path,
        places: &[Place],
        finished: Vec<Id>,
    ) -> std::io::Result<(Files, u64)> {
        let mut files = Files {
            tracked: Vec::new(),
            finished,
            keeper: rotated::Keeper::start(path)?,
        };
        let mut lost = 0;
        let generations = files.keeper.generations()?;
        for place in places {
            match generations.iter().find(|g| g.is(&place.id)) {
                Some(Generation::Plain(file, id, _)) => {
                    let place = Place { id: *id, ..*place };
                    files
                        .tracked
                        .push(Tracked::new(file.try_clone()?, place, false));
                }
                Some(Generation::Gz(gz, _)) => {
                    rotated::compressed_gap(gz);
                    lost += place.seen.saturating_sub(place.offset);
                }
                None => {
                    let unread = place.seen.saturating_sub(place.offset);
                    if unread > 0 {
                        tracing::warn!(
                            path = %path.display(),
                            offset = place.offset,
                            unread,
                            "a file being read is neither the log nor one of its rotated \
                             generations any more: what it held after this offset is not counted"
                        );
                        lost += unread;
                    }
                }
            }
        }
        files.adopt_younger(path, generations);
        files.mark_current(path)?;
        Ok((files, lost))
    }

    /// Tracks the generations younger than the newest file known (read or
    /// being read) that are not known, from their start. With none of them
    /// among the generations (none yet, or all rotated out of them), only
    /// the file at `path`: an unknown generation may be older than all.
    fn adopt_younger(&mut self, path: &Path, generations: Vec<Generation>) {
        let newest_known = generations.iter().rposition(|g| match g {
            Generation::Plain(_, id, _) => self.known(id),
            Generation::Gz(..) => false,
        });
        for (i, g) in generations.into_iter().enumerate() {
            match (g, newest_known) {
                (Generation::Plain(file, id, at), k) if !self.known(&id) => {
                    let younger = match k {
                        Some(k) => i > k,
                        None => at == path,
                    };
                    if younger {
                        let place = Place {
                            id,
                            offset: 0,
                            seen: 0,
                        };
                        self.tracked.push(Tracked::new(file, place, false));
                    }
                }
                (Generation::Gz(gz, _), Some(k)) if i > k => rotated::compressed_gap(&gz),
                _ => {}
            }
        }
    }

    /// Marks the tracked file that is at `path` (if any) as current.
    fn mark_current(&mut self, path: &Path) -> std::io::Result<()> {
        let at_path = match open_if_exists(path)? {
            Some((file, meta)) => Some(identity(&file, &meta)?),
            None => None,
        };
        for t in &mut self.tracked {
            t.current = at_path.is_some_and(|id| id.same_file(&t.place.id));
        }
        Ok(())
    }

    /// Looks at what is at `path` now: a new file there is tracked (with
    /// the generations that came and went before it), a truncated one is
    /// read again from its copy.
    pub(super) fn refresh(&mut self, path: &Path) -> std::io::Result<Found> {
        let mut found = Found::default();
        let Some((file, meta)) = open_if_exists(path)? else {
            // Renamed away and not created again (yet): the generations
            // younger than the newest known file are read meanwhile (files
            // may come and go at the path between two looks).
            if let Some(t) = self.tracked.iter_mut().find(|t| t.current) {
                t.current = false;
                t.changed = Instant::now();
                found.rotated = true;
            }
            let before = self.tracked.len();
            self.rotated_away(path)?;
            found.rotated |= self.tracked.len() > before;
            return Ok(found);
        };
        let id = identity(&file, &meta)?;
        let Some(i) = self.tracked.iter().position(|t| t.current) else {
            // Nothing at the path was tracked (it was missing, or deleted).
            self.rotated_away(path)?;
            found.rotated = !self.tracked.is_empty();
            return Ok(found);
        };
        let same_inode = {
            let place = &self.tracked[i].place.id;
            (place.dev, place.ino) == (id.dev, id.ino)
        };
        if !same_inode {
            self.tracked[i].current = false;
            self.tracked[i].changed = Instant::now();
            self.rotated_away(path)?;
            found.rotated = true;
            return Ok(found);
        }
        if self.tracked[i].place.id.first_line.is_none() && id.first_line.is_some() {
            // Its first line is there now. Had a copytruncate emptied it
            // in between, its content then is in a copy made since.
            let since = self.tracked[i].since;
            let copies = self.copies_since(since, &id)?;
            let n = copies.len();
            for (k, copy) in copies.into_iter().enumerate() {
                self.tracked.insert(i + k, copy);
            }
            let t = &mut self.tracked[i + n];
            t.place.id.first_line = id.first_line;
            t.since = SystemTime::now();
            found.truncated |= n > 0;
            return Ok(found);
        }
        let t = &mut self.tracked[i];
        let shrunk = meta.len() < t.place.offset;
        let other_first = t.place.id.first_line.is_some() && id.first_line != t.place.id.first_line;
        if !(shrunk || other_first) {
            t.place.seen = t.place.seen.max(meta.len());
            return Ok(found);
        }
        // Truncated in place: the unread rest is in the copy, if any.
        found.truncated = true;
        let old = self.tracked.remove(i);
        found.lost = self.read_copy(path, old.place)?;
        let place = Place {
            id,
            offset: 0,
            seen: meta.len(),
        };
        self.tracked.push(Tracked::new(file, place, true));
        Ok(found)
    }

    /// Another file is at the path: the generations younger than the
    /// newest known one are tracked, the file at the path last.
    fn rotated_away(&mut self, path: &Path) -> std::io::Result<()> {
        let generations = self.keeper.generations()?;
        self.adopt_younger(path, generations);
        self.mark_current(path)
    }

    /// Tracks copytruncate's copy of the file at `old` (same first line,
    /// another inode) from `old`'s offset, and the copies younger than it;
    /// returns the bytes of `old` that were seen and are in no copy.
    fn read_copy(&mut self, path: &Path, old: Place) -> std::io::Result<u64> {
        let generations = self.keeper.generations()?;
        let copy = generations.iter().position(|g| match g {
            Generation::Plain(_, id, _) => {
                !self.known(id) && id.first_line.is_some() && id.first_line == old.id.first_line
            }
            Generation::Gz(_, hash) => old.id.first_line.is_some() && *hash == old.id.first_line,
        });
        let Some(k) = copy else {
            let lost = old.seen.saturating_sub(old.offset);
            if lost > 0 {
                tracing::warn!(
                    path = %path.display(),
                    lost,
                    "truncated before it was read to its end, and no copy holds the rest: \
                     these bytes are not counted"
                );
            }
            return Ok(lost);
        };
        let mut lost = 0;
        for (i, g) in generations.into_iter().enumerate().skip(k) {
            match g {
                // The truncated file itself is tracked by the caller.
                Generation::Plain(_, id, _) if (id.dev, id.ino) == (old.id.dev, old.id.ino) => {}
                Generation::Plain(file, id, _) if !self.known(&id) => {
                    let len = file.metadata()?.len();
                    let offset = if i == k { old.offset.min(len) } else { 0 };
                    if i == k && old.seen > len.max(old.offset) {
                        lost = old.seen - len.max(old.offset);
                        tracing::warn!(
                            path = %path.display(),
                            lost,
                            "bytes written between logrotate's copy and its truncation are in \
                             neither file: they are not counted"
                        );
                    }
                    let place = Place {
                        id,
                        offset,
                        seen: len,
                    };
                    self.tracked.push(Tracked::new(file, place, false));
                }
                Generation::Plain(..) => {}
                Generation::Gz(gz, _) => rotated::compressed_gap(&gz),
            }
        }
        Ok(lost)
    }

    /// The generations not known, modified since `since`, that are not the
    /// file `current` (copies of content of it never seen), oldest first.
    fn copies_since(&self, since: SystemTime, current: &Id) -> std::io::Result<Vec<Tracked>> {
        let mut copies = Vec::new();
        for g in self.keeper.generations()? {
            let Generation::Plain(file, id, _) = g else {
                continue;
            };
            let meta = file.metadata()?;
            let recent = meta.modified().is_ok_and(|m| m >= since);
            if recent && !self.known(&id) && (id.dev, id.ino) != (current.dev, current.ino) {
                let place = Place {
                    id,
                    offset: 0,
                    seen: meta.len(),
                };
                copies.push(Tracked::new(file, place, false));
            }
        }
        Ok(copies)
    }

    /// Drops the rotated files read to their end and quiet for [`QUIET`],
    /// remembering them as finished.
    pub(super) fn finish_quiet(&mut self) -> std::io::Result<()> {
        let mut i = 0;
        while i < self.tracked.len() {
            let t = &mut self.tracked[i];
            let len = t.file.metadata()?.len();
            if len > t.place.seen {
                t.place.seen = len;
                t.changed = Instant::now();
            }
            let done = !t.current && t.place.offset >= len && t.changed.elapsed() >= QUIET;
            if done {
                let t = self.tracked.remove(i);
                self.finished.push(t.place.id);
                if self.finished.len() > FINISHED {
                    self.finished.remove(0);
                }
            } else {
                i += 1;
            }
        }
        Ok(())
    }

    /// The places to save.
    pub(super) fn places(&self) -> Vec<Place> {
        self.tracked.iter().map(|t| t.place).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_seen_but_in_no_copy_are_counted_lost_and_the_copy_read_from_the_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mail.log");
        let line = |n: usize| format!("{n:09}\n"); // ten bytes a line
        let content: String = (0..30).map(line).collect();
        std::fs::write(&path, &content).unwrap();
        let (mut files, lost) = Files::resume(&path, &[], Vec::new()).unwrap();
        assert_eq!((files.tracked.len(), lost), (1, 0));
        // Ten lines read, all thirty seen; logrotate copied twenty, then
        // the logger wrote ten more, then it truncated.
        files.tracked[0].place.offset = 100;
        files.tracked[0].place.seen = 300;
        files.tracked[0].place.id.first_line =
            super::super::cursor::first_line_hash(content.as_bytes());
        std::fs::write(dir.path().join("mail.log.1"), &content[..200]).unwrap();
        std::fs::write(&path, "a new first line\n").unwrap();
        let found = files.refresh(&path).unwrap();
        assert!(found.truncated);
        assert_eq!(
            found.lost, 100,
            "the ten lines between the copy and the truncation"
        );
        let places: Vec<(u64, bool)> = files
            .tracked
            .iter()
            .map(|t| (t.place.offset, t.current))
            .collect();
        assert_eq!(
            places,
            [(100, false), (0, true)],
            "the copy from the offset, then the file"
        );
        // Without a copy, all that was seen and not read is lost.
        std::fs::remove_file(dir.path().join("mail.log.1")).unwrap();
        files.tracked.retain(|t| t.current);
        files.tracked[0].place.seen = 17;
        files.tracked[0].place.offset = 5;
        std::fs::write(&path, "another\n").unwrap();
        let found = files.refresh(&path).unwrap();
        assert_eq!((found.truncated, found.lost), (true, 12));
    }
}
