//! `laissez scan` as a user drives it: directories with ignore files, git
//! history, a pre-commit hook on staged changes, baselines, output formats
//! and exit statuses.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use laissez_token::{Kind, Namespace, Token};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_laissez");

fn scan(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("scan")
        .args(args)
        .current_dir(dir)
        .env_remove("LAISSEZ_NAMESPACES")
        .stdin(Stdio::null())
        .output()
        .expect("run laissez scan")
}

fn git(dir: &Path, args: &[&str]) -> Output {
    Command::new("git")
        .args(["-c", "user.name=Dev", "-c", "user.email=dev@example.com"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run git")
}

fn token(kind: Kind) -> String {
    Token::generate(&Namespace::default(), kind)
        .unwrap()
        .expose()
        .to_owned()
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

#[test]
fn directories_honour_gitignore_skip_binaries_and_exit_one_on_a_find() {
    let dir = tempfile::tempdir().unwrap();
    let live = token(Kind::User);
    std::fs::write(dir.path().join(".env"), format!("LAISSEZ_TOKEN={live}\n")).unwrap();
    std::fs::write(dir.path().join(".gitignore"), "build/\n").unwrap();
    std::fs::create_dir(dir.path().join("build")).unwrap();
    std::fs::write(dir.path().join("build/out.txt"), token(Kind::Task)).unwrap();
    std::fs::write(
        dir.path().join("blob.bin"),
        format!("\0{}", token(Kind::Task)),
    )
    .unwrap();
    let output = scan(dir.path(), &["--format", "json", "."]);
    assert_eq!(output.status.code(), Some(1));
    let finds = json(&output)["finds"].as_array().unwrap().clone();
    assert_eq!(finds.len(), 1, "{finds:?}");
    assert_eq!(finds[0]["rule"], "laissez-user-token");
    assert_eq!(finds[0]["location"]["path"], "./.env");
    assert_eq!(finds[0]["location"]["line"], 1);
    // The report never holds the secret.
    assert!(!String::from_utf8_lossy(&output.stdout).contains(&live));

    // Text masks it too; a clean tree exits 0; a missing path exits 2.
    let text = scan(dir.path(), &[".env"]);
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(
        stdout.contains(&format!("lzut…{}", &live[live.len() - 4..])),
        "{stdout}"
    );
    assert!(!stdout.contains(&live));
    std::fs::write(dir.path().join(".env"), "LAISSEZ_TOKEN=\n").unwrap();
    assert_eq!(scan(dir.path(), &["."]).status.code(), Some(0));
    let missing = scan(dir.path(), &["no-such-dir"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).starts_with("error: cannot read no-such-dir"));
}

#[test]
fn history_is_scanned_once_per_blob_with_commit_path_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    git(repo, &["init", "-q", "-b", "main"]);
    let leaked = token(Kind::Account);
    std::fs::write(
        repo.join("config.py"),
        format!("# settings\nAPI = '{leaked}'\n"),
    )
    .unwrap();
    git(repo, &["add", "."]);
    git(repo, &["commit", "-qm", "add config"]);
    let first = String::from_utf8(git(repo, &["rev-parse", "HEAD"]).stdout).unwrap();
    // Removed in the next commit, copied on a branch: still one find, at
    // the commit that introduced it.
    std::fs::write(repo.join("config.py"), "# settings\nAPI = env('API')\n").unwrap();
    git(repo, &["commit", "-qam", "remove the key"]);
    git(repo, &["checkout", "-qb", "other", &first.trim()[..12]]);
    std::fs::copy(repo.join("config.py"), repo.join("copy.py")).unwrap();
    git(repo, &["add", "."]);
    git(repo, &["commit", "-qm", "copy"]);
    git(repo, &["checkout", "-q", "main"]);

    // The working tree is clean...
    assert_eq!(scan(repo, &["--laissez-only", "."]).status.code(), Some(0));
    // ...the history is not.
    let output = scan(repo, &["--git", ".", "--format", "sarif"]);
    assert_eq!(output.status.code(), Some(1));
    let sarif = json(&output);
    assert_eq!(sarif["version"], "2.1.0");
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{results:?}");
    assert_eq!(results[0]["ruleId"], "laissez-account-token");
    assert_eq!(results[0]["properties"]["commit"], first.trim());
    let location = &results[0]["locations"][0]["physicalLocation"];
    assert_eq!(location["artifactLocation"]["uri"], "config.py");
    assert_eq!(location["region"]["startLine"], 2);
    assert_eq!(location["region"]["startColumn"], 8);
}

#[test]
fn the_pre_commit_hook_refuses_staged_credentials_until_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    git(repo, &["init", "-q"]);
    let installed = scan(repo, &["install-hook"]);
    assert!(
        installed.status.success(),
        "{}",
        String::from_utf8_lossy(&installed.stderr)
    );
    std::fs::write(
        repo.join("deploy.sh"),
        format!("curl -H 'Authorization: Bearer {}'\n", token(Kind::Task)),
    )
    .unwrap();
    git(repo, &["add", "deploy.sh"]);
    let refused = git(repo, &["commit", "-qm", "deploy"]);
    assert!(!refused.status.success());
    // Git passes a hook's output on to the committer's terminal (stderr).
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("deploy.sh:1"), "{said}");
    // Accept it in a baseline, as a known test fixture.
    let written = scan(repo, &["--staged", "--write-baseline", "baseline.json"]);
    assert_eq!(written.status.code(), Some(0));
    let baseline = std::fs::read_to_string(repo.join("baseline.json")).unwrap();
    assert!(!baseline.contains("lztt_"), "the baseline holds no secret");
    assert_eq!(
        scan(repo, &["--staged", "--baseline", "baseline.json"])
            .status
            .code(),
        Some(0)
    );
    // A hook written by someone else is kept unless --force.
    std::fs::write(repo.join(".git/hooks/pre-commit"), "#!/bin/sh\nmake lint\n").unwrap();
    let kept = scan(repo, &["install-hook"]);
    assert_eq!(kept.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&kept.stderr).contains("--force"));
}

