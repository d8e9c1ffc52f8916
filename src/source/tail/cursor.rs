//! A follower's saved place: which file (device, inode and a hash of its
//! first line, so that rotation, copytruncate and inode reuse are told
//! apart) and how far into it, with the parser's state.

use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use xxhash_rust::xxh3::xxh3_64;

/// Where a follower is, as saved in the store.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct Cursor {
    pub(super) dev: u64,
    pub(super) ino: u64,
    /// Hash of the file's first line (xxh3); `None` until it has one.
    #[serde(rename = "first_line", default)]
    pub(super) fingerprint: Option<u64>,
    /// What releases before the xxh3 hash saved instead: the first line's
    /// FNV-1a. Only read, to know that the hash must be redone (see
    /// [`Cursor::adopt_file_hash`]).
    #[serde(rename = "fingerprint", default, skip_serializing)]
    older_hash: Option<u64>,
    pub(super) offset: u64,
    pub(super) parser: serde_json::Value,
}

pub(super) fn open_if_exists(path: &Path) -> io::Result<Option<(File, std::fs::Metadata)>> {
    match File::open(path) {
        Ok(f) => {
            let meta = f.metadata()?;
            Ok(Some((f, meta)))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Hash of the first line (up to 256 bytes) of an open file, `None` while
/// the file has no complete first line.
pub(super) fn fingerprint(file: &File) -> io::Result<Option<u64>> {
    let mut head = [0u8; 256];
    let mut f = file;
    f.seek(SeekFrom::Start(0))?;
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(first_line_hash(&head[..n]))
}

/// xxh3 of the first line of `bytes`, or of its first 256 bytes when that
/// line is longer: stable across releases and platforms, unlike std's
/// hasher, so a saved cursor still recognises its file.
pub(super) fn first_line_hash(bytes: &[u8]) -> Option<u64> {
    let head = &bytes[..bytes.len().min(256)];
    match memchr::memchr(b'\n', head) {
        Some(i) => Some(xxh3_64(&head[..i])),
        None if head.len() == 256 => Some(xxh3_64(head)),
        None => None,
    }
}

impl Cursor {
    /// The start of the next file, with the parser's state carried over
    /// (a connection may span a rotation).
    pub(super) fn next_file(parser: serde_json::Value) -> Cursor {
        Cursor {
            parser,
            ..Cursor::default()
        }
    }

    /// A cursor saved by a release that hashed first lines otherwise:
    /// the file it points into is the one at `path` or `path.1` with its
    /// device and inode; that file's hash is taken. When neither is that
    /// file any more, the cursor has no hash, and the follower starts the
    /// file at `path` from its beginning (events carry ids: nothing already
    /// counted is counted again).
    pub(super) fn adopt_file_hash(&mut self, path: &Path) -> io::Result<()> {
        if self.older_hash.take().is_none() || self.fingerprint.is_some() {
            return Ok(());
        }
        for candidate in [
            path.to_owned(),
            PathBuf::from(format!("{}.1", path.display())),
        ] {
            if let Some((file, meta)) = open_if_exists(&candidate)? {
                if (meta.dev(), meta.ino()) == (self.dev, self.ino) {
                    self.fingerprint = fingerprint(&file)?;
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_of_an_older_release_takes_the_hash_of_its_own_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mail.log");
        std::fs::write(&path, "first line\nsecond\n").unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        let older = |dev: u64, ino: u64| -> Cursor {
            let json = serde_json::json!({"dev": dev, "ino": ino, "fingerprint": 123_u64,
                                          "offset": 11, "parser": null});
            serde_json::from_value(json).unwrap()
        };
        let mut cursor = older(meta.dev(), meta.ino());
        cursor.adopt_file_hash(&path).unwrap();
        let hash = fingerprint(&File::open(&path).unwrap()).unwrap();
        assert_eq!(cursor.fingerprint, hash);
        assert_eq!(cursor.fingerprint, Some(xxh3_64(b"first line")));
        assert_eq!(cursor.offset, 11);
        // Saved again, it is a cursor of this release.
        let saved = serde_json::to_value(&cursor).unwrap();
        assert_eq!(saved["first_line"], serde_json::json!(hash));
        assert!(saved.get("fingerprint").is_none());

        // Rotated away while the daemon was upgraded: found as PATH.1.
        std::fs::rename(&path, dir.path().join("mail.log.1")).unwrap();
        std::fs::write(&path, "a new file\n").unwrap();
        let mut cursor = older(meta.dev(), meta.ino());
        cursor.adopt_file_hash(&path).unwrap();
        assert_eq!(cursor.fingerprint, hash);

        // Its file is gone: no hash, so the follower starts the current file.
        std::fs::remove_file(dir.path().join("mail.log.1")).unwrap();
        let mut cursor = older(meta.dev(), meta.ino());
        cursor.adopt_file_hash(&path).unwrap();
        assert_eq!(cursor.fingerprint, None);

        // A cursor of this release is left as it is.
        let mut current = Cursor {
            fingerprint: Some(7),
            ..Cursor::default()
        };
        current.adopt_file_hash(&path).unwrap();
        assert_eq!(current.fingerprint, Some(7));
    }
}
