//! Programs from Debian's packages that tests run for real (a syslog
//! collector, a browser): installed with apt-get when missing, once per
//! process, and a loud failure with apt's own words when that is not
//! possible. Never a silent skip.

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

static INSTALLING: Mutex<()> = Mutex::new(());

/// Makes sure `binary` exists, installing `packages` with apt-get if it
/// does not (refreshing the package lists once if the first try fails).
/// Panics, saying why, when it cannot.
pub fn ensure(binary: &str, packages: &[&str]) {
    let _one_at_a_time = INSTALLING.lock().unwrap_or_else(|p| p.into_inner());
    if Path::new(binary).exists() {
        return;
    }
    let install = || {
        Command::new("apt-get")
            .args([
                "-o",
                "DPkg::Lock::Timeout=300",
                "install",
                "-y",
                "--no-install-recommends",
            ])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
    };
    let mut output = install();
    if !output.as_ref().is_ok_and(|o| o.status.success()) {
        let _ = Command::new("apt-get")
            .args(["-o", "DPkg::Lock::Timeout=300", "update"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output();
        output = install();
    }
    match output {
        Ok(out) if out.status.success() && Path::new(binary).exists() => {}
        Ok(out) => panic!(
            "this test needs {binary} (Debian packages {packages:?}) and apt-get could not install them: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!(
            "this test needs {binary} (Debian packages {packages:?}) and apt-get could not run: {e}"
        ),
    }
}
