//! Whether the writer takes writes: a nearly full disk stops them (see
//! `store::space`) until space is back; a failed database write ends the
//! process, because the database cannot go on after one.

use crate::store::StoreError;

/// Why the writer takes no writes at the moment (the disk is nearly
/// full), for `/healthz`; empty while it works.
#[derive(Debug, Default)]
pub(crate) struct Health(std::sync::Mutex<Option<String>>);

impl Health {
    /// The reason writes are refused, if they are.
    pub(crate) fn degraded(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Notes the outcome of a write: a full disk degrades, a write that
    /// worked restores; other errors leave the state as it was.
    pub(super) fn note<T>(&self, result: &Result<T, impl std::borrow::Borrow<StoreError>>) {
        let mut state = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(_) => {
                if state.take().is_some() {
                    tracing::info!("free space is back: the store takes writes again");
                }
            }
            Err(e) => match e.borrow() {
                StoreError::DiskFull {
                    free_mb, need_mb, ..
                } => {
                    if state.is_none() {
                        tracing::error!(error = %e.borrow(), "the store stops taking writes");
                    }
                    // Shown to anyone who asks /healthz: no paths (the log
                    // line above names the directory).
                    *state = Some(format!(
                        "the store's disk has {free_mb} MiB free, less than the {need_mb} MiB \
                         kept free (store.min_free_mb): events are refused until space is back"
                    ));
                }
                other => exit_if_broken(other),
            },
        }
    }
}

/// sled cannot go on after one of its writes failed (its later flushes
/// wait for ever): the daemon exits, the service manager starts it again,
/// and the events it acknowledged are counted from the journal then.
fn exit_if_broken(e: &StoreError) {
    if let StoreError::Sled(sled::Error::Io(io)) = e {
        tracing::error!(
            error = %io,
            "a database write failed and the database cannot continue after one; exiting \
             so that the service manager restarts the daemon (acknowledged events are in \
             the journal and are counted after the restart)"
        );
        std::process::exit(1);
    }
}
