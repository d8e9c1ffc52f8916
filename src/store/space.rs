//! Free space on the store's file system, checked before every write.
//!
//! sled cannot carry on after a failed write: once a flush meets ENOSPC it
//! waits for ever for a log segment that will never be written, and so
//! would the writer and everything behind it. So writes stop *before* the
//! disk is full: below `store.min_free_mb` new events are refused (503,
//! nothing acknowledged), events already acknowledged wait in the journal,
//! and both resume by themselves once space is back.

use super::StoreError;
use std::path::Path;

/// Bytes free for an unprivileged writer on the file system of `path`.
pub fn free_bytes(path: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::other("path holds a NUL byte"))?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `c` is a NUL-terminated path and `stat` is valid for writes
    // of a statvfs; the call fills it or fails.
    let rc = unsafe { libc::statvfs(c.as_ptr(), stat.as_mut_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it initialised `stat`.
    let stat = unsafe { stat.assume_init() };
    #[allow(clippy::unnecessary_cast)] // the field types differ by platform
    Ok((stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64))
}

/// Refuses a write when fewer than `min_free` bytes are free on the file
/// system of `dir` (the store's directory). An error reading the figure
/// lets the write go ahead: the write itself will say more.
pub(crate) fn ensure(dir: &Path, min_free: u64) -> Result<(), StoreError> {
    if min_free == 0 {
        return Ok(());
    }
    match free_bytes(dir) {
        Ok(free) if free < min_free => Err(StoreError::DiskFull {
            path: dir.to_path_buf(),
            free_mb: free >> 20,
            need_mb: min_free >> 20,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_free_space_of_a_real_directory_is_read() {
        let dir = tempfile::tempdir().unwrap();
        assert!(super::free_bytes(dir.path()).unwrap() > 0);
        assert!(super::ensure(dir.path(), 1).is_ok());
        let err = super::ensure(dir.path(), u64::MAX).unwrap_err();
        assert!(err.to_string().contains("MiB free"), "{err}");
        assert!(super::free_bytes(&dir.path().join("missing")).is_err());
    }
}
