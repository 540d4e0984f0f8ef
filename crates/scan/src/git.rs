//! Scanning a git repository's whole history, or its staged changes.
//!
//! History: `git log --all --raw` lists, oldest first, every blob each commit
//! added or changed; each blob id is kept once, with the first commit and path
//! that introduced it. `git cat-file --batch` then streams those blobs, and
//! every core scans them as they arrive, so a blob shared by a thousand
//! commits and branches is read and scanned once. Staged changes are the
//! blobs `git diff --cached` lists, for a pre-commit hook.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc;

use crate::walk::{Outcome, merge, scan_blob, sort_finds};
use crate::{Error, Scanner};

/// A blob to scan and where it first appeared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobRef {
    /// The blob id.
    pub id: String,
    /// The commit that introduced it (none for staged blobs).
    pub commit: Option<String>,
    /// Its path in that commit.
    pub path: String,
}

/// Lists every distinct blob in the history of every ref of `repo`, with
/// the first commit and path that introduced it.
pub fn history_blobs(repo: &Path) -> Result<Vec<BlobRef>, Error> {
    let output = git(
        repo,
        &[
            "log",
            "--all",
            "--reverse",
            "--raw",
            "--no-abbrev",
            "--no-renames",
            "-m",
            "--diff-filter=AMT",
            "--format=%x01%H",
            "-z",
        ],
    )?;
    Ok(parse_raw(&output, true))
}

/// Lists the blobs staged for the next commit in `repo`.
pub fn staged_blobs(repo: &Path) -> Result<Vec<BlobRef>, Error> {
    let output = git(
        repo,
        &[
            "diff",
            "--cached",
            "--raw",
            "--no-abbrev",
            "--no-renames",
            "--diff-filter=ACMRT",
            "-z",
        ],
    )?;
    Ok(parse_raw(&output, false))
}

/// Parses `--raw -z` output (with `\x01<commit>` lines when `commits`),
/// keeping the first appearance of each blob.
fn parse_raw(output: &[u8], commits: bool) -> Vec<BlobRef> {
    let mut seen = HashSet::new();
    let mut blobs = Vec::new();
    let mut commit: Option<String> = None;
    let mut fields = output.split(|&b| b == 0);
    while let Some(field) = fields.next() {
        let field = field.strip_prefix(b"\n").unwrap_or(field);
        if let Some(id) = field.strip_prefix(b"\x01") {
            commit = Some(String::from_utf8_lossy(id).into_owned());
            continue;
        }
        if field.first() != Some(&b':') {
            continue;
        }
        let Some(path) = fields.next() else { break };
        // ":old_mode new_mode old_id new_id status"
        let header = String::from_utf8_lossy(&field[1..]);
        let parts: Vec<&str> = header.split(' ').collect();
        let [_, new_mode, _, new_id, _] = parts[..] else {
            continue;
        };
        // Submodules (gitlinks) are commits in another repository.
        if new_mode == "160000" || new_id.bytes().all(|b| b == b'0') {
            continue;
        }
        if seen.insert(new_id.to_owned()) {
            blobs.push(BlobRef {
                id: new_id.to_owned(),
                commit: if commits { commit.clone() } else { None },
                path: String::from_utf8_lossy(path).into_owned(),
            });
        }
    }
    blobs
}

