//! A real browser for the web-page tests: Debian's chromium driven through chromedriver
//! (WebDriver) with fantoccini. `scripts/test` and `.ci/run` install both
//! (`apt-get install chromium chromium-driver`).
//!
//! Each [`Browser`] starts its own chromedriver on a free loopback port and a headless
//! chromium with a fresh profile, and stops both when dropped. Calls are blocking wrappers
//! around fantoccini's async client, so tests stay plain `#[test]` functions.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use super::sentry_cli::in_ci;

/// chromedriver's path (`SHIPLOG_CHROMEDRIVER`, default `/usr/bin/chromedriver`).
fn chromedriver() -> PathBuf {
    std::env::var_os("SHIPLOG_CHROMEDRIVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromedriver"))
}

/// chromium's path (`SHIPLOG_CHROMIUM`, default `/usr/bin/chromium`).
fn chromium() -> PathBuf {
    std::env::var_os("SHIPLOG_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

pub struct Browser {
    client: Option<Client>,
    driver: Child,
    rt: tokio::runtime::Runtime,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// A headless chromium, or `None` (a skip) outside CI when chromium or chromedriver is
    /// missing; in CI a missing browser fails the test.
    pub fn start(test_name: &str) -> Option<Browser> {
        if !chromedriver().is_file() || !chromium().is_file() {
            if in_ci() {
                panic!(
                    "{test_name}: chromium and chromedriver are required in CI: apt-get install chromium chromium-driver (scripts/test does)"
                );
            }
            eprintln!("skipped {test_name}: chromium or chromedriver is not installed");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let driver = Command::new(chromedriver())
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().expect("profile dir");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let caps = json!({
            "goog:chromeOptions": {
                "binary": chromium().to_string_lossy(),
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1280,1000",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }
        });
        let caps = match caps {
            serde_json::Value::Object(map) => map,
            _ => unreachable!(),
        };
        let client = rt
            .block_on(async {
                let connector = hyper_util::client::legacy::connect::HttpConnector::new();
                ClientBuilder::new(connector)
                    .capabilities(caps)
                    .connect(&format!("http://127.0.0.1:{port}"))
                    .await
            })
            .expect("WebDriver session");
        Some(Browser {
            client: Some(client),
            driver,
            rt,
            _profile: profile,
        })
    }

    fn c(&self) -> &Client {
        self.client.as_ref().expect("client")
    }

    pub fn goto(&self, url: &str) {
        self.rt.block_on(self.c().goto(url)).expect("goto");
    }

    pub fn url(&self) -> String {
        self.rt
            .block_on(self.c().current_url())
            .expect("current url")
            .to_string()
    }

    pub fn source(&self) -> String {
        self.rt.block_on(self.c().source()).expect("page source")
    }

    /// The page's visible text.
    /// A page still being replaced after a click (its body gone stale between finding and
    /// reading it) is read again.
    pub fn text(&self) -> String {
        let mut tries = 0;
        loop {
            let read = self
                .rt
                .block_on(async { self.c().find(Locator::Css("body")).await?.text().await });
            match read {
                Ok(text) => return text,
                Err(_) if tries < 50 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("body text: {e}"),
            }
        }
    }

    pub fn click(&self, css: &str) {
        self.rt
            .block_on(async { self.c().find(Locator::Css(css)).await?.click().await })
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    pub fn fill(&self, css: &str, text: &str) {
        self.rt
            .block_on(async {
                self.c()
                    .find(Locator::Css(css))
                    .await?
                    .send_keys(text)
                    .await
            })
            .unwrap_or_else(|e| panic!("fill {css}: {e}"));
    }

    /// Sets the window's size (e.g. 375 px wide to check the small-screen layout).
    pub fn resize(&self, width: u32, height: u32) {
        self.rt
            .block_on(self.c().set_window_size(width, height))
            .expect("window size");
    }

    /// The page's width as laid out (to check nothing overflows the window).
    pub fn scroll_width(&self) -> i64 {
        self.rt
            .block_on(
                self.c()
                    .execute("return document.documentElement.scrollWidth", vec![]),
            )
            .expect("scrollWidth")
            .as_i64()
            .unwrap_or(0)
    }

    /// A PNG screenshot of the window, written to `path`.
    pub fn screenshot(&self, path: &Path) {
        let png = self.rt.block_on(self.c().screenshot()).expect("screenshot");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot dir");
        }
        std::fs::write(path, png).expect("write screenshot");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = self.rt.block_on(client.close());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