#[test]
fn invalid_checksums_are_listed_only_on_request_and_bad_rules_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut fake = token(Kind::User);
    fake.replace_range(10..11, if &fake[10..11] == "A" { "B" } else { "A" });
    std::fs::write(dir.path().join("notes.md"), format!("example: {fake}\n")).unwrap();
    assert_eq!(scan(dir.path(), &["notes.md"]).status.code(), Some(0));
    let listed = scan(
        dir.path(),
        &["notes.md", "--include-invalid", "--format", "json"],
    );
    assert_eq!(
        listed.status.code(),
        Some(0),
        "an invalid string is not a credential"
    );
    assert_eq!(json(&listed)["finds"][0]["valid_checksum"], false);

    std::fs::write(
        dir.path().join("rules.toml"),
        "[[rule]]\nid = \"acme-key\"\ndescription = \"ACME key\"\nkeywords = [\"acme_\"]\nregex = 'acme_[a-z]{8}'\ntests.valid = [\"acme_12345678\"]\n",
    )
    .unwrap();
    let refused = scan(dir.path(), &["notes.md", "--rules", "rules.toml"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("does not find its own test vector"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_asks_the_server_by_hash_and_report_gets_the_token_revoked() {
    let server = laissez_testkit::TestServer::start();
    server
        .post(
            "/v1/principals",
            serde_json::json!({"kind": "service", "name": "deployer", "owner": "admin"}),
        )
        .await;
    let (_, issued) = server
        .post("/v1/tokens", serde_json::json!({"principal": "deployer"}))
        .await;
    let live = issued["token"].as_str().unwrap().to_owned();
    // The data folder keeps itself out of git, and so out of scans of the
    // project around it: its admin token is not reported (and revoked).
    let around = server.data_dir.parent().unwrap().to_owned();
    let skipped = tokio::task::spawn_blocking(move || scan(&around, &["."]))
        .await
        .unwrap();
    assert_eq!(
        skipped.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&skipped.stdout)
    );
    // Named itself, the data folder is scanned: its admin token is found.
    let data = server.data_dir.clone();
    let named = tokio::task::spawn_blocking(move || {
        scan(
            data.parent().unwrap(),
            &[data.to_str().unwrap(), "--format", "json"],
        )
    })
    .await
    .unwrap();
    assert_eq!(named.status.code(), Some(1));
    let finds = json(&named)["finds"].clone();
    assert!(
        finds
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["location"]["path"]
                .as_str()
                .unwrap()
                .ends_with("admin-token")),
        "{finds}"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("deploy.env"), format!("TOKEN={live}\n")).unwrap();
    let with_server = |extra: &[&str]| {
        let mut args = vec![
            "deploy.env",
            "--server",
            &server.url,
            "--token",
            &server.admin_token,
        ];
        args.extend_from_slice(extra);
        let dir = dir.path().to_owned();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            scan(&dir, &args)
        }
    };
    let verify = tokio::task::spawn_blocking(with_server(&["--verify", "--format", "json"]))
        .await
        .unwrap();
    assert_eq!(verify.status.code(), Some(1));
    assert_eq!(json(&verify)["finds"][0]["status"], "live");

    let report_url = format!("{}/v1/leaks", server.url);
    // A local folder is private unless `--public` says otherwise: the
    // token is flagged and its owner told, not revoked.
    let reported = tokio::task::spawn_blocking(with_server(&["--report", &report_url]))
        .await
        .unwrap();
    assert_eq!(reported.status.code(), Some(1));
    let said = String::from_utf8_lossy(&reported.stderr);
    assert!(
        said.contains("reported laissez-account-token: flagged"),
        "{said}"
    );
    let (status, _) = server
        .call(reqwest::Method::GET, "/v1/whoami", &live, None)
        .await;
    assert_eq!(status, reqwest::StatusCode::OK);
    let reported = tokio::task::spawn_blocking(with_server(&["--report", &report_url, "--public"]))
        .await
        .unwrap();
    assert_eq!(reported.status.code(), Some(1));
    let said = String::from_utf8_lossy(&reported.stderr);
    assert!(
        said.contains("reported laissez-account-token: revoked"),
        "{said}"
    );
    let (status, _) = server
        .call(reqwest::Method::GET, "/v1/whoami", &live, None)
        .await;
    assert_eq!(status, reqwest::StatusCode::UNAUTHORIZED);
    let again = tokio::task::spawn_blocking(with_server(&["--verify"]))
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&again.stdout).contains("status: revoked"));
}

