//! `laissez scan`: find credentials in files, directories, standard input, a
//! repository's history or staged changes; report them as text, JSON or
//! SARIF; optionally ask a server whether found Laissez tokens are live
//! (`--verify`, hashes only) and report them for revocation (`--report`).
//!
//! Exit status: 0 when nothing is found, 1 when something is, 2 on error.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use laissez_scan::report::{self, Format};
use laissez_scan::walk::Outcome;
use laissez_scan::{
    Confidence, Engine, Find, RuleSet, Scanner, baseline::Baseline, git, rules, walk,
};
use laissez_token::Namespace;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::Global;
use crate::error::CliError;

/// The scan command and its one subcommand.
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ScanCommand {
    #[command(subcommand)]
    action: Option<ScanAction>,
    #[command(flatten)]
    args: ScanArgs,
}

/// Subcommands of `laissez scan`.
#[derive(Subcommand)]
enum ScanAction {
    /// Write a git pre-commit hook that runs `laissez scan --staged`.
    InstallHook {
        /// The repository (default: the current directory).
        #[arg(long, default_value = ".")]
        repo: PathBuf,
        /// Replace an existing hook not written by Laissez.
        #[arg(long)]
        force: bool,
    },
}

/// What to scan and how to report.
#[derive(Args)]
pub struct ScanArgs {
    /// Files and directories to scan (`-` for standard input). Directories
    /// honour .gitignore (a folder you name is scanned even if its own
    /// .gitignore ignores everything in it); binaries are skipped.
    paths: Vec<PathBuf>,
    /// Honour no ignore file (.gitignore, .ignore, git's excludes).
    #[arg(long)]
    no_ignore: bool,
    /// Scan every blob in the history of this git repository, once each.
    #[arg(long, value_name = "REPO", conflicts_with_all = ["paths", "staged"])]
    git: Option<PathBuf>,
    /// Scan the changes staged for the next commit (for a pre-commit hook).
    #[arg(long, conflicts_with = "paths")]
    staged: bool,
    /// Output format (`--json` is the same as `--format json`).
    #[arg(long, value_enum)]
    format: Option<OutputFormat>,
    /// Write the report to this file instead of standard output.
    #[arg(long, short = 'o')]
    output: Option<PathBuf>,
    /// Token namespaces to recognise; repeat for several.
    #[arg(
        long = "namespace",
        default_value = "lz",
        env = "LAISSEZ_NAMESPACES",
        value_delimiter = ','
    )]
    namespaces: Vec<String>,
    /// Find Laissez tokens only (fastest).
    #[arg(long)]
    laissez_only: bool,
    /// Add the rules in this file (same shape as the built-in rules.toml).
    #[arg(long = "rules")]
    rules: Vec<PathBuf>,
    /// Also list strings shaped like a token whose checksum fails.
    #[arg(long)]
    include_invalid: bool,
    /// Report only finds at least this sure to be credentials: high
    /// (checksums, rigid formats), medium (distinctive prefixes), low
    /// (heuristics; the default: everything).
    #[arg(long, value_enum, value_name = "LEVEL", default_value = "low")]
    min_confidence: MinConfidence,
    /// Suppress finds accepted in this baseline file.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Write every find to this baseline file (accepting them) and exit 0.
    #[arg(long, conflicts_with_all = ["verify", "report"])]
    write_baseline: Option<PathBuf>,
    /// Ask the server (--server, --token) whether found Laissez tokens are
    /// live. Only their SHA-256 hashes are sent.
    #[arg(long)]
    verify: bool,
    /// Report finds to this leak intake URL (e.g.
    /// http://127.0.0.1:8700/v1/leaks) so live Laissez tokens are revoked.
    #[arg(long, value_name = "URL")]
    report: Option<String>,
    /// With --report: what was scanned is public (published, pushed to a
    /// public repository), so live tokens are revoked at once. Without it
    /// finds are reported as private: flagged and their owners told, revoked
    /// only if the organization says so (`settings set --revoke-private-leaks`).
    #[arg(long, requires = "report")]
    public: bool,
    /// Never show a progress bar.
    #[arg(long)]
    no_progress: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum OutputFormat {
    Text,
    Json,
    Sarif,
}

/// `--min-confidence`, as clap parses it.
#[derive(Clone, Copy, ValueEnum)]
enum MinConfidence {
    Low,
    Medium,
    High,
}

impl From<MinConfidence> for Confidence {
    fn from(level: MinConfidence) -> Confidence {
        match level {
            MinConfidence::Low => Confidence::Low,
            MinConfidence::Medium => Confidence::Medium,
            MinConfidence::High => Confidence::High,
        }
    }
}

