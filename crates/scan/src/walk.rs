//! Scanning files and directories in parallel.
//!
//! Directories are walked with the `ignore` crate, so `.gitignore`,
//! `.ignore` and the global git excludes are respected (inside a git
//! repository or not); hidden files such as `.env` are scanned, the `.git`
//! folder is not (use `--git` for history). Files that look binary are
//! skipped. Every core scans files from one shared list.
//!
//! A folder whose own `.gitignore` ignores everything in it (`*`, as
//! Laissez's data folder and Python's virtual environments write) is kept out
//! of scans of the folders around it, but scanned when it is named itself:
//! naming it is asking for it. [`Ignores::None`] (`--no-ignore`) honours no
//! ignore file at all.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::{Error, Find, Scanner, looks_binary};

/// The result of scanning several sources.
#[derive(Debug, Default)]
pub struct Outcome {
    /// What was found.
    pub finds: Vec<Find>,
    /// Bytes scanned.
    pub bytes: u64,
    /// Texts (files or blobs) scanned.
    pub texts: u64,
    /// Binaries skipped.
    pub binaries_skipped: u64,
    /// Files that could not be read, with the reason (the scan goes on).
    pub unreadable: Vec<String>,
}

/// One file to scan and its size.
#[derive(Clone, Debug)]
pub struct FileEntry {
    /// The path.
    pub path: PathBuf,
    /// Its size, for progress.
    pub size: u64,
}

/// Which ignore files a walk honours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ignores {
    /// `.gitignore`, `.ignore` and git's excludes, except a named folder's
    /// own ignore-everything `.gitignore`.
    Honour,
    /// None: every file that is not binary is scanned.
    None,
}

/// Lists the files under `paths` (files are taken as they are; directories
/// are walked honouring ignore files as `ignores` says). A path that does not
/// exist is an error.
pub fn list_files(paths: &[PathBuf], ignores: Ignores) -> Result<Vec<FileEntry>, Error> {
    let mut files = Vec::new();
    for path in paths {
        let metadata = std::fs::metadata(path).map_err(|source| Error::Read {
            path: path.display().to_string(),
            source,
        })?;
        if metadata.is_file() {
            files.push(FileEntry {
                path: path.clone(),
                size: metadata.len(),
            });
            continue;
        }
        let honour = ignores == Ignores::Honour;
        let git_ignore = honour && !ignores_itself(path);
        let walker = ignore::WalkBuilder::new(path)
            .hidden(false)
            .require_git(false)
            .git_ignore(git_ignore)
            .ignore(honour)
            .git_exclude(honour)
            .git_global(honour)
            .parents(honour)
            .filter_entry(|entry| entry.file_name() != ".git")
            .build();
        for entry in walker {
            let entry = entry.map_err(|e| Error::Read {
                path: path.display().to_string(),
                source: std::io::Error::other(e.to_string()),
            })?;
            if entry.file_type().is_some_and(|t| t.is_file()) {
                let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                files.push(FileEntry {
                    path: entry.into_path(),
                    size,
                });
            }
        }
    }
    Ok(files)
}

/// Whether `folder`'s own `.gitignore` ignores everything in it: its only
/// pattern is `*` (or `/*`, `**`), the mark of a generated folder.
fn ignores_itself(folder: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(folder.join(".gitignore")) else {
        return false;
    };
    let mut patterns = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'));
    matches!(patterns.next(), Some("*" | "/*" | "**")) && patterns.next().is_none()
}

/// Scans `files` on every core; `progress` is told the bytes of each file done.
pub fn scan_files(
    scanner: &Scanner,
    files: &[FileEntry],
    progress: &(dyn Fn(u64) + Sync),
) -> Outcome {
    let next = AtomicUsize::new(0);
    let outcome = Mutex::new(Outcome::default());
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(files.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                let mut local = Outcome::default();
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(file) = files.get(index) else { break };
                    scan_one(scanner, &file.path, &mut local);
                    progress(file.size);
                }
                merge(&outcome, local);
            });
        }
    });
    let mut outcome = outcome.into_inner().unwrap_or_else(|e| e.into_inner());
    sort_finds(&mut outcome.finds);
    outcome
}

/// Adds one worker's results to the shared outcome.
pub(crate) fn merge(outcome: &Mutex<Outcome>, local: Outcome) {
    let mut shared = outcome.lock().unwrap_or_else(|e| e.into_inner());
    shared.finds.extend(local.finds);
    shared.bytes += local.bytes;
    shared.texts += local.texts;
    shared.binaries_skipped += local.binaries_skipped;
    shared.unreadable.extend(local.unreadable);
}

/// Orders finds by place, so reports are stable from run to run.
pub(crate) fn sort_finds(finds: &mut [Find]) {
    finds.sort_by(|a, b| {
        (
            &a.location.commit,
            &a.location.path,
            a.location.line,
            a.location.column,
        )
            .cmp(&(
                &b.location.commit,
                &b.location.path,
                b.location.line,
                b.location.column,
            ))
    });
}

fn scan_one(scanner: &Scanner, path: &Path, outcome: &mut Outcome) {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => {
            outcome.unreadable.push(format!("{}: {e}", path.display()));
            return;
        }
    };
    scan_blob(scanner, &bytes, &path.display().to_string(), None, outcome);
}

/// Scans one text into `outcome`, skipping binaries.
pub(crate) fn scan_blob(
    scanner: &Scanner,
    bytes: &[u8],
    path: &str,
    commit: Option<&str>,
    outcome: &mut Outcome,
) {
    if looks_binary(bytes) {
        outcome.binaries_skipped += 1;
        return;
    }
    outcome.texts += 1;
    outcome.bytes += bytes.len() as u64;
    outcome.finds.extend(scanner.scan_text(bytes, path, commit));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_ignore_everything_file_marks_a_folder_as_ignoring_itself() {
        let table = [
            ("# Laissez's data folder\n*\n", true),
            ("/*\n", true),
            ("**\n", true),
            ("*\n!keep.txt\n", false),
            ("target/\n", false),
            ("*.log\n", false),
            ("", false),
        ];
        for (text, expected) in table {
            let folder = tempfile::tempdir().unwrap();
            std::fs::write(folder.path().join(".gitignore"), text).unwrap();
            assert_eq!(ignores_itself(folder.path()), expected, "{text:?}");
        }
        let none = tempfile::tempdir().unwrap();
        assert!(!ignores_itself(none.path()));
    }
}
