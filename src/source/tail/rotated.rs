//! The rotated generations of a log (`PATH.1`, `PATH.2`, … as logrotate
//! and savelog name them; copytruncate's copy is `PATH.1`), oldest first,
//! with the current file last. A generation that is compressed
//! (`PATH.2.gz`, logrotate's `compress`) is listed but cannot be read:
//! what it holds that was not read is logged as a gap, with the file to
//! import.
//!
//! A [`Keeper`] holds every generation open from the moment it is first
//! seen (it looks every [`KEEP_EVERY`] on a thread of its own), and for
//! [`KEEP_FOR`] after rotation deleted it: a follower busy with a burst
//! while the log rotates faster than it steps still reads the generations
//! that came and went meanwhile.

use super::cursor::{Id, first_line_hash, identity, open_if_exists};
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the keeper looks at the generations.
const KEEP_EVERY: Duration = Duration::from_millis(50);
/// How long a deleted generation is kept open.
const KEEP_FOR: Duration = Duration::from_secs(30);

/// Generations looked at (logrotate's `rotate 4` to `rotate 9` keep fewer
/// uncompressed).
const MAX_GENERATION: u32 = 9;

/// One file of a log's generations.
pub(super) enum Generation {
    /// Readable: open, with its identity.
    Plain(File, Id, PathBuf),
    /// Compressed: its name and first-line hash only.
    Gz(PathBuf, Option<u64>),
}

impl Generation {
    /// Whether it is the file `id` names.
    pub(super) fn is(&self, id: &Id) -> bool {
        match self {
            Generation::Plain(_, own, _) => own.same_file(id),
            Generation::Gz(_, hash) => id.first_line.is_some() && *hash == id.first_line,
        }
    }
}

/// The generations of the log at `path` that exist, oldest first, ending
/// with the file at `path` itself (when there is one).
///
/// Rotation may run meanwhile, moving every file one number up: they are
/// looked at from the newest (the path) up, so that a file can be met
/// twice (kept once, where it was met first) but none that was there is
/// missed; and past a missing number, which a rotation in progress leaves
/// for a moment.
pub(super) fn list(path: &Path) -> io::Result<Vec<Generation>> {
    let mut found: Vec<Generation> = Vec::new();
    let seen = |found: &[Generation], id: &Id| {
        found
            .iter()
            .any(|g| matches!(g, Generation::Plain(_, own, _) if own.same_file(id)))
    };
    if let Some((file, meta)) = open_if_exists(path)? {
        let id = identity(&file, &meta)?;
        found.push(Generation::Plain(file, id, path.to_owned()));
    }
    for n in 1..=MAX_GENERATION {
        let plain = generation(path, n, "");
        if let Some((file, meta)) = open_if_exists(&plain)? {
            let id = identity(&file, &meta)?;
            if !seen(&found, &id) {
                found.push(Generation::Plain(file, id, plain));
            }
            continue;
        }
        let gz = generation(path, n, ".gz");
        if gz.exists() {
            let hash = gz_first_line(&gz)?;
            found.push(Generation::Gz(gz, hash));
        }
    }
    found.reverse();
    Ok(found)
}

/// A generation as the keeper holds it.
struct Kept {
    generation: Generation,
    /// When rotation deleted it (None: still listed).
    gone: Option<Instant>,
}

/// Keeps the generations of one log open (see the module's doc); stops
/// its thread when dropped.
pub(super) struct Keeper {
    path: PathBuf,
    kept: Arc<Mutex<Vec<Kept>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Keeper {
    pub(super) fn start(path: &Path) -> io::Result<Keeper> {
        let kept: Arc<Mutex<Vec<Kept>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        merge(&kept, list(path)?);
        let thread = {
            let (path, kept, stop) = (path.to_owned(), kept.clone(), stop.clone());
            std::thread::Builder::new()
                .name("log-generations".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(KEEP_EVERY);
                        match list(&path) {
                            Ok(found) => merge(&kept, found),
                            Err(e) => {
                                tracing::debug!(error = %e, "cannot list the log's generations")
                            }
                        }
                    }
                })?
        };
        Ok(Keeper {
            path: path.to_owned(),
            kept,
            stop,
            thread: Some(thread),
        })
    }

    /// The generations now, oldest first, with those rotation deleted
    /// lately first of all (still readable).
    pub(super) fn generations(&self) -> io::Result<Vec<Generation>> {
        merge(&self.kept, list(&self.path)?);
        let kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::with_capacity(kept.len());
        for k in kept.iter() {
            out.push(match &k.generation {
                Generation::Plain(file, id, at) => {
                    Generation::Plain(file.try_clone()?, *id, at.clone())
                }
                Generation::Gz(at, hash) => Generation::Gz(at.clone(), *hash),
            });
        }
        Ok(out)
    }
}

