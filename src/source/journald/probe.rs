//! Whether any journal entry is readable. journalctl shows nothing, and
//! says nothing, when the daemon's user may not read the system journal
//! (it is in neither `systemd-journal` nor `adm`) or a `directory` holds
//! no journal files: without this look the source would follow silence.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// How often a journal still unreadable is reported again.
pub(super) const AGAIN: Duration = Duration::from_secs(300);

/// What the log says while no entry is readable.
pub(super) const UNREADABLE: &str = "cannot read any journal entry: nothing is counted from \
     this source until it can (is the daemon's user in group systemd-journal or adm? with \
     `directory`, does it hold journal files?)";

/// Whether journalctl shows at least one entry of `directory` (or of the
/// system's journal).
pub(super) async fn readable(directory: Option<&Path>) -> bool {
    let mut command = tokio::process::Command::new("journalctl");
    command.args(["--output=json", "--no-pager", "--quiet", "--lines=1"]);
    if let Some(dir) = directory {
        command.arg("--directory").arg(dir);
    }
    let out = command
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(Duration::from_secs(30), out).await {
        Ok(Ok(out)) => out.stdout.contains(&b'{'),
        _ => false,
    }
}