/// Runs the command; returns whether anything was found.
pub async fn run(global: &Global, command: ScanCommand) -> Result<bool, CliError> {
    if let Some(ScanAction::InstallHook { repo, force }) = command.action {
        let program = std::env::current_exe()
            .map_err(|e| CliError::Local(format!("cannot locate the laissez binary: {e}")))?;
        let hook = git::install_hook(&repo, &program, force).map_err(local)?;
        if global.json {
            crate::output::json(&json!({ "installed": hook.display().to_string() }));
        } else {
            announce!(
                "Installed {}: commits that add credentials are refused.",
                hook.display()
            );
        }
        return Ok(false);
    }
    let args = command.args;
    let format = output_format(args.format, global.json)?;
    let scanner = build_scanner(&args)?;
    let outcome = tokio::task::block_in_place(|| collect(&scanner, &args))?;
    for problem in &outcome.unreadable {
        eprintln!("warning: skipped {problem}");
    }
    let mut finds = outcome.finds;
    if let Some(path) = &args.baseline {
        let baseline = Baseline::load(path).map_err(local)?;
        finds.retain(|find| !baseline.accepts(find));
    }
    if let Some(path) = &args.write_baseline {
        Baseline::write(path, &finds).map_err(local)?;
        eprintln!(
            "Wrote {} accepted finds to {}.",
            finds.len(),
            path.display()
        );
        return Ok(false);
    }
    let statuses = if args.verify {
        verify(global, &finds).await?
    } else {
        Vec::new()
    };
    if let Some(url) = &args.report {
        report_finds(global, url, &finds, args.public).await?;
    }
    let status_of = |find: &Find| {
        statuses
            .iter()
            .find(|(hash, _)| *hash == token_hash(&find.secret))
            .map(|(_, status)| status.clone())
    };
    // Buffered: a report is many small writes (one per field), not one
    // system call each.
    let mut out: std::io::BufWriter<Box<dyn Write>> =
        std::io::BufWriter::with_capacity(
            1 << 16,
            match &args.output {
                Some(path) => Box::new(std::fs::File::create(path).map_err(|e| {
                    CliError::Local(format!("cannot write {}: {e}", path.display()))
                })?),
                None => Box::new(std::io::stdout().lock()),
            },
        );
    report::write(
        &mut out,
        format,
        &finds,
        scanner.engine().detectors(),
        &status_of,
    )
    .and_then(|()| out.flush())
    .map_err(|e| CliError::Local(format!("cannot write the report: {e}")))?;
    Ok(finds.iter().any(|f| f.valid))
}

/// The report format: `--json` is `--format json`, and cannot go with another.
fn output_format(format: Option<OutputFormat>, json: bool) -> Result<Format, CliError> {
    Ok(match (format, json) {
        (None | Some(OutputFormat::Json), true) | (Some(OutputFormat::Json), false) => Format::Json,
        (Some(OutputFormat::Sarif), false) => Format::Sarif,
        (None | Some(OutputFormat::Text), false) => Format::Text,
        (Some(other), true) => {
            return Err(CliError::Local(format!(
                "--json means --format json; it cannot go with --format {}",
                match other {
                    OutputFormat::Text => "text",
                    _ => "sarif",
                }
            )));
        }
    })
}

