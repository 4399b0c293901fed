//! What the benchmarks share: git run in isolation from the user's and the system's config,
//! `git fast-import` fed a stream, and a real daemon on loopback ([`daemon`]).
// Each benchmark is its own crate and uses only part of this.
#![allow(dead_code)]

pub mod daemon;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Runs git in `dir` without system or global config; panics with stderr on failure.
pub fn git(dir: &Path, args: &[&str]) -> Output {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Feeds `stream` to `git fast-import` in `dir` (an initialised repository).
pub fn fast_import(dir: &Path, stream: &[u8]) {
    let mut child = Command::new("git")
        .current_dir(dir)
        .args(["fast-import", "--quiet"])
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .stdin(Stdio::piped())
        .spawn()
        .expect("git fast-import");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stream)
        .expect("feed fast-import");
    assert!(child.wait().expect("fast-import").success());
}
