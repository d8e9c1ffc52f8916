//! Giving freed heap back to the system.

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