#[test]
fn no_ignore_scans_what_gitignore_hides() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".gitignore"), "secrets/\n").unwrap();
    std::fs::create_dir(dir.path().join("secrets")).unwrap();
    std::fs::write(
        dir.path().join("secrets/ci.env"),
        format!("TOKEN={}\n", token(Kind::Account)),
    )
    .unwrap();
    assert_eq!(scan(dir.path(), &["."]).status.code(), Some(0));
    let found = scan(dir.path(), &[".", "--no-ignore", "--json"]);
    assert_eq!(found.status.code(), Some(1));
    assert_eq!(
        json(&found)["finds"][0]["location"]["path"],
        "./secrets/ci.env"
    );
}

#[test]
fn a_baseline_does_not_hide_the_same_secret_in_another_file() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = token(Kind::Account);
    std::fs::create_dir(dir.path().join("tests")).unwrap();
    std::fs::write(
        dir.path().join("tests/fixture.txt"),
        format!("t = {fixture}\n"),
    )
    .unwrap();
    let written = scan(dir.path(), &[".", "--write-baseline", "baseline.json"]);
    assert_eq!(written.status.code(), Some(0));
    // Lines moving around the accepted fixture change nothing.
    std::fs::write(
        dir.path().join("tests/fixture.txt"),
        format!("# moved down\n\nt = {fixture}\n"),
    )
    .unwrap();
    assert_eq!(
        scan(dir.path(), &[".", "--baseline", "baseline.json"])
            .status
            .code(),
        Some(0)
    );
    // The fixture copied into a config file is a leak.
    std::fs::write(dir.path().join("deploy.env"), format!("TOKEN={fixture}\n")).unwrap();
    let found = scan(dir.path(), &[".", "--baseline", "baseline.json", "--json"]);
    assert_eq!(found.status.code(), Some(1));
    let finds = json(&found)["finds"].as_array().unwrap().clone();
    assert_eq!(finds.len(), 1, "{finds:?}");
    assert_eq!(finds[0]["location"]["path"], "./deploy.env");
    // `--json` is `--format json`, and cannot go with another format.
    let both = scan(dir.path(), &[".", "--json", "--format", "sarif"]);
    assert_eq!(both.status.code(), Some(2));
}

#[test]
fn min_confidence_drops_a_generic_find_but_keeps_a_github_token() {
    let dir = tempfile::tempdir().unwrap();
    // A synthetic GitHub token with a valid checksum, and a heuristic find.
    std::fs::write(
        dir.path().join("config.py"),
        "GITHUB_TOKEN = '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'\n\
         client_secret = \"Zq8Lm2Xw7Kt4Rv9Nb3Hd6Jf1\"\n",
    )
    .unwrap();
    let rules_of = |output: &Output| -> Vec<(String, String)> {
        json(output)["finds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["rule"].as_str().unwrap().to_owned(),
                    f["confidence"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let github = ("github-token".to_owned(), "high".to_owned());
    let generic = ("generic-secret-assignment".to_owned(), "low".to_owned());
    let everything = scan(dir.path(), &["--format", "json", "."]);
    assert_eq!(everything.status.code(), Some(1));
    assert_eq!(rules_of(&everything), [github.clone(), generic]);
    let high = scan(
        dir.path(),
        &["--format", "json", "--min-confidence", "high", "."],
    );
    assert_eq!(high.status.code(), Some(1));
    assert_eq!(rules_of(&high), [github]);

    // Text and SARIF say it too.
    let text = scan(dir.path(), &["--min-confidence", "medium", "."]);
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(
        stdout.contains("[github-token, high confidence]") && !stdout.contains("generic"),
        "{stdout}"
    );
    let sarif = json(&scan(dir.path(), &["--format", "sarif", "."]));
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results[0]["properties"]["confidence"], "high");
    assert_eq!(results[1]["properties"]["confidence"], "low");
    let rules = sarif["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .unwrap();
    assert!(rules.iter().all(|r| {
        ["high", "medium", "low"].contains(&r["properties"]["precision"].as_str().unwrap())
    }));

    // An unknown level is refused before anything is scanned.
    let wrong = scan(dir.path(), &["--min-confidence", "certain", "."]);
    assert_eq!(wrong.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        stderr.contains("invalid value 'certain' for '--min-confidence <LEVEL>'"),
        "{stderr}"
    );
    assert!(wrong.stdout.is_empty());
}
