//! A follower's saved place: the files it is reading (each by device,
//! inode and a hash of its first line, so that rotation, copytruncate and
//! inode reuse are told apart) and how far into each, the files it
//! finished lately, and the parser's state.

use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use xxhash_rust::xxh3::xxh3_64;

/// Which file: its device and inode, and the hash of its first line
/// (xxh3; `None` while it has no complete line).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Id {
    pub(super) dev: u64,
    pub(super) ino: u64,
    #[serde(default)]
    pub(super) first_line: Option<u64>,
}

impl Id {
    /// Whether `other` names the same file as an open one: the same inode
    /// (which no other file can have while it is open), and not another
    /// first line.
    pub(super) fn same_file(&self, other: &Id) -> bool {
        (self.dev, self.ino) == (other.dev, other.ino)
            && (self.first_line.is_none()
                || other.first_line.is_none()
                || self.first_line == other.first_line)
    }

    /// Whether `other` is surely the file this names, which is closed: its
    /// inode may have gone to a new file since, so the first lines must be
    /// known and equal too.
    pub(super) fn surely_same(&self, other: &Id) -> bool {
        (self.dev, self.ino) == (other.dev, other.ino)
            && self.first_line.is_some()
            && self.first_line == other.first_line
    }
}

/// How far into one file.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub(super) struct Place {
    #[serde(flatten)]
    pub(super) id: Id,
    pub(super) offset: u64,
    /// The largest size seen: what lies between `offset` and it was
    /// written and not read yet.
    #[serde(default)]
    pub(super) seen: u64,
}

/// Where a follower is, as saved in the store.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct Cursor {
    /// The files being read, oldest first (the file at the path last).
    #[serde(default)]
    pub(super) files: Vec<Place>,
    /// Files read to their end lately, not to be read again.
    #[serde(default)]
    pub(super) finished: Vec<Id>,
    pub(super) parser: serde_json::Value,
    /// Releases before several files were followed at once saved one
    /// place at the top; only read.
    #[serde(flatten, default, skip_serializing)]
    older: Older,
}

/// The single place older releases saved.
#[derive(Debug, Clone, Default, Deserialize)]
struct Older {
    dev: Option<u64>,
    ino: Option<u64>,
    first_line: Option<u64>,
    /// The first line's FNV-1a, of releases before xxh3: the hash must be
    /// taken again (see [`Cursor::upgrade`]).
    fingerprint: Option<u64>,
    offset: Option<u64>,
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

/// The identity of an open file.
pub(super) fn identity(file: &File, meta: &std::fs::Metadata) -> io::Result<Id> {
    Ok(Id {
        dev: meta.dev(),
        ino: meta.ino(),
        first_line: fingerprint(file)?,
    })
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
    /// A cursor saved by an older release, in this release's form. One that
    /// hashed first lines otherwise points into the file at `path` or
    /// `path.1` with its device and inode: that file's hash is taken. When
    /// neither is that file any more, the place has no hash, and the file
    /// at `path` with that inode is taken for it (events carry ids: nothing
    /// already counted is counted again).
    pub(super) fn upgrade(mut self, path: &Path) -> io::Result<Cursor> {
        let older = std::mem::take(&mut self.older);
        let (Some(dev), Some(ino)) = (older.dev, older.ino) else {
            return Ok(self);
        };
        let mut id = Id {
            dev,
            ino,
            first_line: older.first_line,
        };
        if older.fingerprint.is_some() && id.first_line.is_none() {
            for candidate in [
                path.to_owned(),
                PathBuf::from(format!("{}.1", path.display())),
            ] {
                if let Some((file, meta)) = open_if_exists(&candidate)?
                    && (meta.dev(), meta.ino()) == (dev, ino)
                {
                    id.first_line = fingerprint(&file)?;
                    break;
                }
            }
        }
        let offset = older.offset.unwrap_or(0);
        self.files = vec![Place {
            id,
            offset,
            seen: offset,
        }];
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn older(dev: u64, ino: u64) -> Cursor {
        let json = serde_json::json!({"dev": dev, "ino": ino, "fingerprint": 123_u64,
                                      "offset": 11, "parser": null});
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_cursor_of_an_older_release_takes_the_hash_of_its_own_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mail.log");
        std::fs::write(&path, "first line\nsecond\n").unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        let cursor = older(meta.dev(), meta.ino()).upgrade(&path).unwrap();
        let hash = fingerprint(&File::open(&path).unwrap()).unwrap();
        assert_eq!(cursor.files.len(), 1);
        assert_eq!(cursor.files[0].id.first_line, hash);
        assert_eq!(cursor.files[0].id.first_line, Some(xxh3_64(b"first line")));
        assert_eq!(cursor.files[0].offset, 11);
        // Saved again, it is a cursor of this release.
        let saved = serde_json::to_value(&cursor).unwrap();
        assert_eq!(saved["files"][0]["first_line"], serde_json::json!(hash));
        assert!(saved.get("fingerprint").is_none() && saved.get("dev").is_none());

        // Rotated away while the daemon was upgraded: found as PATH.1.
        std::fs::rename(&path, dir.path().join("mail.log.1")).unwrap();
        std::fs::write(&path, "a new file\n").unwrap();
        let cursor = older(meta.dev(), meta.ino()).upgrade(&path).unwrap();
        assert_eq!(cursor.files[0].id.first_line, hash);

        // Its file is gone: no hash.
        std::fs::remove_file(dir.path().join("mail.log.1")).unwrap();
        let cursor = older(meta.dev(), meta.ino()).upgrade(&path).unwrap();
        assert_eq!(cursor.files[0].id.first_line, None);

        // A cursor of the xxh3 releases before several files keeps its hash.
        let json = serde_json::json!({"dev": 1, "ino": 2, "first_line": 7_u64,
                                      "offset": 3, "parser": null});
        let cursor: Cursor = serde_json::from_value(json).unwrap();
        let cursor = cursor.upgrade(&path).unwrap();
        assert_eq!(cursor.files[0].id.first_line, Some(7));
        assert_eq!(cursor.files[0].offset, 3);
    }

    #[test]
    fn a_reused_inode_is_another_file() {
        let a = Id {
            dev: 1,
            ino: 2,
            first_line: Some(10),
        };
        assert!(a.same_file(&Id {
            first_line: None,
            ..a
        }));
        assert!(!a.same_file(&Id {
            first_line: Some(11),
            ..a
        }));
        assert!(!a.same_file(&Id { ino: 3, ..a }));
        // Closed, its inode may be another file's: only a first line says.
        assert!(a.surely_same(&a));
        assert!(!a.surely_same(&Id {
            first_line: None,
            ..a
        }));
        assert!(
            !Id {
                first_line: None,
                ..a
            }
            .surely_same(&Id {
                first_line: None,
                ..a
            })
        );
    }
}
