//! Programs from Debian's packages that tests run for real (a browser, a
//! syslog collector): installed with apt-get when missing, one install at a
//! time across test binaries (a file lock), the package lists refreshed once
//! when the first try fails; a failed install is an error with apt's own
//! words, never a skipped test.

use std::path::Path;
use std::process::Command;

/// The lock that keeps parallel test binaries from running apt at once.
const INSTALL_LOCK: &str = "/tmp/laissez-apt-install.lock";

/// Installs `packages` unless every one of `binaries` exists. Idempotent.
pub fn install(binaries: &[&str], packages: &[&str]) -> Result<(), String> {
    let present = || binaries.iter().all(|b| Path::new(b).exists());
    if present() {
        return Ok(());
    }
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(INSTALL_LOCK)
        .map_err(|e| format!("cannot open the install lock {INSTALL_LOCK}: {e}"))?;
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| format!("cannot take the install lock {INSTALL_LOCK}: {e}"))?;
    // Another test may have installed them while this one waited.
    if present() {
        return Ok(());
    }
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .map_err(|e| format!("cannot run apt-get: {e}"))
    };
    let install = || {
        let mut args = vec!["install", "-y", "--no-install-recommends"];
        args.extend_from_slice(packages);
        apt(&args)
    };
    let mut output = install()?;
    if !output.status.success() {
        // The package lists may be missing or stale: refresh them once.
        let update = apt(&["update"])?;
        if !update.status.success() {
            return Err(format!(
                "apt-get update failed: {}",
                String::from_utf8_lossy(&update.stderr)
            ));
        }
        output = install()?;
    }
    if !output.status.success() || !present() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        return Err(format!(
            "apt-get install {} failed ({}): {tail}",
            packages.join(" "),
            output.status
        ));
    }
    Ok(())
}

/// [`install`], panicking with the reason when it cannot: for tests that
/// need the program.
pub fn ensure(binary: &str, packages: &[&str]) {
    if let Err(why) = install(&[binary], packages) {
        panic!(
            "this test needs {binary} (Debian: {}): {why}",
            packages.join(" ")
        );
    }
}
