//! What a store directory must be before it is used: sled's files holding
//! this program's data, every page readable. A foreign file (another
//! program's database, an empty or zero-filled one) would otherwise be
//! taken for an empty store, and a damaged page would surface later as a
//! panic inside sled, in the middle of a report or a write.

use super::StoreError;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

/// Before sled opens `path`: whether a store was there already. Refuses a
/// path that is a file, and a non-empty directory without sled's
/// configuration file (sled would write one and carry on with nothing).
pub(super) fn before_open(path: &Path) -> Result<bool, StoreError> {
    let foreign = |why: &str| StoreError::Foreign {
        path: path.to_path_buf(),
        why: why.to_owned(),
    };
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => {
            return Err(StoreError::Unreadable {
                path: path.to_path_buf(),
                source: e,
            });
        }
        Ok(m) if !m.is_dir() => return Err(foreign("is a file, not a store directory")),
        Ok(_) => {}
    }
    let mut entries = std::fs::read_dir(path).map_err(|source| StoreError::Unreadable {
        path: path.to_path_buf(),
        source,
    })?;
    if entries.next().is_none() {
        return Ok(false);
    }
    if !path.join("conf").is_file() {
        return Err(foreign("has files but no sled configuration file (conf)"));
    }
    Ok(true)
}

/// After sled opened an existing store: it holds this program's schema
/// mark (written by every release since the first) and every entry of
/// every tree reads back. Reading all of it takes about a second per
/// million keys; a damaged page found now is a message, not a panic later.
pub(super) fn after_open(db: &sled::Db, path: &Path) -> Result<(), StoreError> {
    let damaged = |why: String| StoreError::Damaged {
        path: path.to_path_buf(),
        why,
    };
    let scan = quietly(|| -> Result<bool, sled::Error> {
        let meta = db.open_tree("meta")?;
        if meta.get("schema_version")?.is_none() {
            return Ok(false);
        }
        for name in db.tree_names() {
            for entry in db.open_tree(name)?.iter() {
                entry?;
            }
        }
        Ok(true)
    });
    match scan {
        Ok(Ok(true)) => Ok(()),
        Ok(Ok(false)) => Err(StoreError::Foreign {
            path: path.to_path_buf(),
            why: "holds no smtp-auth-insight data".to_owned(),
        }),
        Ok(Err(e)) => Err(damaged(describe(&e))),
        Err(why) => Err(damaged(why)),
    }
}

/// What a sled error says about a damaged store, in words (its own
/// `Display` of a corruption ends in a debug dump).
pub(super) fn describe(e: &sled::Error) -> String {
    match e {
        sled::Error::Corruption { .. } => "sled found a page that does not read back".to_owned(),
        sled::Error::Unsupported(why) => format!("its settings file does not read back ({why})"),
        other => other.to_string(),
    }
}

thread_local! {
    /// Set while this thread runs sled code that may panic on a damaged
    /// store: its panics are turned into errors, not printed.
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f`, sled code that may panic on a damaged store ("tried to
/// serialize Uninitialized" while it recovers): a panic becomes its
/// message, and prints nothing (no message, no backtrace). Panics of other
/// threads meanwhile are reported as always.
pub(super) fn quietly<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(std::cell::Cell::get) {
                previous(info);
            }
        }));
    });
    QUIET.with(|q| q.set(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    QUIET.with(|q| q.set(false));
    result.map_err(|panic| {
        panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "a page cannot be read".to_owned())
    })
}
