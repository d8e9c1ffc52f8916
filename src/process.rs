//! The process and the system's users: files the daemon creates are
//! private, freed heap goes back to the system, user and group names are
//! looked up.

/// Makes every file and directory this process creates from now on
/// private to its user (mode 0600 and 0700): the database, the ingest
/// journal, the generated API token, mails written as files. The systemd
/// unit sets the same (`UMask=0077`); this covers every other way the
/// daemon or `import` is started.
pub(crate) fn private_files() {
    #[cfg(unix)]
    // SAFETY: umask only sets the process's file mode creation mask; it
    // cannot fail and touches no memory.
    unsafe {
        libc::umask(0o077);
    }
}

/// Keeps the daemon's heap in two arenas. glibc gives threads that
/// allocate at the same time arenas of their own (up to eight per core),
/// and memory freed in one is reused only by the threads that happen to
/// use it: the report's scan threads, the blocking pool and tokio's
/// workers each left megabytes behind. After three 90-day reports and
/// three dashboard pages of 100,000 accounts the daemon held 350 MiB with
/// the default arenas, 183 MiB with two, 250 with four, in the same time
/// (0.80–0.85 s a report). `import` keeps the default: its parser and
/// store threads allocate all the time, and two arenas made it a fifth
/// slower (99 s against 81 s for 100,000 accounts × 90 days).
pub(crate) fn few_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called before any
    // thread is started.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Hands heap pages freed since the last call back to the system. glibc
/// keeps them otherwise: after one large report (100,000 senders) the
/// daemon would stay at that report's peak size for good, and an import's
/// RSS would grow with each write-out of its counts.
pub(crate) fn release_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim has no preconditions; it only returns free pages
    // of the arenas to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The id of the user `name` (a name from the system's user database, or a
/// number), None when there is no such user.
pub(crate) fn user_id(name: &str) -> Option<u32> {
    // SAFETY: getpwnam_r is called as `lookup` requires (see there).
    lookup(
        name,
        |n, e, b, l, f| unsafe { libc::getpwnam_r(n, e, b, l, f) },
        |p: &libc::passwd| p.pw_uid,
    )
}

/// The id of the group `name` (a name or a number), None when there is no
/// such group.
pub(crate) fn group_id(name: &str) -> Option<u32> {
    // SAFETY: getgrnam_r is called as `lookup` requires (see there).
    lookup(
        name,
        |n, e, b, l, f| unsafe { libc::getgrnam_r(n, e, b, l, f) },
        |g: &libc::group| g.gr_gid,
    )
}

/// The signature of getpwnam_r and getgrnam_r.
type Reentrant<T> =
    fn(*const libc::c_char, *mut T, *mut libc::c_char, libc::size_t, *mut *mut T) -> libc::c_int;

/// `name` as a number, else looked up with `call` (getpwnam_r or
/// getgrnam_r) and its id read with `id`.
fn lookup<T>(name: &str, call: Reentrant<T>, id: fn(&T) -> u32) -> Option<u32> {
    if let Ok(n) = name.parse() {
        return Some(n);
    }
    let c = std::ffi::CString::new(name).ok()?;
    let mut buf = vec![0u8; 16 * 1024];
    let mut entry = std::mem::MaybeUninit::<T>::zeroed();
    let mut found: *mut T = std::ptr::null_mut();
    // Every pointer is valid for the call: `c` is NUL-terminated, `entry`
    // and `buf` are writable and `buf.len()` is the buffer's size.
    let rc = call(
        c.as_ptr(),
        entry.as_mut_ptr(),
        buf.as_mut_ptr().cast(),
        buf.len(),
        &mut found,
    );
    // SAFETY: a non-null `found` points to `entry`, which the call filled.
    (rc == 0 && !found.is_null()).then(|| id(unsafe { entry.assume_init_ref() }))
}

/// The user and group ids this process runs as.
pub(crate) fn ids() -> (u32, u32) {
    // SAFETY: getuid and getgid cannot fail and touch no memory.
    unsafe { (libc::getuid(), libc::getgid()) }
}

#[cfg(test)]
mod tests {
    #[test]
    fn users_and_groups_are_found_by_name_or_number() {
        assert_eq!(super::user_id("root"), Some(0));
        assert_eq!(super::group_id("root"), Some(0));
        assert_eq!(super::user_id("4242"), Some(4242));
        assert_eq!(super::user_id("no-such-user-here"), None);
        assert_eq!(super::group_id("no-such-group-here"), None);
        assert_eq!(super::user_id("nul\0inside"), None);
    }
}
