//! A real headless Chromium for end-to-end tests, driven over WebDriver with `fantoccini`.
//!
//! [`Browser::launch`] starts `chromedriver` on a free local port (its own process group, killed
//! on drop together with the Chromium it started), opens a session with a fresh profile in a
//! temporary directory (downloads go to another one, [`Browser::downloaded`]), and offers the
//! few page helpers the scenarios need, each with a bounded wait whose failure message says what
//! the page showed instead.
//!
//! Binaries: `/usr/bin/chromium` and `/usr/bin/chromedriver` (Debian packages `chromium` and
//! `chromium-driver`), or `CHROMIUM_BIN` / `CHROMEDRIVER_BIN`. When they are missing the
//! launch fails and says to run `scripts/ensure-chromium.sh`: a browser test never passes
//! without a browser.

use anyhow::{anyhow, bail, Context};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Map, Value};
use std::fmt;
use std::future::Future;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

pub use fantoccini;

/// Chromium's switches for a quiet, sandbox-free, headless run in a container.
pub const CHROMIUM_FLAGS: [&str; 10] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1000",
];

/// How long a page helper waits by default.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(20);

const FIX: &str = "run scripts/ensure-chromium.sh (installs the Debian packages chromium and chromium-driver), or set CHROMIUM_BIN and CHROMEDRIVER_BIN";

/// Where Chromium and chromedriver are.
#[derive(Debug, Clone)]
pub struct BrowserPaths {
    pub chromium: PathBuf,
    pub chromedriver: PathBuf,
}

impl BrowserPaths {
    /// `CHROMIUM_BIN` / `CHROMEDRIVER_BIN`, else the Debian locations.
    ///
    /// # Errors
    /// When either file is missing, with the command that installs them.
    pub fn locate() -> anyhow::Result<Self> {
        let pick = |var: &str, default: &str| {
            std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from)
        };
        Self::checked(
            pick("CHROMIUM_BIN", "/usr/bin/chromium"),
            pick("CHROMEDRIVER_BIN", "/usr/bin/chromedriver"),
        )
    }

    /// The given binaries, when both exist.
    ///
    /// # Errors
    /// When either is missing, with the command that installs them.
    pub fn checked(chromium: PathBuf, chromedriver: PathBuf) -> anyhow::Result<Self> {
        for path in [&chromium, &chromedriver] {
            if !path.is_file() {
                bail!("{} is missing: {FIX}", path.display());
            }
        }
        Ok(Self {
            chromium,
            chromedriver,
        })
    }
}

/// A running chromedriver in its own process group. Dropping it kills the group (the driver
/// and any Chromium it started) and reaps the driver.
pub struct ChromeDriver {
    child: Child,
    pid: Option<u32>,
    port: u16,
}

impl fmt::Debug for ChromeDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChromeDriver")
            .field("pid", &self.pid)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

impl ChromeDriver {
    /// Starts chromedriver on a free loopback port and waits (bounded) until it is ready.
    ///
    /// # Errors
    /// When it cannot be started or never reports ready.
    pub async fn start(paths: &BrowserPaths, log_file: Option<&Path>) -> anyhow::Result<Self> {
        // Another process may take the port between this probe and chromedriver's bind; a
        // few attempts make that race harmless.
        let mut last_error = None;
        for _ in 0..3 {
            let port = free_port()?;
            let mut command = Command::new(&paths.chromedriver);
            command
                .arg(format!("--port={port}"))
                .arg("--allowed-ips=127.0.0.1")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .kill_on_drop(true);
            if let Some(log) = log_file {
                command.arg(format!("--log-path={}", log.display()));
            }
            let child = command
                .spawn()
                .with_context(|| format!("starting {} ({FIX})", paths.chromedriver.display()))?;
            let mut driver = Self {
                pid: child.id(),
                child,
                port,
            };
            match driver.wait_ready(Duration::from_secs(15)).await {
                Ok(()) => return Ok(driver),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow!("chromedriver did not start")))
    }

