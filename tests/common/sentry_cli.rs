//! Finding and running the real, unmodified `sentry-cli` (3.x) against a shiplog server.
//!
//! `scripts/install-sentry-cli` puts the binary under `.tools/sentry-cli/` of the repo and
//! `scripts/test` exports its path as `SHIPLOG_SENTRY_CLI`. Tests that need it call
//! [`require_sentry_cli`] first: without the binary they skip locally and fail in CI.
//!
//! [`sentry_cli_command`] builds a `Command` whose environment is cut off from the developer's
//! own Sentry setup (`~/.sentryclirc`, `.env` files, `SENTRY_*` variables, HTTP proxies), so the
//! only server it ever talks to is the one whose URL the test passes.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// Environment variable naming the sentry-cli binary (set by `scripts/test`).
#[allow(dead_code)]
pub const SENTRY_CLI_ENV: &str = "SHIPLOG_SENTRY_CLI";

/// Environment variable naming a pinned sentry-cli 2.x binary (set by `scripts/test`), for the
/// legacy commands 3.x removed (`releases files`).
#[allow(dead_code)]
pub const SENTRY_CLI_2_ENV: &str = "SHIPLOG_SENTRY_CLI_2";

/// The 2.x version `scripts/test` installs (`scripts/install-sentry-cli 2.58.6`).
#[allow(dead_code)]
const SENTRY_CLI_2_VERSION: &str = "2.58.6";

/// Where `scripts/install-sentry-cli` may have put the binary, relative to its install dir:
/// the native binary of npm's platform package for this machine, then the PyPI fallback.
const INSTALLED_CANDIDATES: &[&str] = &[
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    "node_modules/@sentry/cli-linux-x64/bin/sentry-cli",
    #[cfg(all(target_os = "linux", target_arch = "aarch64"))]
    "node_modules/@sentry/cli-linux-arm64/bin/sentry-cli",
    #[cfg(all(target_os = "linux", target_arch = "x86"))]
    "node_modules/@sentry/cli-linux-i686/bin/sentry-cli",
    #[cfg(all(target_os = "linux", target_arch = "arm"))]
    "node_modules/@sentry/cli-linux-arm/bin/sentry-cli",
    #[cfg(target_os = "macos")]
    "node_modules/@sentry/cli-darwin/bin/sentry-cli",
    "pypi/bin/sentry-cli",
];

/// Returns the sentry-cli binary to test with, if there is one.
///
/// In order: the path in `SHIPLOG_SENTRY_CLI` when it names an executable file, then the
/// binary installed by `scripts/install-sentry-cli` under `<repo>/.tools/sentry-cli/`,
/// else `None`. A `SHIPLOG_SENTRY_CLI` that does not point at an executable is reported on
/// stderr and otherwise ignored.
#[allow(dead_code)]
pub fn sentry_cli() -> Option<PathBuf> {
    find(SENTRY_CLI_ENV, ".tools/sentry-cli")
}

/// Returns the pinned sentry-cli 2.x, if there is one: `SHIPLOG_SENTRY_CLI_2`, then
/// `<repo>/.tools/sentry-cli-2.58.6/` (as [`sentry_cli`] does for 3.x).
#[allow(dead_code)]
pub fn sentry_cli_2() -> Option<PathBuf> {
    find(
        SENTRY_CLI_2_ENV,
        &format!(".tools/sentry-cli-{SENTRY_CLI_2_VERSION}"),
    )
}

fn find(env: &str, install_dir: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        if is_executable(&path) {
            return Some(path);
        }
        eprintln!(
            "{env}={} is not an executable file; looking in {install_dir}",
            path.display()
        );
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(install_dir);
    INSTALLED_CANDIDATES
        .iter()
        .map(|rel| root.join(rel))
        .find(|path| is_executable(path))
}

/// Returns the sentry-cli binary, or decides what a test without one does.
///
/// With no binary ([`sentry_cli`] is `None`): in CI (env `CI` set and not `false`/`0`) this
/// panics, since CI must run these tests; elsewhere it prints
/// `skipped <test_name>: sentry-cli not found (...)` to stderr and returns `None`, and the
/// test should return early:
///
/// ```ignore
/// let Some(cli) = common::sentry_cli::require_sentry_cli("releases_new") else { return };
/// ```
#[allow(dead_code)]
pub fn require_sentry_cli(test_name: &str) -> Option<PathBuf> {
    require(test_name, sentry_cli(), SENTRY_CLI_ENV, "")
}

/// [`require_sentry_cli`] for the pinned 2.x ([`sentry_cli_2`]).
#[allow(dead_code)]
pub fn require_sentry_cli_2(test_name: &str) -> Option<PathBuf> {
    require(
        test_name,
        sentry_cli_2(),
        SENTRY_CLI_2_ENV,
        SENTRY_CLI_2_VERSION,
    )
}

fn require(test_name: &str, found: Option<PathBuf>, env: &str, version: &str) -> Option<PathBuf> {
    if let Some(path) = found {
        return Some(path);
    }
    let install = format!("scripts/install-sentry-cli {version}");
    let install = install.trim_end();
    if in_ci() {
        panic!(
            "{test_name}: sentry-cli {version} is required in CI but was not found: set {env} \
             to its path, or install it with {install} (scripts/test and .ci/run do this \
             themselves)"
        );
    }
    eprintln!(
        "skipped {test_name}: sentry-cli {version} not found (run {install} or scripts/test)"
    );
    None
}

