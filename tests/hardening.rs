//! Regression tests for what broke when the daemon was attacked on purpose (issue 10): each
//! test pins one hole, named after it, and fails without its fix.

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::DEFAULT_CONFIG;

/// Runs `shiplog serve` with `config`, killing it if it has not exited after `limit`.
fn serve_until_exit(
    config: &str,
    listen: &str,
    limit: Duration,
) -> (Option<i32>, String, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.yaml");
    std::fs::write(&cfg, config).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_shiplog"))
        .arg("--config")
        .arg(&cfg)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["serve", "--listen", listen])
        .current_dir(dir.path())
        .env_remove("SHIPLOG_CONFIG")
        .env_remove("SHIPLOG_LISTEN")
        .env_remove("SHIPLOG_DATA_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut err);
    (code, err, started.elapsed())
}

#[test]
fn a_busy_port_stops_start_up_at_once_even_with_a_drop_folder() {
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let config = format!("{DEFAULT_CONFIG}artifacts:\n  drop_dirs: [drop]\n");
    let (code, err, took) = serve_until_exit(&config, &addr, Duration::from_secs(20));
    assert!(code.is_some(), "serve hung on a busy port:\n{err}");
    assert_ne!(code, Some(0), "{err}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: ") && last.contains(&addr),
        "the last line must name the address: {err}"
    );
}
