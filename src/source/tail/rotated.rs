//! The rotated generations of a log (`PATH.1`, `PATH.2`, … as logrotate
//! and savelog name them; copytruncate's copy is `PATH.1`) that a follower
//! must read before the current file, after a restart or a truncation:
//! the one its cursor points into, from the cursor's
//! offset, then every younger one whole. A generation that is compressed
//! (`PATH.2.gz`, logrotate's `compress`) is recognised but not read; what
//! it holds past the cursor is logged as a gap, with the file to import.

use super::cursor::{fingerprint, first_line_hash, open_if_exists};
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Generations looked at (logrotate's `rotate 4` to `rotate 9` keep fewer
/// uncompressed).
const MAX_GENERATION: u32 = 9;

/// What a restarted follower reads before the current file.
pub(super) struct Backlog {
    /// The file the cursor points into, when it is found uncompressed.
    pub cursor_file: Option<File>,
    /// Younger generations, oldest first, each to read from its start.
    pub younger: Vec<File>,
}

/// Looks for the generation whose first line hashes to `hash` (the
/// cursor's file, read up to `offset`). `None` when no generation is it:
/// the cursor's file is gone, and the gap is logged.
pub(super) fn find(path: &Path, hash: Option<u64>, offset: u64) -> io::Result<Option<Backlog>> {
    let Some(hash) = hash else {
        return Ok(None);
    };
    let mut younger = Vec::new();
    let mut younger_compressed = Vec::new();
    let gaps = |files: &[PathBuf]| {
        for file in files {
            tracing::warn!(
                file = %file.display(),
                "a rotated generation is compressed: its lines are not counted \
                 (import them with `smtp-auth-insight import`)"
            );
        }
    };
    for n in 1..=MAX_GENERATION {
        let plain = generation(path, n, "");
        if let Some((file, meta)) = open_if_exists(&plain)? {
            if fingerprint(&file)? == Some(hash) && meta.len() >= offset {
                gaps(&younger_compressed);
                younger.reverse();
                return Ok(Some(Backlog {
                    cursor_file: Some(file),
                    younger,
                }));
            }
            younger.push(file);
            continue;
        }
        let gz = generation(path, n, ".gz");
        if gz.exists() {
            if gz_fingerprint(&gz)? == Some(hash) {
                gaps(&younger_compressed);
                tracing::warn!(
                    file = %gz.display(),
                    offset,
                    "the log was rotated and compressed while the daemon was away: its lines \
                     after this offset are not counted (import them with `smtp-auth-insight import`)"
                );
                younger.reverse();
                return Ok(Some(Backlog {
                    cursor_file: None,
                    younger,
                }));
            }
            // Younger than the cursor's file, if that is found further on.
            younger_compressed.push(gz);
            continue;
        }
        break;
    }
    tracing::warn!(
        path = %path.display(),
        offset,
        "the file last read is neither the current log nor one of its rotated generations: \
         lines written to it after this offset are not counted"
    );
    Ok(None)
}

fn generation(path: &Path, n: u32, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}.{n}{suffix}", path.display()))
}

/// The first-line hash of a gzip-compressed log.
fn gz_fingerprint(path: &Path) -> io::Result<Option<u64>> {
    let mut head = [0u8; 256];
    let mut n = 0;
    let mut reader = flate2::read::GzDecoder::new(File::open(path)?);
    while n < head.len() {
        match reader.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            // Not gzip after all, or damaged: not the file sought.
            Err(_) => return Ok(None),
        }
    }
    Ok(first_line_hash(&head[..n]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn the_cursor_file_is_found_among_generations_with_the_younger_ones() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("mail.log");
        std::fs::write(dir.path().join("mail.log.2"), "oldest line\nmore\n").unwrap();
        std::fs::write(dir.path().join("mail.log.1"), "younger line\n").unwrap();
        std::fs::write(&log, "current line\n").unwrap();
        let hash = first_line_hash(b"oldest line\n");
        let found = find(&log, hash, 5).unwrap().unwrap();
        assert!(found.cursor_file.is_some());
        assert_eq!(found.younger.len(), 1);
        // Past its end: not that file.
        assert!(find(&log, hash, 1000).unwrap().is_none());
        assert!(find(&log, first_line_hash(b"gone\n"), 0).unwrap().is_none());
    }

    #[test]
    fn a_compressed_cursor_file_is_recognised_and_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("mail.log");
        let mut gz = flate2::write::GzEncoder::new(
            File::create(dir.path().join("mail.log.2.gz")).unwrap(),
            flate2::Compression::default(),
        );
        gz.write_all(b"oldest line\nmore\n").unwrap();
        gz.finish().unwrap();
        std::fs::write(dir.path().join("mail.log.1"), "younger line\n").unwrap();
        let found = find(&log, first_line_hash(b"oldest line\n"), 5)
            .unwrap()
            .unwrap();
        assert!(found.cursor_file.is_none());
        assert_eq!(found.younger.len(), 1);
    }
}