/// Builds a `Command` for `bin` that talks to `url` with `token` and nothing else.
///
/// The environment is the caller's, less everything that could steer sentry-cli elsewhere:
/// - `SENTRY_URL` = `url` (e.g. `http://127.0.0.1:PORT/`) and `SENTRY_AUTH_TOKEN` = `token`;
/// - every inherited `SENTRY*` variable removed (`SENTRY_ORG`, `SENTRY_PROJECT`, `SENTRY_DSN`,
///   `SENTRY_RELEASE`, `SENTRY_PROPERTIES`, `SENTRY_HTTP_MAX_RETRIES`, `SENTRYCLI_*`, ...),
///   so tests pass `--org`/`--project` explicitly;
/// - `HOME` (and the XDG config/cache dirs) set to an empty directory of this test process
///   under the system temp dir, so no `~/.sentryclirc` or `~/.config/sentry/sentrycli.ini`
///   is read; the working directory is that directory too, because sentry-cli also looks for
///   `.sentryclirc`/`sentrycli.ini` in the working directory and its parents;
/// - `SENTRY_LOAD_DOTENV=0`: sentry-cli otherwise loads `.env` from the working directory up;
/// - `SENTRY_DISABLE_UPDATE_CHECK=true`: no version check against Sentry's release registry
///   (sentry-cli already skips it when not on a terminal and for npm installs; it has no
///   other telemetry), and `SENTRY_NO_PROGRESS_BAR=1`;
/// - `SENTRY_LOG_LEVEL=warn`, and `RUST_BACKTRACE`/`RUST_LIB_BACKTRACE`/`RUST_LOG` removed, so
///   its error output does not grow a stack trace when the test runner has `RUST_BACKTRACE=1`;
/// - HTTP proxy variables removed and `NO_PROXY` set to loopback, so requests to the test
///   server go straight to it.
///
/// A test that needs a git checkout (e.g. `releases set-commits --auto`) may call
/// `.current_dir(repo)` on the result; `.env` files stay ignored, but a `.sentryclirc` in that
/// directory or above it would then be read.
#[allow(dead_code)]
pub fn sentry_cli_command(bin: &Path, url: &str, token: &str) -> Command {
    let home = isolated_home();
    let mut cmd = Command::new(bin);

    let inherited: Vec<OsString> = std::env::vars_os()
        .map(|(key, _)| key)
        .filter(|key| {
            let key = key.to_string_lossy();
            key.to_ascii_uppercase().starts_with("SENTRY")
                || PROXY_VARS.iter().any(|p| key.eq_ignore_ascii_case(p))
        })
        .collect();
    for key in inherited {
        cmd.env_remove(key);
    }
    for key in [
        "SENTRY_ORG",
        "SENTRY_PROJECT",
        "SENTRY_DSN",
        "RUST_BACKTRACE",
        "RUST_LIB_BACKTRACE",
        "RUST_LOG",
    ] {
        cmd.env_remove(key);
    }

    cmd.env("SENTRY_URL", url)
        .env("SENTRY_AUTH_TOKEN", token)
        .env("SENTRY_LOG_LEVEL", "warn")
        .env("SENTRY_DISABLE_UPDATE_CHECK", "true")
        .env("SENTRY_LOAD_DOTENV", "0")
        .env("SENTRY_NO_PROGRESS_BAR", "1")
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env("NO_PROXY", LOOPBACK)
        .env("no_proxy", LOOPBACK)
        .current_dir(home);
    cmd
}

/// Runs sentry-cli `bin` with `args` against the daemon `d` (its URL and token).
#[allow(dead_code)]
pub fn run_against(bin: &Path, d: &super::Daemon, args: &[&str]) -> Output {
    sentry_cli_command(bin, &d.url, &d.token)
        .args(args)
        .output()
        .expect("run sentry-cli")
}

/// Like [`run_against`], failing the test with both outputs and the daemon's log unless the
/// command succeeds; its stdout.
#[allow(dead_code)]
pub fn ok_against(bin: &Path, d: &super::Daemon, args: &[&str]) -> String {
    let out = run_against(bin, d, args);
    assert!(
        out.status.success(),
        "sentry-cli {args:?} failed:\n{}\n{}\n--- daemon log ---\n{}",
        super::stdout(&out),
        super::stderr(&out),
        d.log()
    );
    super::stdout(&out)
}

/// Proxy variables (compared case-insensitively) that curl inside sentry-cli would honour.
const PROXY_VARS: &[&str] = &["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"];

/// Hosts that must never go through a proxy.
const LOOPBACK: &str = "127.0.0.1,localhost,::1";

/// Whether this run is in CI, where missing tools are failures rather than skips.
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Whether `path` is a regular file (after following links) that can be executed.
fn is_executable(path: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.is_file() && meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        meta.is_file()
    }
}

/// An empty directory for this test process, made on first use, used as sentry-cli's `HOME`.
///
/// One per process (nextest runs each test in a process of its own), named after the pid and
/// emptied first in case an earlier process with the same pid left one behind.
fn isolated_home() -> &'static Path {
    static HOME: OnceLock<PathBuf> = OnceLock::new();
    HOME.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("shiplog-sentry-cli-home-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create sentry-cli home {}: {e}", dir.display()));
        dir
    })
}
