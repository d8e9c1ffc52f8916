//! Failures a test injects into a write, to check that what it leaves
//! behind is whole: the write fails once a given number of its parts are
//! applied.

use crate::store::StoreError;

/// After how many parts the test running on this thread makes a write
/// fail, to hand to a write-out on another thread.
pub(super) fn failure_planned() -> Option<u64> {
    #[cfg(test)]
    return FAIL_AFTER_PARTS.get();
    #[cfg(not(test))]
    None
}

/// The failure a test planned after `planned` parts (see
/// [`failure_planned`]), once `written` parts are applied.
pub(super) fn injected(written: u64, planned: Option<u64>) -> Result<(), StoreError> {
    if planned == Some(written) {
        return Err(StoreError::Journal {
            path: "(test)".into(),
            source: std::io::Error::other("failure injected by a test"),
        });
    }
    Ok(())
}

#[cfg(test)]
thread_local! {
    /// Makes the write fail once this many parts are applied.
    pub(crate) static FAIL_AFTER_PARTS: std::cell::Cell<Option<u64>> = const { std::cell::Cell::new(None) };
}
