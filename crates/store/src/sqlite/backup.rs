//! Consistent copies of the embedded database, for `laissez backup` and
//! `laissez restore`.
//!
//! [`copy_database`] uses SQLite's online backup API in a single step: the
//! whole file is copied inside one read transaction, so the copy is the
//! database as of one commit even while a server goes on writing (in WAL
//! mode a reader never blocks the writer). The copy is written beside its
//! final name, checked ([`check_database`]: SQLite's integrity check and the
//! audit chain) and only then linked into place, so a failed or interrupted
//! copy never looks like a good one, and no file is ever replaced. Nothing is
//! ever written to the source.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

/// How often a copy step that found the source locked is retried.
const BUSY_RETRIES: usize = 500;
/// The pause between those retries.
const BUSY_PAUSE: Duration = Duration::from_millis(10);

/// Why a copy or a check failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The source database cannot be read.
    #[error("cannot read the database {path}: {why}")]
    Source {
        /// The source file.
        path: PathBuf,
        /// What went wrong.
        why: String,
    },
    /// The copy cannot be written.
    #[error("cannot write {path}: {why}")]
    Target {
        /// The file being written.
        path: PathBuf,
        /// What went wrong.
        why: String,
    },
    /// The target exists already; a copy never replaces a file.
    #[error("{0} exists already; copy into a new name")]
    Exists(PathBuf),
    /// SQLite's integrity check found damage.
    #[error("{path} is damaged: {why}")]
    Damaged {
        /// The checked file.
        path: PathBuf,
        /// The integrity check's first complaint.
        why: String,
    },
    /// The audit chain does not verify.
    #[error("the audit chain in {path} breaks at record {seq}: {why}")]
    ChainBroken {
        /// The checked file.
        path: PathBuf,
        /// The first record that does not verify.
        seq: i64,
        /// Why it does not.
        why: String,
    },
}

/// What a checked database holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checked {
    /// Audit records, every one verified in its chain.
    pub audit_records: i64,
}

/// Copies the database `source` into the new file `target` (mode 0600) as of
/// one commit, then checks the copy; returns what it holds.
pub fn copy_database(source: &Path, target: &Path) -> Result<Checked, BackupError> {
    if target.exists() {
        return Err(BackupError::Exists(target.to_owned()));
    }
    let from = open_existing(source)?;
    let partial = partial_name(target);
    // Created exclusively: a copy running at the same time into the same
    // name fails here instead of sharing (or deleting) the other's file.
    create_private(&partial).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => BackupError::Exists(partial.clone()),
        _ => target_error(&partial, e),
    })?;
    let written = (|| {
        let mut to = Connection::open(&partial).map_err(|e| target_error(&partial, e))?;
        copy_all(&from, &mut to).map_err(|e| target_error(&partial, e))?;
        drop(to);
        let checked = check_database(&partial)?;
        place(&partial, target)?;
        Ok(checked)
    })();
    // Ours alone (created exclusively): gone whether the copy failed or was
    // given its name, which is then a second link to the same file.
    let _ = std::fs::remove_file(&partial);
    written
}

/// Gives the checked copy at `partial` the name `target` without ever
/// replacing a file: unlike a rename, a hard link fails when the name exists
/// (say, made by another copy since the first check).
fn place(partial: &Path, target: &Path) -> Result<(), BackupError> {
    std::fs::hard_link(partial, target).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => BackupError::Exists(target.to_owned()),
        _ => target_error(target, e),
    })
}

/// Checks the database at `path` without changing it: SQLite's integrity
/// check, then every audit record against its chain and the stored head.
pub fn check_database(path: &Path) -> Result<Checked, BackupError> {
    let conn = open_existing(path)?;
    let damaged = |why: String| BackupError::Damaged {
        path: path.to_owned(),
        why,
    };
    let first: String = conn
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .map_err(|e| damaged(e.to_string()))?;
    if first != "ok" {
        return Err(damaged(first));
    }
    let verification = super::rows::verify_audit(&conn).map_err(|e| damaged(e.to_string()))?;
    if let Some(broken) = verification.first_break {
        return Err(BackupError::ChainBroken {
            path: path.to_owned(),
            seq: broken.seq,
            why: broken.why,
        });
    }
    Ok(Checked {
        audit_records: verification.records,
    })
}

/// Opens a database file that must exist already, never creating one.
/// (Read-write: a read-only connection cannot always open a WAL database
/// whose server is stopped; nothing here writes to it.)
fn open_existing(path: &Path) -> Result<Connection, BackupError> {
    let source = |why: String| BackupError::Source {
        path: path.to_owned(),
        why,
    };
    if !path.is_file() {
        return Err(source("no such file".into()));
    }
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE)
        .map_err(|e| source(e.to_string()))?;
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(|e| source(e.to_string()))?;
    // Reading the schema proves it is a database, not any file.
    conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))
        .map_err(|e| source(e.to_string()))?;
    Ok(conn)
}

/// Copies every page of `from` into `to` in one step, retrying while another
/// connection holds a lock that keeps the step from starting.
fn copy_all(from: &Connection, to: &mut Connection) -> rusqlite::Result<()> {
    let backup = Backup::new(from, to)?;
    for _ in 0..BUSY_RETRIES {
        match backup.step(-1)? {
            StepResult::Done => return Ok(()),
            // Busy or locked: another connection holds a lock; wait, retry.
            _ => std::thread::sleep(BUSY_PAUSE),
        }
    }
    Err(rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
        Some("the database stayed locked; try again".into()),
    ))
}

/// Where a copy is written before it is checked.
fn partial_name(target: &Path) -> PathBuf {
    let mut name = target.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// Creates the new file `path` for writing, readable by its owner only
/// from the start (never for a moment by others); fails if it exists.
pub fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

fn target_error(path: &Path, error: impl std::fmt::Display) -> BackupError {
    BackupError::Target {
        path: path.to_owned(),
        why: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placing_a_copy_never_replaces_a_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (partial, target) = (dir.path().join("a.partial"), dir.path().join("a"));
        std::fs::write(&partial, "copy").expect("write");
        std::fs::write(&target, "someone else's").expect("write");
        assert!(matches!(
            place(&partial, &target),
            Err(BackupError::Exists(_))
        ));
        assert_eq!(
            std::fs::read_to_string(&target).expect("read"),
            "someone else's"
        );
        std::fs::remove_file(&target).expect("remove");
        place(&partial, &target).expect("placed");
        assert_eq!(std::fs::read_to_string(&target).expect("read"), "copy");
    }

    #[test]
    fn a_copy_under_way_into_the_same_name_is_left_alone() {
        let dir = tempfile::tempdir().expect("temp dir");
        let source = dir.path().join("source.db");
        Connection::open(&source)
            .and_then(|c| c.execute_batch("CREATE TABLE t (x)"))
            .expect("a database");
        let target = dir.path().join("copy.db");
        // Another copy is writing its partial file: this one stops, and
        // neither deletes nor writes that file.
        std::fs::write(partial_name(&target), "the other copy").expect("write");
        assert!(matches!(
            copy_database(&source, &target),
            Err(BackupError::Exists(_))
        ));
        assert_eq!(
            std::fs::read_to_string(partial_name(&target)).expect("read"),
            "the other copy"
        );
        assert!(!target.exists());
    }
}
