//! Shared fixtures for the integration tests: a real `shiplog serve` on 127.0.0.1 with its own
//! temp data dir, a token for it, and helpers to call its API and its CLI.
//!
//! Every daemon binds loopback on a free port and is stopped (SIGTERM, then SIGKILL) when the
//! [`Daemon`] is dropped, so a failing test leaves nothing running.

#![allow(dead_code)]

pub mod artifacts;
pub mod browser;
pub mod events;
pub mod github_fake;
pub mod gitrepo;
pub mod hook_repo;
pub mod moto;
pub mod postgres;
pub mod sdks;
pub mod sentry_cli;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The config most tests run with.
pub const DEFAULT_CONFIG: &str = "organization: acme
projects:
  - slug: web
    name: Web
  - slug: api
    name: API
";

/// A running daemon.
pub struct Daemon {
    dir: tempfile::TempDir,
    child: Option<Child>,
    pub url: String,
    pub token: String,
    port: u16,
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_shiplog")
}

impl Daemon {
    /// Starts a daemon on [`DEFAULT_CONFIG`].
    pub fn start() -> Daemon {
        Daemon::start_with(DEFAULT_CONFIG)
    }

    /// Starts a daemon on the given config YAML.
    pub fn start_with(config: &str) -> Daemon {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("config.yaml"), config).expect("write config");
        let mut d = Daemon {
            dir,
            child: None,
            url: String::new(),
            token: String::new(),
            port: 0,
        };
        d.spawn();
        let out = d.shiplog(&["token", "create", "--name", "test"]);
        assert!(
            out.status.success(),
            "token create failed: {}",
            stderr(&out)
        );
        d.token = stdout(&out).trim().to_string();
        d
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.yaml")
    }

    fn spawn(&mut self) {
        let _ = std::fs::remove_file(self.data_dir().join("daemon.json"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("daemon.log"))
            .expect("log file");
        let child = Command::new(bin())
            .arg("--config")
            .arg(self.config_path())
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(["serve", "--listen", &format!("127.0.0.1:{}", self.port)])
            .env("RUST_LOG", "info")
            .env_remove("SHIPLOG_CONFIG")
            .env_remove("SHIPLOG_LISTEN")
            .env_remove("SHIPLOG_DATA_DIR")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn shiplog serve");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("daemon exited early ({status}):\n{}", self.log());
            }
            if let Ok(text) = std::fs::read_to_string(self.data_dir().join("daemon.json"))
                && let Ok(info) = serde_json::from_str::<Value>(&text)
            {
                self.url = info["url"].as_str().unwrap_or_default().to_string();
                self.port = info["listen"]
                    .as_str()
                    .and_then(|a| a.rsplit(':').next())
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(0);
                if reqwest::blocking::get(format!("{}/healthz", self.url))
                    .map(|r| r.status().is_success())
                    .unwrap_or(false)
                {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "daemon did not become ready:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    /// Stops the daemon with SIGTERM and waits for it; returns its exit status.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        child.wait().ok()
    }

    /// Kills the daemon with SIGKILL (no shutdown at all) and waits for it to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops and starts the daemon again on the same port and data dir.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Runs the shiplog CLI against this daemon (config, data dir, URL and token set).
    pub fn shiplog(&self, args: &[&str]) -> Output {
        self.shiplog_cmd(args).output().expect("run shiplog")
    }

    pub fn shiplog_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin());
        cmd.arg("--config")
            .arg(self.config_path())
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(args)
            .env("SHIPLOG_URL", &self.url)
            .env("SHIPLOG_TOKEN", &self.token)
            .env_remove("SHIPLOG_ORG")
            .env_remove("SENTRY_ORG")
            .env_remove("SHIPLOG_PROJECT")
            .env_remove("SENTRY_PROJECT")
            .env_remove("SENTRY_AUTH_TOKEN")
            .env_remove("SENTRY_URL")
            .stdin(Stdio::null());
        cmd
    }

    /// An API call with this daemon's token. `path` is below `/api/0/`.
    pub fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.request(method, path, body, Some(&self.token))
    }

    /// An API call with any (or no) token.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (u16, Value) {
        let (status, _, value) = self.request_full(method, path, body, token);
        (status, value)
    }

    /// An API call returning status, headers and JSON body.
    pub fn request_full(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let client = reqwest::blocking::Client::new();
        let url = format!("{}/api/0/{}", self.url, path.trim_start_matches('/'));
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = client.request(method, url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().expect("request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().unwrap_or_default();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, headers, value)
    }

    /// Opens the daemon's database read-only, for checking what was stored.
    pub fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open_with_flags(
            self.data_dir().join("shiplog.sqlite3"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .expect("open db")
    }

    /// One integer from the database.
    pub fn count(&self, sql: &str) -> i64 {
        self.db()
            .query_row(sql, [], |r| r.get(0))
            .expect("count query")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
