//! `laissez backup` and `laissez restore`: a consistent copy of an embedded
//! deployment's data folder, taken while its server runs, and a new data
//! folder made from one.
//!
//! A backup is a folder: the database copied as of one commit with SQLite's
//! online backup API and checked (integrity and the audit chain, see
//! [`laissez_store::sqlite::backup`]), and the signing keys and admin token
//! beside it, every file readable by its owner only. Both commands refuse
//! to write into a folder that holds anything, so neither ever overwrites a
//! live deployment or an earlier backup.

use std::path::{Path, PathBuf};

use clap::Args;
use laissez_server::bootstrap::ADMIN_TOKEN_FILE;
use laissez_server::oauth::keys::KEY_FILE;
use laissez_server::run::DATABASE_FILE;
use laissez_store::sqlite::backup::{Checked, copy_database, create_private};
use serde_json::json;

use crate::error::CliError;

/// The files of a data folder a backup carries besides the database.
const KEPT_FILES: [&str; 2] = [KEY_FILE, ADMIN_TOKEN_FILE];
/// Keeps the folder out of git, as `laissez serve` does for a data folder.
const GITIGNORE: &str = ".gitignore";

/// `laissez backup DATA_DIR OUT`.
#[derive(Args)]
pub struct BackupArgs {
    /// The data folder of an embedded deployment (its server may be running).
    pub data_dir: PathBuf,
    /// The backup folder to create (new, or empty).
    pub out: PathBuf,
}

/// `laissez restore BACKUP DATA_DIR`.
#[derive(Args)]
pub struct RestoreArgs {
    /// A folder written by `laissez backup`.
    pub backup: PathBuf,
    /// The data folder to create (new, or empty); then `laissez serve --data DATA_DIR`.
    pub data_dir: PathBuf,
}

/// Copies `args.data_dir` into the new folder `args.out`.
pub fn backup(args: BackupArgs, json: bool) -> Result<(), CliError> {
    let copied = copy_folder(&args.data_dir, &args.out)?;
    report(
        json,
        &copied,
        &format!(
            "backed up {} into {}: {}; it holds the signing keys and the admin token, so keep it as secret as the data folder",
            args.data_dir.display(),
            args.out.display(),
            copied.summary(),
        ),
    );
    Ok(())
}

/// Makes the new data folder `args.data_dir` from the backup `args.backup`.
pub fn restore(args: RestoreArgs, json: bool) -> Result<(), CliError> {
    let copied = copy_folder(&args.backup, &args.data_dir)?;
    report(
        json,
        &copied,
        &format!(
            "restored {} into {}: {}; start it with `laissez serve --data {}`",
            args.backup.display(),
            args.data_dir.display(),
            copied.summary(),
            args.data_dir.display(),
        ),
    );
    Ok(())
}

/// What one copy wrote.
struct Copied {
    checked: Checked,
    files: Vec<&'static str>,
}

impl Copied {
    /// The database and the files beside it, in words.
    fn summary(&self) -> String {
        let files = if self.files.is_empty() {
            "no other files".to_owned()
        } else {
            self.files.join(", ")
        };
        format!(
            "the database ({} audit records, chain intact), {files}",
            self.checked.audit_records
        )
    }
}

fn report(json: bool, copied: &Copied, text: &str) {
    if json {
        crate::output::json(&json!({
            "audit_records": copied.checked.audit_records,
            "chain": "intact",
            "files": copied.files,
        }));
    } else {
        announce!("{text}");
    }
}

/// Copies the database of the data folder `from` and the files beside it
/// into the new folder `to`.
fn copy_folder(from: &Path, to: &Path) -> Result<Copied, CliError> {
    let database = from.join(DATABASE_FILE);
    if !database.is_file() {
        return Err(CliError::Local(format!(
            "{} holds no Laissez database ({DATABASE_FILE}); name a data folder or a backup folder",
            from.display()
        )));
    }
    let created = create_empty_folder(to)?;
    let mut written = Vec::new();
    let copied = copy_into(from, &database, to, &mut written);
    if copied.is_err() {
        // Undo this run's own files only (never another's that raced into
        // the same folder), so the command can be run again.
        for path in &written {
            let _ = std::fs::remove_file(path);
        }
        if created {
            let _ = std::fs::remove_dir(to);
        }
    }
    copied
}

/// Copies into `to`, adding each file it creates to `written`.
fn copy_into(
    from: &Path,
    database: &Path,
    to: &Path,
    written: &mut Vec<PathBuf>,
) -> Result<Copied, CliError> {
    let target = to.join(DATABASE_FILE);
    let checked = copy_database(database, &target).map_err(|e| CliError::Local(e.to_string()))?;
    written.push(target);
    let mut files = Vec::new();
    for name in KEPT_FILES {
        let source = from.join(name);
        if source.is_file() {
            let bytes = std::fs::read(&source)
                .map_err(|e| CliError::Local(format!("cannot read {}: {e}", source.display())))?;
            write_new(&to.join(name), &bytes, written)?;
            files.push(name);
        }
    }
    write_new(
        &to.join(GITIGNORE),
        b"# A Laissez data folder or backup: the database, signing keys and the admin token. Never commit it.\n*\n",
        written,
    )?;
    Ok(Copied { checked, files })
}

/// Creates `path` (mode 0700) unless it is an empty folder already; returns
/// whether it created it.
fn create_empty_folder(path: &Path) -> Result<bool, CliError> {
    match std::fs::read_dir(path) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(CliError::Local(format!(
                    "{} is not empty; name a new folder (nothing was written)",
                    path.display()
                )));
            }
            Ok(false)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut builder = std::fs::DirBuilder::new();
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt;
                builder.mode(0o700);
            }
            builder
                .create(path)
                .map(|()| true)
                .map_err(|e| CliError::Local(format!("cannot create {}: {e}", path.display())))
        }
        Err(e) => Err(CliError::Local(format!("{}: {e}", path.display()))),
    }
}

/// Writes `bytes` to the new file `path` (never an existing one), readable
/// by its owner only, and records it in `written`.
fn write_new(path: &Path, bytes: &[u8], written: &mut Vec<PathBuf>) -> Result<(), CliError> {
    use std::io::Write as _;
    let mut file = create_private(path)
        .map_err(|e| CliError::Local(format!("cannot create {}: {e}", path.display())))?;
    written.push(path.to_owned());
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| CliError::Local(format!("cannot write {}: {e}", path.display())))
}
