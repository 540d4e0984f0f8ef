//! What packagers ship beside the binary: shell completions, man pages,
//! the systemd unit, the Dockerfile and the pre-commit hook, each checked
//! the way its consumer reads it.

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_laissez");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env_remove("LAISSEZ_CONFIG")
        .output()
        .expect("run laissez")
}

#[test]
fn completions_cover_the_commands_in_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let out = run(&["completions", shell]);
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8(out.stdout).unwrap();
        for word in ["serve", "gate", "scan", "ops-listen", "log-format"] {
            assert!(script.contains(word), "{shell} completes {word}");
        }
    }
    // Bash reads the script without a syntax error.
    let temp = tempfile::tempdir().unwrap();
    let path = temp.path().join("laissez.bash");
    std::fs::write(&path, run(&["completions", "bash"]).stdout).unwrap();
    let checked = Command::new("bash").arg("-n").arg(&path).status().unwrap();
    assert!(checked.success(), "bash -n refused the script");
    let unknown = run(&["completions", "tcsh"]);
    assert!(!unknown.status.success());
}

#[test]
fn man_pages_are_written_for_every_command() {
    let temp = tempfile::tempdir().unwrap();
    let out_dir = temp.path().join("man1");
    let out = run(&["man", "--out", out_dir.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for page in [
        "laissez.1",
        "laissez-serve.1",
        "laissez-gate.1",
        "laissez-token-create.1",
    ] {
        let text =
            std::fs::read_to_string(out_dir.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(
            text.starts_with(".ie") || text.contains(".TH"),
            "{page} is roff"
        );
    }
    let serve = std::fs::read_to_string(out_dir.join("laissez-serve.1")).unwrap();
    assert!(serve.contains("config"), "the serve page lists --config");
    if Command::new("man").arg("--version").output().is_ok() {
        let rendered = Command::new("man")
            .arg("-l")
            .arg(out_dir.join("laissez-gate.1"))
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100")
            .output()
            .unwrap();
        if rendered.status.success() {
            let text = String::from_utf8_lossy(&rendered.stdout);
            assert!(text.contains("ops"), "{text}");
        }
    }
}

/// The `Key=value` lines of a unit's section.
fn directives(unit: &str, section: &str) -> Vec<(String, String)> {
    let mut current = String::new();
    let mut found = Vec::new();
    for line in unit.lines().map(str::trim) {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = name.to_owned();
            continue;
        }
        if current == section
            && let Some((key, value)) = line.split_once('=')
        {
            found.push((key.trim().to_owned(), value.trim().to_owned()));
        }
    }
    found
}

#[test]
fn the_systemd_unit_is_hardened_and_verifies() {
    let unit = std::fs::read_to_string(repo().join("deploy/laissez.service")).unwrap();
    let service = directives(&unit, "Service");
    let value = |key: &str| {
        service
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("the unit sets {key}"))
    };
    assert_eq!(value("DynamicUser"), "yes");
    assert_eq!(value("ProtectSystem"), "strict");
    assert_eq!(value("NoNewPrivileges"), "yes");
    assert_eq!(value("PrivateTmp"), "yes");
    assert_eq!(value("CapabilityBoundingSet"), "");
    assert_eq!(value("StateDirectory"), "laissez");
    assert_eq!(value("SystemCallFilter"), "@system-service");
    assert!(value("RestrictAddressFamilies").contains("AF_INET6"));
    assert!(value("ExecStart").contains("serve --config"));
    assert!(value("ExecReload").contains("-HUP"));
    // With systemd's own checker where there is one, on a copy whose
    // ExecStart is this build's binary (it checks the file exists).
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        let temp = tempfile::tempdir().unwrap();
        let copy = temp.path().join("laissez.service");
        std::fs::write(&copy, unit.replace("/usr/local/bin/laissez", BIN)).unwrap();
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&copy)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && !stderr.contains("laissez.service:"),
            "{stderr}"
        );
    }
}

