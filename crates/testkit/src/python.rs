//! The Python environment the interop tests run third-party clients and
//! servers in: `./.venv` inside the repository, with the packages pinned in
//! `tests/interop/requirements.txt`. Created on first use and reused while
//! the requirements are unchanged; any failure panics with what went wrong,
//! so a test that cannot get its tools fails loudly instead of skipping.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

static SETUP: Mutex<()> = Mutex::new(());

/// The repository's root folder.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

fn run(command: &mut Command, what: &str) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        output.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The venv's Python interpreter, creating the venv and installing the
/// pinned requirements if needed.
pub fn python() -> PathBuf {
    let _guard = SETUP.lock().unwrap_or_else(|e| e.into_inner());
    let root = repo_root();
    let venv = root.join(".venv");
    let python = venv.join("bin/python");
    let requirements = root.join("tests/interop/requirements.txt");
    let wanted = std::fs::read_to_string(&requirements).expect("tests/interop/requirements.txt");
    let stamp = venv.join("laissez-requirements.txt");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) && python.exists() {
        return python;
    }
    if !python.exists() {
        run(
            Command::new("python3").args(["-m", "venv"]).arg(&venv),
            "creating the Python virtual environment (python3 -m venv .venv)",
        );
    }
    run(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(&requirements),
        "installing tests/interop/requirements.txt from PyPI",
    );
    std::fs::write(&stamp, wanted).expect("write the venv stamp");
    python
}