    async fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()?;
        let url = format!("{}/status", self.url());
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("chromedriver exited at start ({status})");
            }
            if let Ok(response) = http.get(&url).send().await {
                if let Ok(body) = response.json::<Value>().await {
                    if body["value"]["ready"] == json!(true) {
                        return Ok(());
                    }
                }
            }
            if Instant::now() >= deadline {
                bail!(
                    "chromedriver on port {} not ready after {timeout:?}",
                    self.port
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn kill_group(&mut self) {
        if let Some(pid) = self.pid.take() {
            // The group id is the driver's pid (process_group(0)): this reaches the Chromium
            // processes it started and nothing else.
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.start_kill();
        let _ = self.child.try_wait();
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        self.kill_group();
    }
}

/// A WebDriver session in a fresh headless Chromium.
pub struct Browser {
    client: Client,
    // Field order is drop order: the session's profile and downloads outlive nothing that
    // uses them.
    driver: ChromeDriver,
    profile: tempfile::TempDir,
    downloads: tempfile::TempDir,
}

impl fmt::Debug for Browser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Browser")
            .field("driver", &self.driver)
            .field("profile", &self.profile.path())
            .field("downloads", &self.downloads.path())
            .finish_non_exhaustive()
    }
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a fresh profile.
    ///
    /// # Errors
    /// When the binaries are missing (saying how to install them) or the session fails.
    pub async fn launch() -> anyhow::Result<Self> {
        let paths = BrowserPaths::locate()?;
        let profile = tempfile::Builder::new()
            .prefix("lms-e2e-chromium-")
            .tempdir()
            .context("creating the Chromium profile directory")?;
        let downloads = tempfile::Builder::new()
            .prefix("lms-e2e-downloads-")
            .tempdir()
            .context("creating the downloads directory")?;
        let driver = ChromeDriver::start(&paths, None).await?;
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|s| (*s).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let mut capabilities = Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert("pageLoadStrategy".into(), json!("normal"));
        // Keep the browser console so tests can assert that no script error or CSP
        // refusal happened.
        capabilities.insert("goog:loggingPrefs".into(), json!({ "browser": "ALL" }));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": paths.chromium,
                "args": args,
                // Downloads land in a directory of this session without asking; chromedriver
                // passes the directory on to a headless Chromium too.
                "prefs": {
                    "download.default_directory": downloads.path(),
                    "download.prompt_for_download": false,
                    "download.directory_upgrade": true,
                },
            }),
        );
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&driver.url())
            .await
            .with_context(|| {
                format!(
                    "opening a WebDriver session in {} ({FIX})",
                    paths.chromium.display()
                )
            })?;
        Ok(Self {
            client,
            driver,
            profile,
            downloads,
        })
    }

    /// The raw fantoccini client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Navigates and waits for the load event.
    ///
    /// # Errors
    /// When navigation fails.
    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.client
            .goto(url)
            .await
            .with_context(|| format!("navigating to {url}"))
    }

    /// The current address.
    ///
    /// # Errors
    /// When the browser does not answer.
    pub async fn url(&self) -> anyhow::Result<String> {
        Ok(self.client.current_url().await?.to_string())
    }

    /// What the page shows (its `innerText`, cut to 2,000 characters), for failure messages.
    pub async fn visible_text(&self) -> String {
        match self
            .client
            .execute(
                "return document.body ? document.body.innerText : ''",
                vec![],
            )
            .await
        {
            Ok(Value::String(text)) => text.chars().take(2000).collect(),
            Ok(other) => other.to_string(),
            Err(error) => format!("<page text unavailable: {error}>"),
        }
    }

    /// Polls `probe` every 100 ms until it yields a value or `timeout` passes; the error says
    /// what was awaited, the current URL and what the page showed.
    ///
    /// # Errors
    /// On timeout, or when the probe fails in a way other than "not yet".
    pub async fn eventually<T, F, Fut>(
        &self,
        what: &str,
        timeout: Duration,
        mut probe: F,
    ) -> anyhow::Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = anyhow::Result<Option<T>>>,
    {
        let deadline = Instant::now() + timeout;
        let mut last_error = None;
        loop {
            match probe().await {
                Ok(Some(value)) => return Ok(value),
                Ok(None) => {}
                Err(error) => last_error = Some(error),
            }
            if Instant::now() >= deadline {
                let url = self.url().await.unwrap_or_default();
                let text = self.visible_text().await;
                let last = last_error
                    .map(|e| format!("; last error: {e:#}"))
                    .unwrap_or_default();
                bail!("timed out after {timeout:?} waiting for {what}{last}\nat {url}\npage text:\n{text}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The first element matching `css` that is displayed, waiting up to [`DEFAULT_WAIT`].
    ///
    /// # Errors
    /// On timeout.
    pub async fn wait_for(&self, css: &str) -> anyhow::Result<Element> {
        self.wait_for_within(css, DEFAULT_WAIT).await
    }

    /// As [`Browser::wait_for`] with an explicit bound.
    ///
    /// # Errors
    /// On timeout.
    pub async fn wait_for_within(&self, css: &str, timeout: Duration) -> anyhow::Result<Element> {
        let what = format!("a visible `{css}`");
        self.eventually(&what, timeout, || async {
            for element in self.client.find_all(Locator::Css(css)).await? {
                if element.is_displayed().await.unwrap_or(false) {
                    return Ok(Some(element));
                }
            }
            Ok(None)
        })
        .await
    }

    /// Waits until the address starts with `prefix`; returns it.
    ///
    /// # Errors
    /// On timeout.
    pub async fn wait_for_url(&self, prefix: &str) -> anyhow::Result<String> {
        let what = format!("the address to start with {prefix}");
        self.eventually(&what, DEFAULT_WAIT, || async {
            let url = self.url().await?;
            Ok(url.starts_with(prefix).then_some(url))
        })
        .await
    }

    /// Waits until the visible element `css` has text containing `needle`; returns the text.
    ///
    /// # Errors
    /// On timeout.
    pub async fn wait_for_text(&self, css: &str, needle: &str) -> anyhow::Result<String> {
        let what = format!("`{css}` to show \"{needle}\"");
        self.eventually(&what, DEFAULT_WAIT, || async {
            for element in self.client.find_all(Locator::Css(css)).await? {
                if element.is_displayed().await.unwrap_or(false) {
                    let text = element.text().await?;
                    if text.contains(needle) {
                        return Ok(Some(text));
                    }
                }
            }
            Ok(None)
        })
        .await
    }

    /// Clears the field `css` and types `text` into it.
    ///
    /// # Errors
    /// When the field never appears or cannot be typed into.
    pub async fn fill(&self, css: &str, text: &str) -> anyhow::Result<()> {
        let field = self.wait_for(css).await?;
        field
            .clear()
            .await
            .with_context(|| format!("clearing {css}"))?;
        field
            .send_keys(text)
            .await
            .with_context(|| format!("typing into {css}"))
    }

    /// Clicks the visible element `css`.
    ///
    /// # Errors
    /// When it never appears or cannot be clicked.
    pub async fn click(&self, css: &str) -> anyhow::Result<()> {
        self.wait_for(css)
            .await?
            .click()
            .await
            .with_context(|| format!("clicking {css}"))
    }

    /// The browser console's entries at level `SEVERE` since the last call (uncaught script
    /// errors, CSP refusals, failed loads), as `"LEVEL message"` lines.
    ///
    /// # Errors
    /// When chromedriver does not hand out the log.
    pub async fn console_errors(&self) -> anyhow::Result<Vec<String>> {
        let session = self
            .client
            .session_id()
            .await?
            .context("the WebDriver session has an id")?;
        // Chromedriver's log endpoint (not in the W3C protocol, so not in fantoccini).
        let url = format!("{}/session/{session}/se/log", self.driver.url());
        let body: Value = reqwest::Client::new()
            .post(&url)
            .json(&json!({ "type": "browser" }))
            .send()
            .await
            .context("asking chromedriver for the console log")?
            .error_for_status()?
            .json()
            .await?;
        let entries = body["value"]
            .as_array()
            .with_context(|| format!("unexpected log answer: {body}"))?;
        Ok(entries
            .iter()
            .filter(|entry| entry["level"] == "SEVERE")
            .map(|entry| {
                format!(
                    "{} {}",
                    entry["level"].as_str().unwrap_or_default(),
                    entry["message"].as_str().unwrap_or_default()
                )
            })
            .collect())
    }

    /// Waits until the browser has finished downloading a file named `name` (Chromium writes
    /// `name.crdownload` first and renames it when done); returns its bytes.
    ///
    /// # Errors
    /// On timeout (naming the files that did arrive), or when the file cannot be read.
    pub async fn downloaded(&self, name: &str, timeout: Duration) -> anyhow::Result<Vec<u8>> {
        let path = self.downloads.path().join(name);
        let deadline = Instant::now() + timeout;
        loop {
            if path.is_file() {
                return std::fs::read(&path).with_context(|| format!("reading {}", path.display()));
            }
            if Instant::now() >= deadline {
                let present: Vec<String> = std::fs::read_dir(self.downloads.path())
                    .map(|entries| {
                        entries
                            .filter_map(Result::ok)
                            .map(|entry| entry.file_name().to_string_lossy().into_owned())
                            .collect()
                    })
                    .unwrap_or_default();
                bail!(
                    "no download {name} after {timeout:?}; the downloads directory holds {present:?}\npage text:\n{}",
                    self.visible_text().await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves a PNG screenshot of the viewport to `path` (creating its folder); returns its size.
    ///
    /// # Errors
    /// When the screenshot fails, is not a PNG, or cannot be written.
    pub async fn screenshot_to(&self, path: &Path) -> anyhow::Result<usize> {
        let png = self
            .client
            .screenshot()
            .await
            .context("taking a screenshot")?;
        if !png.starts_with(b"\x89PNG\r\n\x1a\n") {
            bail!("the screenshot is not a PNG ({} bytes)", png.len());
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(path, &png).with_context(|| format!("writing {}", path.display()))?;
        Ok(png.len())
    }

    /// Ends the session (Chromium quits), then stops chromedriver.
    ///
    /// # Errors
    /// When the session cannot be closed cleanly (the processes are killed anyway).
    pub async fn close(self) -> anyhow::Result<()> {
        let Self {
            client,
            driver,
            profile,
            downloads,
        } = self;
        let closed = client
            .close()
            .await
            .context("closing the WebDriver session");
        drop(driver);
        drop(profile);
        drop(downloads);
        closed
    }
}

/// Where tests leave screenshots: `$CARGO_TARGET_DIR/e2e-artifacts`, else the workspace's
/// `target/e2e-artifacts`.
pub fn artifacts_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("..")
                .join("target")
        },
        PathBuf::from,
    );
    target.join("e2e-artifacts")
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn missing_binaries_name_the_install_script() {
        let dir = tempfile::tempdir().unwrap();
        let present = dir.path().join("present");
        std::fs::write(&present, b"").unwrap();
        let missing = dir.path().join("chromedriver");
        let error = BrowserPaths::checked(present.clone(), missing.clone())
            .unwrap_err()
            .to_string();
        assert!(error.contains(&missing.display().to_string()), "{error}");
        assert!(error.contains("scripts/ensure-chromium.sh"), "{error}");
        let error = BrowserPaths::checked(missing, present.clone()).unwrap_err();
        assert!(error.to_string().contains("ensure-chromium.sh"));
        let both = BrowserPaths::checked(present.clone(), present).unwrap();
        assert!(both.chromium.is_file() && both.chromedriver.is_file());
    }

    #[test]
    fn artifacts_live_under_a_target_folder() {
        assert!(artifacts_dir().ends_with("e2e-artifacts"));
    }
}
