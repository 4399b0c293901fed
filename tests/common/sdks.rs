//! Running the real Sentry SDKs against a shiplog daemon: sentry-python in the venv and
//! @sentry/node that `scripts/install-sdks` installs (`scripts/test` exports their paths as
//! `SHIPLOG_PYTHON` and `SHIPLOG_NODE_MODULES`).
//!
//! Tests call [`require_python`] / [`require_node_modules`] first: without the tool they skip
//! locally and fail in CI, like the sentry-cli tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::sentry_cli::in_ci;
use super::{stderr, stdout};

/// Environment variable naming the venv python that has sentry-sdk.
pub const PYTHON_ENV: &str = "SHIPLOG_PYTHON";
/// Environment variable naming the node_modules directory that has @sentry/node.
pub const NODE_MODULES_ENV: &str = "SHIPLOG_NODE_MODULES";

fn require(var: &str, test_name: &str, valid: impl Fn(&Path) -> bool) -> Option<PathBuf> {
    let path = std::env::var_os(var)
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .filter(|p| valid(p));
    if path.is_some() {
        return path;
    }
    if in_ci() {
        panic!(
            "{test_name}: {var} is required in CI but is unset or wrong: run scripts/install-sdks \
             (scripts/test and .ci/run do this themselves)"
        );
    }
    eprintln!("skipped {test_name}: {var} not set (run scripts/install-sdks or scripts/test)");
    None
}

/// The python that has sentry-sdk, or `None` (a skip) outside CI.
pub fn require_python(test_name: &str) -> Option<PathBuf> {
    require(PYTHON_ENV, test_name, Path::is_file)
}

/// The node_modules directory that has @sentry/node, or `None` (a skip) outside CI.
pub fn require_node_modules(test_name: &str) -> Option<PathBuf> {
    require(NODE_MODULES_ENV, test_name, |p| {
        p.join("@sentry/node/package.json").is_file()
    })
}

/// Runs `script` with `program` (the venv python, or `node`) in a fresh directory, which the
/// SDKs take as the project root (its frames are in-app), with `args` after the script.
/// Panics with the script's output when it fails.
pub fn run_script(
    program: &Path,
    file_name: &str,
    script: &str,
    args: &[&str],
    envs: &[(&str, &Path)],
) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(file_name);
    std::fs::write(&path, script).expect("write script");
    let mut cmd = Command::new(program);
    cmd.arg(&path).args(args).current_dir(dir.path());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    // Nothing from the developer's own Sentry setup.
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("SENTRY") {
            cmd.env_remove(key);
        }
    }
    let out = cmd.output().expect("run the SDK script");
    assert!(
        out.status.success(),
        "{file_name} failed:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// Runs a Python script given inline with the SDK, with `env` set (the DSN and what the
/// script does); the caller checks the output.
pub fn run_python(python: &Path, script: &str, env: &[(&str, &str)]) -> Output {
    inline(Command::new(python).arg("-c").arg(script), env)
}

/// Runs a Node script given inline with @sentry/node resolvable, with `env` set.
pub fn run_node(modules: &Path, script: &str, env: &[(&str, &str)]) -> Output {
    inline(
        Command::new("node")
            .arg("-e")
            .arg(script)
            .env("NODE_PATH", modules),
        env,
    )
}

fn inline(cmd: &mut Command, env: &[(&str, &str)]) -> Output {
    cmd.envs(env.iter().copied())
        .env_remove("SENTRY_DSN")
        .env_remove("SENTRY_RELEASE")
        .env_remove("SENTRY_ENVIRONMENT")
        .output()
        .expect("run the SDK script")
}