fn build_scanner(args: &ScanArgs) -> Result<Scanner, CliError> {
    let namespaces = args
        .namespaces
        .iter()
        .map(|n| {
            Namespace::new(n.trim()).map_err(|e| CliError::Local(format!("--namespace {n}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut extra = Vec::new();
    for path in &args.rules {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CliError::Local(format!("cannot read {}: {e}", path.display())))?;
        extra.extend(rules::parse(&text, &path.display().to_string()).map_err(local)?);
    }
    let set = if args.laissez_only {
        RuleSet::Laissez
    } else {
        RuleSet::All
    };
    let checked = extra.clone();
    let engine = Engine::new(&namespaces, set, extra).map_err(local)?;
    let scanner =
        Scanner::new(engine, args.include_invalid).with_min_confidence(args.min_confidence.into());
    // Added rules must find their own test vectors, and only those (whatever
    // --min-confidence asks for).
    scanner.check_vectors(&checked).map_err(local)?;
    Ok(scanner)
}

/// Scans what the arguments name, with a progress bar on a terminal.
fn collect(scanner: &Scanner, args: &ScanArgs) -> Result<Outcome, CliError> {
    let show_progress = !args.no_progress && std::io::stderr().is_terminal();
    if let Some(repo) = &args.git {
        let blobs = git::history_blobs(repo).map_err(local)?;
        let bar = progress(show_progress, blobs.len() as u64, "blobs");
        let outcome = git::scan_blobs(scanner, repo, &blobs, &|_| bar.inc(1)).map_err(local)?;
        bar.finish_and_clear();
        return Ok(outcome);
    }
    if args.staged {
        let repo = PathBuf::from(".");
        let blobs = git::staged_blobs(&repo).map_err(local)?;
        return git::scan_blobs(scanner, &repo, &blobs, &|_| {}).map_err(local);
    }
    let mut paths = args.paths.clone();
    if paths.is_empty() {
        paths.push(PathBuf::from("."));
    }
    let mut outcome = Outcome::default();
    if paths.iter().any(|p| p.as_os_str() == "-") {
        let mut input = Vec::new();
        std::io::stdin()
            .read_to_end(&mut input)
            .map_err(|e| CliError::Local(format!("cannot read standard input: {e}")))?;
        outcome.bytes += input.len() as u64;
        outcome.finds = scanner.scan_text(&input, "<stdin>", None);
        paths.retain(|p| p.as_os_str() != "-");
        if paths.is_empty() {
            return Ok(outcome);
        }
    }
    let ignores = if args.no_ignore {
        walk::Ignores::None
    } else {
        walk::Ignores::Honour
    };
    let files = walk::list_files(&paths, ignores).map_err(local)?;
    let total: u64 = files.iter().map(|f| f.size).sum();
    let bar = progress(show_progress, total, "bytes");
    let scanned = walk::scan_files(scanner, &files, &|bytes| bar.inc(bytes));
    bar.finish_and_clear();
    outcome.finds.extend(scanned.finds);
    outcome.unreadable = scanned.unreadable;
    outcome.bytes += scanned.bytes;
    Ok(outcome)
}

fn progress(show: bool, total: u64, unit: &str) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    let template = if unit == "bytes" {
        "scanning [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})"
    } else {
        "scanning [{bar:30}] {pos}/{len} blobs ({eta})"
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Asks the server about each found Laissez token by hash; returns
/// (hash, status) pairs.
async fn verify(global: &Global, finds: &[Find]) -> Result<Vec<(String, String)>, CliError> {
    let hashes: Vec<String> = finds
        .iter()
        .filter(|f| f.is_laissez_token())
        .map(|f| token_hash(&f.secret))
        .collect();
    if hashes.is_empty() {
        return Ok(Vec::new());
    }
    let client = global.client()?;
    let answer = client
        .post("/v1/leaks/check", json!({ "token_hashes": hashes }))
        .await?;
    let results = answer["results"].as_array().cloned().unwrap_or_default();
    Ok(results
        .iter()
        .filter_map(|r| {
            Some((
                r["token_hash"].as_str()?.to_owned(),
                r["status"].as_str()?.to_owned(),
            ))
        })
        .collect())
}

/// Sends finds to a leak intake and prints what it did with each.
async fn report_finds(
    global: &Global,
    url: &str,
    finds: &[Find],
    public: bool,
) -> Result<(), CliError> {
    let reports: Vec<Value> = finds
        .iter()
        .filter(|f| f.valid)
        .map(|f| {
            let place = match &f.location.commit {
                Some(commit) => {
                    format!("{}:{} (commit {commit})", f.location.path, f.location.line)
                }
                None => format!("{}:{}", f.location.path, f.location.line),
            };
            json!({
                "token": f.secret,
                "type": f.rule,
                "url": place,
                "source": "laissez-scan",
                "public": public,
            })
        })
        .collect();
    if reports.is_empty() {
        return Ok(());
    }
    let (base, path) = split_url(url)?;
    let client = global.client_at(&base)?;
    let answer = client.post(&path, Value::Array(reports)).await?;
    for result in answer.as_array().into_iter().flatten() {
        if let (Some(kind), Some(action)) =
            (result["token_type"].as_str(), result["action"].as_str())
        {
            eprintln!("reported {kind}: {action}");
        }
    }
    Ok(())
}

/// `http://host:port/path` as (`http://host:port`, `/path`).
fn split_url(url: &str) -> Result<(String, String), CliError> {
    let parsed = url::Url::parse(url)
        .map_err(|e| CliError::Local(format!("--report {url}: not a URL ({e})")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(CliError::Local(format!(
            "--report {url}: use an http(s) URL"
        )));
    }
    let path = parsed.path().to_owned();
    let mut base = parsed;
    base.set_path("");
    Ok((base.as_str().trim_end_matches('/').to_owned(), path))
}

/// The SHA-256 of a token, hex, as the server stores it.
fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn local(error: laissez_scan::Error) -> CliError {
    CliError::Local(error.to_string())
}
