//! A real `shiplog serve` on loopback for the benchmarks that talk to one over HTTP: started
//! on `DIR/config.yaml` and `DIR/data`, ready once `/healthz` answers, stopped on drop (TERM,
//! then KILL after 10 s).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The shiplog binary of this build.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_shiplog")
}

/// `shiplog --config DIR/config.yaml --data-dir DIR/data`, ready for its arguments.
pub fn shiplog(dir: &Path) -> Command {
    let mut cmd = Command::new(bin());
    cmd.arg("--config")
        .arg(dir.join("config.yaml"))
        .arg("--data-dir")
        .arg(dir.join("data"));
    cmd
}

/// A running daemon.
pub struct Daemon {
    pub child: Child,
    /// Its base URL (`http://127.0.0.1:PORT`).
    pub url: String,
    /// The directory holding `config.yaml` and `data/`.
    pub dir: PathBuf,
    /// The temporary directory `dir` is, when the daemon made it: removed after the daemon
    /// stopped (fields drop after [`Drop::drop`]).
    pub temp: Option<tempfile::TempDir>,
}

impl Daemon {
    /// Starts a daemon on `dir`, whose `config.yaml` the caller wrote.
    pub fn start_in(dir: &Path) -> Daemon {
        let data = dir.join("data");
        // A stale file from an earlier run would point at a dead port.
        let _ = std::fs::remove_file(data.join("daemon.json"));
        let child = shiplog(dir)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn shiplog serve");
        let url = wait_ready(&data);
        Daemon {
            child,
            url,
            dir: dir.to_path_buf(),
            temp: None,
        }
    }

    /// Starts a daemon on a fresh temporary directory with this `config.yaml`.
    pub fn start_temp(config: &str) -> Daemon {
        let temp = tempfile::tempdir().expect("temp dir");
        std::fs::write(temp.path().join("config.yaml"), config).expect("config");
        let mut daemon = Daemon::start_in(temp.path());
        daemon.temp = Some(temp);
        daemon
    }

    /// Its data dir.
    pub fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Runs a shiplog command on the daemon's config and data dir; its trimmed stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = shiplog(&self.dir).args(args).output().expect("shiplog");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A project's id and DSN key, from `shiplog projects dsn`.
    pub fn dsn(&self, project: &str) -> (String, String) {
        let dsn = self.cli(&["projects", "dsn", project]);
        let rest = dsn.strip_prefix("http://").expect("http DSN");
        let (key, rest) = rest.split_once('@').expect("key in DSN");
        let id = rest.rsplit('/').next().expect("project id in DSN");
        (id.to_string(), key.to_string())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for the daemon on `data` to write its address and answer `/healthz`; its URL.
pub fn wait_ready(data: &Path) -> String {
    let client = reqwest::blocking::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(text) = std::fs::read_to_string(data.join("daemon.json"))
            && let Ok(info) = serde_json::from_str::<serde_json::Value>(&text)
        {
            let url = info["url"].as_str().unwrap_or_default().to_string();
            if client
                .get(format!("{url}/healthz"))
                .send()
                .is_ok_and(|r| r.status().is_success())
            {
                return url;
            }
        }
        assert!(Instant::now() < deadline, "daemon did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
}
