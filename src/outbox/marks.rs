//! Progress marks: how far each consumer of the outbox got. A schedule's
//! last slot run, how far the alert log has been mailed, the day of the
//! last legacy-TLS digest, each webhook URL's position in the alert log.
//!
//! A mark is written in the same sled transaction as the mail it stands
//! for (see [`super::Outbox::enqueue`]), so after a crash a schedule slot
//! or an alert is mailed exactly once. Marks have a tree of their own
//! (`marks`): statuses are forgotten after 30 days, marks never.

use super::OutboxError;

/// Name of the tree.
pub(super) const TREE: &str = "marks";

/// Where older releases kept marks: in the mail status tree, under a
/// leading NUL (which no mail id has). Moved out when the outbox opens.
const LEGACY_PREFIX: u8 = 0;

/// The marks tree.
#[derive(Clone)]
pub(crate) struct Marks {
    db: sled::Db,
    tree: sled::Tree,
}

/// The name of schedule `name`'s mark: the RFC 3339 time of its last slot.
pub fn schedule(name: &str) -> String {
    format!("schedule:{name}")
}

/// The name of a progress mark (`alerts`, `webhook URL`, ...).
pub(crate) fn progress(name: &str) -> String {
    format!("progress:{name}")
}

impl Marks {
    /// Opens the tree, moving the marks an older release kept in `status`.
    pub(super) fn open(db: &sled::Db, status: &sled::Tree) -> Result<Marks, OutboxError> {
        let marks = Marks {
            db: db.clone(),
            tree: db.open_tree(TREE)?,
        };
        marks.adopt_legacy(status)?;
        Ok(marks)
    }

    /// The tree, for transactions that write a mark with a mail.
    pub(super) fn tree(&self) -> &sled::Tree {
        &self.tree
    }

    /// The value of mark `name` (see [`schedule`], [`progress`]).
    pub(crate) fn get(&self, name: &str) -> Result<Option<String>, OutboxError> {
        Ok(self
            .tree
            .get(name.as_bytes())?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Sets mark `name` and makes it durable (one fsync): for progress that
    /// queues no mail (alerts nobody is to be mailed about, a webhook that
    /// answered).
    pub(crate) fn set(&self, name: &str, value: &str) -> Result<(), OutboxError> {
        self.tree.insert(name.as_bytes(), value.as_bytes())?;
        self.db.flush()?;
        Ok(())
    }

    /// Moves `\0schedule:NAME` and `\0progress:NAME` entries of the status
    /// tree here as `schedule:NAME` and `progress:NAME`, each in one
    /// transaction, so an interrupted move resumes without losing a mark.
    fn adopt_legacy(&self, status: &sled::Tree) -> Result<(), OutboxError> {
        use sled::Transactional;
        let legacy: Vec<_> = status
            .scan_prefix([LEGACY_PREFIX])
            .collect::<Result<_, _>>()?;
        for (key, value) in &legacy {
            (status, &self.tree)
                .transaction(|(status, marks)| {
                    marks.insert(&key[1..], value.clone())?;
                    status.remove(key.clone())?;
                    Ok(())
                })
                .map_err(OutboxError::from_transaction)?;
        }
        if !legacy.is_empty() {
            self.db.flush()?;
            tracing::info!(
                marks = legacy.len(),
                "moved outbox marks into their own tree"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_of_an_older_release_are_moved_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path().join("db")).unwrap();
        let status = db.open_tree("mail_status").unwrap();
        status
            .insert(b"\0schedule:weekly", b"2026-11-23T06:00:00+00:00")
            .unwrap();
        status.insert(b"\0progress:alerts", b"42").unwrap();
        status.insert(b"report-1", b"{}").unwrap();
        let marks = Marks::open(&db, &status).unwrap();
        assert_eq!(
            marks.get(&schedule("weekly")).unwrap().as_deref(),
            Some("2026-11-23T06:00:00+00:00")
        );
        assert_eq!(
            marks.get(&progress("alerts")).unwrap().as_deref(),
            Some("42")
        );
        // Statuses stay; the marks left the status tree.
        assert_eq!(status.len(), 1);
        assert!(status.get(b"report-1").unwrap().is_some());
        // Opening again changes nothing.
        let again = Marks::open(&db, &status).unwrap();
        assert_eq!(
            again.get(&progress("alerts")).unwrap().as_deref(),
            Some("42")
        );
        assert_eq!(again.tree().len(), 2);
    }
}