impl Drop for Keeper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Merges a listing into what is kept: deleted generations first (older
/// than any listed, rotation deletes the oldest), then the listed ones in
/// their order.
fn merge(kept: &Mutex<Vec<Kept>>, listed: Vec<Generation>) {
    let mut kept = kept.lock().unwrap_or_else(|p| p.into_inner());
    // An inode held open is no other file's: the same inode is the same
    // file, also when it was truncated in place since (another first line).
    let listed_has = |g: &Generation| {
        listed.iter().any(|l| match (l, g) {
            (Generation::Plain(_, a, _), Generation::Plain(_, b, _)) => {
                (a.dev, a.ino) == (b.dev, b.ino)
            }
            (Generation::Gz(a, _), Generation::Gz(b, _)) => a == b,
            _ => false,
        })
    };
    let now = Instant::now();
    let mut gone: Vec<Kept> = kept
        .drain(..)
        .filter(|k| matches!(k.generation, Generation::Plain(..)) && !listed_has(&k.generation))
        .map(|k| Kept {
            gone: Some(k.gone.unwrap_or(now)),
            ..k
        })
        .filter(|k| k.gone.is_some_and(|g| now - g < KEEP_FOR))
        .collect();
    gone.extend(listed.into_iter().map(|generation| Kept {
        generation,
        gone: None,
    }));
    *kept = gone;
}

fn generation(path: &Path, n: u32, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}.{n}{suffix}", path.display()))
}

/// The first-line hash of a gzip-compressed log.
fn gz_first_line(path: &Path) -> io::Result<Option<u64>> {
    let mut head = [0u8; 256];
    let mut n = 0;
    let mut reader = flate2::read::GzDecoder::new(File::open(path)?);
    while n < head.len() {
        match reader.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            // Not gzip after all, or damaged: not a file anyone reads.
            Err(_) => return Ok(None),
        }
    }
    Ok(first_line_hash(&head[..n]))
}

/// Says that a compressed generation holds lines that were not read.
pub(super) fn compressed_gap(file: &Path) {
    tracing::warn!(
        file = %file.display(),
        "a rotated generation is compressed: its lines that were not read yet are not counted \
         (import them with `smtp-auth-insight import`)"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn generations_are_listed_oldest_first_with_the_current_file_last() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("mail.log");
        let mut gz = flate2::write::GzEncoder::new(
            File::create(dir.path().join("mail.log.3.gz")).unwrap(),
            flate2::Compression::default(),
        );
        gz.write_all(b"oldest line\nmore\n").unwrap();
        gz.finish().unwrap();
        std::fs::write(dir.path().join("mail.log.2"), "older line\n").unwrap();
        std::fs::write(dir.path().join("mail.log.1"), "younger line\n").unwrap();
        std::fs::write(&log, "current line\n").unwrap();
        // Past a missing number too (a rotation in progress leaves one).
        std::fs::write(dir.path().join("mail.log.5"), "oldest of all\n").unwrap();
        let all = list(&log).unwrap();
        let hashes: Vec<Option<u64>> = all
            .iter()
            .map(|g| match g {
                Generation::Plain(_, id, _) => id.first_line,
                Generation::Gz(_, hash) => *hash,
            })
            .collect();
        let want: Vec<Option<u64>> = [
            &b"oldest of all\n"[..],
            b"oldest line\n",
            b"older line\n",
            b"younger line\n",
            b"current line\n",
        ]
        .iter()
        .map(|l| first_line_hash(l))
        .collect();
        assert_eq!(hashes, want);
        assert!(matches!(all[1], Generation::Gz(..)));
    }
}