/// Streams `blobs` out of `repo` and scans them on every core; `progress`
/// is told the bytes of each blob done.
pub fn scan_blobs(
    scanner: &Scanner,
    repo: &Path,
    blobs: &[BlobRef],
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Outcome, Error> {
    let mut child = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["cat-file", "--batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Git(format!("cannot run git: {e}")))?;
    let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(Error::Git("cannot talk to git cat-file".into()));
    };
    let outcome = Mutex::new(Outcome::default());
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let (sender, receiver) = mpsc::sync_channel::<(usize, Vec<u8>)>(workers * 4);
    let receiver = Mutex::new(receiver);
    let result = std::thread::scope(|scope| -> Result<(), Error> {
        scope.spawn(move || {
            for blob in blobs {
                if writeln!(stdin, "{}", blob.id).is_err() {
                    break;
                }
            }
            // Dropping stdin ends git's input.
        });
        for _ in 0..workers {
            scope.spawn(|| {
                let mut local = Outcome::default();
                loop {
                    let next = receiver.lock().map(|r| r.recv());
                    let Ok(Ok((index, bytes))) = next else { break };
                    let blob = &blobs[index];
                    scan_blob(
                        scanner,
                        &bytes,
                        &blob.path,
                        blob.commit.as_deref(),
                        &mut local,
                    );
                    progress(bytes.len() as u64);
                }
                merge(&outcome, local);
            });
        }
        let mut reader = BufReader::with_capacity(1 << 20, stdout);
        let mut header = Vec::new();
        for index in 0..blobs.len() {
            header.clear();
            reader
                .read_until(b'\n', &mut header)
                .map_err(|e| Error::Git(format!("reading blobs: {e}")))?;
            let text = String::from_utf8_lossy(&header);
            let mut parts = text.split_whitespace();
            let (Some(_), Some(kind), Some(size)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(Error::Git(format!("unexpected cat-file answer: {text}")));
            };
            let size: usize = size
                .parse()
                .map_err(|_| Error::Git(format!("unexpected cat-file answer: {text}")))?;
            let mut bytes = vec![0; size + 1];
            reader
                .read_exact(&mut bytes)
                .map_err(|e| Error::Git(format!("reading blobs: {e}")))?;
            bytes.truncate(size);
            if kind == "blob" && sender.send((index, bytes)).is_err() {
                break;
            }
        }
        drop(sender);
        Ok(())
    });
    let status = child
        .wait()
        .map_err(|e| Error::Git(format!("git cat-file: {e}")))?;
    result?;
    if !status.success() {
        return Err(Error::Git(format!("git cat-file exited with {status}")));
    }
    let mut outcome = outcome.into_inner().unwrap_or_else(|e| e.into_inner());
    sort_finds(&mut outcome.finds);
    Ok(outcome)
}

/// Writes a pre-commit hook into `repo` that runs `laissez scan --staged`
/// with `program`. An existing hook not written by Laissez is kept unless
/// `force`. Returns the hook's path.
pub fn install_hook(repo: &Path, program: &Path, force: bool) -> Result<std::path::PathBuf, Error> {
    let hooks = git(repo, &["rev-parse", "--git-path", "hooks"])?;
    let hooks = String::from_utf8_lossy(&hooks).trim().to_owned();
    let hooks = repo.join(hooks);
    std::fs::create_dir_all(&hooks).map_err(|source| Error::Read {
        path: hooks.display().to_string(),
        source,
    })?;
    let hook = hooks.join("pre-commit");
    if let Ok(existing) = std::fs::read_to_string(&hook)
        && !existing.contains(HOOK_MARKER)
        && !force
    {
        return Err(Error::Config(format!(
            "{} already exists and was not written by Laissez; add `{} scan --staged` to it, or pass --force to replace it",
            hook.display(),
            program.display()
        )));
    }
    let script = format!(
        "#!/bin/sh\n# {HOOK_MARKER}: refuses commits that add credentials.\n# Accept a find with a `laissez:allow` comment on its line or a baseline.\nexec '{}' scan --staged\n",
        program.display().to_string().replace('\'', "'\\''")
    );
    std::fs::write(&hook, script).map_err(|source| Error::Read {
        path: hook.display().to_string(),
        source,
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).map_err(
            |source| Error::Read {
                path: hook.display().to_string(),
                source,
            },
        )?;
    }
    Ok(hook)
}

/// Written into hooks Laissez installs, so it can replace its own.
const HOOK_MARKER: &str = "Installed by `laissez scan install-hook`";

fn git(repo: &Path, args: &[&str]) -> Result<Vec<u8>, Error> {
    let output = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .output()
        .map_err(|e| Error::Git(format!("cannot run git: {e}")))?;
    if !output.status.success() {
        return Err(Error::Git(format!(
            "{} is not a readable git repository: {}",
            repo.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(output.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_log_keeps_the_first_commit_of_each_blob() {
        let old = "0".repeat(40);
        let a = "a".repeat(40);
        let b = "b".repeat(40);
        let text = format!(
            "\x01c1\0\n:000000 100644 {old} {a} A\0x.txt\0:000000 160000 {old} {b} A\0sub\0\x01c2\0\n:000000 100644 {old} {a} A\0copy.txt\0"
        );
        let blobs = parse_raw(text.as_bytes(), true);
        assert_eq!(
            blobs,
            vec![BlobRef {
                id: a,
                commit: Some("c1".into()),
                path: "x.txt".into()
            }]
        );
    }
}
