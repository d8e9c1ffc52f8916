//! Sources: where events come from on this machine. Input files (plain,
//! gzip, stdin) for `import` and `backtest`, and the followers of mail logs
//! that the daemon runs; the bytes become events through the parsers of
//! `parse`.

pub mod input;
pub mod tail;

/// This machine's host name, for logs that do not name one.
pub fn local_host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}
