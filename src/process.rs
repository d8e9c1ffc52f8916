//! Process-wide settings: files the daemon creates are private, and freed
//! heap goes back to the system.

/// Makes every file and directory this process creates from now on
/// private to its user (mode 0600 and 0700): the database, the ingest
/// journal, the generated API token, mails written as files. The systemd
/// unit sets the same (`UMask=0077`); this covers every other way the
/// daemon or `import` is started.
pub fn private_files() {
    #[cfg(unix)]
    // SAFETY: umask only sets the process's file mode creation mask; it
    // cannot fail and touches no memory.
    unsafe {
        libc::umask(0o077);
    }
}

/// Hands heap pages freed since the last call back to the system. glibc
/// keeps them otherwise: after one large report (100,000 senders) the
/// daemon would stay at that report's peak size for good, and an import's
/// RSS would grow with each write-out of its counts.
pub fn release_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim has no preconditions; it only returns free pages
    // of the arenas to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}
