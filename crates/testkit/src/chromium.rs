//! A real browser for tests: Debian's Chromium driven over WebDriver
//! (chromedriver, spoken to with `fantoccini`). [`ensure_installed`]
//! installs `chromium` and `chromium-driver` with apt when they are
//! missing ([`crate::debian::install`]); a failed install is an error with
//! apt's words, never a skipped test. [`Chromium::launch`] starts
//! chromedriver on a free port and a headless Chromium with a fresh profile
//! and without the background traffic (updates, sync, QUIC, first-run
//! pages) that floods a closed network; [`Chromium::screenshot`] saves PNGs
//! under `target/console-screenshots/`.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

/// Where Debian puts the browser.
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// Where Debian puts the driver.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Installs Chromium and chromedriver from Debian when either is missing.
/// Idempotent; parallel callers wait for one another on a file lock.
pub fn ensure_installed() -> Result<(), String> {
    crate::debian::install(&[CHROMIUM, CHROMEDRIVER], &["chromium", "chromium-driver"])
}

/// The folder screenshots are saved in: `console-screenshots` under the
/// cargo target folder (`CARGO_TARGET_DIR`, else the workspace's `target`).
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("console-screenshots")
}

/// A headless Chromium and the chromedriver driving it. Dropping it stops
/// the driver; [`Chromium::close`] also ends the browser session first.
pub struct Chromium {
    client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Chromium {
    /// Installs (if needed) and starts the browser; panics with the reason
    /// when it cannot.
    pub async fn launch() -> Chromium {
        if let Err(why) = ensure_installed() {
            panic!("Chromium is needed for the browser tests and could not be installed: {why}");
        }
        let port = crate::free_port();
        let mut driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {CHROMEDRIVER}: {e}"));
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > Duration::from_secs(20) {
                let _ = driver.kill();
                panic!("chromedriver did not listen on port {port} within 20 s");
            }
            if let Ok(Some(status)) = driver.try_wait() {
                panic!("chromedriver exited at once: {status}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().expect("a temporary profile folder");
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-dev-shm-usage",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let client = match ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(client) => client,
            Err(e) => {
                let _ = driver.kill();
                let _ = driver.wait();
                panic!("chromedriver could not start Chromium: {e}");
            }
        };
        Chromium {
            client,
            driver,
            _profile: profile,
        }
    }

    /// The WebDriver client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Resizes the window so that the page is `width` CSS pixels wide (the
    /// window's frame, if any, is added).
    pub async fn set_width(&self, width: u32, height: u32) {
        self.client
            .set_window_size(width, height)
            .await
            .expect("set the window size");
        let inner = self
            .client
            .execute("return window.innerWidth;", Vec::new())
            .await
            .expect("read the window width");
        let inner = inner.as_u64().unwrap_or(u64::from(width)) as u32;
        if inner != width {
            self.client
                .set_window_size(width + (width.saturating_sub(inner)), height)
                .await
                .expect("set the window size");
        }
    }

    /// Opens `url` and returns the page's text.
    pub async fn open(&self, url: &str) -> String {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
        self.text().await
    }

    /// The visible text of the page.
    pub async fn text(&self) -> String {
        self.client
            .find(Locator::Css("body"))
            .await
            .expect("a body")
            .text()
            .await
            .expect("the body's text")
    }

    /// Saves a PNG of the viewport as `<name>.png` in [`screenshot_dir`].
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("a screenshot");
        assert!(png.starts_with(b"\x89PNG"), "the screenshot is not a PNG");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("the screenshot folder");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write the screenshot");
        path
    }

    /// Ends the browser session, then the driver.
    pub async fn close(mut self) {
        let client = self.client.clone();
        let _ = client.close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        // The driver is this process's own child, stopped by its handle.
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
