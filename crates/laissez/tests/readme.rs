//! The README's walk-through, run from the README itself, so it cannot drift
//! from what works: every `sh` block between "Five-minute walk-through" and
//! "The admin API", in order, in one bash session, against a real
//! `laissez serve` on a temporary data folder. The README's fixed addresses
//! (127.0.0.1:8700 and the gates' and apps' ports) are moved to free ports.
//!
//! A block preceded by `<!-- readme-test: skip (why) -->` is not run; the
//! reason is required. Commands that run until Ctrl-C (`laissez serve`,
//! `laissez gate`) are started in the background, one at a time as in one
//! terminal, and must say where they listen. `laissez check` and `laissez
//! scan` answer "deny" and "found something" with exit code 1, as the README
//! says; any other failure stops the walk-through.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use laissez_testkit::free_port;

const BIN: &str = env!("CARGO_BIN_EXE_laissez");
const README: &str = include_str!("../../../README.md");

/// One fenced `sh` block: its first line number, its text, and why it is
/// skipped, if it is.
#[derive(Debug)]
struct Block {
    line: usize,
    text: String,
    skip: Option<String>,
}

/// The `sh` blocks of the walk-through section.
fn walk_through_blocks(readme: &str) -> Vec<Block> {
    let start = readme
        .find("## Five-minute walk-through")
        .expect("the README has its walk-through");
    let end = readme[start..]
        .find("\n## The admin API")
        .map_or(readme.len(), |at| start + at);
    let first_line = readme[..start].lines().count();
    let mut blocks = Vec::new();
    let mut previous = "";
    let mut current: Option<Block> = None;
    for (index, line) in readme[start..end].lines().enumerate() {
        match &mut current {
            Some(_) if line.trim_start().starts_with("```") => {
                blocks.push(current.take().unwrap_or_else(|| unreachable!()));
            }
            Some(block) => {
                block.text.push_str(line);
                block.text.push('\n');
            }
            None if line.trim_start() == "```sh" => {
                let skip = previous
                    .trim()
                    .strip_prefix("<!-- readme-test: skip")
                    .map(|rest| {
                        let reason = rest.trim().trim_end_matches("-->").trim();
                        assert!(
                            reason.starts_with('(') && reason.ends_with(')') && reason.len() > 10,
                            "README line {}: a skipped block says why: <!-- readme-test: skip (why) -->",
                            first_line + index
                        );
                        reason.to_owned()
                    });
                current = Some(Block {
                    line: first_line + index + 1,
                    text: String::new(),
                    skip,
                });
            }
            None => {}
        }
        if !line.trim().is_empty() {
            previous = line;
        }
    }
    assert!(current.is_none(), "an unclosed code block in the README");
    blocks
}

/// Runs before the walk-through: the binary under test first on PATH, the
/// server from LAISSEZ_URL, and the wrapper that backgrounds long-running
/// commands and accepts the documented exit code 1 of `check` and `scan`.
const PRELUDE: &str = r#"
set -eo pipefail
unset LAISSEZ_TOKEN LAISSEZ_DATA LAISSEZ_GATE_TOKEN
export LAISSEZ_LOG=warn
# The binary under test is built already (it is first on PATH).
cargo() { echo "(skipped: cargo $*)"; }
BACKGROUND=()
stop_background() {
  for pid in "${BACKGROUND[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  BACKGROUND=()
}
trap stop_background EXIT
laissez() {
  case "$1" in
    serve|gate)
      if [[ " $* " == *" --reset-admin-token "* ]]; then command laissez "$@"; return; fi
      stop_background
      local log
      log=$(mktemp)
      command laissez "$@" >"$log" 2>&1 &
      local pid=$!
      BACKGROUND+=("$pid")
      for _ in $(seq 200); do
        if grep -q "listening on" "$log"; then cat "$log"; return 0; fi
        if ! kill -0 "$pid" 2>/dev/null; then
          cat "$log" >&2; echo "README: laissez $1 stopped" >&2; return 1
        fi
        sleep 0.05
      done
      cat "$log" >&2; echo "README: laissez $1 never said where it listens" >&2; return 1
      ;;
    check|scan)
      local status=0
      command laissez "$@" || status=$?
      if [ "$status" -gt 1 ]; then return "$status"; fi
      ;;
    *) command laissez "$@" ;;
  esac
}
"#;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `laissez serve` on `folder/laissez-data`, as the walk-through's first
/// terminal; returns it with its address.
fn serve(folder: &Path) -> (Server, String) {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(folder)
        .env_remove("LAISSEZ_DATA")
        .env("LAISSEZ_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn laissez serve");
    let stdout = child.stdout.take().expect("piped stdout");
    let server = Server(child);
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read the server's output");
        if let Some(url) = line.strip_prefix("listening on http://") {
            return (server, url.to_owned());
        }
    }
    panic!("laissez serve never said where it listens");
}

