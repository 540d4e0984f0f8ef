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

/// Runs `tests/interop/SCRIPT args...` with the repository's Python
/// environment (installed first if needed); its JSON lines by `step`.
pub async fn script_steps(
    script: &str,
    args: &[&str],
) -> serde_json::Map<String, serde_json::Value> {
    let python = tokio::task::spawn_blocking(python)
        .await
        .expect("set up the Python environment");
    let script = repo_root().join("tests/interop").join(script);
    steps(&python, &script, args).await
}

/// Runs `program script args...` in the script's folder; panics with its
/// output unless it exits successfully; returns its JSON lines (one object
/// each, named by its `step`) by their `step`.
pub async fn steps(
    program: &Path,
    script: &Path,
    args: &[&str],
) -> serde_json::Map<String, serde_json::Value> {
    let mut command = Command::new(program);
    command.arg(script).args(args);
    if let Some(dir) = script.parent() {
        command.current_dir(dir);
    }
    let program = program.display().to_string();
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("join")
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{} failed ({}):\n{stdout}\n{stderr}",
        script.display(),
        output.status
    );
    // Shown with `--nocapture`.
    eprintln!("{}:\n{stdout}", script.display());
    let mut steps = serde_json::Map::new();
    for line in stdout.lines().filter(|l| l.starts_with('{')) {
        let step: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {line}", script.display()));
        let name = step["step"].as_str().unwrap_or_default().to_owned();
        steps.insert(name, step);
    }
    steps
}

/// Parses an OpenMetrics document with the Prometheus project's own Python
/// parser (prometheus-client, `tests/interop/parse_metrics.py`); panics
/// with the parser's words when it refuses the document.
pub fn parse_metrics(text: &str) -> serde_json::Value {
    use std::io::Write;
    use std::process::Stdio;
    let script = repo_root().join("tests/interop/parse_metrics.py");
    let mut child = Command::new(python())
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the parser");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write the document");
    let out = child.wait_with_output().expect("the parser's output");
    assert!(
        out.status.success(),
        "the Prometheus parser refused the document:\n{}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}
