//! The npm packages the interop tests run (`tests/interop/node_modules`,
//! installed from `tests/interop/package-lock.json` with `npm ci`). Installed
//! on first use and reused while the lock file is unchanged; any failure
//! panics with what went wrong.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

use crate::python::repo_root;

static SETUP: Mutex<()> = Mutex::new(());

/// The interop folder, with its npm packages installed.
pub fn interop_dir() -> PathBuf {
    let _guard = SETUP.lock().unwrap_or_else(|e| e.into_inner());
    let dir = repo_root().join("tests/interop");
    let lock = std::fs::read_to_string(dir.join("package-lock.json"))
        .expect("tests/interop/package-lock.json");
    let stamp = dir.join("node_modules/.laissez-package-lock.json");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(lock.as_str()) {
        return dir;
    }
    let output = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--silent"])
        .current_dir(&dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run npm (is Node.js installed?): {e}"));
    assert!(
        output.status.success(),
        "npm ci in tests/interop failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::write(&stamp, lock).expect("write the npm stamp");
    dir
}