fn git(folder: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(args)
        .current_dir(folder)
        .env("GIT_AUTHOR_NAME", "Newcomer")
        .env("GIT_AUTHOR_EMAIL", "newcomer@acme.example")
        .env("GIT_COMMITTER_NAME", "Newcomer")
        .env("GIT_COMMITTER_EMAIL", "newcomer@acme.example")
        .status()
        .expect("run git");
    assert!(status.success(), "git {args:?}");
}

#[test]
fn the_walk_through_runs_as_written() {
    let blocks = walk_through_blocks(README);
    let runnable: Vec<&Block> = blocks.iter().filter(|b| b.skip.is_none()).collect();
    assert!(
        runnable.len() >= 8 && blocks.len() - runnable.len() <= 4,
        "skipping is the exception: {blocks:#?}"
    );
    // The newcomer's project: a git repository with one commit.
    let temp = tempfile::tempdir().unwrap();
    let folder = temp.path();
    std::fs::write(folder.join("notes.md"), "# notes\n").unwrap();
    git(folder, &["init", "-q"]);
    git(folder, &["add", "notes.md"]);
    git(folder, &["commit", "-q", "-m", "notes"]);
    let (_server, address) = serve(folder);
    let ports = [
        ("127.0.0.1:8700", address.clone()),
        ("127.0.0.1:8800", format!("127.0.0.1:{}", free_port())),
        ("127.0.0.1:8900", format!("127.0.0.1:{}", free_port())),
        ("127.0.0.1:3000", format!("127.0.0.1:{}", free_port())),
        ("127.0.0.1:9000", format!("127.0.0.1:{}", free_port())),
    ];
    let mut script = String::from(PRELUDE);
    for block in &runnable {
        let mut text = block.text.clone();
        for (from, to) in &ports {
            text = text.replace(from, to);
        }
        script.push_str(&format!("echo '### README line {}'\n{text}\n", block.line));
    }
    let bin_dir = Path::new(BIN).parent().expect("the binary's folder");
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(folder)
        .env("PATH", path)
        .env("LAISSEZ_URL", format!("http://{address}"))
        .env_remove("COLUMNS")
        .stdin(Stdio::null())
        .output()
        .expect("run bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let transcript = format!("{stdout}\n--- stderr ---\n{stderr}");
    assert!(
        out.status.success(),
        "the walk-through stopped ({}):\n{transcript}",
        out.status
    );
    // What the README's comments say comes out, does.
    for expected in [
        "allow: user:alice",
        "deny:",
        "account API token",
        "agent:wiki-bot",
        "revoked tok_",
        "is now inactive",
        "is now active",
        "audit log intact",
        "wrote a new token for user 'admin'",
        "HTTP/1.1 401",
        "resource_metadata=",
        "gate listening on",
        "laissez-account-token",
        "reported laissez-account-token: flagged",
        "reported laissez-account-token: revoked",
        "Installed",
        "chain intact), signing-keys.json, admin-token",
        "restored laissez-backup into laissez-data-copy",
    ] {
        assert!(
            transcript.contains(expected),
            "{expected:?} is not in the walk-through's output:\n{transcript}"
        );
    }
    println!("{transcript}");
    assert!(folder.join("audit.jsonl").exists());
    assert!(folder.join("leaks.sarif").exists());
    assert!(folder.join(".laissez-baseline.json").exists());
}

#[test]
fn skipped_blocks_say_why() {
    let readme = "## Five-minute walk-through\n\n<!-- readme-test: skip (needs a browser) -->\n```sh\nlaissez fetch x\n```\n\n```sh\nlaissez whoami\n```\n## The admin API\n";
    let blocks = walk_through_blocks(readme);
    assert_eq!(blocks.len(), 2);
    assert_eq!(blocks[0].skip.as_deref(), Some("(needs a browser)"));
    assert_eq!(blocks[1].skip, None);
    assert_eq!(blocks[1].text, "laissez whoami\n");
}
