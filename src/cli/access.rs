//! Where a command finds the store: opened itself, or, while the daemon
//! holds it, through the daemon's API. A command that only reads never
//! creates a store: an empty one would print an all-zero report as if
//! nothing had been sent.

use super::remote::Remote;
use crate::config::{Config, DEFAULT_CONFIG};
use crate::store::{Store, StoreError};
use std::path::Path;

pub(super) enum Access {
    /// The store, opened by this process (the daemon is not running).
    Local(Store),
    /// The running daemon, which holds the store.
    Daemon(Remote),
}

/// The store for reading: the existing store, or the daemon that holds it.
pub(super) fn for_reading(config: &Config) -> anyhow::Result<Access> {
    let db = config.db_path();
    match std::fs::metadata(&db) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            anyhow::bail!("{}", no_store(config, &db))
        }
        Err(e) => anyhow::bail!(
            "cannot read the store at {}: {e}; run the command as the user the daemon runs as (or as root)",
            db.display()
        ),
    }
    open(config)
}

/// The store, or the daemon that holds it (`import`, which may create it).
pub(super) fn open(config: &Config) -> anyhow::Result<Access> {
    match Store::open(&config.store_options()) {
        Ok(store) => Ok(Access::Local(store)),
        Err(StoreError::Locked(_)) => Ok(Access::Daemon(Remote::connect(config)?)),
        Err(e) => Err(e.into()),
    }
}

/// Why there is nothing to read, and which configuration would point at a
/// store that has data.
fn no_store(config: &Config, db: &Path) -> String {
    let from = match &config.source {
        Some(path) => format!("from {}", path.display()),
        None => "the built-in default, no --config given".to_owned(),
    };
    let installed = Path::new(DEFAULT_CONFIG);
    let hint = if installed.exists() && config.source.as_deref() != Some(installed) {
        format!(
            "the installed daemon's configuration is {DEFAULT_CONFIG}: add --config {DEFAULT_CONFIG}"
        )
    } else {
        "pass the daemon's configuration with --config FILE".to_owned()
    };
    format!(
        "no store at {} (store.data_dir = {}, {from}): no daemon has run with it and nothing was imported there; {hint}",
        db.display(),
        config.store.data_dir.display()
    )
}