#[test]
fn the_dockerfile_builds_in_one_stage_and_runs_unprivileged_in_another() {
    let text = std::fs::read_to_string(repo().join("deploy/Dockerfile")).unwrap();
    let instructions: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let from: Vec<&&str> = instructions
        .iter()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    assert_eq!(from.len(), 2, "multi-stage: {from:?}");
    assert!(from[0].contains(" AS build"));
    assert!(from[1].contains("distroless") || from[1].contains("slim"));
    let final_stage = instructions
        .iter()
        .skip_while(|l| !l.starts_with("FROM ") || l.contains(" AS build"))
        .collect::<Vec<_>>();
    let user = final_stage
        .iter()
        .rev()
        .find(|l| l.starts_with("USER "))
        .expect("the image sets a user");
    let name = user
        .trim_start_matches("USER ")
        .split(':')
        .next()
        .unwrap_or_default();
    assert!(!matches!(name, "root" | "0" | ""), "{user}");
    assert!(
        final_stage
            .iter()
            .any(|l| l.starts_with("ENTRYPOINT") && l.contains("laissez"))
    );
    assert!(instructions.iter().any(|l| l.contains("--locked")));
}

#[test]
fn the_pre_commit_hook_runs_laissez_scan_on_the_files_it_is_given() {
    let hooks = std::fs::read_to_string(repo().join(".pre-commit-hooks.yaml")).unwrap();
    assert!(hooks.contains("- id: laissez-scan"));
    let entry = hooks
        .lines()
        .find_map(|l| l.trim().strip_prefix("entry:"))
        .expect("the hook has an entry")
        .trim();
    let words: Vec<&str> = entry.split_whitespace().collect();
    assert_eq!(words[0], "laissez");
    let language = hooks
        .lines()
        .find_map(|l| l.trim().strip_prefix("language:"))
        .unwrap()
        .trim();
    assert_eq!(language, "system");
    // pre-commit appends the staged file names to the entry.
    let temp = tempfile::tempdir().unwrap();
    let clean = temp.path().join("notes.md");
    std::fs::write(&clean, "nothing to see\n").unwrap();
    let leaky = temp.path().join("config.env");
    std::fs::write(&leaky, "AWS_ACCESS_KEY_ID=AKIAZ3MSJV4WWNKWW5XR\n").unwrap();
    let hook = |files: &[&Path]| {
        Command::new(BIN)
            .args(&words[1..])
            .args(files)
            .current_dir(temp.path())
            .output()
            .unwrap()
    };
    let passed = hook(&[&clean]);
    assert_eq!(
        passed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&passed.stderr)
    );
    let failed = hook(&[&clean, &leaky]);
    assert_eq!(failed.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&failed.stdout).contains("config.env"));
}

#[test]
fn the_hook_runs_through_the_real_pre_commit_tool() {
    let python = laissez_testkit::python::python();
    let temp = tempfile::tempdir().unwrap();
    let project = temp.path().join("project");
    std::fs::create_dir(&project).unwrap();
    std::fs::write(project.join("notes.md"), "nothing to see\n").unwrap();
    std::fs::write(
        project.join("config.env"),
        "AWS_ACCESS_KEY_ID=AKIAZ3MSJV4WWNKWW5XR\n",
    )
    .unwrap();
    let git = |args: &[&str]| {
        let status = Command::new("git")
            .args(args)
            .current_dir(&project)
            .status()
            .unwrap();
        assert!(status.success(), "git {args:?}");
    };
    git(&["init", "-q"]);
    git(&["add", "notes.md", "config.env"]);
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // `try-repo` reads .pre-commit-hooks.yaml from this repository as a
    // consumer's `repo:` would, and runs the hook on the files named.
    let hook = |file: &str| {
        Command::new(&python)
            .args(["-m", "pre_commit", "try-repo"])
            .arg(repo())
            .args(["laissez-scan", "--files", file])
            .current_dir(&project)
            .env("PATH", &path)
            .env("PRE_COMMIT_HOME", temp.path().join("cache"))
            .output()
            .unwrap()
    };
    let clean = hook("notes.md");
    let clean_out = String::from_utf8_lossy(&clean.stdout);
    assert!(
        clean.status.success(),
        "{clean_out}{}",
        String::from_utf8_lossy(&clean.stderr)
    );
    assert!(clean_out.contains("Passed"), "{clean_out}");
    let leaky = hook("config.env");
    let leaky_out = String::from_utf8_lossy(&leaky.stdout);
    assert_eq!(leaky.status.code(), Some(1), "{leaky_out}");
    assert!(
        leaky_out.contains("Failed") && leaky_out.contains("aws-access-key-id"),
        "{leaky_out}"
    );
    assert!(
        !leaky_out.contains("AKIAZ3MSJV4WWNKWW5XR"),
        "the report masks the key"
    );
}
