//! Configuration files for `laissez serve` and `laissez gate`: the file's
//! settings apply, flags override them, an unknown key or a bad value is
//! one line naming the key and a non-zero exit, and `laissez config check`
//! prints what would be used (the shipped `deploy/laissez.toml` included).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use laissez_testkit::free_port;

const BIN: &str = env!("CARGO_BIN_EXE_laissez");

fn laissez(args: &[&str], config_env: Option<&Path>) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env_remove("LAISSEZ_DATA")
        .env_remove("LAISSEZ_LISTEN")
        .env_remove("LAISSEZ_URL")
        .env_remove("LAISSEZ_CONFIG")
        .env("LAISSEZ_LOG", "warn");
    if let Some(path) = config_env {
        command.env("LAISSEZ_CONFIG", path);
    }
    command
}

/// Runs to the end; checks it failed with one line on stderr, and returns it.
fn fails(args: &[&str]) -> String {
    let out: Output = laissez(args, None).output().expect("run laissez");
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    assert!(!out.status.success(), "{args:?} should fail: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line for {args:?}: {stderr}");
    stderr
}

/// Starts `laissez serve`, returns the address it printed (then stops it).
fn listening(args: &[&str], config_env: Option<&Path>) -> String {
    let mut child = laissez(args, config_env)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().unwrap();
    let mut address = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("listening on ") {
            address = Some(rest.to_owned());
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    address.expect("the server printed its address")
}

#[test]
fn the_file_applies_and_flags_override_it() {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("from-file");
    let file_port = free_port();
    let flag_port = free_port();
    let config = temp.path().join("laissez.toml");
    std::fs::write(
        &config,
        format!(
            "[serve]\ndata = {:?}\nlisten = \"127.0.0.1:{file_port}\"\nunused-client-ttl = \"2h\"\n",
            data.display().to_string()
        ),
    )
    .unwrap();
    let path = config.to_str().unwrap();

    // The file alone: its address and data folder.
    let address = listening(&["serve", "--config", path], None);
    assert_eq!(address, format!("http://127.0.0.1:{file_port}"));
    assert!(data.join("admin-token").exists(), "the file's data folder");

    // A flag wins over the file; LAISSEZ_CONFIG names the file.
    let flag = format!("127.0.0.1:{flag_port}");
    let address = listening(&["serve", "--listen", &flag], Some(&config));
    assert_eq!(address, format!("http://{flag}"));
}

#[test]
fn unknown_keys_and_bad_values_name_the_key() {
    let temp = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = temp.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let unknown = write(
        "unknown.toml",
        "[serve]\nlisten = \"127.0.0.1:0\"\nlisen = \"x\"\n",
    );
    let line = fails(&["serve", "--config", &unknown]);
    assert!(
        line.contains("lisen") && line.contains("unknown key"),
        "{line}"
    );

    let table = write("table.toml", "[serv]\nlisten = \"127.0.0.1:0\"\n");
    let line = fails(&["serve", "--config", &table]);
    assert!(line.contains("serv"), "{line}");

    let ttl = write("ttl.toml", "[serve]\nunused-client-ttl = \"forever\"\n");
    let line = fails(&["serve", "--config", &ttl]);
    assert!(
        line.contains("unused-client-ttl") && line.contains("forever"),
        "{line}"
    );

    let dlp = write(
        "dlp.toml",
        "[gate]\napp = \"wiki\"\ndlp-request = \"shred\"\n",
    );
    let line = fails(&["gate", "--config", &dlp]);
    assert!(
        line.contains("dlp-request") && line.contains("shred"),
        "{line}"
    );

    let shape = write(
        "shape.toml",
        "[gate]\napp = \"wiki\"\nbrowser-login = \"yes\"\n",
    );
    let line = fails(&["gate", "--config", &shape]);
    assert!(
        line.contains("browser-login") && line.contains("true or false"),
        "{line}"
    );

    let list = write("list.toml", "[serve]\nlisten = [\"a\", \"b\"]\n");
    let line = fails(&["serve", "--config", &list]);
    assert!(
        line.contains("listen") && line.contains("one value"),
        "{line}"
    );

    let syntax = write("syntax.toml", "[serve]\nlisten = \n");
    let line = fails(&["serve", "--config", &syntax]);
    assert!(
        line.contains("not TOML") && line.contains("line 2"),
        "{line}"
    );

    let missing = temp.path().join("missing.toml");
    let line = fails(&["serve", "--config", missing.to_str().unwrap()]);
    assert!(line.contains("missing.toml"), "{line}");

    // The check command says the same.
    let line = fails(&["config", "check", &unknown]);
    assert!(line.contains("lisen"), "{line}");
}

#[test]
fn config_check_prints_what_would_be_used_and_hides_secrets() {
    let temp = tempfile::tempdir().unwrap();
    let config = temp.path().join("laissez.toml");
    std::fs::write(
        &config,
        "[gate]\napp = \"wiki\"\nupstream = \"http://127.0.0.1:3000\"\nscope = [\"wiki.read\", \"wiki.write\"]\naudit-token = \"lzut_secretsecret\"\nbrowser-login = true\n",
    )
    .unwrap();
    let out = laissez(&["config", "check", config.to_str().unwrap()], None)
        .env_remove("LAISSEZ_GATE_TOKEN")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("[gate]"), "{stdout}");
    assert!(!stdout.contains("[serve]"), "{stdout}");
    assert!(stdout.contains("app = \"wiki\" # file"), "{stdout}");
    assert!(
        stdout.contains("scope = [\"wiki.read\", \"wiki.write\"] # file"),
        "{stdout}"
    );
    assert!(stdout.contains("browser-login = true # file"), "{stdout}");
    assert!(
        stdout.contains("dlp-request = \"off\" # default"),
        "{stdout}"
    );
    assert!(!stdout.contains("lzut_secretsecret"), "{stdout}");
    assert!(stdout.contains("audit-token = \"(hidden)\""), "{stdout}");
    // What it printed is itself a file check accepts.
    let printed = temp.path().join("printed.toml");
    std::fs::write(&printed, stdout.replace("\"(hidden)\"", "\"x\"").as_bytes()).unwrap();
    let again = laissez(&["config", "check", printed.to_str().unwrap()], None)
        .output()
        .unwrap();
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}

#[test]
fn the_shipped_example_passes_the_check() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/laissez.toml");
    let out = laissez(&["config", "check", example.to_str().unwrap()], None)
        .env_remove("LAISSEZ_GATE_TOKEN")
        .env_remove("LAISSEZ_ISSUER")
        .env_remove("LAISSEZ_LOG_FORMAT")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("[serve]") && stdout.contains("[gate]"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ops-listen = \"127.0.0.1:9800\" # file"),
        "{stdout}"
    );
}
