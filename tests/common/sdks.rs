//! The real Sentry SDKs the tests drive: sentry-python (`SHIPLOG_PYTHON`, a venv python with
//! `sentry-sdk`) and @sentry/node (`SHIPLOG_NODE_MODULES`), both installed by
//! `scripts/install-sdks` and exported by `scripts/test`. Without them a test skips locally
//! and fails in CI, like the sentry-cli tests.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

use super::sentry_cli::in_ci;

fn require(var: &str, test_name: &str) -> Option<PathBuf> {
    match std::env::var_os(var).filter(|v| !v.is_empty()) {
        Some(p) => Some(PathBuf::from(p)),
        None if in_ci() => panic!(
            "{test_name}: {var} is required in CI; run scripts/install-sdks (scripts/test does)"
        ),
        None => {
            eprintln!("{test_name}: skipped, {var} is not set (see scripts/install-sdks)");
            None
        }
    }
}

/// The venv python with sentry-sdk, or `None` (skip) outside CI.
pub fn require_python(test_name: &str) -> Option<PathBuf> {
    require("SHIPLOG_PYTHON", test_name)
}

/// The node_modules dir holding @sentry/node, or `None` (skip) outside CI.
pub fn require_node(test_name: &str) -> Option<PathBuf> {
    require("SHIPLOG_NODE_MODULES", test_name)
}

/// Runs a Python script with the SDK, with `env` set (the DSN and what the script does).
pub fn run_python(python: &PathBuf, script: &str, env: &[(&str, &str)]) -> Output {
    Command::new(python)
        .arg("-c")
        .arg(script)
        .envs(env.iter().copied())
        .env_remove("SENTRY_DSN")
        .env_remove("SENTRY_RELEASE")
        .env_remove("SENTRY_ENVIRONMENT")
        .output()
        .expect("run python")
}

/// Runs a Node script with @sentry/node resolvable, with `env` set.
pub fn run_node(modules: &PathBuf, script: &str, env: &[(&str, &str)]) -> Output {
    Command::new("node")
        .arg("-e")
        .arg(script)
        .envs(env.iter().copied())
        .env("NODE_PATH", modules)
        .env_remove("SENTRY_DSN")
        .env_remove("SENTRY_RELEASE")
        .env_remove("SENTRY_ENVIRONMENT")
        .output()
        .expect("run node")
}
